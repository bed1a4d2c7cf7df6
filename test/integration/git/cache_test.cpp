// Repository preparation against real repositories: local bare repositories
// over file://, `git daemon` on loopback (git://) and git-http-backend with
// Basic auth (http://).

#include "git_fixtures.hpp"

#include "support/support.hpp"

#include <faasd/git/cache.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace tg = faasd::test::git;
using namespace faasd::git;
using namespace std::chrono_literals;

namespace {

struct env {
    faasd::test::temp_dir tmp{"faasd-git"};
    fs::path served = tmp.path() / "served";
    fs::path cache_dir = tmp.path() / "cache";
    std::vector<std::string> lines;
    faasd::logger log{faasd::log_level::debug, faasd::log_format::text,
                      [this](std::string_view l) { lines.emplace_back(l); }, false};

    cache_config config(std::chrono::milliseconds staleness = 60s) const {
        cache_config c;
        c.dir = cache_dir;
        c.ref_staleness = staleness;
        c.schemes = scheme_policy::development();
        c.retry = retry_policy{2, 20ms, 50ms};
        return c;
    }
    fs::path dest(const std::string& name) const { return tmp.path() / "jobs" / name; }
    tg::repo make_repo(const std::string& name) { return tg::repo(tmp.path() / "work" / name, served / (name + ".git")); }
};

prepare_result prepare(repo_cache& cache, prepare_request req) {
    return faasd::test::run_coroutine<prepare_result>(
        [&]() -> asio::awaitable<prepare_result> { co_return co_await cache.prepare(req); }, 120s);
}

prepare_request request(std::string url, std::string ref, std::string commit, fs::path dest) {
    prepare_request r;
    r.url = std::move(url);
    r.ref = std::move(ref);
    r.commit = std::move(commit);
    r.destination = std::move(dest);
    return r;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

std::string describe(const prepare_result& r) {
    return r ? "ok " + r->commit : std::string(to_string(r.error().code)) + ": " + r.error().message;
}

}  // namespace

TEST_CASE("file://: first prepare clones, a cached commit needs no remote at all", "[git][integration]") {
    env e;
    auto r = e.make_repo("fn");
    r.write("main", "#!/bin/sh\necho hi\n", true);
    r.write("lib/util.txt", "util v1\n");
    auto c1 = r.commit("first");
    repo_cache cache(e.config(), e.log);

    auto first = prepare(cache, request(r.file_url(), "main", "", e.dest("a")));
    INFO(describe(first));
    REQUIRE(first.has_value());
    CHECK(first->commit == c1);
    CHECK(first->ref == "refs/heads/main");
    CHECK(first->cloned);
    CHECK_FALSE(first->cache_hit);
    CHECK(slurp(e.dest("a") / "lib/util.txt") == "util v1\n");
    CHECK((fs::status(e.dest("a") / "main").permissions() & fs::perms::owner_exec) != fs::perms::none);
    CHECK_FALSE(fs::exists(e.dest("a") / ".git"));  // only the tree
    CHECK(first->files == 2);

    // Make the remote disappear: the commit still prepares, from the mirror alone.
    fs::rename(r.bare(), e.tmp.path() / "moved.git");
    auto second = prepare(cache, request(r.file_url(), "", c1, e.dest("b")));
    INFO(describe(second));
    REQUIRE(second.has_value());
    CHECK(second->cache_hit);
    CHECK_FALSE(second->fetched);
    CHECK(second->attempts == 0);
    CHECK(slurp(e.dest("b") / "lib/util.txt") == "util v1\n");
    // An abbreviated id works too, and so does the branch while the mirror is fresh.
    auto abbrev = prepare(cache, request(r.file_url(), "", c1.substr(0, 10), e.dest("c")));
    REQUIRE(abbrev.has_value());
    CHECK(abbrev->commit == c1);
    auto by_ref = prepare(cache, request(r.file_url(), "main", "", e.dest("d")));
    REQUIRE(by_ref.has_value());
    CHECK(by_ref->cache_hit);
    auto s = cache.stats();
    CHECK(s.clones == 1);
    CHECK(s.fetches == 0);
    CHECK(s.hits == 3);
}

TEST_CASE("git://: hits do no network I/O, new commits appear once the ref is stale", "[git][integration]") {
    env e;
    auto r = e.make_repo("svc");
    r.write("v.txt", "1\n");
    auto c1 = r.commit("one");
    r.tag("v1", true);  // annotated: must peel to the commit
    tg::git_daemon daemon(e.served, e.tmp.path());
    const auto url = daemon.url("svc.git");

    repo_cache cache(e.config(60s), e.log);
    auto first = prepare(cache, request(url, "main", "", e.dest("1")));
    INFO(describe(first));
    REQUIRE(first.has_value());
    CHECK(first->cloned);
    CHECK(daemon.upload_packs() == 1);

    // Same commit, same branch (fresh), the tag, and HEAD: all from the mirror.
    REQUIRE(prepare(cache, request(url, "", c1, e.dest("2"))).has_value());
    auto tag = prepare(cache, request(url, "v1", "", e.dest("3")));
    REQUIRE(tag.has_value());
    CHECK(tag->commit == c1);
    CHECK(tag->ref == "refs/tags/v1");
    auto head = prepare(cache, request(url, "", "", e.dest("4")));
    REQUIRE(head.has_value());
    CHECK(head->commit == c1);
    CHECK(head->ref == "refs/heads/main");
    CHECK(daemon.upload_packs() == 1);

    // A new commit on main: within the staleness bound the cached commit is used...
    r.write("v.txt", "2\n");
    auto c2 = r.commit("two");
    auto stale = prepare(cache, request(url, "main", "", e.dest("5")));
    REQUIRE(stale.has_value());
    CHECK(stale->commit == c1);
    CHECK(daemon.upload_packs() == 1);
    // ... and once it is older than the bound (a cache with staleness 0 on the same directory) it is fetched.
    repo_cache eager(e.config(0ms), e.log);
    auto fresh = prepare(eager, request(url, "main", "", e.dest("6")));
    INFO(describe(fresh));
    REQUIRE(fresh.has_value());
    CHECK(fresh->commit == c2);
    CHECK(fresh->fetched);
    CHECK_FALSE(fresh->cache_hit);
    CHECK(slurp(e.dest("6") / "v.txt") == "2\n");
    CHECK(daemon.upload_packs() == 2);
    // A commit the mirror lacks triggers one fetch, even with a long staleness bound.
    r.write("v.txt", "3\n");
    auto c3 = r.commit("three");
    auto by_commit = prepare(cache, request(url, "", c3, e.dest("7")));
    REQUIRE(by_commit.has_value());
    CHECK(by_commit->fetched);
    CHECK(daemon.upload_packs() == 3);

    // The server goes away: cached commits still prepare; stale refs fail as a network error after retries.
    daemon.stop();
    auto offline = prepare(cache, request(url, "", c2, e.dest("8")));
    INFO(describe(offline));
    REQUIRE(offline.has_value());
    CHECK(offline->cache_hit);
    auto failed = prepare(eager, request(url, "main", "", e.dest("9")));
    REQUIRE_FALSE(failed.has_value());
    CHECK(failed.error().code == git_errc::network_error);
    CHECK_FALSE(fs::exists(e.dest("9")));
    CHECK(eager.stats().fetches == 1 + 2);  // one earlier fetch, then two attempts (retry policy)
}

TEST_CASE("concurrent jobs on one repository share one clone", "[git][integration]") {
    env e;
    auto r = e.make_repo("shared");
    r.write("big.bin", tg::random_bytes(2 << 20, 7));
    auto c1 = r.commit("one");
    tg::git_daemon daemon(e.served, e.tmp.path());
    const auto url = daemon.url("shared.git");

    // Four jobs in one process and two "processes" (separate caches on the same
    // directory: flock locks are per open file, as between processes).
    repo_cache cache(e.config(), e.log);
    repo_cache other(e.config(), e.log);
    std::vector<prepare_result> results;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            int pending = 6;
            asio::steady_timer done(ex, asio::steady_timer::time_point::max());
            for (int i = 0; i < 6; ++i) {
                auto& c = i % 3 == 2 ? other : cache;
                asio::co_spawn(ex, c.prepare(request(url, i % 2 ? "main" : "", i % 2 ? "" : c1, e.dest("j" + std::to_string(i)))),
                               [&](std::exception_ptr ep, prepare_result res) {
                                   if (ep) std::rethrow_exception(ep);
                                   results.push_back(std::move(res));
                                   if (--pending == 0) done.cancel();
                               });
            }
            co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
        },
        120s);
    REQUIRE(results.size() == 6);
    for (const auto& res : results) {
        INFO(describe(res));
        REQUIRE(res.has_value());
        CHECK(res->commit == c1);
    }
    for (int i = 0; i < 6; ++i) CHECK(fs::file_size(e.dest("j" + std::to_string(i)) / "big.bin") == (2u << 20));
    CHECK(cache.stats().clones + other.stats().clones == 1);
    CHECK(daemon.upload_packs() == 1);
}

