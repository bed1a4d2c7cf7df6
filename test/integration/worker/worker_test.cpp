// The worker role end to end against real Kafka (single node) and real git
// repositories: jobs are submitted straight to the jobs topics, and the test
// reads the state, results, dead-letter and heartbeats topics.

#include "integration/worker/worker_harness.hpp"

#include <faasd/crypto/sealing.hpp>
#include <faasd/http/client.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>

using namespace faasd;
using namespace faasd::test::worker;
namespace gitfx = faasd::test::git;
using jobs::delivery_mode;
using jobs::job_state;

TEST_CASE("a job runs end to end through the worker", "[worker][integration]") {
    setup s;
    gitfx::repo echo(s.tmp.path() / "work-echo", s.tmp.path() / "served/echo.git");
    echo.add_tree(example("echo-sh"));
    const auto commit = echo.commit("echo");

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto wcfg = s.worker();
            wcfg.worker_id = "w-e2e";
            worker_run w(ex, s.logs.logger());
            w.start(wcfg, s.kafka());

            auto job = make_job(echo.file_url(), "main", json::parse(R"({"hello": "world"})"));
            job.idempotency_key = "idem-e2e";
            job.spec.tags = {"e2e"};
            co_await k.submit(job);
            bool finished = co_await k.wait_for([&] { return k.seen.terminal(job.id) && k.seen.result_count(job.id) > 0; }, 90s);
            INFO(s.logs.dump("job."));
            REQUIRE(finished);

            // State snapshots: running, then succeeded with the result inside.
            REQUIRE(k.seen.has_state(job.id, job_state::running, 1));
            const auto* running = &k.seen.states[job.id].front();
            CHECK(running->state == job_state::running);
            CHECK(running->worker == "w-e2e");
            CHECK(running->started_at >= job.submitted_at);
            const auto* done = k.seen.terminal(job.id);
            CHECK(done->state == job_state::succeeded);
            CHECK(done->worker == "w-e2e");
            CHECK(done->attempt == 1);
            CHECK(done->finished_at >= done->started_at);
            CHECK(done->idempotency_key == "idem-e2e");
            REQUIRE(done->result);

            // The result: output, logs, elapsed times.
            REQUIRE(k.seen.result_count(job.id) == 1);
            const auto& r = k.seen.results[job.id].front();
            CHECK(r.state == job_state::succeeded);
            CHECK(r.exit_code == 0);
            CHECK(r.output.at("echo").at("hello") == "world");
            CHECK(r.output.at("job").as_string() == job.id);
            CHECK(r.output.at("attempt") == 1);
            CHECK(r.stderr_text.find("echo-sh: done") != std::string::npos);
            CHECK(r.worker == "w-e2e");
            CHECK(r.owner_subject == "sub-test");
            CHECK(r.tags == std::vector<std::string>{"e2e"});
            CHECK(r.times.queue_wait_ms >= 0);
            CHECK(r.times.prepare_ms > 0);
            CHECK(r.times.run_ms > 0);
            CHECK(r.times.total_ms >= r.times.queue_wait_ms + r.times.prepare_ms + r.times.run_ms);
            CHECK_FALSE(r.times.cache_hit);  // the first job clones
            CHECK(r.error.empty());
            (void)commit;

            // Heartbeats: up with the worker's slots.
            co_await k.wait_for([&] { return !k.seen.heartbeats.empty(); }, 10s);
            REQUIRE_FALSE(k.seen.heartbeats.empty());
            CHECK(k.seen.heartbeats.front().worker == "w-e2e");
            CHECK(k.seen.heartbeats.front().slots == 2);
            CHECK(k.seen.heartbeats.front().state == faasd::worker::worker_state::up);

            // Shutdown: a last heartbeat says down.
            REQUIRE(co_await w.stop());
            bool down = co_await k.wait_for(
                [&] { return !k.seen.heartbeats.empty() && k.seen.heartbeats.back().state == faasd::worker::worker_state::down; },
                10s);
            CHECK(down);
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("a second job on the same repository is a cache hit and fetches nothing", "[worker][integration]") {
    setup s;
    auto served = s.tmp.path() / "served";
    gitfx::repo echo(s.tmp.path() / "work-echo", served / "echo.git");
    echo.add_tree(example("echo-sh"));
    echo.commit("echo");
    gitfx::git_daemon daemon(served, s.tmp.path());

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            worker_run w(ex, s.logs.logger());
            w.start(s.worker(), s.kafka());

            auto first = make_job(daemon.url("echo.git"), "main", json::parse(R"({"n": 1})"));
            co_await k.submit(first);
            REQUIRE(co_await k.wait_for([&] { return k.seen.result_count(first.id) > 0; }, 90s));
            const auto fetches_after_first = daemon.upload_packs();
            CHECK(fetches_after_first == 1);

            auto second = make_job(daemon.url("echo.git"), "main", json::parse(R"({"n": 2})"));
            co_await k.submit(second);
            REQUIRE(co_await k.wait_for([&] { return k.seen.result_count(second.id) > 0; }, 60s));
            const auto& r1 = k.seen.results[first.id].front();
            const auto& r2 = k.seen.results[second.id].front();
            CHECK(r1.state == job_state::succeeded);
            CHECK(r2.state == job_state::succeeded);
            CHECK_FALSE(r1.times.cache_hit);
            CHECK(r2.times.cache_hit);
            CHECK(r2.output.at("echo").at("n") == 2);
            CHECK(daemon.upload_packs() == fetches_after_first);  // no network I/O for the second job
            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("two jobs on the same repository run at once in two slots", "[worker][integration]") {
    setup s;
    const auto url = shell_repo(s.tmp.path(), "sleeper", sleeper_script);

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            worker_run w(ex, s.logs.logger());
            w.start(s.worker("bwrap", 2), s.kafka());

            auto a = make_job(url, "main", nullptr, {"./main", "2"});
            auto b = make_job(url, "main", nullptr, {"./main", "2"});
            co_await k.submit(a);
            co_await k.submit(b);
            REQUIRE(co_await k.wait_for([&] { return k.seen.result_count(a.id) && k.seen.result_count(b.id); }, 90s));
            const auto& ra = k.seen.results[a.id].front();
            const auto& rb = k.seen.results[b.id].front();
            INFO(ra.stderr_text << rb.stderr_text);
            REQUIRE(ra.state == job_state::succeeded);
            REQUIRE(rb.state == job_state::succeeded);
            // The two runs overlap in time.
            auto a0 = ra.output.at("start").to_number<std::int64_t>(), a1 = ra.output.at("end").to_number<std::int64_t>();
            auto b0 = rb.output.at("start").to_number<std::int64_t>(), b1 = rb.output.at("end").to_number<std::int64_t>();
            CHECK(std::max(a0, b0) < std::min(a1, b1));
            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("a private repository is cloned with the job's sealed credential", "[worker][integration]") {
    setup s;
    auto served = s.tmp.path() / "served";
    gitfx::repo priv(s.tmp.path() / "work-private", served / "private/echo.git");
    priv.add_tree(example("echo-sh"));
    priv.commit("private echo");
    const std::string password = "s3cret-" + faasd::random_hex(4);
    gitfx::git_http_server http(served, faasd::test::source_dir() / "test/integration/git/git_http_server.py", s.tmp.path(), "git",
                                password);
    auto key = crypto::generate_key("k1");
    auto ring = crypto::key_ring::parse(key).value();

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto wcfg = s.worker();
            wcfg.credentials_keys = key;
            worker_run w(ex, s.logs.logger());
            w.start(wcfg, s.kafka());

            auto sealed_job = [&](const std::string& secret) {
                auto j = make_job(http.url("private/echo.git"));
                j.spec.repo.credential = "git";
                j.spec.credentials = crypto::seal(ring, j.id, R"({"git": ")" + secret + R"(", "other": "x"})");
                j.spec.credentials.names = {"git", "other"};
                return j;
            };
            auto good = sealed_job(password);
            auto wrong = sealed_job("not-the-password");
            auto none = make_job(http.url("private/echo.git"));
            auto moved = sealed_job(password);  // ciphertext of another job: does not open
            moved.spec.credentials = good.spec.credentials;
            for (const auto* j : {&good, &wrong, &none, &moved}) co_await k.submit(*j);
            REQUIRE(co_await k.wait_for(
                [&] {
                    return k.seen.terminal(good.id) && k.seen.terminal(wrong.id) && k.seen.terminal(none.id) &&
                           k.seen.terminal(moved.id);
                },
                90s));
            CHECK(k.seen.terminal(good.id)->state == job_state::succeeded);
            CHECK(k.seen.terminal(wrong.id)->state == job_state::failed);
            CHECK(k.seen.terminal(wrong.id)->error.code == "auth_failed");
            CHECK(k.seen.terminal(none.id)->error.code == "auth_failed");
            CHECK(k.seen.terminal(moved.id)->error.code == "credentials_invalid");
            CHECK(k.seen.result_count(wrong.id) == 1);  // permanent: not retried
            // Secrets are nowhere: not in logs, results or snapshots.
            CHECK(s.logs.dump().find(password) == std::string::npos);
            for (const auto& [id, rs] : k.seen.results)
                for (const auto& r : rs) CHECK(jobs::encode(r).find(password) == std::string::npos);
            for (const auto& [id, ss] : k.seen.states)
                for (const auto& st : ss) CHECK(jobs::encode(st).find(password) == std::string::npos);
            // Nothing is left in the jobs directory (credentials file wiped with the workspace).
            REQUIRE(co_await w.stop());
            std::size_t left = 0;
            for (auto it = fs::recursive_directory_iterator(s.tmp.path() / "jobs"); it != fs::recursive_directory_iterator(); ++it)
                ++left;
            CHECK(left == 0);
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("a missing repository and a bad ref fail cleanly with their codes", "[worker][integration]") {
    setup s;
    gitfx::repo echo(s.tmp.path() / "work-echo", s.tmp.path() / "served/echo.git");
    echo.add_tree(example("echo-sh"));
    echo.commit("echo");
    gitfx::repo empty(s.tmp.path() / "work-empty", s.tmp.path() / "served/empty.git");
    empty.write("README", "nothing to run here\n");
    empty.commit("empty");

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            worker_run w(ex, s.logs.logger());
            w.start(s.worker(), s.kafka());

            auto missing = make_job("file://" + (s.tmp.path() / "served/nope.git").string());
            auto bad_ref = make_job(echo.file_url(), "no-such-branch");
            auto no_entry = make_job(empty.file_url());
            co_await k.submit(missing);
            co_await k.submit(bad_ref);
            co_await k.submit(no_entry);
            REQUIRE(co_await k.wait_for(
                [&] { return k.seen.terminal(missing.id) && k.seen.terminal(bad_ref.id) && k.seen.terminal(no_entry.id); },
                60s));
            const auto* m = k.seen.terminal(missing.id);
            const auto* b = k.seen.terminal(bad_ref.id);
            CHECK(m->state == job_state::failed);
            CHECK(m->error.code == "repo_not_found");
            CHECK(b->state == job_state::failed);
            CHECK(b->error.code == "ref_not_found");
            REQUIRE(m->result);
            CHECK(m->result->error.code == "repo_not_found");
            CHECK(k.seen.result_count(missing.id) == 1);  // permanent: no retry
            CHECK(k.seen.result_count(bad_ref.id) == 1);
            CHECK(k.seen.terminal(no_entry.id)->error.code == "no_entry");
            CHECK(k.seen.dead_letters.empty());           // and no dead letter
            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("cancelling a running job stops it promptly", "[worker][integration]") {
    setup s;
    const auto url = shell_repo(s.tmp.path(), "sleeper", sleeper_script);

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            worker_run w(ex, s.logs.logger());
            w.start(s.worker(), s.kafka());

            auto job = make_job(url, "main", nullptr, {"./main", "60"});
            co_await k.submit(job);
            REQUIRE(co_await k.wait_for([&] { return k.seen.has_state(job.id, job_state::running); }, 60s));
            // Give the sandbox a moment to really run the function.
            co_await kafka::testing::sleep(500ms);
            auto t0 = std::chrono::steady_clock::now();
            co_await k.cancel(job.id);
            REQUIRE(co_await k.wait_for([&] { return k.seen.terminal(job.id) != nullptr && k.seen.result_count(job.id) > 0; }, 30s));
            auto took = std::chrono::steady_clock::now() - t0;
            CHECK(took < 5s);
            const auto* t = k.seen.terminal(job.id);
            CHECK(t->state == job_state::cancelled);
            CHECK(t->error.code == "cancelled");
            REQUIRE(k.seen.result_count(job.id) == 1);
            CHECK(k.seen.results[job.id].front().state == job_state::cancelled);
            CHECK(k.seen.results[job.id].front().times.run_ms < 10000);
            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("a job cancelled before any worker took it is skipped", "[worker][integration]") {
    setup s;
    const auto url = shell_repo(s.tmp.path(), "sleeper", sleeper_script);

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto job = make_job(url, "main", nullptr, {"./main", "1"});
            co_await k.cancel(job.id);  // before the job, and before the worker starts
            co_await k.submit(job);
            auto later = make_job(url, "main", nullptr, {"./main", "0"});
            co_await k.submit(later);

            worker_run w(ex, s.logs.logger());
            w.start(s.worker(), s.kafka());
            REQUIRE(co_await k.wait_for([&] { return k.seen.terminal(job.id) && k.seen.terminal(later.id) && k.seen.result_count(job.id) && k.seen.result_count(later.id); }, 90s));
            const auto* t = k.seen.terminal(job.id);
            CHECK(t->state == job_state::cancelled);
            CHECK_FALSE(k.seen.has_state(job.id, job_state::running));  // never started
            REQUIRE(k.seen.result_count(job.id) == 1);
            CHECK(k.seen.results[job.id].front().times.started_at == 0);
            CHECK(k.seen.terminal(later.id)->state == job_state::succeeded);

            // A cancel that arrives while the worker runs, for a job queued behind busy slots.
            auto blocker1 = make_job(url, "main", nullptr, {"./main", "3"});
            auto blocker2 = make_job(url, "main", nullptr, {"./main", "3"});
            auto queued = make_job(url, "main", nullptr, {"./main", "1"});
            co_await k.submit(blocker1);
            co_await k.submit(blocker2);
            REQUIRE(co_await k.wait_for(
                [&] { return k.seen.has_state(blocker1.id, job_state::running) && k.seen.has_state(blocker2.id, job_state::running); },
                60s));
            co_await k.submit(queued);
            co_await k.cancel(queued.id);
            REQUIRE(co_await k.wait_for([&] { return k.seen.terminal(queued.id) != nullptr && k.seen.result_count(queued.id) > 0; }, 60s));
            CHECK(k.seen.terminal(queued.id)->state == job_state::cancelled);
            CHECK_FALSE(k.seen.has_state(queued.id, job_state::running));
            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("poison messages go to the dead-letter topic and the worker keeps serving", "[worker][integration]") {
    setup s;
    gitfx::repo echo(s.tmp.path() / "work-echo", s.tmp.path() / "served/echo.git");
    echo.add_tree(example("echo-sh"));
    echo.commit("echo");

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            worker_run w(ex, s.logs.logger());
            w.start(s.worker(), s.kafka());

            co_await k.submit_raw(k.topics.jobs_at_least_once, "junk-1", std::string("this is not JSON"));
            co_await k.submit_raw(k.topics.jobs_at_least_once, "junk-2", std::string(R"({"v": 99, "id": "x"})"));
            co_await k.submit_raw(k.topics.jobs_exactly_once, "junk-3", std::string("{"));
            auto job = make_job(echo.file_url());
            co_await k.submit(job);
            REQUIRE(co_await k.wait_for([&] { return k.seen.dead_letters.size() >= 3 && k.seen.terminal(job.id); }, 90s));
            CHECK(k.seen.terminal(job.id)->state == job_state::succeeded);
            std::map<std::string, std::string> reason_by_key;
            for (const auto& m : k.seen.dead_letters) {
                const auto* h = m.find_header("faasd-reason");
                REQUIRE(h);
                reason_by_key[m.key.value_or("")] = h->value.value_or("");
                CHECK(m.find_header("faasd-topic"));
                CHECK(m.find_header("faasd-offset"));
            }
            CHECK(reason_by_key["junk-1"].rfind("bad_message", 0) == 0);
            CHECK(reason_by_key["junk-2"].rfind("unsupported_version", 0) == 0);
            CHECK(reason_by_key["junk-3"].rfind("bad_message", 0) == 0);  // exactly-once topic: in a transaction
            CHECK(k.seen.dead_letters.size() == 3);
            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("infrastructure failures are retried with backoff, then dead-lettered", "[worker][integration]") {
    setup s;
    const int closed_port = gitfx::free_port();  // nobody listens: connection refused

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto wcfg = s.worker();
            wcfg.git_attempts = 1;
            wcfg.retry_backoff = "1s";
            wcfg.retry_backoff_max = "4s";
            worker_run w(ex, s.logs.logger());
            w.start(wcfg, s.kafka());

            auto job = make_job("git://127.0.0.1:" + std::to_string(closed_port) + "/nothing.git");
            job.spec.retries = 2;  // attempts 1, 2, 3
            co_await k.submit(job);
            REQUIRE(co_await k.wait_for([&] { return k.seen.terminal(job.id) && !k.seen.dead_letters.empty() && k.seen.result_count(job.id) >= 3; }, 90s));
            INFO(s.logs.dump("job."));
            const auto& rs = k.seen.results[job.id];
            REQUIRE(rs.size() == 3);  // one result per attempt
            for (int i = 0; i < 3; ++i) {
                CHECK(rs[static_cast<std::size_t>(i)].attempt == i + 1);
                CHECK(rs[static_cast<std::size_t>(i)].state == job_state::failed);
                CHECK(rs[static_cast<std::size_t>(i)].error.code == "network_error");
            }
            CHECK(k.seen.has_state(job.id, job_state::queued, 2));
            CHECK(k.seen.has_state(job.id, job_state::queued, 3));
            const auto* t = k.seen.terminal(job.id);
            CHECK(t->state == job_state::failed);
            CHECK(t->attempt == 3);
            CHECK(t->error.message.find("retries exhausted") != std::string::npos);
            // Backoff: attempt 2 starts at least 0.75 s after attempt 1 ended, attempt 3 at least 1.5 s after attempt 2.
            CHECK(rs[1].times.started_at - rs[0].times.finished_at >= 750);
            CHECK(rs[2].times.started_at - rs[1].times.finished_at >= 1500);
            REQUIRE(k.seen.dead_letters.size() == 1);
            const auto& dl = k.seen.dead_letters.front();
            CHECK(dl.key == job.id);
            CHECK(dl.find_header("faasd-reason")->value.value_or("").rfind("retries_exhausted: network_error", 0) == 0);
            CHECK(dl.find_header("faasd-attempt")->value == "3");
            auto original = jobs::decode_job_message(dl.value.value_or(""));
            REQUIRE(original.has_value());
            CHECK(original->attempt == 3);
            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("4 long jobs on 2 slots with a short max.poll.interval.ms cause no rebalance", "[worker][integration]") {
    setup s;
    const auto url = shell_repo(s.tmp.path(), "sleeper", sleeper_script);

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto kc = s.kafka();
            kc.properties.push_back("max.poll.interval.ms=6000");  // librdkafka: at least session.timeout.ms
            worker_run w(ex, s.logs.logger(log_level::debug));
            auto wcfg = s.worker("bwrap", 2);
            wcfg.prefetch = 1;  // pause as soon as one message waits: the paused consumer must keep its membership
            w.start(wcfg, kc);

            std::vector<jobs::job_message> js;
            for (int i = 0; i < 4; ++i) js.push_back(make_job(url, "main", nullptr, {"./main", "8"}));  // each > max.poll.interval.ms
            for (const auto& j : js) co_await k.submit(j);
            REQUIRE(co_await k.wait_for(
                [&] {
                    return std::all_of(js.begin(), js.end(), [&](const auto& j) { return k.seen.result_count(j.id) > 0; });
                },
                120s));
            std::vector<std::pair<std::int64_t, std::int64_t>> spans;
            for (const auto& j : js) {
                const auto& r = k.seen.results[j.id].front();
                CHECK(r.state == job_state::succeeded);
                CHECK(k.seen.result_count(j.id) == 1);  // nothing ran twice
                spans.emplace_back(r.output.at("start").to_number<std::int64_t>(), r.output.at("end").to_number<std::int64_t>());
            }
            // Never more than 2 at once.
            for (const auto& [a, b] : spans) {
                int overlapping = 0;
                for (const auto& [c, d] : spans)
                    if (c <= a && a < d) ++overlapping;
                CHECK(overlapping <= 2);
            }
            REQUIRE(co_await w.stop());
            CHECK(s.logs.count("event=worker.revoked") == 1);  // only the final one, at close
            CHECK(s.logs.count("lost=true") == 0);
            CHECK(s.logs.count("kafka.max_poll_exceeded") == 0);
            CHECK(s.logs.count("worker.paused") >= 1);  // the consumer did pause while all slots were busy
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("exactly-once: the result and the offset commit in one transaction", "[worker][integration]") {
    setup s;
    gitfx::repo echo(s.tmp.path() / "work-echo", s.tmp.path() / "served/echo.git");
    echo.add_tree(example("echo-sh"));
    echo.commit("echo");

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            worker_run w(ex, s.logs.logger());
            w.start(s.worker(), s.kafka());
            std::vector<jobs::job_message> js;
            for (int i = 0; i < 3; ++i)
                js.push_back(make_job(echo.file_url(), "main", json::value(i), {}, delivery_mode::exactly_once));
            for (const auto& j : js) co_await k.submit(j);
            REQUIRE(co_await k.wait_for(
                [&] { return std::all_of(js.begin(), js.end(), [&](const auto& j) { return k.seen.terminal(j.id) != nullptr && k.seen.result_count(j.id) > 0; }); },
                90s));
            for (const auto& j : js) {
                CHECK(k.seen.result_count(j.id) == 1);
                CHECK(k.seen.terminal(j.id)->state == job_state::succeeded);
                CHECK(k.seen.terminal(j.id)->delivery == delivery_mode::exactly_once);
            }
            REQUIRE(co_await w.stop());
            // The group's committed offsets cover all three messages.
            kafka::admin_options ao;
            ao.brokers = s.brokers;
            kafka::admin adm(ex, ao);
            std::vector<std::string> topics{k.topics.jobs_exactly_once};
            auto lag = co_await adm.group_lag(s.prefix + "workers", topics);
            CO_REQUIRE(lag);
            std::int64_t total_lag = 0;
            for (const auto& p : *lag) total_lag += p.lag;
            CHECK(total_lag == 0);
            co_await adm.close();
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("shutdown hands a running job back: another worker runs it again", "[worker][integration]") {
    setup s;
    const auto marker = s.shared() / "marker";
    const auto url = shell_repo(s.tmp.path(), "once", R"(#!/bin/sh
if [ -e "$FN_MARKER" ]; then echo '{"second": true}'; exit 0; fi
touch "$FN_MARKER"
sleep 60
)");

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto job = make_job(url);
            job.spec.env["FN_MARKER"] = marker.string();
            {
                worker_run w(ex, s.logs.logger());
                auto wcfg = s.worker("none");
                wcfg.drain_timeout = "1s";
                w.start(wcfg, s.kafka());
                co_await k.submit(job);
                REQUIRE(co_await k.wait_for([&] { return k.seen.has_state(job.id, job_state::running) && fs::exists(marker); }, 60s));
                REQUIRE(co_await w.stop());
                CHECK(s.logs.count("job.handed_back") == 1);
            }
            CHECK(k.seen.terminal(job.id) == nullptr);  // not finished, not committed
            CHECK(k.seen.result_count(job.id) == 0);
            worker_run w2(ex, s.logs.logger());
            w2.start(s.worker("none"), s.kafka());
            REQUIRE(co_await k.wait_for([&] { return k.seen.terminal(job.id) != nullptr && k.seen.result_count(job.id) > 0; }, 60s));
            CHECK(k.seen.terminal(job.id)->state == job_state::succeeded);
            CHECK(k.seen.results[job.id].front().output.at("second") == true);
            REQUIRE(co_await w2.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("sandbox limits end jobs with the right state while the worker keeps serving", "[worker][integration]") {
    setup s;
    gitfx::repo adv(s.tmp.path() / "work-adversarial", s.tmp.path() / "served/adversarial.git");
    for (const char* f : {"fork-bomb", "memory-hog", "endless-loop", "output-flood", "disk-hog", "misc"}) {
        fs::create_directories(adv.work() / f);
        fs::copy(fixture(f), adv.work() / f, fs::copy_options::recursive);
        fs::remove(adv.work() / f / "faasd.json");  // the job's entry says what to run
    }
    adv.add_tree(example("echo-sh"));  // ./main at the root: the healthy job
    adv.commit("adversarial functions");

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto wcfg = s.worker("bwrap", 2);
            wcfg.memory_limit = "96MiB";
            wcfg.pids_limit = 32;
            wcfg.output_cap = "64KiB";
            wcfg.output_kill = "8MiB";
            wcfg.disk_limit = "8MiB";
            wcfg.cpu_limit = "10s";
            worker_run w(ex, s.logs.logger());
            w.start(wcfg, s.kafka());

            struct expectation {
                std::vector<std::string> entry;
                int timeout_s;
                job_state state;
                const char* code;
            };
            const std::vector<expectation> cases = {
                {{"./fork-bomb/main"}, 5, job_state::failed, "pids_limit"},
                {{"python3", "memory-hog/hog.py"}, 20, job_state::failed, "memory_limit"},
                {{"./endless-loop/main"}, 2, job_state::timed_out, "timeout"},
                {{"./output-flood/main"}, 20, job_state::failed, "output_limit"},
                {{"./disk-hog/main"}, 20, job_state::failed, "disk_limit"},
                {{"./misc/main", "exit", "3"}, 20, job_state::failed, "exit_nonzero"},
                {{"./misc/main", "segv"}, 20, job_state::failed, "killed_by_signal"},
            };
            std::vector<jobs::job_message> js;
            for (const auto& c : cases) {
                auto j = make_job(adv.file_url(), "main", nullptr, c.entry);
                j.spec.timeout_s = c.timeout_s;
                js.push_back(j);
                co_await k.submit(j);
            }
            REQUIRE(co_await k.wait_for(
                [&] { return std::all_of(js.begin(), js.end(), [&](const auto& j) { return k.seen.terminal(j.id) != nullptr && k.seen.result_count(j.id) > 0; }); },
                150s));
            for (std::size_t i = 0; i < cases.size(); ++i) {
                const auto* t = k.seen.terminal(js[i].id);
                INFO(cases[i].entry[0] << ": " << t->error.code << " " << t->error.message);
                CHECK(t->state == cases[i].state);
                CHECK(t->error.code == cases[i].code);
                CHECK(k.seen.result_count(js[i].id) == 1);  // the function's failure: no retry
                REQUIRE(t->result);
                if (std::string(cases[i].code) == "exit_nonzero") CHECK(t->result->exit_code == 3);
            }
            // The worker still serves a normal job.
            auto ok = make_job(adv.file_url(), "main", json::parse(R"({"still": "alive"})"));
            co_await k.submit(ok);
            REQUIRE(co_await k.wait_for([&] { return k.seen.terminal(ok.id) != nullptr && k.seen.result_count(ok.id) > 0; }, 60s));
            CHECK(k.seen.terminal(ok.id)->state == job_state::succeeded);
            CHECK(k.seen.results[ok.id].front().output.at("echo").at("still") == "alive");
            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("the worker's /metrics exports its counters and a job changes them", "[worker][integration]") {
    setup s;
    const auto fn = shell_repo(s.tmp.path(), "ok", "#!/bin/sh\necho '{\"ok\": true}'\n");
    const int port = faasd::test::free_port();

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto wcfg = s.worker();
            wcfg.health_listen = "127.0.0.1:" + std::to_string(port);
            worker_run w(ex, s.logs.logger());
            w.start(wcfg, s.kafka());

            http::client_config cc;
            cc.policy = http::address_policy::allow_all();
            http::client client(ex, cc);
            const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
            std::string text;
            // Polls /metrics until it contains `needle` (or the deadline passes).
            auto metrics_until = [&](std::string needle) -> asio::awaitable<bool> {
                auto deadline = std::chrono::steady_clock::now() + 30s;
                asio::steady_timer t(ex);
                while (std::chrono::steady_clock::now() < deadline) {
                    auto r = co_await client.request(http::client_request("GET", url));
                    if (r && r->status == 200) {
                        text = r->body;
                        if (text.find(needle) != std::string::npos) co_return true;
                    }
                    t.expires_after(100ms);
                    co_await t.async_wait(asio::use_awaitable);
                }
                co_return false;
            };

            REQUIRE(co_await metrics_until("faasd_worker_slots 2\n"));
            CHECK(text.find("faasd_worker_messages_total 0\n") != std::string::npos);
            CHECK(text.find("faasd_worker_jobs_total{state=\"succeeded\"} 1") == std::string::npos);

            auto job = make_job(fn);
            co_await k.submit(job);
            REQUIRE(co_await k.wait_for([&] { return k.seen.result_count(job.id) > 0; }, 60s));
            INFO(text);
            REQUIRE(co_await metrics_until("faasd_worker_jobs_total{state=\"succeeded\"} 1\n"));
            CHECK(text.find("faasd_worker_messages_total 1\n") != std::string::npos);
            CHECK(text.find("faasd_worker_attempts_started_total 1\n") != std::string::npos);
            CHECK(text.find("faasd_worker_job_phase_seconds_count{phase=\"run\"} 1\n") != std::string::npos);
            CHECK(text.find("faasd_worker_busy_slots 0\n") != std::string::npos);
            CHECK(text.find("# TYPE faasd_worker_job_phase_seconds histogram") != std::string::npos);

            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}
