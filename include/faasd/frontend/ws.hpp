#pragma once
// GET /v1/ws: live job state changes over a WebSocket (protocol in
// docs/frontend.md). The server adapter upgrades the connection and hands
// run_ws_session a ws_connection; everything else is here:
//
//   * authentication: at the upgrade, before the handshake
//     (authenticate_upgrade: the Authorization header or the
//     faasd.bearer.<token> subprotocol; a bad token is answered with a plain
//     401/403/503 and no upgrade), or, when the upgrade carries no token, with
//     a first message {"type":"auth","token":...} within auth_timeout (4001
//     otherwise); a later auth message extends the session (same subject only);
//   * subscriptions to own job ids or to all own jobs (admins may subscribe to
//     any id); every change is sent as {"type":"job","job":<Job>};
//   * the session ends with close code 4002 when the token expires, 1013 when
//     the client is too slow (1013: its bounded queue is full), 4001 on a bad
//     first-message token;
//   * the hub fans out only live changes: while the replica is still reading
//     the state topic (set_live(false)) nothing is sent, and when it has caught
//     up each session gets the current state of the jobs it follows by id.
//
// Loop-thread only.

#include <faasd/frontend/app.hpp>

#include <faasd/http/message.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
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
    std::chrono::milliseconds auth_timeout{5000};   ///< for the first auth message (tokenless upgrades)
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

/// What authenticating an upgrade request found: no token at all (the client
/// may authenticate with its first message), the caller, or the HTTP answer to
/// send instead of the upgrade (401 with WWW-Authenticate, 403, or 503).
using upgrade_auth = std::variant<std::monostate, caller, http::response>;

/// Authenticates a WebSocket upgrade before it is accepted. `authorization` is
/// the Authorization header, if any (scheme `Bearer`, case-insensitive; another
/// scheme is a 401); `offered_subprotocols` the Sec-WebSocket-Protocol value
/// (a faasd.bearer.<token> item is used when there is no Authorization header).
boost::asio::awaitable<upgrade_auth> authenticate_upgrade(frontend_app& app, std::optional<std::string> authorization,
                                                          std::string offered_subprotocols);

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

    /// Live (the default): every change is fanned out at once. Not live (the
    /// replica is replaying the state topic): changes are not sent. Going live
    /// sends each session the current state of the jobs it follows by id.
    void set_live(bool live);
    bool live() const noexcept { return live_; }

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
    bool live_ = true;
};

/// Runs one accepted WebSocket session to its end. `who` is the caller
/// authenticated at the upgrade (authenticate_upgrade); without one, the first
/// message must be an auth message, within ws_settings::auth_timeout.
boost::asio::awaitable<void> run_ws_session(ws_connection& conn, std::optional<caller> who, frontend_app& app,
                                            ws_hub& hub);

}  // namespace faasd::frontend