TEST_CASE("http://: private repositories need the job's credentials", "[git][integration]") {
    env e;
    auto pub = tg::repo(e.tmp.path() / "work/pub", e.served / "pub.git");
    pub.write("README", "public\n");
    auto pc = pub.commit("pub");
    auto priv = tg::repo(e.tmp.path() / "work/priv", e.served / "private" / "fn.git");
    priv.write("secret.txt", "private\n");
    auto sc = priv.commit("priv");
    tg::git_http_server http(e.served, faasd::test::source_dir() / "test/integration/git/git_http_server.py",
                             e.tmp.path(), "alice", "s3cret-token");
    repo_cache cache(e.config(), e.log);

    auto p = prepare(cache, request(http.url("pub.git"), "main", "", e.dest("pub")));
    INFO(describe(p));
    REQUIRE(p.has_value());
    CHECK(p->commit == pc);

    auto ok_req = request(http.url("private/fn.git"), "main", "", e.dest("priv"));
    ok_req.credentials.username = "alice";
    ok_req.credentials.password = "s3cret-token";
    auto ok = prepare(cache, ok_req);
    INFO(describe(ok) << "\n" << http.requests());
    REQUIRE(ok.has_value());
    CHECK(ok->commit == sc);
    CHECK(slurp(e.dest("priv") / "secret.txt") == "private\n");

    // Without credentials, and with a wrong token: auth_failed, even for the cached commit
    // (private mirrors are keyed by a fingerprint of the credentials).
    auto anon = prepare(cache, request(http.url("private/fn.git"), "", sc, e.dest("anon")));
    REQUIRE_FALSE(anon.has_value());
    CHECK(anon.error().code == git_errc::auth_failed);
    auto wrong_req = request(http.url("private/fn.git"), "main", "", e.dest("wrong"));
    wrong_req.credentials.username = "alice";
    wrong_req.credentials.password = "nope";
    auto wrong = prepare(cache, wrong_req);
    REQUIRE_FALSE(wrong.has_value());
    CHECK(wrong.error().code == git_errc::auth_failed);
    CHECK(wrong.error().message.find("nope") == std::string::npos);  // never echo secrets
    CHECK_FALSE(fs::exists(e.dest("wrong")));
    // Token-as-password (no user name) works too.
    auto token_req = request(http.url("private/fn.git"), "main", "", e.dest("token"));
    token_req.credentials.password = "s3cret-token";
    auto token = prepare(cache, token_req);
    INFO(describe(token));
    REQUIRE(token.has_value());
    CHECK(token->commit == sc);
    CHECK(faasd::test::git::count_occurrences(http.requests(), "401") >= 2);
    auto missing = prepare(cache, request(http.url("nope.git"), "main", "", e.dest("missing")));
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().code == git_errc::repo_not_found);
    for (const auto& line : e.lines) CHECK(line.find("s3cret-token") == std::string::npos);
}

