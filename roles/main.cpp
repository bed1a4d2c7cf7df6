// faasd: one executable, every role. main only composes: it registers the
// subcommands, parses the command line, the FAASD_* environment and the config
// file, validates, and runs the chosen command (STYLE.md section 1).

#include "common/command.hpp"

#include <faasd/config/config.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

extern char** environ;

namespace {

// The leaf subcommand the user chose (e.g. "dev token"), or nullptr.
const faasd::roles::command* selected(const faasd::roles::command_list& cmds) {
    for (const auto& c : cmds)
        if (c.app->parsed()) {
            bool leaf = true;
            for (const CLI::App* sub : c.app->get_subcommands()) (void)sub, leaf = false;
            if (leaf) return &c;
        }
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "faasd: a Function-as-a-Service whose functions are git repositories.\n"
        "Server roles: frontend, worker, observer (plus scaler and supervisor); `dev` runs them all\n"
        "in one process on an embedded broker. Client commands talk to a frontend over REST.\n"
        "Every option --some-name can also be set as FAASD_SOME_NAME or in a --config file;\n"
        "precedence: flag > environment > file > default.",
        "faasd"};
    app.set_version_flag("--version", std::string("faasd ") + FAASD_VERSION);
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show help for every subcommand");

    faasd::roles::command_list cmds;
    faasd::roles::add_frontend_commands(app, cmds);
    faasd::roles::add_worker_commands(app, cmds);
    faasd::roles::add_observer_commands(app, cmds);
    faasd::roles::add_dev_commands(app, cmds);
    faasd::roles::add_client_commands(app, cmds);
    faasd::config::bind_env(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "faasd: error: %s (see faasd --help)\n", e.what());
        return 2;
    }

    const auto* cmd = selected(cmds);
    if (cmd == nullptr) {
        std::fprintf(stderr, "faasd: error: choose a subcommand (see faasd --help)\n");
        return 2;
    }
    try {
        // The config file: --config on the subcommand, or FAASD_CONFIG (bound by bind_env).
        std::string file;
        if (auto* opt = cmd->app->get_option_no_throw("--config"); opt && opt->count() > 0)
            file = opt->as<std::string>();
        if (!file.empty()) {
            auto entries = faasd::config::read_file(file);
            faasd::config::apply_file(*cmd->app, entries, file, faasd::config::all_long_names(app));
        }
        if (cmd->validate) cmd->validate();
    } catch (const faasd::config::config_error& e) {
        std::fprintf(stderr, "faasd: configuration error: %s\n", e.what());
        return 2;
    } catch (const CLI::Error& e) {
        std::fprintf(stderr, "faasd: configuration error: %s\n", e.what());
        return 2;
    }
    for (const auto& name : faasd::config::unknown_env(app, environ))
        std::fprintf(stderr, "faasd: warning: environment variable %s matches no option and is ignored\n",
                     name.c_str());
    return cmd->run();
}
