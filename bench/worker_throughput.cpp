// The whole worker on real Kafka: per-job overhead of a no-op function
// (Kafka in, repository cache hit, sandbox, result out) and throughput with
// 1, 2 and 4 slots, with bubblewrap and with --sandbox=none.
//
//   FAASD_TEST_KAFKA=127.0.0.1:9092 faasd_bench_worker_throughput [--jobs N] [--sequential N] [--modes bwrap,none]
//
// For each sandbox mode:
//   overhead   N sequential jobs on 1 slot: end-to-end latency (submitted to
//              the result read back from Kafka), the worker's own total_ms,
//              and total_ms - run_ms (everything but the function itself)
//   throughput N no-op jobs submitted at once, 1/2/4 slots: jobs per second
//              from the first submission to the last result
// Prints medians and p95 in milliseconds; also CPU time of the process.

#include "../test/integration/git/git_fixtures.hpp"

#include <faasd/core/id.hpp>
#include <faasd/git/cache.hpp>
#include <faasd/jobs/codec.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/kafka.hpp>
#include <faasd/runtime/runtime.hpp>
#include <faasd/sandbox/runner.hpp>
#include <faasd/worker/service.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <set>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace faasd;
using clk = std::chrono::steady_clock;

namespace {

jobs::unix_ms now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct stats {
    double median = 0, p95 = 0, mean = 0;
};
stats summarize(std::vector<double> v) {
    if (v.empty()) return {};
    std::sort(v.begin(), v.end());
    double sum = 0;
    for (double x : v) sum += x;
    return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 95 / 100)], sum / static_cast<double>(v.size())};
}

double cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    rusage rc{};
    ::getrusage(RUSAGE_CHILDREN, &rc);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return s(ru.ru_utime) + s(ru.ru_stime) + s(rc.ru_utime) + s(rc.ru_stime);
}

asio::awaitable<void> sleep_ms(int ms) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await t.async_wait(asio::use_awaitable);
}

struct measurement {
    stats e2e, total, overhead, queue, prepare, run, publish;  // ms
    double jobs_per_s = 0;
    double cpu_s = 0;
    int jobs = 0;
};