TEST_CASE("missing repositories, bad refs and refused schemes fail with stable codes", "[git][integration]") {
    env e;
    auto r = e.make_repo("exists");
    r.write("a", "a\n");
    r.commit("a");
    tg::git_daemon daemon(e.served, e.tmp.path());
    repo_cache cache(e.config(), e.log);

    auto code_of = [&](prepare_request req) {
        auto res = prepare(cache, std::move(req));
        INFO(describe(res));
        REQUIRE_FALSE(res.has_value());
        CHECK_FALSE(res.error().message.empty());
        return res.error().code;
    };
    CHECK(code_of(request("file://" + (e.served / "nope.git").string(), "main", "", e.dest("1"))) == git_errc::repo_not_found);
    CHECK(code_of(request(daemon.url("nope.git"), "main", "", e.dest("2"))) == git_errc::repo_not_found);
    CHECK(code_of(request(daemon.url("exists.git"), "no-such-branch", "", e.dest("3"))) == git_errc::ref_not_found);
    CHECK(code_of(request(daemon.url("exists.git"), "", std::string(40, 'd'), e.dest("4"))) == git_errc::ref_not_found);
    CHECK(code_of(request(daemon.url("exists.git"), "", "not-hex", e.dest("5"))) == git_errc::ref_not_found);
    CHECK(code_of(request("https://user:pw@example.invalid/x.git", "main", "", e.dest("6"))) == git_errc::invalid_url);
    CHECK(code_of(request("git://127.0.0.1:" + std::to_string(tg::free_port()) + "/x.git", "main", "", e.dest("7"))) ==
          git_errc::network_error);
    for (int i = 1; i <= 7; ++i) CHECK_FALSE(fs::exists(e.dest(std::to_string(i))));

    auto prod_cfg = e.config();
    prod_cfg.schemes = scheme_policy();  // production default: no file://
    repo_cache prod(prod_cfg, e.log);
    auto refused = prepare(prod, request(r.file_url(), "main", "", e.dest("8")));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == git_errc::scheme_not_allowed);

    // The cache is still healthy afterwards.
    auto ok = prepare(cache, request(daemon.url("exists.git"), "main", "", e.dest("9")));
    REQUIRE(ok.has_value());
}

