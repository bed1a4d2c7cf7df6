#pragma once
// The frontend's request handling: one route table, pure handlers that map a
// parsed request (faasd::http::request) plus the ports to a response, and the
// per-replica state they share (rate limiter, in-flight idempotent
// submissions). The Beast server adapter only converts messages and calls
// frontend_app::handle (docs/frontend.md, docs/api.md).
//
// Thread safety: loop-thread only, like the job store.

#include <faasd/core/log.hpp>
#include <faasd/frontend/job_store.hpp>
#include <faasd/frontend/limits.hpp>
#include <faasd/frontend/ports.hpp>
#include <faasd/http/message.hpp>
#include <faasd/jobs/validate.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace faasd::frontend {

/// Limits and knobs of the API (roles/frontend maps the command line onto it).
struct frontend_settings {
    jobs::job_limits job;                            ///< job-description limits
    std::size_t max_body_bytes = 1024 * 1024;        ///< request bodies (413 beyond)
    std::size_t max_unfinished_per_user = 100;       ///< queued + running jobs per user (429 beyond)
    double submit_rate = 20;                         ///< submissions per second per user (0 = unlimited)
    double submit_burst = 50;                        ///< bucket size of the rate limit
    std::size_t default_list_limit = 20;             ///< GET /v1/jobs without ?limit
    std::size_t max_list_limit = 100;                ///< largest ?limit
    std::chrono::seconds max_wait{60};               ///< largest ?wait of GET /v1/jobs/{id}/result
    std::chrono::milliseconds idempotency_window{std::chrono::hours(24)};
    std::chrono::milliseconds finished_retention{std::chrono::hours(72)};  ///< finished jobs are erased this long after they finish
    bool bench_hello = false;                        ///< serve GET /v1/bench/hello (benchmark ceiling)
    std::string realm = "faasd";                     ///< WWW-Authenticate realm
};

/// Checks observer parameters for PUT /v1/observer/config: the issues (empty
/// when valid) and the normalised value to publish. Swappable so that the
/// stats module's observer_params can take over.
struct observer_params_check {
    std::vector<jobs::validation_issue> issues;
    boost::json::value normalised;
};
using observer_validator = std::function<observer_params_check(const boost::json::value&)>;
/// The built-in check: a JSON object of known keys with numbers in range.
observer_params_check default_observer_validator(const boost::json::value& v);

/// What the handlers reach the world through.
struct services {
    authenticator& auth;
    job_publisher& publisher;
    observer_port& observer;
    credential_sealer& sealer;
    const clock& clk;
    id_source& ids;
    job_store& store;
    /// Prometheus text for GET /metrics.
    std::function<std::string()> metrics_text = [] { return std::string(); };
    /// {"ready": bool, "components": {...}} for GET /readyz.
    std::function<boost::json::object()> readiness = [] { return boost::json::object{{"ready", true}}; };
};

/// Who may call a route.
enum class access {
    public_,   ///< no token
    user,      ///< a valid token with faas-user or faas-admin
    admin,     ///< a valid token with faas-admin
};

struct request_context;
using handler_fn = boost::asio::awaitable<http::response> (*)(request_context&);

/// One row of the route table.
struct route {
    std::string_view method;   ///< "GET", "POST", ...
    std::string_view pattern;  ///< "/v1/jobs/{id}" (OpenAPI path syntax)
    access who;
    handler_fn fn;
    std::string_view name;     ///< operationId and metrics label
    bool websocket = false;    ///< GET /v1/ws: upgraded by the server (fn is null; handle() does not match it)
};

/// The route table (also the source of truth the OpenAPI test checks).
std::span<const route> route_table();

class frontend_app;

/// Everything a handler sees.
struct request_context {
    const http::request& req;
    std::map<std::string, std::string, std::less<>> params;  ///< {id} etc.
    std::optional<caller> who;                               ///< set for access user/admin
    frontend_app& app;
};

/// handle()'s answer: the response and the route it matched (metrics label;
/// "unmatched" when none).
struct dispatch_result {
    http::response res;
    std::string_view route = "unmatched";
};

class frontend_app {
public:
    frontend_app(frontend_settings settings, services svc, faasd::logger log = faasd::logger::null(),
                 observer_validator check = default_observer_validator);
    frontend_app(const frontend_app&) = delete;
    frontend_app& operator=(const frontend_app&) = delete;

    /// Routes, authenticates, authorises and runs the handler, like the
    /// server does with the route table (tests and tools; the role registers
    /// each route with the HTTP server, which serves the WebSocket route
    /// itself). Never throws: an exception from a handler becomes a 500
    /// problem (and a log line).
    boost::asio::awaitable<dispatch_result> handle(const http::request& req);

    /// Runs one route of the table for a request another router already
    /// matched: authentication, authorisation, handler, exceptions to 500.
    boost::asio::awaitable<http::response> invoke(const route& r, const http::request& req,
                                                  std::map<std::string, std::string, std::less<>> params);

    /// Authenticates a bearer token from an Authorization header value, a
    /// WebSocket subprotocol or a first message: the caller, or a 401/403/503
    /// response to send instead.
    boost::asio::awaitable<std::variant<caller, http::response>> authenticate(std::optional<std::string_view> token,
                                                                               access needed);

    /// Runs a background task on the store's executor (e.g. an erasure after
    /// a response was written); an exception is logged. Tasks are counted
    /// until they end, so the role can wait for them before it closes Kafka.
    void spawn(boost::asio::awaitable<void> task);
    /// Background tasks running now.
    std::size_t background() const noexcept { return background_; }
    /// Waits until `done()` holds, checking it now and whenever a background
    /// task ends, or until `max` passed (false then).
    boost::asio::awaitable<bool> wait_background(std::function<bool()> done, std::chrono::milliseconds max);

    const frontend_settings& settings() const noexcept { return settings_; }
    services& svc() noexcept { return svc_; }
    const faasd::logger& log() const noexcept { return log_; }
    rate_limiter& submit_limiter() noexcept { return limiter_; }
    const observer_validator& observer_check() const noexcept { return observer_check_; }

    /// In-flight submissions by job id (idempotent retries on this replica wait
    /// for the first one instead of publishing twice).
    struct inflight;
    std::map<std::string, std::shared_ptr<inflight>, std::less<>>& inflight_submissions() noexcept { return inflight_; }
    /// Submissions accepted but not yet visible in the view, per user (for the unfinished-jobs limit).
    std::map<std::string, std::size_t, std::less<>>& pending_per_user() noexcept { return pending_; }

private:
    frontend_settings settings_;
    services svc_;
    faasd::logger log_;
    observer_validator observer_check_;
    rate_limiter limiter_;
    std::map<std::string, std::shared_ptr<inflight>, std::less<>> inflight_;
    std::map<std::string, std::size_t, std::less<>> pending_;
    std::size_t background_ = 0;
    boost::asio::steady_timer background_done_;  // never expires; cancelled when a task ends
};

// ---- Representations shared with the CLI and the WebSocket --------------------

/// The API form of a job (GET /v1/jobs/{id}, list items, WebSocket events).
boost::json::object job_json(const jobs::job_status& s);

/// The token of an Authorization header value "Bearer <token>" (scheme
/// case-insensitive, surrounding blanks trimmed); an empty token for another
/// scheme or a malformed value; nullopt when there is no header.
std::optional<std::string_view> bearer_token(std::optional<std::string_view> authorization);

/// Matches a path against a pattern with {params}; fills params on success.
bool match_path(std::string_view pattern, std::string_view path,
                std::map<std::string, std::string, std::less<>>& params);

}  // namespace faasd::frontend
