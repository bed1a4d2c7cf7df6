#pragma once
// Validation of a submitted job description (docs/job-spec.md, the JSON
// Schema config/job.schema.json). Pure: JSON in, a job_spec (credentials still
// in clear, to be sealed by the caller) or a list of problems out.
//
// Identity-like and server-assigned fields in the body (owner, sub, username,
// roles, id, state, attempt, submitted_at, ...) are ignored: the caller's
// identity comes from the token. Any other unknown field is an error (typos
// should not silently change what runs).

#include <faasd/jobs/model.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::jobs {

/// Configurable limits of a job description. Defaults are the production ones.
struct job_limits {
    std::size_t max_sources = 16;        ///< entries in `sources`
    std::size_t max_sinks = 16;          ///< entries in `sinks`
    std::size_t max_credentials = 16;    ///< entries in `credentials`
    std::size_t max_headers = 32;        ///< headers per source or sink
    std::size_t max_env = 64;            ///< entries in `env`
    std::size_t max_tags = 16;           ///< entries in `tags`
    std::size_t max_entry_args = 64;     ///< elements of `entry`
    std::size_t max_name_length = 64;    ///< names of sources, sinks, credentials, env vars; tags
    std::size_t max_url_length = 2048;   ///< repo, source and sink URLs
    std::size_t max_string_length = 4096;  ///< any other string (header values, env values, entry args, refs)
    std::size_t max_secret_length = 8192;  ///< one credential value
    std::size_t max_data_bytes = 512 * 1024;  ///< `data` serialised
    int min_timeout_s = 1;
    int max_timeout_s = 3600;
    int default_timeout_s = 60;
    int max_retries = 10;
    int default_retries = 2;
    /// URL schemes allowed for `repo.url` ("ssh" also admits scp-like user@host:path).
    std::vector<std::string> repo_schemes{"https", "ssh"};
    /// URL schemes allowed for sources and sinks.
    std::vector<std::string> link_schemes{"https"};
    /// Environment variable names a job may set: exact names or prefixes ending in '*'.
    std::vector<std::string> env_allow{"FN_*", "LOG_LEVEL", "TZ", "LANG", "LC_ALL"};
};

/// One problem, located by an RFC 6901 JSON pointer ("/sources/in/url").
struct validation_issue {
    std::string pointer;
    std::string message;
    friend bool operator==(const validation_issue&, const validation_issue&) = default;
};

/// A valid description: the spec (credentials not yet sealed; spec.credentials.names
/// holds the names) and the credential values in clear, keyed by name.
struct validated_job {
    job_spec spec;
    boost::json::object credentials;
};

struct validation_result {
    std::optional<validated_job> job;
    std::vector<validation_issue> issues;  ///< empty when job is set
    bool ok() const noexcept { return job.has_value(); }
};

/// At most this many issues are reported for one body.
inline constexpr std::size_t max_reported_issues = 20;

/// Validates a parsed body against the schema and the limits.
validation_result validate_job(const boost::json::value& body, const job_limits& limits);

/// Parses then validates; malformed JSON is one issue at pointer "".
validation_result validate_job_text(std::string_view body, const job_limits& limits);

/// Checks a set of limits for consistency (min <= default <= max, non-zero
/// sizes, known schemes). Returns a message for the first problem.
std::optional<std::string> check_limits(const job_limits& limits);

// ---- Field checks, exposed for the CLI and the tests ----------------------

/// Lower-cased scheme of a URL ("https"), "ssh" for scp-like user@host:path, "" if none.
std::string url_scheme(std::string_view url);
/// A git ref name a branch or tag may have (git check-ref-format, simplified).
bool is_valid_ref(std::string_view ref) noexcept;
/// A full commit hash: 40 (SHA-1) or 64 (SHA-256) hex digits.
bool is_full_commit(std::string_view s) noexcept;
/// [A-Za-z0-9_.-]{1,max}
bool is_valid_name(std::string_view s, std::size_t max) noexcept;
/// [A-Za-z_][A-Za-z0-9_]* and allowed by the allow-list.
bool env_name_allowed(std::string_view name, const std::vector<std::string>& allow) noexcept;

}  // namespace faasd::jobs