TEST_CASE("cancelling a job aborts its clone", "[git][integration]") {
    env e;
    auto r = e.make_repo("huge");
    for (int i = 0; i < 6; ++i) r.write("blob" + std::to_string(i) + ".bin", tg::random_bytes(5 << 20, 100 + i));
    auto c1 = r.commit("huge");
    tg::git_daemon daemon(e.served, e.tmp.path());
    repo_cache cache(e.config(), e.log);

    asio::io_context ioc;
    asio::cancellation_signal cancel;
    std::atomic<bool> progress_seen{false};
    std::optional<prepare_result> result;
    auto req = request(daemon.url("huge.git"), "main", "", e.dest("x"));
    req.on_progress = [&](const transfer_progress&) {
        // Called on a pool thread: cancel once from the loop, as a worker would.
        if (!progress_seen.exchange(true))
            asio::post(ioc, [&] { cancel.emit(asio::cancellation_type::terminal); });
    };
    asio::co_spawn(ioc, cache.prepare(req), asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr ep, prepare_result res) {
                       if (ep) std::rethrow_exception(ep);
                       result = std::move(res);
                   }));
    ioc.run_for(60s);
    REQUIRE(result.has_value());
    INFO(describe(*result));
    REQUIRE_FALSE(result->has_value());
    CHECK(result->error().code == git_errc::cancelled);
    CHECK(progress_seen);
    CHECK_FALSE(fs::exists(e.dest("x")));
    CHECK(fs::is_empty(e.cache_dir / "mirrors"));  // no half-made mirror
    CHECK(fs::is_empty(e.cache_dir / "tmp"));

    // A later job on the same repository succeeds.
    auto again = prepare(cache, request(daemon.url("huge.git"), "main", "", e.dest("y")));
    REQUIRE(again.has_value());
    CHECK(again->commit == c1);
}

