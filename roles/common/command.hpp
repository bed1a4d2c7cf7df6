#pragma once
// How subcommands plug into roles/main.cpp: each role file registers one or
// more CLI11 subcommands and says how to validate and run them.

#include "common/common.hpp"

#include <faasd/config/config.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace faasd::roles {

struct command {
    CLI::App* app = nullptr;         ///< the leaf subcommand
    std::function<void()> validate;  ///< throws config::config_error (exit status 2)
    std::function<int()> run;        ///< the exit status
};

using command_list = std::vector<command>;

/// app.add_subcommand without CLI11 in this header.
CLI::App* add_subcommand(CLI::App& app, const std::string& name, const std::string& help);

/// The configuration of a server subcommand: its own options plus the shared ones.
template <class Config>
struct server_state {
    Config role;
    common_config common;
    kafka_config kafka;
};

/// Registers `faasd <name>` as a server subcommand: `add_options` adds the
/// role's own options, then the common and Kafka options follow. Validation
/// checks the common and Kafka options, then calls `validate` (which should at
/// least call role.validate()); running starts the coroutine `make_role`
/// returns under run_roles, as the one role `name`.
template <class Config, class AddOptions, class Validate, class MakeRole>
CLI::App* add_server_command(CLI::App& app, command_list& out, const std::string& name, const std::string& help,
                             AddOptions add_options, Validate validate, MakeRole make_role) {
    auto st = std::make_shared<server_state<Config>>();
    CLI::App* sub = add_subcommand(app, name, help);
    add_options(*sub, *st);
    add_common_options(*sub, st->common);
    add_kafka_options(*sub, st->kafka);
    out.push_back({sub,
                   [st, validate] {
                       st->common.validate();
                       st->kafka.validate();
                       validate(*st);
                   },
                   [st, name, make_role] {
                       role_fn fn = [st, make_role](runtime::role_env& env) { return make_role(*st, env); };
                       return run_roles(st->common, {{name, fn}});
                   }});
    return sub;
}

// One registration function per role directory (roles/<role>/command.cpp).
void add_frontend_commands(CLI::App& app, command_list& out);
void add_worker_commands(CLI::App& app, command_list& out);
void add_observer_commands(CLI::App& app, command_list& out);
void add_dev_commands(CLI::App& app, command_list& out);
void add_client_commands(CLI::App& app, command_list& out);

}  // namespace faasd::roles