/// One worker (given slots and sandbox) on fresh topics; runs `sequential`
/// jobs one after the other, or `burst` jobs at once.
measurement run_config(const std::string& brokers, const std::string& url, const fs::path& dir, const std::string& sandbox_mode,
                       int slots, int sequential, int burst) {
    asio::io_context ioc(1);
    measurement out;
    const std::string prefix = "bench-" + random_hex(4) + ".";
    auto topics = jobs::topic_names::with_prefix(prefix);
    faasd::logger quiet(log_level::warn, log_format::text, stderr_sink());

    git::cache_config cc;
    cc.dir = dir / "cache";
    cc.schemes = git::scheme_policy::development();
    git::repo_cache cache(cc, quiet);
    sandbox::sandbox_config sc;
    sc.mode = *sandbox::parse_sandbox_mode(sandbox_mode);
    sandbox::function_runner runner(sc, quiet);

    worker::service_config wc;
    wc.worker_id = "bench-" + random_hex(3);
    wc.slots = slots;
    wc.jobs_dir = dir / "jobs";
    wc.topics = topics;
    wc.group_id = prefix + "workers";
    wc.kafka.brokers = brokers;
    wc.kafka.properties = {{"fetch.wait.max.ms", "10"}};
    worker::service_deps deps;
    deps.cache = &cache;
    deps.runner = &runner;
    auto health = std::make_shared<runtime::health>();
    auto shutdown = std::make_shared<runtime::shutdown_signal>(ioc.get_executor());

    auto body = [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        {
            kafka::admin_options ao;
            ao.brokers = brokers;
            ao.log = quiet;
            kafka::admin adm(ex, ao);
            auto r = co_await kafka::ensure_faasd_topics(adm, topics, 4, 1);
            co_await adm.close();
            if (!r) throw std::runtime_error("topics: " + r.error().message());
        }
        auto svc = std::make_shared<worker::service>(ex, wc, deps, quiet, health);
        bool stopped = false;
        asio::co_spawn(ex, svc->run(shutdown, std::chrono::seconds(10)), [&](std::exception_ptr e) {
            stopped = true;
            if (e) std::rethrow_exception(e);
        });
        kafka::producer_options po;
        po.brokers = brokers;
        po.log = quiet;
        po.properties["linger.ms"] = "0";
        kafka::producer prod(ex, po);
        kafka::consumer_options co;
        co.brokers = brokers;
        co.log = quiet;
        co.properties["fetch.wait.max.ms"] = "5";
        kafka::consumer results(ex, co);
        std::vector<std::string> rt{topics.results};
        (void)co_await results.assign_topics(rt, kafka::offset_beginning);

        std::map<std::string, jobs::unix_ms> submitted;
        std::map<std::string, jobs::job_result> got;
        auto submit = [&](int n) -> asio::awaitable<void> {
            for (int i = 0; i < n; ++i) {
                jobs::job_message m;
                m.id = new_job_id();
                m.submitted_at = now_ms();
                m.spec.repo.url = url;
                m.spec.repo.ref = "main";
                kafka::record r;
                r.topic = topics.jobs_at_least_once;
                r.key = m.id;
                r.value = jobs::encode(m);
                submitted[m.id] = m.submitted_at;
                prod.post(std::move(r));
            }
            co_return;
        };
        auto wait_results = [&](std::size_t n) -> asio::awaitable<void> {
            auto deadline = clk::now() + std::chrono::seconds(300);
            while (got.size() < n && clk::now() < deadline) {
                auto batch = co_await results.poll(256, std::chrono::milliseconds(50));
                auto t = now_ms();
                for (auto& m : batch) {
                    auto r = jobs::decode_job_result(m.value.value_or(""));
                    if (!r || !submitted.count(r->id) || got.count(r->id)) continue;
                    r->times.finished_at = t;  // reuse: when the result was read back
                    got.emplace(r->id, std::move(*r));
                }
            }
        };
        // Warm up: join the group, clone the repository.
        co_await submit(1);
        co_await wait_results(1);
        submitted.clear();
        got.clear();

        auto cpu0 = cpu_seconds();
        auto t0 = clk::now();
        if (sequential > 0) {
            for (int i = 0; i < sequential; ++i) {
                co_await submit(1);
                co_await wait_results(static_cast<std::size_t>(i + 1));
            }
            out.jobs = sequential;
        } else {
            co_await submit(burst);
            co_await wait_results(static_cast<std::size_t>(burst));
            out.jobs = burst;
        }
        double secs = std::chrono::duration<double>(clk::now() - t0).count();
        out.cpu_s = cpu_seconds() - cpu0;
        out.jobs_per_s = static_cast<double>(got.size()) / secs;
        std::vector<double> e2e, total, over, queue, prepare, run, publish;
        for (const auto& [id, r] : got) {
            e2e.push_back(static_cast<double>(r.times.finished_at - submitted[id]));
            total.push_back(static_cast<double>(r.times.total_ms));
            over.push_back(static_cast<double>(r.times.total_ms - r.times.run_ms));
            queue.push_back(static_cast<double>(r.times.queue_wait_ms));
            prepare.push_back(static_cast<double>(r.times.prepare_ms));
            run.push_back(static_cast<double>(r.times.run_ms));
            publish.push_back(static_cast<double>(r.times.total_ms - r.times.queue_wait_ms - r.times.prepare_ms -
                                                  r.times.run_ms - r.times.upload_ms));
            if (r.state != jobs::job_state::succeeded) std::cerr << "job failed: " << r.error.code << " " << r.error.message << "\n";
        }
        out.e2e = summarize(e2e);
        out.total = summarize(total);
        out.overhead = summarize(over);
        out.queue = summarize(queue);
        out.prepare = summarize(prepare);
        out.run = summarize(run);
        out.publish = summarize(publish);

        shutdown->request();
        while (!stopped) co_await sleep_ms(20);
        co_await results.close();
        co_await prod.close(std::chrono::seconds(5));
    };
    asio::co_spawn(ioc, body(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    ioc.run();
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    int burst = 200, sequential = 40, seq_slots = 1;
    std::string modes = "bwrap,none";
    const char* env = std::getenv("FAASD_TEST_KAFKA");
    std::string brokers = env ? env : "";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--jobs")) burst = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--sequential")) sequential = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--modes")) modes = argv[i + 1];
        else if (!std::strcmp(argv[i], "--sequential-slots")) seq_slots = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--brokers")) brokers = argv[i + 1];
    }
    if (brokers.empty()) {
        std::cerr << "set FAASD_TEST_KAFKA or --brokers (test/services/services.sh up kafka)\n";
        return 2;
    }
    auto dir = fs::temp_directory_path() / ("faasd-bench-worker-" + random_hex(4));
    fs::create_directories(dir);
    ::chmod(dir.c_str(), 0755);
    faasd::test::git::repo noop(dir / "work", dir / "served/noop.git");
    noop.write("main", "#!/bin/sh\necho '{}'\n", true);
    noop.commit("no-op");
    const std::string url = noop.file_url();

    std::printf("worker benchmark: Kafka %s, no-op function (sh), at-least-once, cache hits\n", brokers.c_str());
    std::set<std::string> selected;
    for (std::size_t p = 0; p < modes.size();) {
        auto q = modes.find(',', p);
        selected.insert(modes.substr(p, q == std::string::npos ? std::string::npos : q - p));
        p = q == std::string::npos ? modes.size() : q + 1;
    }
    for (const std::string mode : {"bwrap", "none"}) {
        if (!selected.count(mode)) continue;
        auto o = run_config(brokers, url, dir / (mode + "-seq"), mode, seq_slots, sequential, 0);
        std::printf("%-5s overhead, %d sequential jobs, %d slot(s): end-to-end median %.1f ms p95 %.1f ms; worker total_ms median %.1f; "
                    "total - run median %.1f ms p95 %.1f ms; cpu %.1f ms/job\n",
                    mode.c_str(), o.jobs, seq_slots, o.e2e.median, o.e2e.p95, o.total.median, o.overhead.median, o.overhead.p95,
                    1000.0 * o.cpu_s / std::max(o.jobs, 1));
        std::printf("%-5s   medians: queue_wait %.1f ms, prepare %.1f ms, run %.1f ms, rest (publish) %.1f ms\n", mode.c_str(),
                    o.queue.median, o.prepare.median, o.run.median, o.publish.median);
        if (burst <= 0) continue;
        for (int slots : {1, 2, 4}) {
            auto t = run_config(brokers, url, dir / (mode + "-" + std::to_string(slots)), mode, slots, 0, burst);
            std::printf("%-5s throughput, %d jobs at once, %d slot%s: %.1f jobs/s; end-to-end median %.0f ms p95 %.0f ms; "
                        "cpu %.1f ms/job\n",
                        mode.c_str(), t.jobs, slots, slots == 1 ? "" : "s", t.jobs_per_s, t.e2e.median, t.e2e.p95,
                        1000.0 * t.cpu_s / std::max(t.jobs, 1));
        }
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    return 0;
}
