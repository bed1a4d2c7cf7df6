// faasd: one executable, every role. main only composes: it registers the
// subcommands, parses the command line, the FAASD_* environment and the config
// file, validates, and runs the chosen command (STYLE.md section 1).

#include "common/command.hpp"

#include <faasd/config/config.hpp>

#include <CLI/CLI.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <iostream>
#include <string_view>

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

// `faasd --dump-options` (hidden): every subcommand with its long options and
// FAASD_* variables as one JSON object, so that tests can check deployment
// files (compose, Kumori manifests) against what the binary really reads.
void add_commands(const CLI::App& app, const std::string& prefix, boost::json::array& out) {
    for (const CLI::App* sub : app.get_subcommands({})) {
        std::string path = prefix.empty() ? sub->get_name() : prefix + " " + sub->get_name();
        boost::json::array options;
        for (const CLI::Option* o : sub->get_options()) {
            const auto& names = o->get_lnames();
            if (names.empty() || names.front() == "help" || names.front() == "help-all" || names.front() == "version")
                continue;
            options.push_back({{"name", o->get_lnames().front()},
                               {"env", o->get_envname()},
                               {"default", o->get_default_str()},
                               {"takes_value", o->get_items_expected_max() > 0},
                               {"multi", o->get_items_expected_max() > 1},
                               {"bool", faasd::config::is_bool(*o)},
                               {"required", o->get_required()}});
        }
        out.push_back({{"path", path}, {"leaf", sub->get_subcommands({}).empty()}, {"options", std::move(options)}});
        add_commands(*sub, path, out);
    }
}

std::string dump_options(const CLI::App& app) {
    boost::json::array commands;
    add_commands(app, "", commands);
    return boost::json::serialize(boost::json::object{{"version", FAASD_VERSION}, {"commands", std::move(commands)}});
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
    // Added after bind_env: no FAASD_CHECK_CONFIG variable can turn a role into a no-op.
    bool check_only = false;
    app.add_flag("--check-config", check_only,
                 "Only validate the chosen subcommand's configuration (flags, FAASD_* environment, "
                 "config file) and exit: 0 if valid, 2 if not or if a FAASD_* variable matches no option");
    if (argc == 2 && std::string_view(argv[1]) == "--dump-options") {
        std::cout << dump_options(app) << '\n';
        return 0;
    }

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
    const auto unknown = faasd::config::unknown_env(app, environ);
    for (const auto& name : unknown)
        std::fprintf(stderr, "faasd: warning: environment variable %s matches no option and is ignored\n",
                     name.c_str());
    if (check_only) {
        std::fprintf(stderr, "faasd: configuration of '%s' is %s\n", cmd->app->get_name().c_str(),
                     unknown.empty() ? "valid" : "valid, but has unknown FAASD_* variables");
        return unknown.empty() ? 0 : 2;
    }
    return cmd->run();
}
