#include <faasd/frontend/problems.hpp>

#include <array>

namespace faasd::frontend {

namespace {
constexpr std::array all{problems::invalid_request,     problems::invalid_job,
                         problems::invalid_config,      problems::unauthorized,
                         problems::forbidden,           problems::not_found,
                         problems::no_report,           problems::method_not_allowed,
                         problems::not_finished,        problems::already_finished,
                         problems::idempotency_key_consumed, problems::payload_too_large,
                         problems::unsupported_media_type, problems::upgrade_required,
                         problems::rate_limited,        problems::too_many_jobs,
                         problems::internal,            problems::unavailable};
}  // namespace

std::span<const problem_type> all_problem_types() { return all; }

http::response make_problem(const problem_type& p, std::string_view detail, boost::json::object extra) {
    return http::response::problem(p.status, p.slug, p.title, detail, std::move(extra));
}

http::response invalid_job_problem(const std::vector<jobs::validation_issue>& issues, const problem_type& p) {
    boost::json::array errs;
    for (const auto& i : issues) errs.push_back(boost::json::object{{"pointer", i.pointer}, {"detail", i.message}});
    std::string detail = issues.empty() ? std::string() : (issues.front().pointer.empty() ? std::string("body") : issues.front().pointer) + ": " + issues.front().message;
    return make_problem(p, detail, boost::json::object{{"errors", std::move(errs)}});
}

http::response too_many(const problem_type& p, std::chrono::milliseconds retry_after, std::string_view detail) {
    auto secs = std::max<std::int64_t>(1, (retry_after.count() + 999) / 1000);
    auto r = make_problem(p, detail, boost::json::object{{"retry_after_s", secs}});
    r.headers.set("Retry-After", std::to_string(secs));
    return r;
}

http::response unauthorized_problem(std::string_view realm, bool token_given) {
    auto r = make_problem(problems::unauthorized);
    std::string h = "Bearer realm=\"" + std::string(realm) + "\"";
    if (token_given) h += ", error=\"invalid_token\"";
    r.headers.set("WWW-Authenticate", std::move(h));
    return r;
}

http::response problem_from_error(errc e) {
    switch (e) {
        case errc::invalid_argument: return make_problem(problems::invalid_request);
        case errc::not_found: return make_problem(problems::not_found);
        case errc::unauthorized: return make_problem(problems::unauthorized);
        case errc::forbidden: return make_problem(problems::forbidden);
        case errc::too_large: return make_problem(problems::payload_too_large);
        case errc::rate_limited: return too_many(problems::rate_limited, std::chrono::seconds(1));
        case errc::unavailable:
        case errc::timeout: {
            auto r = make_problem(problems::unavailable);
            r.headers.set("Retry-After", "1");
            return r;
        }
        default: return make_problem(problems::internal);
    }
}

}  // namespace faasd::frontend
