// http_hello_bench: throughput and latency of http::server on a trivial route.
//
//   faasd_bench_http_hello_bench [--connections N] [--seconds S] [--server-threads T] [--log]
//                                [--handler-timeout-ms MS]  (0 disables the per-request handler deadline)
//       runs the server (T threads) and an in-process keep-alive load generator
//       (one thread, N connections, one request in flight per connection) and
//       prints requests/s and latency percentiles.
//   faasd_bench_http_hello_bench --serve [--port P] [--server-threads T]
//       only serves GET /hello on 127.0.0.1 (for wrk: wrk -c64 -d10s http://127.0.0.1:P/hello).
//
// It prints numbers and asserts nothing. Build it in the release preset.

#include <faasd/core/log.hpp>
#include <faasd/http/server.hpp>
#include <faasd/metrics/registry.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

// Counts heap allocations made by the server threads (operator new is replaced
// for this program only), to report allocations per request.
namespace {
thread_local bool count_allocations = false;
std::atomic<std::uint64_t> server_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
    if (count_allocations) server_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

struct options {
    int connections = 64;
    int seconds = 5;
    int server_threads = 1;
    bool serve_only = false;
    unsigned short port = 0;
    bool log = false;
    int handler_timeout_ms = 30000;
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
        if (a == "--connections") o.connections = std::max(1, next());
        else if (a == "--seconds") o.seconds = std::max(1, next());
        else if (a == "--server-threads") o.server_threads = std::max(1, next());
        else if (a == "--serve") o.serve_only = true;
        else if (a == "--port") o.port = static_cast<unsigned short>(next());
        else if (a == "--log") o.log = true;
        else if (a == "--handler-timeout-ms") o.handler_timeout_ms = std::max(0, next());
        else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            std::exit(2);
        }
    }
    return o;
}

faasd::http::router hello_router() {
    faasd::http::router r;
    r.add("GET", "/hello", [](const faasd::http::request&, const faasd::http::route_params&)
                               -> asio::awaitable<faasd::http::response> {
        co_return faasd::http::response::text(200, "hello, world");
    });
    return r;
}

struct load_result {
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    std::vector<double> latencies_us;  // a sample
};

asio::awaitable<void> load_connection(unsigned short port, clock_type::time_point end, load_result& res) {
    auto ex = co_await asio::this_coro::executor;
    tcp::socket s(ex);
    co_await s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
    s.set_option(tcp::no_delay(true));
    static const std::string req = "GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n";
    beast::flat_buffer buf;
    std::uint64_t n = 0;
    while (clock_type::now() < end) {
        auto t0 = clock_type::now();
        auto [wec, wn] = co_await asio::async_write(s, asio::buffer(req), asio::as_tuple(asio::use_awaitable));
        (void)wn;
        bhttp::response_parser<bhttp::string_body> p;
        auto [rec, rn] = co_await bhttp::async_read(s, buf, p, asio::as_tuple(asio::use_awaitable));
        (void)rn;
        if (wec || rec || p.get().result_int() != 200) {
            ++res.errors;
            break;
        }
        ++res.requests;
        if ((n++ & 15) == 0)
            res.latencies_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    }
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return v[k];
}

}  // namespace

int main(int argc, char** argv) {
    auto opt = parse(argc, argv);
    asio::io_context server_ioc(opt.server_threads);
    faasd::http::server_config cfg;
    cfg.port = opt.port;
    cfg.handler_timeout = std::chrono::milliseconds(opt.handler_timeout_ms);
    cfg.multi_threaded = opt.server_threads > 1;
    cfg.access_log_level = opt.log ? faasd::log_level::info : faasd::log_level::debug;
    auto log = opt.log ? faasd::logger() : faasd::logger::null();
    auto registry = std::make_shared<faasd::metrics::registry>();
    faasd::http::server srv(server_ioc.get_executor(), cfg, hello_router(), log, registry);
    auto port = srv.listen();
    if (!port) {
        std::fprintf(stderr, "listen: %s\n", port.error().message().c_str());
        return 1;
    }
    asio::co_spawn(server_ioc, srv.run(), [](std::exception_ptr e) {
        if (e) std::fprintf(stderr, "server failed\n");
    });
    std::vector<std::thread> server_threads;
    for (int i = 0; i < opt.server_threads; ++i)
        server_threads.emplace_back([&] {
            count_allocations = true;
            server_ioc.run();
        });

    if (opt.serve_only) {
        std::printf("serving http://127.0.0.1:%u/hello (Ctrl-C to stop)\n", static_cast<unsigned>(*port));
        std::fflush(stdout);
        asio::io_context sig_ioc;
        asio::signal_set signals(sig_ioc, SIGINT, SIGTERM);
        signals.async_wait([&](boost::system::error_code, int) { srv.stop(std::chrono::seconds(2)); });
        sig_ioc.run();
    } else {
        asio::io_context load_ioc(1);
        std::vector<load_result> results(static_cast<std::size_t>(opt.connections));
        auto end = clock_type::now() + std::chrono::seconds(opt.seconds);
        auto t0 = clock_type::now();
        auto allocations_before = server_allocations.load();
        auto requests_before = srv.stats().requests;
        for (auto& r : results)
            asio::co_spawn(load_ioc, load_connection(*port, end, r), [](std::exception_ptr e) {
                if (e) std::fprintf(stderr, "load connection failed\n");
            });
        load_ioc.run();
        double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
        auto served = srv.stats().requests - requests_before;
        double allocs_per_request = served ? static_cast<double>(server_allocations.load() - allocations_before) /
                                                 static_cast<double>(served)
                                           : 0.0;
        std::uint64_t total = 0, errors = 0;
        std::vector<double> lat;
        for (auto& r : results) {
            total += r.requests;
            errors += r.errors;
            lat.insert(lat.end(), r.latencies_us.begin(), r.latencies_us.end());
        }
        std::printf("http_hello_bench: connections=%d server_threads=%d seconds=%.1f\n", opt.connections,
                    opt.server_threads, elapsed);
        std::printf("  requests=%llu errors=%llu rate=%.0f req/s\n", static_cast<unsigned long long>(total),
                    static_cast<unsigned long long>(errors), static_cast<double>(total) / elapsed);
        std::printf("  latency_us p50=%.0f p90=%.0f p99=%.0f max=%.0f\n", percentile(lat, 0.5),
                    percentile(lat, 0.9), percentile(lat, 0.99), percentile(lat, 1.0));
        std::printf("  server_allocations_per_request=%.1f\n", allocs_per_request);
        srv.stop(std::chrono::seconds(1));
    }
    for (auto& t : server_threads) t.join();
    return 0;
}
