#include <faasd/worker/outcome.hpp>

namespace faasd::worker {

run_verdict classify_run(const sandbox::run_status& status) {
    run_verdict v;
    v.state = sandbox::to_job_state(status.outcome);
    if (v.state == jobs::job_state::succeeded || v.state == jobs::job_state::cancelled) return v;
    failure f;
    f.kind = failure_kind::function;
    f.code = sandbox::to_string(status.outcome);
    f.message = status.message.empty() ? f.code : status.message;
    f.state = v.state;
    v.fail = std::move(f);
    return v;
}

failure prepare_failure(git::git_errc code, std::string message) {
    failure f;
    f.code = git::to_string(code);
    f.message = std::move(message);
    switch (code) {
        case git::git_errc::network_error:
        case git::git_errc::clone_failed:
        case git::git_errc::cancelled:  // not a failure; infrastructure if it ever gets here
            f.kind = failure_kind::infrastructure;
            break;
        case git::git_errc::repo_not_found:
        case git::git_errc::ref_not_found:
        case git::git_errc::auth_failed:
        case git::git_errc::scheme_not_allowed:
        case git::git_errc::invalid_url:
            f.kind = failure_kind::permanent;
            break;
    }
    if (f.message.empty()) f.message = f.code;
    return f;
}

failure convention_failure(std::string code, std::string message) {
    failure f;
    f.kind = failure_kind::permanent;
    f.code = std::move(code);
    f.message = std::move(message);
    return f;
}

failure credentials_failure(errc e) {
    failure f;
    if (e == errc::not_found) {
        f.kind = failure_kind::infrastructure;
        f.code = "credentials_unavailable";
        f.message = "the credentials were sealed with a key this worker does not have";
    } else {
        f.kind = failure_kind::permanent;
        f.code = "credentials_invalid";
        f.message = "the credentials do not open for this job";
    }
    return f;
}

failure_kind transfer_failure_kind(std::string_view client_error, int http_status) noexcept {
    if (client_error == "bad_status") {
        if (http_status >= 500 || http_status == 408 || http_status == 429) return failure_kind::infrastructure;
        return failure_kind::permanent;
    }
    if (client_error == "timeout" || client_error == "connect_failed" || client_error == "resolve_failed" ||
        client_error == "protocol_error" || client_error == "file_error" || client_error == "unavailable")
        return failure_kind::infrastructure;
    return failure_kind::permanent;  // too_large, address_forbidden, tls_error, invalid_url, redirects, ...
}

failure worker_failure(std::string message) {
    failure f;
    f.kind = failure_kind::infrastructure;
    f.code = "worker_error";
    f.message = std::move(message);
    return f;
}

}  // namespace faasd::worker
