// Repository preparation: faasd's mirror cache (cold = first clone, warm =
// cached commit) against `git clone` and `git clone --depth 1` of the same
// repository from the same `git daemon` on loopback, for a small and a ~50 MB
// repository. Also compares two ways to materialise a cached commit.
//
//   faasd_bench_git_prepare [--reps N]
//
// Prints a table (milliseconds, median of N runs). Needs git on PATH.

#include "../test/integration/git/git_fixtures.hpp"

#include <faasd/git/cache.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <git2.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace tg = faasd::test::git;
using clk = std::chrono::steady_clock;

namespace {

double ms_since(clk::time_point t) { return std::chrono::duration<double, std::milli>(clk::now() - t).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

faasd::git::prepare_result prepare(faasd::git::repo_cache& cache, const faasd::git::prepare_request& req) {
    asio::io_context ioc;
    faasd::git::prepare_result out = faasd::git::prepare_error{};
    asio::co_spawn(ioc, cache.prepare(req), [&](std::exception_ptr e, faasd::git::prepare_result r) {
        if (e) std::rethrow_exception(e);
        out = std::move(r);
    });
    ioc.run();
    if (!out) throw std::runtime_error(out.error().message);
    return out;
}

faasd::git::cache_config cache_cfg(const fs::path& dir) {
    faasd::git::cache_config c;
    c.dir = dir;
    c.max_bytes = 8ull << 30;
    c.ref_staleness = std::chrono::hours(1);  // "warm (ref)" must not refetch however slow the machine is
    return c;
}

// The alternative to faasd's checkout (git_checkout_tree with target_directory
// from the bare mirror and an in-memory index): a throwaway non-bare repository
// whose objects/info/alternates points at the mirror, checked out normally.
void checkout_with_alternates(const fs::path& mirror, const std::string& commit, const fs::path& dest) {
    git_repository* repo = nullptr;
    if (git_repository_init(&repo, dest.c_str(), 0) != 0) throw std::runtime_error("init");
    std::ofstream(dest / ".git/objects/info/alternates") << (mirror / "objects").string() << "\n";
    git_repository_free(repo);
    if (git_repository_open(&repo, dest.c_str()) != 0) throw std::runtime_error("open");
    git_oid oid;
    git_oid_fromstr(&oid, commit.c_str());
    git_object* obj = nullptr;
    if (git_object_lookup(&obj, repo, &oid, GIT_OBJECT_COMMIT) != 0) throw std::runtime_error(git_error_last()->message);
    git_checkout_options o = GIT_CHECKOUT_OPTIONS_INIT;
    o.checkout_strategy = GIT_CHECKOUT_FORCE;
    if (git_checkout_tree(repo, obj, &o) != 0) throw std::runtime_error(git_error_last()->message);
    git_repository_set_head_detached(repo, &oid);
    git_object_free(obj);
    git_repository_free(repo);
}

struct row {
    std::string name;
    double git_full = 0, git_shallow = 0, cold = 0, warm = 0, warm_ref = 0, alternates = 0;
    std::uint64_t bytes = 0;
};

row measure(const std::string& name, const std::string& url, const fs::path& root, int reps) {
    row r;
    r.name = name;
    std::vector<double> full, shallow, cold, warm, warm_ref, alt;
    int n = 0;
    auto fresh = [&](const std::string& what) { return root / "runs" / (what + std::to_string(++n)); };
    for (int i = 0; i < reps; ++i) {
        auto t = clk::now();
        tg::sh({"git", "clone", "-q", url, fresh("full").string()});
        full.push_back(ms_since(t));
        t = clk::now();
        tg::sh({"git", "clone", "-q", "--depth", "1", url, fresh("shallow").string()});
        shallow.push_back(ms_since(t));
    }
    std::string commit;
    fs::path mirror;
    for (int i = 0; i < reps; ++i) {
        auto dir = fresh("cache");
        faasd::git::repo_cache cache(cache_cfg(dir), faasd::logger::null());
        faasd::git::prepare_request req;
        req.url = url;
        req.ref = "main";
        req.destination = fresh("cold");
        auto t = clk::now();
        auto res = prepare(cache, req);
        cold.push_back(ms_since(t));
        commit = res->commit;
        mirror = fs::directory_iterator(dir / "mirrors")->path();
    }
    {
        faasd::git::repo_cache cache(cache_cfg(mirror.parent_path().parent_path()), faasd::logger::null());
        for (int i = 0; i < reps * 3; ++i) {
            faasd::git::prepare_request req;
            req.url = url;
            req.commit = commit;
            req.destination = fresh("warm");
            auto t = clk::now();
            auto res = prepare(cache, req);
            warm.push_back(ms_since(t));
            if (!res->cache_hit) throw std::runtime_error("expected a cache hit");
            req.commit.clear();
            req.ref = "main";
            req.destination = fresh("warmref");
            t = clk::now();
            res = prepare(cache, req);
            warm_ref.push_back(ms_since(t));
            if (!res->cache_hit) throw std::runtime_error("expected a cache hit");
        }
        for (int i = 0; i < reps * 3; ++i) {
            auto t = clk::now();
            checkout_with_alternates(mirror, commit, fresh("alt"));
            alt.push_back(ms_since(t));
        }
        r.bytes = cache.disk_usage();
    }
    r.git_full = median(full);
    r.git_shallow = median(shallow);
    r.cold = median(cold);
    r.warm = median(warm);
    r.warm_ref = median(warm_ref);
    r.alternates = median(alt);
    fs::remove_all(root / "runs");
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 3;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(1, std::atoi(argv[i + 1]));
    git_libgit2_init();
    auto root = fs::temp_directory_path() / ("faasd-bench-git-" + std::to_string(::getpid()));
    fs::create_directories(root);
    try {
        std::cerr << "generating repositories in " << root << " ...\n";
        tg::repo small(root / "work/small", root / "served/small.git");
        for (int c = 0; c < 10; ++c) {
            for (int f = 0; f < 5; ++f)
                small.write("src/file" + std::to_string(f) + ".py", "# revision " + std::to_string(c) + "\n" + std::string(2000, 'x'));
            small.commit("small " + std::to_string(c));
        }
        tg::repo large(root / "work/large", root / "served/large.git");
        for (int c = 0; c < 10; ++c) {  // 10 commits x 5 files x 1 MiB of random bytes = 50 MiB
            for (int f = 0; f < 5; ++f)
                large.write("data/c" + std::to_string(c) + "_f" + std::to_string(f) + ".bin",
                            tg::random_bytes(1 << 20, static_cast<std::uint64_t>(c * 10 + f)));
            large.commit("large " + std::to_string(c));
        }
        tg::git_daemon daemon(root / "served", root);
        std::vector<row> rows{measure("small (50 files x 2 KB, 10 commits)", daemon.url("small.git"), root, reps),
                              measure("large (50 x 1 MiB random, 10 commits)", daemon.url("large.git"), root, reps)};
        std::printf("\nrepository preparation over git:// on loopback, median of %d runs (warm: %d), milliseconds\n\n",
                    reps, reps * 3);
        std::printf("%-40s %10s %12s %10s %10s %12s %12s %10s %10s\n", "repository", "git clone", "clone -d 1",
                    "cold", "warm", "warm (ref)", "alternates", "clone/warm", "mirror MiB");
        for (const auto& r : rows)
            std::printf("%-40s %10.1f %12.1f %10.1f %10.2f %12.2f %12.2f %9.0fx %10.2f\n", r.name.c_str(), r.git_full,
                        r.git_shallow, r.cold, r.warm, r.warm_ref, r.alternates, r.git_full / r.warm,
                        static_cast<double>(r.bytes) / (1 << 20));
        std::printf("\ncold = first prepare (bare mirror clone + checkout), warm = cached commit (no network),\n"
                    "warm (ref) = branch within the staleness bound, alternates = throwaway repo with\n"
                    "objects/info/alternates + git_checkout_tree (the alternative we did not choose)\n");
    } catch (const std::exception& e) {
        std::cerr << "bench failed: " << e.what() << "\n";
        fs::remove_all(root);
        return 1;
    }
    fs::remove_all(root);
    return 0;
}
