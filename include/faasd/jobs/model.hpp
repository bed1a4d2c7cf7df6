#pragma once
// The job model: what a client submits, what travels on Kafka, and what the
// service reports back. Pure data; JSON conversions are in codec.hpp. The wire
// formats are documented in docs/job-spec.md and docs/architecture.md.

#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::jobs {

/// Wire-format version carried in every message as "v".
inline constexpr int wire_version = 1;

/// Milliseconds since the Unix epoch (event time, taken by the shell).
using unix_ms = std::int64_t;

enum class job_state {
    queued,     ///< accepted and on the jobs topic
    running,    ///< a worker started an attempt
    succeeded,  ///< the function exited 0
    failed,     ///< the function failed, or the job could not be run
    timed_out,  ///< the wall-clock limit ended the run
    cancelled,  ///< cancelled by its owner or an admin
};

enum class delivery_mode {
    at_most_once,   ///< offset committed before the run: never repeated, may be lost
    at_least_once,  ///< offset committed after the result is acknowledged: never lost, may repeat
    exactly_once,   ///< result and offset in one Kafka transaction
};

const char* to_string(job_state s) noexcept;
const char* to_string(delivery_mode d) noexcept;
std::optional<job_state> parse_job_state(std::string_view s) noexcept;
std::optional<delivery_mode> parse_delivery_mode(std::string_view s) noexcept;
/// succeeded, failed, timed_out and cancelled are terminal.
bool is_terminal(job_state s) noexcept;

/// Who submitted a job; always taken from the verified token, never from the body.
struct identity {
    std::string subject;               ///< the token's `sub`
    std::string username;              ///< `preferred_username`
    std::vector<std::string> roles;    ///< realm roles
    friend bool operator==(const identity&, const identity&) = default;
};

/// Where the function's code comes from: a ref (branch or tag) or a full commit.
struct repo_spec {
    std::string url;
    std::string ref;         ///< branch or tag; empty when commit is set
    std::string commit;      ///< 40 hex digits; empty when ref is set
    std::string credential;  ///< name of a credential used to clone (optional)
    friend bool operator==(const repo_spec&, const repo_spec&) = default;
};

/// A named input the worker downloads before the run.
struct source_spec {
    std::string url;
    std::map<std::string, std::string> headers;
    std::string credential;  ///< sent as "Authorization: Bearer <secret>" (optional)
    friend bool operator==(const source_spec&, const source_spec&) = default;
};

/// A named output the worker uploads after the run.
struct sink_spec {
    std::string url;
    std::string method = "PUT";  ///< PUT or POST
    std::map<std::string, std::string> headers;
    std::string credential;
    friend bool operator==(const sink_spec&, const sink_spec&) = default;
};

/// Credentials encrypted by the frontend (AES-256-GCM, AAD = job id).
struct sealed_credentials {
    std::string key_id;                 ///< which key sealed them (rotation)
    std::string nonce_b64;              ///< 12-byte IV, base64url
    std::string ciphertext_b64;         ///< ciphertext followed by the 16-byte tag, base64url
    std::vector<std::string> names;     ///< credential names, in clear (no values)
    bool empty() const noexcept { return ciphertext_b64.empty(); }
    friend bool operator==(const sealed_credentials&, const sealed_credentials&) = default;
};

/// A validated job description, credentials already sealed.
struct job_spec {
    repo_spec repo;
    std::vector<std::string> entry;  ///< command override; empty = repository convention
    boost::json::value data;         ///< inline input (null when absent)
    std::map<std::string, source_spec> sources;
    std::map<std::string, sink_spec> sinks;
    sealed_credentials credentials;
    int timeout_s = 60;
    delivery_mode delivery = delivery_mode::at_least_once;
    int retries = 2;                               ///< infrastructure retries after the first attempt
    bool retry_on_failure = false;                 ///< also retry the function's own non-zero exit
    std::map<std::string, std::string> env;        ///< allow-listed names only
    std::vector<std::string> tags;
};

