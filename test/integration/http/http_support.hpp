#pragma once
// Helpers for the HTTP component tests: a server running on the test's
// io_context, a raw keep-alive client connection, and polling with deadlines.
// Tests may use Beast directly (only src/http hides it from public headers).

#include <faasd/core/log.hpp>
#include <faasd/http/server.hpp>
#include <faasd/metrics/registry.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace faasd::test::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// Log lines captured in memory.
struct log_capture {
    std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();
    std::shared_ptr<std::vector<std::string>> lines = std::make_shared<std::vector<std::string>>();

    faasd::logger logger(log_level level = log_level::info) const {
        return faasd::logger(level, log_format::text,
                             [mu = mu, lines = lines](std::string_view l) {
                                 std::lock_guard lock(*mu);
                                 lines->emplace_back(l);
                             },
                             false);
    }
    std::vector<std::string> snapshot() const {
        std::lock_guard lock(*mu);
        return *lines;
    }
    bool contains(std::string_view needle) const {
        for (const auto& l : snapshot())
            if (l.find(needle) != std::string::npos) return true;
        return false;
    }
};

/// Sleeps on the current executor (a test pacing step, never a synchronisation).
inline asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(use_tuple);
}

/// Polls pred every 5 ms until true; throws after timeout. Pass lambdas that
/// capture by reference only, or a named std::function (GCC 12 bug).
inline asio::awaitable<void> wait_for(std::function<bool()> pred, std::chrono::milliseconds timeout,
                                      const char* what = "condition") {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error(std::string("timed out waiting for ") + what);
        co_await pause(5ms);
    }
}

/// A server on the current executor, bound to 127.0.0.1:0 (or cfg.address).
class test_server {
public:
    test_server(asio::any_io_executor ex, faasd::http::router r, faasd::http::server_config cfg = {},
                faasd::logger log = faasd::logger::null())
        : registry(std::make_shared<metrics::registry>()),
          srv(std::make_unique<faasd::http::server>(ex, std::move(cfg), std::move(r), std::move(log), registry)) {
        auto p = srv->listen();
        if (!p) throw std::runtime_error("listen failed: " + p.error().message());
        port = *p;
        asio::co_spawn(ex, srv->run(), [state = state_](std::exception_ptr e) {
            state->error = e;
            state->finished = true;
        });
    }
    bool finished() const { return state_->finished; }
    /// Stops with `grace` and waits (bounded) for run() to complete.
    asio::awaitable<void> stop(std::chrono::milliseconds grace = 1s, std::chrono::milliseconds wait = 5s) {
        srv->stop(grace);
        // A named predicate: GCC 12 destroys closure temporaries in co_await
        // expressions twice (see docs/http.md, "GCC 12 coroutine caveats").
        std::function<bool()> done = [s = state_] { return s->finished; };
        co_await wait_for(done, wait, "server stop");
        if (state_->error) std::rethrow_exception(state_->error);
    }

    std::shared_ptr<metrics::registry> registry;
    std::unique_ptr<faasd::http::server> srv;
    std::uint16_t port = 0;

private:
    struct state {
        bool finished = false;
        std::exception_ptr error;
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

/// A raw client connection: writes bytes, reads parsed responses.
class raw_conn {
public:
    explicit raw_conn(tcp::socket s) : sock(std::move(s)) {}

    static asio::awaitable<raw_conn> open(std::uint16_t port, const char* host = "127.0.0.1") {
        tcp::socket s(co_await asio::this_coro::executor);
        co_await s.async_connect(tcp::endpoint(asio::ip::make_address(host), port), asio::use_awaitable);
        co_return raw_conn(std::move(s));
    }

    asio::awaitable<void> send(std::string bytes) {
        co_await asio::async_write(sock, asio::buffer(bytes), asio::use_awaitable);
    }

    /// Reads one response (skip_body for answers to HEAD).
    asio::awaitable<bhttp::response<bhttp::string_body>> read(bool skip_body = false) {
        bhttp::response_parser<bhttp::string_body> p;
        p.body_limit(64 * 1024 * 1024);
        p.skip(skip_body);
        co_await bhttp::async_read(sock, buf, p, asio::use_awaitable);
        co_return p.release();
    }

    /// True when the peer closes the connection within `timeout` (data read
    /// meanwhile is discarded), false if it is still open then.
    asio::awaitable<bool> closed_within(std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        asio::steady_timer t(co_await asio::this_coro::executor);
        bool expired = false;
        t.expires_at(deadline);
        t.async_wait([&](boost::system::error_code ec) {
            if (!ec) {
                expired = true;
                boost::system::error_code ignored;
                sock.cancel(ignored);
            }
        });
        char tmp[4096];
        for (;;) {
            auto [ec, n] = co_await sock.async_read_some(asio::buffer(tmp), use_tuple);
            (void)n;
            if (ec) {
                t.cancel();
                co_await pause(0ms);  // let the timer handler run before `expired` goes out of scope
                co_return !expired;
            }
        }
    }

    tcp::socket sock;
    beast::flat_buffer buf;
};

inline std::string get(std::string_view target, std::string_view extra_headers = "") {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers) + "\r\n";
}

}  // namespace faasd::test::http
