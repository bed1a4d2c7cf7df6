#pragma once
// The Beast-free WebSocket session a `router::add_websocket` handler gets.
//
// A handler typically does:
//
//   [](std::shared_ptr<ws_session> s) -> awaitable<void> {
//       auto user = authenticate(s->upgrade_request(), s->offered_subprotocols());
//       if (!user) { co_await s->reject(response::problem(401, ...)); co_return; }
//       if (auto ec = co_await s->accept("faasd.v1")) co_return;   // echo only a safe value
//       while (auto msg = co_await s->read()) { ... s->send(reply); }
//   }
//
// Writes: send() only enqueues; one writer coroutine per connection drains the
// queue (Beast allows one outstanding write). The queue is bounded
// (ws_options); a send that would exceed the bound drops the queue and closes
// the connection with 1013 "Try Again Later" (close_code::overloaded): a slow
// client never makes the server buffer without bound. A single write that
// takes longer than write_timeout drops the TCP connection.
//
// Thread safety: send(), close(), is_open() may be called from any thread and
// after the connection is gone (they then do nothing and return false).
// accept(), reject() and read() are for the handler only, one at a time.

#include <faasd/core/error.hpp>
#include <faasd/http/message.hpp>
#include <faasd/http/router.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::http {

/// Close codes used by the server (RFC 6455 section 7.4, IANA registry).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;           ///< the handler finished
inline constexpr std::uint16_t going_away = 1001;       ///< the server is stopping
inline constexpr std::uint16_t policy_violation = 1008; ///< for handlers (e.g. the token expired)
inline constexpr std::uint16_t too_big = 1009;          ///< a received message exceeded max_message
inline constexpr std::uint16_t internal_error = 1011;   ///< the handler threw
inline constexpr std::uint16_t overloaded = 1013;       ///< "Try Again Later": the send queue overflowed
}  // namespace close_code

/// Limits and timeouts of WebSocket sessions (server_config::websocket).
struct ws_options {
    std::size_t max_message = 64 * 1024;             ///< largest message read from the client, bytes
    std::size_t send_queue_messages = 256;           ///< queued outgoing messages before overflow
    std::size_t send_queue_bytes = 4 * 1024 * 1024;  ///< queued outgoing bytes before overflow
    std::chrono::milliseconds handshake_timeout{10'000};  ///< opening and closing handshakes
    /// No frame from the client for this long closes the session; a ping is
    /// sent after half of it (Beast's keep_alive_pings), which browsers answer.
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds write_timeout{10'000};  ///< one queued message must be written within this
};

/// True for a subprotocol value that is safe to echo: an RFC 7230 token of at
/// most 64 characters.
bool is_safe_subprotocol(std::string_view s) noexcept;

/// Splits a Sec-WebSocket-Protocol header value ("a, b ,c") into its items.
std::vector<std::string_view> split_subprotocols(std::string_view header);

class ws_session {
public:
    virtual ~ws_session() = default;

    /// The upgrade request (headers, query, remote address) and route params.
    virtual const request& upgrade_request() const noexcept = 0;
    virtual const route_params& params() const noexcept = 0;
    /// The subprotocols the client offered, in order (may include a token:
    /// never echo that one).
    virtual std::vector<std::string> offered_subprotocols() const = 0;

    /// Completes the handshake. `subprotocol`, if given, must be one of the
    /// offered values and is_safe_subprotocol(), else errc::invalid_argument
    /// (nothing is sent; the server then answers 403). Other failures are
    /// handshake errors (the client went away). Call at most once.
    virtual boost::asio::awaitable<boost::system::error_code> accept(std::optional<std::string> subprotocol = {}) = 0;
    /// Answers the upgrade request with an HTTP response instead (e.g. a 401
    /// problem). If the handler neither accepts nor rejects, the server answers 403.
    virtual boost::asio::awaitable<void> reject(response r) = 0;

    /// The next text or binary message; nullopt once the session is closed.
    virtual boost::asio::awaitable<std::optional<std::string>> read() = 0;
    /// Enqueues a text message. False if the session is not open, or if the
    /// queue bound would be exceeded: then the session closes with 1013.
    virtual bool send(std::string text) = 0;
    /// Sends the queued messages, then a close frame. Idempotent.
    virtual void close(std::uint16_t code = close_code::normal, std::string reason = {}) = 0;
    /// Accepted and not yet closing.
    virtual bool is_open() const noexcept = 0;

    /// Counters for tests and metrics.
    struct stats {
        std::size_t queued_messages = 0;
        std::size_t queued_bytes = 0;
        std::uint64_t sent_messages = 0;
        bool overflowed = false;
    };
    virtual stats get_stats() const = 0;
};

}  // namespace faasd::http
