#pragma once
// Why repository preparation failed (pure): stable codes that end a job as
// failed, the mapping from libgit2's (code, class, message) to them, and the
// retry backoff for transient network failures.

#include <boost/system/error_code.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace faasd::git {

/// Stable failure codes of repository preparation (job_error::code).
enum class git_errc {
    repo_not_found = 1,  ///< the repository does not exist (or is not visible without credentials)
    ref_not_found,       ///< the branch, tag or commit does not resolve
    auth_failed,         ///< the credentials were rejected (or none were given and some are needed)
    clone_failed,        ///< anything else: corrupt data, disk full, checkout failure, lock timeout
    scheme_not_allowed,  ///< the URL scheme is not in the allow-list
    network_error,       ///< transient: connection refused/reset, DNS, TLS handshake; retried with backoff
    cancelled,           ///< the job was cancelled while preparing
    invalid_url,         ///< the URL does not parse or carries a password
    host_key_rejected,   ///< an ssh:// server's host key is unknown, revoked or changed (--ssh-known-hosts)
};

/// "repo_not_found", "ref_not_found", ... (the job_error code).
const char* to_string(git_errc e) noexcept;
/// Only network_error: retrying the same request later may succeed.
bool is_retryable(git_errc e) noexcept;

const boost::system::error_category& git_category() noexcept;
inline boost::system::error_code make_error_code(git_errc e) noexcept { return {static_cast<int>(e), git_category()}; }

/// A failed preparation: the code and a sentence for the job's error message
/// (never contains credentials).
struct prepare_error {
    git_errc code = git_errc::clone_failed;
    std::string message;
};

/// What libgit2 reported for a failed call, read on the thread that made it.
struct libgit2_failure {
    int code = -1;         ///< the call's return value (GIT_ENOTFOUND, GIT_EAUTH, ...)
    int klass = 0;         ///< git_error_last()->klass (GIT_ERROR_NET, ...)
    std::string message;   ///< git_error_last()->message
};

/// Which step failed, because the same libgit2 code means different things.
enum class git_stage {
    fetch,    ///< connecting to the remote and downloading (clone or fetch)
    resolve,  ///< looking up the ref or commit in the mirror
    checkout, ///< writing the tree into the job directory
    local,    ///< opening or creating the mirror, locks, file system
};

/// Maps a libgit2 failure to a stable code. `cancelled` (our flag was set) wins.
git_errc classify(const libgit2_failure& f, git_stage stage, bool cancelled) noexcept;

/// Retry policy for network_error.
struct retry_policy {
    int attempts = 3;  ///< total attempts (1 = no retry)
    std::chrono::milliseconds initial_backoff{250};
    std::chrono::milliseconds max_backoff{std::chrono::seconds(5)};
};

/// Delay before attempt `next_attempt` (2, 3, ...): initial * 2^(next-2), capped;
/// std::nullopt when no attempt is left. `jitter` in [0,1) adds up to 25 %.
std::optional<std::chrono::milliseconds> backoff_delay(const retry_policy& p, int next_attempt,
                                                       double jitter = 0.0) noexcept;

}  // namespace faasd::git

template <>
struct boost::system::is_error_code_enum<faasd::git::git_errc> : std::true_type {};
