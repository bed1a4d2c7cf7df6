// `faasd worker`: the git executor (docs/worker.md).

#include "common/command.hpp"
#include "common/common.hpp"
#include "worker/worker.hpp"

#include <CLI/CLI.hpp>

#include <memory>

namespace faasd::roles {

void add_worker_commands(CLI::App& app, command_list& out) {
    auto* sub = app.add_subcommand(
        "worker",
        "Run jobs: take them from the jobs topics (consumer group, N slots), check out the repository, run its "
        "function in a sandbox, publish state snapshots and results. Credentials are opened with the key ring in "
        "FAASD_CREDENTIALS_KEYS (environment only).");
    auto common = std::make_shared<common_config>();
    auto kafka = std::make_shared<kafka_config>();
    auto cfg = std::make_shared<worker_config>();
    add_common_options(*sub, *common);
    add_kafka_options(*sub, *kafka);
    add_worker_options(*sub, *cfg);
    command c;
    c.app = sub;
    c.validate = [common, kafka, cfg] {
        common->validate();
        kafka->validate();
        cfg->validate();
    };
    c.run = [common, kafka, cfg] {
        role_fn fn = [kafka, cfg](runtime::role_env& env) { return run_worker(*cfg, *kafka, env); };
        return run_roles(*common, {{"worker", fn}});
    };
    out.push_back(std::move(c));
}

}  // namespace faasd::roles
