#pragma once
// Private to src/http: the server's connection state and the WebSocket
// session implementation. This header includes Beast; public headers never do.

#include <faasd/http/server.hpp>
#include <faasd/http/websocket.hpp>
#include <faasd/metrics/registry.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace faasd::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

using beast_request = bhttp::request<bhttp::string_body>;

class ws_session_impl;

/// Metric handles of one server (all null when no registry was given).
struct server_metrics {
    metrics::counter_family* requests = nullptr;
    metrics::histogram_family* latency = nullptr;
    metrics::gauge* connections = nullptr;
    metrics::counter* accepted = nullptr;
    metrics::counter* refused = nullptr;
    metrics::gauge* in_flight = nullptr;
    metrics::gauge* ws_open = nullptr;
    metrics::counter* ws_sent = nullptr;
    metrics::counter* ws_overflow = nullptr;

    void init(metrics::registry& reg);
};

/// One accepted connection. Fields marked "strand" are only touched on `ex`.
struct connection {
    connection(tcp::socket s, std::string remote_address)
        : ex(s.get_executor()), stream(std::move(s)), remote(std::move(remote_address)) {}

    asio::any_io_executor ex;  ///< the connection's strand
    beast::tcp_stream stream;  ///< strand; moved into the WebSocket stream on upgrade
    std::string remote;
    bool idle = true;                             ///< strand: waiting for the next request
    std::shared_ptr<ws_session_impl> ws;          ///< strand: set while a WebSocket handler runs
    asio::cancellation_signal cancel;             ///< strand: bound to the connection coroutine
    asio::steady_timer deadline{ex};              ///< strand: the running handler's deadline
    std::uint64_t deadline_gen = 0;               ///< strand: invalidates a deadline that fired late
    bool timed_out = false;                       ///< strand: the deadline cancelled the handler
};

/// The WebSocket session behind the ws_session interface.
class ws_session_impl final : public ws_session, public std::enable_shared_from_this<ws_session_impl> {
public:
    ws_session_impl(asio::any_io_executor ex, beast::tcp_stream& stream, const beast_request& upgrade,
                    request req, route_params params, const ws_options& opts, const server_metrics& m,
                    faasd::logger log, std::atomic<std::size_t>* open_count);
    ~ws_session_impl() override;

    const request& upgrade_request() const noexcept override { return req_; }
    const route_params& params() const noexcept override { return params_; }
    std::vector<std::string> offered_subprotocols() const override;
    asio::awaitable<boost::system::error_code> accept(std::optional<std::string> subprotocol) override;
    asio::awaitable<void> reject(response r) override;
    asio::awaitable<std::optional<std::string>> read() override;
    bool send(std::string text) override;
    void close(std::uint16_t code, std::string reason) override;
    bool is_open() const noexcept override;
    stats get_stats() const override;

    // Used by the connection coroutine (strand).
    bool accepted() const noexcept { return accepted_; }
    /// The opening handshake completed (strand).
    bool handshake_ok() const noexcept { return handshake_ok_; }
    bool rejected() const noexcept { return rejected_.has_value(); }
    /// The rejection response, once (strand).
    std::optional<response> take_rejection() { return std::exchange(rejected_, std::nullopt); }
    /// Completes once the writer has finished (at once if never accepted).
    asio::awaitable<void> wait_done();
    /// Drops the TCP connection (strand).
    void force_close();
    /// The close code the server sent or will send (0 if none yet).
    std::uint16_t close_code_sent() const;

private:
    asio::awaitable<void> writer(std::shared_ptr<ws_session_impl> self);
    void wake_writer_locked();  // requires mu_
    void arm_watchdog(std::chrono::milliseconds d);
    void disarm_watchdog();

    asio::any_io_executor ex_;
    beast::tcp_stream* pending_stream_;   // valid until accept()
    const beast_request* upgrade_;        // valid while the handler runs
    request req_;
    route_params params_;
    ws_options opts_;
    server_metrics metrics_;
    faasd::logger log_;
    std::atomic<std::size_t>* open_count_;

    std::optional<websocket::stream<beast::tcp_stream>> ws_;  // strand
    beast::flat_buffer rbuf_;                                  // handler
    bool accepted_ = false;                                    // strand
    bool handshake_ok_ = false;                                // strand
    std::optional<response> rejected_;                         // strand
    asio::steady_timer wake_;                                  // strand
    asio::steady_timer done_timer_;                            // strand
    asio::steady_timer watchdog_;                              // strand
    std::uint64_t watchdog_gen_ = 0;                           // strand
    bool writer_done_ = true;                                  // strand

    mutable std::mutex mu_;  // guards the fields below
    std::deque<std::string> queue_;
    std::size_t queued_bytes_ = 0;
    bool open_ = false;             // accepted, not yet finished
    bool close_requested_ = false;  // a close frame is due after the queue
    bool closed_ = false;           // the connection is gone (read error, write error, closed)
    bool writer_waiting_ = false;
    bool overflowed_ = false;
    std::uint16_t close_code_ = 0;
    std::string close_reason_;
    std::uint64_t sent_ = 0;
};

}  // namespace faasd::http::detail