TEST_CASE("the cache stays within its size by evicting the least recently used mirror", "[git][integration]") {
    env e;
    std::vector<std::string> urls;
    for (int i = 0; i < 3; ++i) {
        auto r = e.make_repo("r" + std::to_string(i));
        r.write("data.bin", tg::random_bytes(700 << 10, 900 + i));  // ~700 KiB, incompressible
        r.commit("data");
        urls.push_back(r.file_url());
    }
    auto cfg = e.config();
    cfg.max_bytes = 1600 << 10;  // room for two mirrors
    repo_cache cache(cfg, e.log);
    REQUIRE(prepare(cache, request(urls[0], "main", "", e.dest("0"))).has_value());
    REQUIRE(prepare(cache, request(urls[1], "main", "", e.dest("1"))).has_value());
    // Use r0 again: r1 is now the least recently used.
    REQUIRE(prepare(cache, request(urls[0], "main", "", e.dest("0b"))).has_value());
    REQUIRE(prepare(cache, request(urls[2], "main", "", e.dest("2"))).has_value());
    REQUIRE(faasd::test::wait_until([&] { return cache.stats().evictions >= 1; }, 10s));
    CHECK(cache.disk_usage() <= cfg.max_bytes);
    std::vector<std::string> left;
    for (const auto& m : fs::directory_iterator(e.cache_dir / "mirrors")) left.push_back(m.path().filename().string());
    REQUIRE(left.size() == 2);
    auto has = [&](const std::string& name) {
        return std::any_of(left.begin(), left.end(), [&](const std::string& l) { return l.find(name) != std::string::npos; });
    };
    CHECK(has("r0"));
    CHECK(has("r2"));
    CHECK_FALSE(has("r1"));
    // An evicted repository is simply cloned again.
    auto back = prepare(cache, request(urls[1], "main", "", e.dest("1b")));
    REQUIRE(back.has_value());
    CHECK(back->cloned);
}

TEST_CASE("the event loop keeps running while a clone is in progress", "[git][integration]") {
    env e;
    auto r = e.make_repo("big");
    for (int i = 0; i < 4; ++i) r.write("blob" + std::to_string(i) + ".bin", tg::random_bytes(5 << 20, 300 + i));
    r.commit("big");
    tg::git_daemon daemon(e.served, e.tmp.path());
    repo_cache cache(e.config(), e.log);

    // A ticker on the same single-threaded io_context: if libgit2 ran on the
    // loop, the ticker would stall for the whole clone.
    std::chrono::steady_clock::duration max_gap{0}, clone_time{0};
    int ticks = 0;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            bool done = false;
            asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
                asio::steady_timer t(ex);
                auto last = std::chrono::steady_clock::now();
                while (!done) {
                    t.expires_after(5ms);
                    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
                    auto now = std::chrono::steady_clock::now();
                    max_gap = std::max(max_gap, now - last);
                    last = now;
                    ++ticks;
                }
            }, asio::detached);
            auto started = std::chrono::steady_clock::now();
            auto req = request(daemon.url("big.git"), "main", "", e.dest("x"));
            auto res = co_await cache.prepare(req);
            clone_time = std::chrono::steady_clock::now() - started;
            done = true;
            REQUIRE(res.has_value());
            CHECK(res->cloned);
        },
        120s);
    INFO("clone " << std::chrono::duration_cast<std::chrono::milliseconds>(clone_time).count() << " ms, max loop gap "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(max_gap).count() << " ms, " << ticks << " ticks");
    CHECK(ticks > 5);
    CHECK(max_gap < std::max<std::chrono::steady_clock::duration>(250ms, clone_time / 4));
}
