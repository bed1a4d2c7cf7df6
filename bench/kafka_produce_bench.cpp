// Produces N messages with acks=all (idempotent producer) through
// faasd::kafka::producer and prints throughput and delivery latency.
//
//   kafka_produce_bench [--brokers host:port] [-n 20000] [--size 200]
//                       [--window 1000] [--partitions 6] [--replication 3]
//
// Brokers default to $FAASD_BENCH_KAFKA, then $FAASD_TEST_KAFKA. A fresh topic
// is created (replication capped at the broker count) and deleted afterwards.
// Two phases: one record at a time (latency without batching), then a window
// of outstanding sends (throughput, latency under load).

#include <faasd/core/id.hpp>
#include <faasd/kafka/kafka.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace faasd::kafka;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
    std::string brokers;
    int n = 20000;
    int size = 200;
    int window = 1000;
    int partitions = 6;
    int replication = 3;
    int sequential = 500;
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    return v[idx];
}

void report(const char* phase, int n, int failed, clock_type::duration elapsed, const std::vector<double>& lat_ms) {
    double secs = std::chrono::duration<double>(elapsed).count();
    std::printf("%-12s %7d msgs  %6d failed  %8.2f s  %9.0f msg/s  latency ms p50 %7.2f  p99 %7.2f  max %7.2f\n", phase,
                n, failed, secs, n / std::max(secs, 1e-9), percentile(lat_ms, 0.50), percentile(lat_ms, 0.99),
                percentile(lat_ms, 1.0));
}

asio::awaitable<void> sleep_ms(int ms) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<void> bench(settings s, int& exit_code) {
    auto ex = co_await asio::this_coro::executor;
    faasd::logger log(faasd::log_level::warn, faasd::log_format::text, faasd::stderr_sink());
    admin_options ao;
    ao.brokers = s.brokers;
    ao.log = log;
    admin adm(ex, ao);
    auto topic = "bench-" + faasd::random_hex(6);
    std::vector<topic_spec> specs{{topic, s.partitions, s.replication, {}}};
    backoff_policy once{std::chrono::milliseconds(500), std::chrono::milliseconds(500), 3};
    auto created = co_await adm.ensure_topics(specs, once);
    if (!created) {
        std::fprintf(stderr, "cannot create topic: %s\n", created.error().message().c_str());
        exit_code = 1;
        co_await adm.close();
        co_return;
    }
    auto nbrokers = co_await adm.broker_count();
    std::printf("brokers %s (%d), topic %s: %d partitions, replication %d, value %d bytes, acks=all, idempotent\n",
                s.brokers.c_str(), nbrokers ? *nbrokers : -1, topic.c_str(), s.partitions,
                std::min(s.replication, nbrokers ? *nbrokers : 1), s.size);

    producer_options po;
    po.brokers = s.brokers;
    po.log = log;
    producer p(ex, po);
    const std::string value(static_cast<std::size_t>(s.size), 'x');

    // Phase 1: one record at a time.
    {
        std::vector<double> lat;
        int failed = 0;
        auto t0 = clock_type::now();
        for (int i = 0; i < s.sequential; ++i) {
            record r;
            r.topic = topic;
            r.key = "seq-" + std::to_string(i);
            r.value = value;
            auto t = clock_type::now();
            auto d = co_await p.send(std::move(r));
            lat.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t).count());
            if (!d) ++failed;
        }
        report("sequential", s.sequential, failed, clock_type::now() - t0, lat);
    }

    // Phase 2: a window of outstanding sends.
    {
        std::vector<double> lat(static_cast<std::size_t>(s.n), 0.0);
        int done = 0, failed = 0, in_flight = 0;
        auto t0 = clock_type::now();
        for (int i = 0; i < s.n; ++i) {
            while (in_flight >= s.window) co_await sleep_ms(1);
            ++in_flight;
            asio::co_spawn(
                ex,
                [&, i]() -> asio::awaitable<void> {
                    record r;
                    r.topic = topic;
                    r.key = "key-" + std::to_string(i);
                    r.value = value;
                    auto t = clock_type::now();
                    auto d = co_await p.send(std::move(r));
                    lat[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
                    if (!d) ++failed;
                    ++done;
                    --in_flight;
                },
                asio::detached);
        }
        while (done < s.n) co_await sleep_ms(1);
        char phase[32];
        std::snprintf(phase, sizeof phase, "window %d", s.window);
        report(phase, s.n, failed, clock_type::now() - t0, lat);
        if (failed) exit_code = 1;
    }
    co_await p.close();
    std::vector<std::string> topics{topic};
    (void)co_await adm.delete_topics(topics);
    co_await adm.close();
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    if (const char* b = std::getenv("FAASD_BENCH_KAFKA"))
        s.brokers = b;
    else if (const char* t = std::getenv("FAASD_TEST_KAFKA"))
        s.brokers = t;
    for (int i = 1; i < argc; ++i) {
        auto arg = std::string(argv[i]);
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--brokers") s.brokers = next();
        else if (arg == "-n") s.n = std::stoi(next());
        else if (arg == "--size") s.size = std::stoi(next());
        else if (arg == "--window") s.window = std::max(1, std::stoi(next()));
        else if (arg == "--partitions") s.partitions = std::stoi(next());
        else if (arg == "--replication") s.replication = std::stoi(next());
        else if (arg == "--sequential") s.sequential = std::stoi(next());
        else {
            std::fprintf(stderr, "usage: %s [--brokers host:port] [-n N] [--size BYTES] [--window N] "
                                 "[--partitions N] [--replication N] [--sequential N]\n", argv[0]);
            return 2;
        }
    }
    if (s.brokers.empty()) {
        std::fprintf(stderr, "no brokers: pass --brokers or set FAASD_BENCH_KAFKA / FAASD_TEST_KAFKA\n");
        return 2;
    }
    asio::io_context ioc(1);
    int exit_code = 0;
    asio::co_spawn(ioc, bench(s, exit_code), [&](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            std::fprintf(stderr, "bench failed: %s\n", ex.what());
            exit_code = 1;
        }
    });
    ioc.run();
    return exit_code;
}
