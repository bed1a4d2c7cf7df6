#pragma once
// Retries of failed attempts (pure; docs/semantics.md "Retries").
//
// A failed attempt is retried by publishing the job message again with
// attempt + 1 and not_before = now + backoff. Whether it may be retried
// depends on where the failure comes from:
//
//   infrastructure  clone or fetch, network, sources, sinks, the sandbox not
//                   starting, the worker stopping: retried while attempts remain
//   function        the function failed (non-zero exit, signal, a limit):
//                   retried only when the job sets retry_on_failure
//   permanent       the job cannot succeed as written (missing repository, bad
//                   ref, invalid manifest, forbidden source): never retried
//
// At-most-once never repeats a run: once the function has started, nothing is
// retried. A retryable failure after the last attempt is "exhausted": the job
// ends failed and its message goes to the dead-letter topic.

#include <faasd/jobs/model.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace faasd::worker {

/// Where a failure comes from.
enum class failure_kind {
    infrastructure,  ///< retried while attempts remain
    function,        ///< the function's own failure: retried only with retry_on_failure
    permanent,       ///< never retried
};

const char* to_string(failure_kind k) noexcept;

/// A failed step of an attempt.
struct failure {
    failure_kind kind = failure_kind::infrastructure;
    std::string code;     ///< job_error::code: "clone_failed", "exit_nonzero", "timeout", ...
    std::string message;  ///< one sentence, never a secret
    jobs::job_state state = jobs::job_state::failed;  ///< the attempt's state (timed_out for a timeout)
};

/// The worker's retry settings (--max-retries, --retry-backoff, --retry-backoff-max).
struct retry_policy {
    int max_retries = 3;                              ///< upper bound on a job's `retries`
    std::chrono::milliseconds initial_backoff{1000};  ///< delay before attempt 2
    std::chrono::milliseconds max_backoff{60000};     ///< cap of the delay
};

/// "" when usable, else the problem.
std::string validate(const retry_policy& p);

/// Attempts a job may make: 1 + min(job retries, max_retries) (job retries below 0 count as 0).
int max_attempts(const retry_policy& p, const jobs::job_spec& spec) noexcept;

/// The delay after failed attempt `attempt` (1, 2, ...): initial * 2^(attempt-1),
/// capped at max_backoff, then scaled by a jitter factor in [0.75, 1.25)
/// (jitter01 in [0, 1), drawn by the caller) and capped again.
std::chrono::milliseconds backoff(const retry_policy& p, int attempt, double jitter01) noexcept;

enum class retry_verdict {
    retry,          ///< publish attempt + 1 with not_before
    exhausted,      ///< retryable, but this was the last attempt: fail and dead-letter
    not_retryable,  ///< fail now (permanent, a function failure without retry_on_failure, or at-most-once after the run started)
};

const char* to_string(retry_verdict v) noexcept;

struct retry_decision {
    retry_verdict verdict = retry_verdict::not_retryable;
    int next_attempt = 0;          ///< retry: attempt + 1
    jobs::unix_ms not_before = 0;  ///< retry: now + backoff
};

/// Decides what happens after a failed attempt.
retry_decision decide_retry(const retry_policy& p, const jobs::job_message& job, failure_kind kind,
                            jobs::delivery_mode mode, bool run_started, jobs::unix_ms now, double jitter01) noexcept;

}  // namespace faasd::worker
