#pragma once
// The sandbox's run outcomes and git's preparation errors as job states,
// codes and failure kinds (docs/worker.md "Failure codes"). Part of the
// shell library faasd_worker: it needs the types of faasd::sandbox and
// faasd::git, which faasd_worker_core does not link.

#include <faasd/git/error.hpp>
#include <faasd/sandbox/limits.hpp>
#include <faasd/worker/outcome.hpp>

#include <optional>
#include <string>

namespace faasd::worker {

/// The sandbox's outcome as a job state and, unless it succeeded or was
/// cancelled, a failure of kind `function` with the outcome's stable code
/// (timeout -> timed_out "timeout", memory_limit -> failed "memory_limit", ...).
struct run_verdict {
    jobs::job_state state = jobs::job_state::succeeded;
    std::optional<failure> fail;
};
run_verdict classify_run(const sandbox::run_status& status);

/// Repository preparation: network_error and clone_failed are infrastructure
/// failures (retried); repo_not_found, ref_not_found, auth_failed,
/// scheme_not_allowed, invalid_url and host_key_rejected are permanent. The code is git's
/// (git::to_string). `cancelled` is not a failure: do not call this for it.
failure prepare_failure(git::git_errc code, std::string message);

}  // namespace faasd::worker
