#pragma once
// RFC 7807 problem types of the API. Each has a stable slug; the `type` URI is
// https://faasd.dev/problems/<slug> (docs/api.md lists them all).

#include <faasd/core/error.hpp>
#include <faasd/http/message.hpp>
#include <faasd/jobs/validate.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <span>
#include <string_view>
#include <vector>

namespace faasd::frontend {

struct problem_type {
    std::string_view slug;
    int status;
    std::string_view title;
};

namespace problems {
inline constexpr problem_type invalid_request{"invalid-request", 400, "The request is malformed"};
inline constexpr problem_type invalid_job{"invalid-job", 400, "The job description is invalid"};
inline constexpr problem_type invalid_config{"invalid-config", 400, "The observer parameters are invalid"};
inline constexpr problem_type unauthorized{"unauthorized", 401, "Authentication required"};
inline constexpr problem_type forbidden{"forbidden", 403, "Not allowed"};
inline constexpr problem_type not_found{"not-found", 404, "Not found"};
inline constexpr problem_type no_report{"no-report", 404, "The observer has not reported yet"};
inline constexpr problem_type method_not_allowed{"method-not-allowed", 405, "Method not allowed"};
inline constexpr problem_type not_finished{"not-finished", 409, "The job has not finished"};
inline constexpr problem_type already_finished{"already-finished", 409, "The job has already finished"};
inline constexpr problem_type idempotency_key_consumed{"idempotency-key-consumed", 409,
                                                       "The job of this idempotency key was already erased"};
inline constexpr problem_type payload_too_large{"payload-too-large", 413, "The request body is too large"};
inline constexpr problem_type unsupported_media_type{"unsupported-media-type", 415, "Send application/json"};
inline constexpr problem_type upgrade_required{"upgrade-required", 426, "Use a WebSocket upgrade"};
inline constexpr problem_type rate_limited{"rate-limited", 429, "Too many submissions"};
inline constexpr problem_type too_many_jobs{"too-many-unfinished-jobs", 429, "Too many unfinished jobs"};
inline constexpr problem_type internal{"internal", 500, "Internal error"};
inline constexpr problem_type unavailable{"unavailable", 503, "Service temporarily unavailable"};
}  // namespace problems

/// Every problem type (for docs and tests).
std::span<const problem_type> all_problem_types();

http::response make_problem(const problem_type& p, std::string_view detail = {}, boost::json::object extra = {});

/// 400 invalid-job with an "errors": [{"pointer", "detail"}] member.
http::response invalid_job_problem(const std::vector<jobs::validation_issue>& issues, const problem_type& p = problems::invalid_job);

/// 429 with Retry-After (seconds, rounded up, at least 1).
http::response too_many(const problem_type& p, std::chrono::milliseconds retry_after, std::string_view detail = {});

/// 401 with WWW-Authenticate (error="invalid_token" when a token was given).
http::response unauthorized_problem(std::string_view realm, bool token_given);

/// The one mapping of errc to a problem: 5xx bodies reveal nothing.
http::response problem_from_error(errc e);

}  // namespace faasd::frontend
