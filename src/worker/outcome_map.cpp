#include <faasd/worker/outcome_map.hpp>

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
        case git::git_errc::host_key_rejected:
            f.kind = failure_kind::permanent;
            break;
    }
    if (f.message.empty()) f.message = f.code;
    return f;
}

}  // namespace faasd::worker
