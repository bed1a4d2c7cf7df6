// `faasd worker`: the git executor (docs/worker.md).

#include "common/command.hpp"
#include "common/common.hpp"
#include "worker/worker.hpp"

#include <CLI/CLI.hpp>

#include <memory>

namespace faasd::roles {

void add_worker_commands(CLI::App& app, command_list& out) {
    add_server_command<worker_config>(
        app, out, "worker",
        "Run jobs: take them from the jobs topics (consumer group, N slots), check out the repository, run its "
        "function in a sandbox, publish state snapshots and results. Credentials are opened with the key ring in "
        "FAASD_CREDENTIALS_KEYS (environment only).",
        [](CLI::App& sub, server_state<worker_config>& st) { add_worker_options(sub, st.role); },
        [](server_state<worker_config>& st) { st.role.validate(); },
        [](server_state<worker_config>& st, runtime::role_env& env) { return run_worker(st.role, st.kafka, env); });
}

}  // namespace faasd::roles
