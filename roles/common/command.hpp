#pragma once
// How subcommands plug into roles/main.cpp: each role file registers one or
// more CLI11 subcommands and says how to validate and run them.

#include <faasd/config/config.hpp>

#include <functional>
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

// One registration function per role directory (roles/<role>/command.cpp).
void add_frontend_commands(CLI::App& app, command_list& out);
void add_worker_commands(CLI::App& app, command_list& out);
void add_observer_commands(CLI::App& app, command_list& out);
void add_dev_commands(CLI::App& app, command_list& out);
void add_client_commands(CLI::App& app, command_list& out);

}  // namespace faasd::roles
