// `faasd frontend`: the REST/WebSocket API in front of Kafka (docs/frontend.md).

#include "common/command.hpp"
#include "common/common.hpp"
#include "frontend/frontend.hpp"

#include <CLI/CLI.hpp>

#include <memory>

namespace faasd::roles {

void add_frontend_commands(CLI::App& app, command_list& out) {
    struct state {
        frontend_config fe;
        common_config common;
        kafka_config kafka;
    };
    auto st = std::make_shared<state>();
    auto* sub = app.add_subcommand(
        "frontend",
        "Serve the job API (REST + WebSocket) on --listen: verify OIDC bearer tokens, seal credentials "
        "(key ring from FAASD_CREDENTIALS_KEYS), publish jobs to Kafka (202 after acks=all), follow the "
        "state topic for status, results, cancellation and live updates");
    add_frontend_options(*sub, st->fe);
    add_common_options(*sub, st->common);
    add_kafka_options(*sub, st->kafka);
    out.push_back({sub,
                   [st] {
                       st->common.validate();
                       st->kafka.validate();
                       st->fe.validate();
                   },
                   [st] {
                       role_fn fn = [st](runtime::role_env& env) { return run_frontend(st->fe, env, st->kafka); };
                       return run_roles(st->common, {{"frontend", fn}});
                   }});
}

}  // namespace faasd::roles
