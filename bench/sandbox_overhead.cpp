// Per-job overhead of running a no-op function: workspace + run() with
// bubblewrap and with --sandbox=none, against a bare fork/exec of `true`.
//
//   faasd_bench_sandbox_overhead [--runs N] [--ballast MB]
//
// Prints median and p95 in milliseconds: the run, the process start (the
// runner's spawn_ms), and the worst lateness of a 1 ms timer on the same
// event loop during the run (how long the runner blocked the loop). --ballast
// touches MB of memory first, to stand for a worker's resident set (fork
// copies its page tables).

#include <faasd/core/id.hpp>
#include <faasd/sandbox/runner.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/value.hpp>

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace faasd::sandbox;
using clk = std::chrono::steady_clock;

extern char** environ;

namespace {

double ms_since(clk::time_point t) { return std::chrono::duration<double, std::milli>(clk::now() - t).count(); }

struct stats {
    double median = 0, p95 = 0;
};
stats summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 95 / 100)]};
}

stats bare_exec(int runs) {
    std::vector<double> t;
    for (int i = 0; i < runs; ++i) {
        auto s = clk::now();
        pid_t pid;
        char arg0[] = "/bin/true";
        char* argv[] = {arg0, nullptr};
        posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ);
        waitpid(pid, nullptr, 0);
        t.push_back(ms_since(s));
    }
    return summarize(t);
}

struct result {
    stats run, total, spawn, lag;
};

// The worst lateness of a 1 ms ticker on the loop until `stop`.
asio::awaitable<void> ticker(const bool& stop, double& worst) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (!stop) {
        auto due = clk::now() + std::chrono::milliseconds(1);
        t.expires_at(due);
        co_await t.async_wait(asio::use_awaitable);
        worst = std::max(worst, std::chrono::duration<double, std::milli>(clk::now() - due).count());
    }
}

// The value of `key=` in a log line, or -1.
double field(const std::string& line, const std::string& key) {
    auto p = line.find(" " + key + "=");
    return p == std::string::npos ? -1 : std::atof(line.c_str() + p + key.size() + 2);
}

result runner_overhead(sandbox_mode mode, int runs, const fs::path& root, std::string& detail) {
    sandbox_config cfg;
    cfg.mode = mode;
    std::vector<std::string> lines;
    faasd::logger log(faasd::log_level::info, faasd::log_format::text,
                      [&](std::string_view l) { lines.emplace_back(l); }, false);
    function_runner runner(cfg, log);
    detail = runner.capabilities().detail;
    std::vector<double> run_ms, total_ms, lag_ms;
    for (int i = 0; i < runs; ++i) {
        auto s = clk::now();
        auto id = faasd::new_job_id();
        workspace ws(root / "jobs", id, 1);
        std::ofstream(ws.code_dir() / "main") << "#!/bin/sh\nexit 0\n";
        fs::permissions(ws.code_dir() / "main", fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
        ws.write_input(boost::json::value(nullptr));
        auto cmd = load_function(ws.code_dir().string(), {});
        if (!cmd) throw std::runtime_error(cmd.error().message);
        run_request req;
        req.job_id = id;
        req.ws = &ws;
        req.command = *cmd;
        asio::io_context ioc;
        std::optional<run_result> r;
        bool done = false;
        double lag = 0;
        auto s_run = clk::now();
        asio::co_spawn(ioc, ticker(done, lag), asio::detached);
        asio::co_spawn(ioc, runner.run(req), [&](std::exception_ptr e, run_result x) {
            done = true;
            if (e) std::rethrow_exception(e);
            r = std::move(x);
        });
        ioc.run();
        lag_ms.push_back(lag);
        run_ms.push_back(ms_since(s_run));
        if (!r || r->status.outcome != run_outcome::succeeded)
            throw std::runtime_error("no-op run failed: " + (r ? r->stderr_text : std::string("?")));
        total_ms.push_back(ms_since(s));  // includes workspace creation and removal? (removal below)
    }
    std::vector<double> spawn_ms;
    for (const auto& l : lines)
        if (l.find("sandbox.finished") != std::string::npos && field(l, "spawn_ms") >= 0) spawn_ms.push_back(field(l, "spawn_ms"));
    if (spawn_ms.empty()) spawn_ms.push_back(-1);
    return {summarize(run_ms), summarize(total_ms), summarize(spawn_ms), summarize(lag_ms)};
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 50;
    std::size_t ballast_mb = 0;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--runs") == 0) runs = std::max(5, std::atoi(argv[i + 1]));
        if (std::strcmp(argv[i], "--ballast") == 0) ballast_mb = static_cast<std::size_t>(std::max(0, std::atoi(argv[i + 1])));
    }
    std::vector<char> ballast(ballast_mb << 20);
    for (std::size_t i = 0; i < ballast.size(); i += 4096) ballast[i] = static_cast<char>(i);
    auto root = fs::temp_directory_path() / ("faasd-bench-sandbox-" + std::to_string(::getpid()));
    fs::create_directories(root);
    ::chmod(root.c_str(), 0755);
    try {
        auto bare = bare_exec(runs);
        std::string bwrap_detail, none_detail;
        auto bw = runner_overhead(sandbox_mode::bubblewrap, runs, root, bwrap_detail);
        auto none = runner_overhead(sandbox_mode::none, runs, root, none_detail);
        std::printf("\nno-op function, %d runs each, %zu MiB ballast, milliseconds (median / p95)\n\n", runs, ballast_mb);
        std::printf("%-44s %8s %8s\n", "", "median", "p95");
        std::printf("%-44s %8.2f %8.2f\n", "posix_spawn(/bin/true) + waitpid", bare.median, bare.p95);
        std::printf("%-44s %8.2f %8.2f\n", "run() --sandbox=none", none.run.median, none.run.p95);
        std::printf("%-44s %8.2f %8.2f\n", "workspace + run() --sandbox=none", none.total.median, none.total.p95);
        std::printf("%-44s %8.2f %8.2f\n", "run() bwrap", bw.run.median, bw.run.p95);
        std::printf("%-44s %8.2f %8.2f\n", "workspace + run() bwrap", bw.total.median, bw.total.p95);
        std::printf("%-44s %8.2f %8.2f\n", "process start (spawn_ms), --sandbox=none", none.spawn.median, none.spawn.p95);
        std::printf("%-44s %8.2f %8.2f\n", "process start (spawn_ms), bwrap", bw.spawn.median, bw.spawn.p95);
        std::printf("%-44s %8.2f %8.2f\n", "worst loop lateness in a run, --sandbox=none", none.lag.median, none.lag.p95);
        std::printf("%-44s %8.2f %8.2f\n", "worst loop lateness in a run, bwrap", bw.lag.median, bw.lag.p95);
        std::printf("\nbwrap: %s\nnone:  %s\n", bwrap_detail.c_str(), none_detail.c_str());
        if (!ballast.empty()) std::printf("(ballast byte: %d)\n", ballast[ballast.size() / 2 + 4096]);
    } catch (const std::exception& e) {
        std::cerr << "bench failed: " << e.what() << "\n";
        fs::remove_all(root);
        return 1;
    }
    fs::remove_all(root);
    return 0;
}