/// What goes on a jobs topic (one message per attempt).
struct job_message {
    std::string id;
    identity owner;
    unix_ms submitted_at = 0;
    int attempt = 1;          ///< 1 for the first run, incremented on each retry
    unix_ms not_before = 0;   ///< retries: do not start before this time (0 = now)
    std::string idempotency_key;
    job_spec spec;
};

/// Elapsed times of one attempt, all in milliseconds.
struct timing {
    unix_ms submitted_at = 0;
    unix_ms started_at = 0;   ///< the worker took the job
    unix_ms run_started_at = 0;
    unix_ms finished_at = 0;
    std::int64_t queue_wait_ms = 0;  ///< started_at - submitted_at
    std::int64_t prepare_ms = 0;     ///< everything before the run: clone_ms + sources_ms
    std::int64_t run_ms = 0;         ///< the function itself
    std::int64_t upload_ms = 0;      ///< sinks
    std::int64_t total_ms = 0;       ///< finished_at - submitted_at
    bool cache_hit = false;          ///< the commit was already in the repository cache
    // The parts of prepare_ms (added later: last, so that aggregate initialisers keep their meaning).
    std::int64_t clone_ms = 0;       ///< credentials opened and the repository checked out (clone or cache hit)
    std::int64_t sources_ms = 0;     ///< the sources downloaded (0 without sources)
};

/// Why a job did not succeed: a stable code and a human sentence.
struct job_error {
    std::string code;     ///< e.g. "clone_failed", "ref_not_found", "exit_nonzero", "timeout", "oom"
    std::string message;
    bool empty() const noexcept { return code.empty(); }
};

/// An output file delivered (or not) to a sink.
struct output_file {
    std::string name;
    std::uint64_t size = 0;
    std::string sink;     ///< the sink it went to ("" if none matched)
    int http_status = 0;  ///< the sink's answer (0 if not uploaded)
};

/// The outcome of an attempt: on the results topic and inside terminal snapshots.
struct job_result {
    std::string id;
    std::string owner_subject;
    job_state state = job_state::succeeded;  ///< a terminal state
    int attempt = 1;
    std::string worker;
    std::optional<int> exit_code;
    boost::json::value output;  ///< the function's JSON result (null if none)
    std::string stdout_text;    ///< captured, capped
    std::string stderr_text;    ///< captured, capped
    bool stdout_truncated = false;
    bool stderr_truncated = false;
    /// The worker cut the result to its size budget (docs/worker.md "Result
    /// size"): logs shortened with a marker and, if that was not enough, the
    /// output dropped (null). Encoded as "result_capped", like the frontend's
    /// own cap.
    bool capped = false;
    std::vector<output_file> outputs;
    job_error error;
    timing times;
    std::vector<std::string> tags;
};

/// A job-state snapshot, keyed by job id on the compacted state topic. Every
/// replica of the frontend materialises these; a tombstone erases the job.
struct job_status {
    std::string id;
    identity owner;
    job_state state = job_state::queued;
    int attempt = 1;  ///< the attempt this snapshot describes
    unix_ms submitted_at = 0;
    unix_ms started_at = 0;
    unix_ms finished_at = 0;
    unix_ms updated_at = 0;
    std::string worker;
    job_error error;
    repo_spec repo;  ///< url and ref/commit (never the credential)
    delivery_mode delivery = delivery_mode::at_least_once;
    std::vector<std::string> tags;
    std::string idempotency_key;
    std::optional<job_result> result;  ///< set in terminal snapshots
    /// Deliveries of this attempt that reached running, this one included (a
    /// worker's running snapshot; kept in its hand-back snapshot). 0: not
    /// counted (frontend snapshots, older workers). docs/semantics.md.
    int deliveries = 0;
};

}  // namespace faasd::jobs
