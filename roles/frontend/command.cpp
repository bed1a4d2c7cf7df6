// `faasd frontend`: the REST/WebSocket API in front of Kafka (docs/frontend.md).

#include "common/command.hpp"
#include "common/common.hpp"
#include "frontend/frontend.hpp"

#include <CLI/CLI.hpp>

#include <memory>

namespace faasd::roles {

void add_frontend_commands(CLI::App& app, command_list& out) {
    add_server_command<frontend_config>(
        app, out, "frontend",
        "Serve the job API (REST + WebSocket) on --listen: verify OIDC bearer tokens, seal credentials "
        "(key ring from FAASD_CREDENTIALS_KEYS), publish jobs to Kafka (202 after acks=all), follow the "
        "state topic for status, results, cancellation and live updates",
        [](CLI::App& sub, server_state<frontend_config>& st) { add_frontend_options(sub, st.role); },
        [](server_state<frontend_config>& st) { st.role.validate(); },
        [](server_state<frontend_config>& st, runtime::role_env& env) { return run_frontend(st.role, env, st.kafka); });
}

}  // namespace faasd::roles
