#pragma once
// GET /v1/ws: live job state changes over a WebSocket (protocol in
// docs/frontend.md). The server adapter upgrades the connection and hands
// run_ws_session a ws_connection; everything else is here:
//
//   * authentication: at the upgrade (Authorization header or the
//     faasd.bearer.<token> subprotocol), or with a first message
//     {"type":"auth","token":...} within auth_timeout; a later auth message
//     extends the session (same subject only);
//   * subscriptions to own job ids or to all own jobs (admins may subscribe to
//     any id); every change is sent as {"type":"job","job":<Job>};
//   * the session ends with close code 4002 when the token expires, 1013 when
//     the client is too slow (1013: its bounded queue is full), 4001 on bad tokens.
//
// Loop-thread only.

#include <faasd/frontend/app.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::frontend {

/// Close codes (RFC 6455 private range 4000-4999 for ours).
namespace ws_close {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;       ///< the frontend shuts down
inline constexpr std::uint16_t bad_message = 4000;      ///< too many malformed messages
inline constexpr std::uint16_t unauthorized = 4001;     ///< no valid token (missing, invalid, or auth timeout)
inline constexpr std::uint16_t token_expired = 4002;    ///< the token expired; reconnect with a fresh one
inline constexpr std::uint16_t forbidden = 4003;        ///< the token lacks faas-user, or re-auth changed the user
inline constexpr std::uint16_t unavailable = 4004;      ///< keys could not be loaded; retry later
inline constexpr std::uint16_t slow_consumer = 1013;    ///< "Try Again Later": the outgoing queue overflowed
}  // namespace ws_close

/// The subprotocol the server selects, and the prefix of the token-carrying one.
inline constexpr std::string_view ws_subprotocol = "faasd.v1";
inline constexpr std::string_view ws_token_prefix = "faasd.bearer.";

/// The I/O of one upgraded connection (implemented by the server adapter).
class ws_connection {
public:
    virtual ~ws_connection() = default;
    /// The next text message; nullopt once the peer closed or the connection failed.
    virtual boost::asio::awaitable<std::optional<std::string>> read() = 0;
    /// Queues a message for the connection's one writer; false when the
    /// bounded queue is full (the caller then closes with slow_consumer).
    virtual bool send(std::string text) = 0;
    /// Sends what is queued, then a close frame, and ends the connection.
    /// Later send() calls are ignored.
    virtual void close(std::uint16_t code, std::string reason) = 0;
};

struct ws_settings {
    std::chrono::milliseconds auth_timeout{10000};  ///< for the first auth message
    std::size_t max_subscriptions = 1000;           ///< job ids per connection
    std::size_t max_bad_messages = 10;              ///< then close with bad_message
};

/// A parsed client message.
struct ws_client_message {
    enum class kind { auth, subscribe, unsubscribe, ping } type = kind::ping;
    std::string token;             ///< auth
    std::vector<std::string> ids;  ///< subscribe/unsubscribe
    bool all = false;              ///< subscribe/unsubscribe to all own jobs
};

/// Parses one client message; nullopt for anything malformed.
std::optional<ws_client_message> parse_ws_message(std::string_view text);

/// The token offered as "faasd.bearer.<token>" in a Sec-WebSocket-Protocol
/// header value (comma-separated list), if any.
std::optional<std::string> token_from_subprotocols(std::string_view header);
/// True when the header offers faasd.v1 (the server must then select it).
bool offers_ws_subprotocol(std::string_view header);

/// Routes job changes to subscribed sessions. One per frontend; registers
/// itself as a job_store listener for its lifetime.
class ws_hub {
public:
    struct session {
        ws_connection* conn = nullptr;
        std::string subject;
        bool admin = false;
        bool all = false;
        std::set<std::string, std::less<>> ids;
        bool closing = false;
    };

    ws_hub(job_store& store, ws_settings settings = {});
    ~ws_hub();
    ws_hub(const ws_hub&) = delete;
    ws_hub& operator=(const ws_hub&) = delete;

    void attach(session& s);
    void detach(session& s);
    void set_all(session& s, bool all);
    void add_id(session& s, const std::string& id);
    void remove_id(session& s, const std::string& id);

    /// Closes every session (shutdown) with going_away.
    void close_all(std::string reason);

    std::size_t sessions() const noexcept { return sessions_.size(); }
    std::uint64_t events_sent() const noexcept { return sent_; }
    std::uint64_t slow_closes() const noexcept { return slow_closes_; }
    const ws_settings& settings() const noexcept { return settings_; }
    job_store& store() noexcept { return store_; }

    /// Sends text to s, or closes s with slow_consumer when its queue is full.
    void deliver(session& s, std::string text);

private:
    void on_change(const job_change& c);

    job_store& store_;
    ws_settings settings_;
    std::uint64_t listener_ = 0;
    std::set<session*> sessions_;
    std::multimap<std::string, session*, std::less<>> all_by_subject_;
    std::multimap<std::string, session*, std::less<>> by_id_;
    std::uint64_t sent_ = 0;
    std::uint64_t slow_closes_ = 0;
};

/// Runs one WebSocket session to its end. `token` is what the upgrade request
/// carried (Authorization header or subprotocol), if anything.
boost::asio::awaitable<void> run_ws_session(ws_connection& conn, std::optional<std::string> token, frontend_app& app,
                                            ws_hub& hub);

}  // namespace faasd::frontend
