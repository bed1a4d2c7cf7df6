#include <faasd/worker/retry.hpp>

#include <algorithm>
#include <cmath>

namespace faasd::worker {

const char* to_string(failure_kind k) noexcept {
    switch (k) {
        case failure_kind::infrastructure: return "infrastructure";
        case failure_kind::function: return "function";
        case failure_kind::permanent: return "permanent";
    }
    return "?";
}

const char* to_string(retry_verdict v) noexcept {
    switch (v) {
        case retry_verdict::retry: return "retry";
        case retry_verdict::exhausted: return "exhausted";
        case retry_verdict::not_retryable: return "not_retryable";
    }
    return "?";
}

std::string validate(const retry_policy& p) {
    if (p.max_retries < 0 || p.max_retries > 100) return "--max-retries must be between 0 and 100";
    if (p.initial_backoff.count() < 0) return "--retry-backoff must not be negative";
    if (p.max_backoff < p.initial_backoff) return "--retry-backoff-max must be at least --retry-backoff";
    return {};
}

int max_attempts(const retry_policy& p, const jobs::job_spec& spec) noexcept {
    return 1 + std::clamp(spec.retries, 0, std::max(p.max_retries, 0));
}

std::chrono::milliseconds backoff(const retry_policy& p, int attempt, double jitter01) noexcept {
    const double cap = static_cast<double>(p.max_backoff.count());
    double base = static_cast<double>(p.initial_backoff.count());
    for (int i = 1; i < attempt && base < cap; ++i) base *= 2;
    base = std::min(base, cap);
    const double j = std::clamp(jitter01, 0.0, 1.0);
    const double d = std::min(base * (0.75 + 0.5 * j), cap);
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(d)));
}

retry_decision decide_retry(const retry_policy& p, const jobs::job_message& job, failure_kind kind,
                            jobs::delivery_mode mode, bool run_started, jobs::unix_ms now, double jitter01) noexcept {
    retry_decision d;
    if (kind == failure_kind::permanent) return d;
    if (kind == failure_kind::function && !job.spec.retry_on_failure) return d;
    if (mode == jobs::delivery_mode::at_most_once && run_started) return d;
    if (job.attempt >= max_attempts(p, job.spec)) {
        d.verdict = retry_verdict::exhausted;
        return d;
    }
    d.verdict = retry_verdict::retry;
    d.next_attempt = job.attempt + 1;
    d.not_before = now + backoff(p, job.attempt, jitter01).count();
    return d;
}

}  // namespace faasd::worker
