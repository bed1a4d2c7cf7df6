#pragma once
// The HTTP/1.1 server every role uses (Beast stays in src/http).
//
//   http::server srv(ex, cfg, std::move(routes), log, metrics);
//   auto port = srv.listen();                  // result<std::uint16_t>: the bound port
//   co_spawn(ex, srv.run(), log_exceptions);   // accepts until stop()
//   ...
//   srv.stop(std::chrono::seconds(10));        // graceful; run() completes when drained
//
// One coroutine per connection (on its own strand when multi_threaded is set,
// so the io_context may run on several threads). Keep-alive, pipelined
// requests answered in order, a deadline on every read and write, header and
// body limits (413/431 problem+json), 404/405 problem+json, HEAD, a request id,
// an access log line and metrics per request.
//
// Graceful stop: stop accepting; idle keep-alive connections are closed at
// once; requests in flight finish (their responses carry Connection: close);
// WebSocket sessions get a 1001 close frame; whatever is left when the grace
// period ends is cancelled and its socket closed.
//
// Thread safety: listen(), port(), run() from one thread before/when starting;
// stop() and stats() from any thread.

#include <faasd/core/error.hpp>
#include <faasd/core/log.hpp>
#include <faasd/http/router.hpp>
#include <faasd/http/websocket.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace faasd::metrics {
class registry;
}

namespace faasd::http {

/// Server settings; every default is documented in docs/http.md.
struct server_config {
    std::string address = "127.0.0.1";  ///< IPv4 or IPv6 literal to bind ("0.0.0.0", "::")
    std::uint16_t port = 0;             ///< 0 picks a free port (see server::port())

    std::size_t header_limit = 16 * 1024;       ///< request line + headers, bytes (else 431)
    std::uint64_t body_limit = 1024 * 1024;     ///< request body, bytes, unless the route overrides (else 413)
    std::size_t max_connections = 10'000;       ///< further connections are closed at once
    /// Set when the io_context runs on more than one thread: each connection
    /// then runs on its own strand. Off (the faasd default of one loop thread),
    /// connections use the executor as given, which is cheaper: a type-erased
    /// strand executor is heap-allocated on every copy Asio makes of it.
    bool multi_threaded = false;

    /// Waiting for the first byte of the next request on a keep-alive connection.
    std::chrono::milliseconds idle_timeout{60'000};
    /// From the first byte of a request to the end of its header (slow-loris bound).
    std::chrono::milliseconds header_timeout{10'000};
    /// Reading the body, after the header.
    std::chrono::milliseconds body_timeout{30'000};
    /// Writing one response.
    std::chrono::milliseconds write_timeout{30'000};
    /// A handler that takes longer is cancelled and answered 503; 0 disables
    /// (a route may override). WebSocket handlers have no deadline.
    std::chrono::milliseconds handler_timeout{30'000};

    /// Incoming request ids (1..64 of [A-Za-z0-9._-]) are kept; else one is made.
    std::string request_id_header = "X-Request-Id";
    /// One line per request (method, route pattern, status, duration, request id,
    /// remote address; never the query, headers or body) at this level.
    log_level access_log_level = log_level::info;

    ws_options websocket;  ///< limits of WebSocket sessions
};

/// Live counters.
struct server_stats {
    std::size_t connections = 0;       ///< open connections (HTTP and WebSocket)
    std::uint64_t accepted = 0;        ///< connections accepted since start
    std::uint64_t requests = 0;        ///< requests answered since start
    std::size_t websockets = 0;        ///< open WebSocket sessions
};

/// "host:port", "[v6]:port" or ":port" (all interfaces) into address and port.
/// errc::invalid_argument if malformed.
result<std::pair<std::string, std::uint16_t>> parse_listen_address(std::string_view s);

class server {
public:
    /// metrics may be null (no metrics are recorded then).
    server(boost::asio::any_io_executor ex, server_config cfg, router routes, faasd::logger log,
           std::shared_ptr<metrics::registry> metrics = nullptr);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Binds and listens (does not block). Returns the bound port, or an error
    /// (address in use, bad address). Idempotent.
    result<std::uint16_t> listen();
    /// The bound port (0 before listen()).
    std::uint16_t port() const noexcept;

    /// Accepts connections until stop(), then drains them; completes when every
    /// connection has finished. Calls listen() if needed (throws if that fails).
    /// The returned awaitable owns what it needs: the server object may be
    /// destroyed while it runs (that stops it with no grace).
    boost::asio::awaitable<void> run();

    /// Starts a graceful stop (see above). Any thread; idempotent.
    void stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

    server_stats stats() const;
    const router& routes() const noexcept;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

/// Maps a request id candidate to itself when acceptable (1..64 chars of
/// [A-Za-z0-9._-]), else to nothing. Exposed for tests.
bool is_acceptable_request_id(std::string_view id) noexcept;

}  // namespace faasd::http
