#pragma once
// The CLI client (`faasd login|submit|status|result|list|cancel|watch`):
// the pure parts (token cache format, request bodies, human output) and the
// commands that talk to a frontend over REST and WebSocket (client.cpp).

#include <faasd/core/error.hpp>
#include <faasd/jobs/model.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::client {

/// Options every client command shares.
struct client_options {
    std::string server = "http://127.0.0.1:8080";  ///< --server
    std::string token;                             ///< --token (else FAASD_TOKEN, else the login cache)
    bool json = false;                             ///< --json: print the API's JSON
    std::string timeout = "30s";                   ///< --request-timeout: one HTTP request
};

// ---- Token cache ----------------------------------------------------------------

/// What `faasd login` stores (token.json, mode 0600).
struct stored_token {
    std::string access_token;
    std::string refresh_token;
    std::int64_t expires_at = 0;          ///< Unix seconds (access token)
    std::int64_t refresh_expires_at = 0;  ///< Unix seconds (0: unknown / never)
    std::string issuer;
    std::string client_id;
    std::string token_endpoint;
};

/// $XDG_CONFIG_HOME/faasd/token.json, else $HOME/.config/faasd/token.json.
std::filesystem::path token_cache_path();
/// Reads the cache; not_found when absent, bad_message when unreadable.
result<stored_token> load_token(const std::filesystem::path& p);
/// Writes atomically (temporary file, fsync, rename) with mode 0600 in a 0700 directory.
result<void> save_token(const std::filesystem::path& p, const stored_token& t);

/// Parses an OAuth token endpoint answer (RFC 6749 section 5.1) received at `now`.
result<stored_token> parse_token_response(std::string_view body, std::int64_t now_s);
/// The `error` and `error_description` of an OAuth error answer ("" when absent).
std::pair<std::string, std::string> parse_oauth_error(std::string_view body);

/// RFC 8628 device authorisation answer.
struct device_authorization {
    std::string device_code;
    std::string user_code;
    std::string verification_uri;
    std::string verification_uri_complete;
    int expires_in = 600;
    int interval = 5;
};
result<device_authorization> parse_device_authorization(std::string_view body);

/// application/x-www-form-urlencoded encoding of pairs.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

// ---- Requests -------------------------------------------------------------------

/// `faasd submit` flags that build a description when no file is given.
struct submit_flags {
    std::string repo, ref, commit, repo_credential;
    std::vector<std::string> entry;
    std::string data;        ///< JSON text
    std::string data_file;   ///< file with JSON
    int timeout_s = 0;       ///< 0: server default
    std::string delivery;
    int retries = -1;        ///< -1: server default
    std::vector<std::string> env;          ///< NAME=VALUE
    std::vector<std::string> tags;
    std::vector<std::string> sources;      ///< NAME=URL
    std::vector<std::string> sinks;        ///< NAME=URL (PUT)
    std::vector<std::string> credential_files;  ///< NAME=PATH: the secret is read from the file
};

/// Builds the description from flags (files are read). invalid_argument with
/// `why` set for a malformed flag.
result<boost::json::object> body_from_flags(const submit_flags& f, std::string& why);

// ---- Output ---------------------------------------------------------------------

/// "850ms", "12.3s", "4m05s", "2h03m".
std::string format_duration(std::int64_t ms);
/// "2026-11-27 17:20:35" (UTC) for Unix ms; "-" for 0.
std::string format_time(std::int64_t unix_ms);
/// A few lines about a job (GET /v1/jobs/{id} JSON).
std::string describe_job(const boost::json::object& job);
/// A table of jobs (GET /v1/jobs items).
std::string jobs_table(const boost::json::array& items);
/// A result (GET /v1/jobs/{id}/result JSON): state, times, output, stdout/stderr.
std::string describe_result(const boost::json::object& result);
/// One line for a WebSocket job event.
std::string event_line(const boost::json::object& job);
/// The progress line while waiting: spinner frame, state, elapsed.
std::string progress_line(std::size_t tick, std::string_view state, std::int64_t elapsed_ms);

/// Exit status for a finished job: 0 succeeded, 1 otherwise.
int exit_status_for(std::string_view state);

/// `faasd watch ID...`: when to stop. A job is done when a terminal state was
/// seen, or when it is gone (an `erased` event, or 404 when the watch started):
/// an erased job never reports again, so waiting for it would never end.
class watch_tracker {
public:
    explicit watch_tracker(std::vector<std::string> ids);
    void on_state(std::string_view id, std::string_view state);  ///< a job event
    void on_gone(std::string_view id);                           ///< erased, or 404
    /// The exit status once every job is done: 0 all succeeded, 1 one failed,
    /// timed out or was cancelled, 3 one was gone before its outcome was seen.
    std::optional<int> outcome() const;

private:
    struct entry {
        std::string id;
        std::string state;  ///< last state seen ("" none)
        bool gone = false;
    };
    std::vector<entry> jobs_;
};

}  // namespace faasd::client
