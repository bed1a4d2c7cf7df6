#pragma once
// Tools the deployment tests run: the faasd binary under test, docker-compose
// (Debian package; `config` needs no engine) and cue (scripts/install-cue.sh),
// and loaders that turn the deployment files into deploy_model.hpp values.
// A missing tool fails the test with the command that installs it.

#include "unit/deploy/deploy_model.hpp"

#include "support/support.hpp"

#include <common/common.hpp>
#include <faasd/config/config.hpp>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace faasd::test::deploy {

namespace fs = std::filesystem;

inline std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + p.string());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline std::string find_in_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string p = path ? path : "/usr/bin:/bin";
    std::size_t i = 0;
    while (i <= p.size()) {
        auto j = p.find(':', i);
        if (j == std::string::npos) j = p.size();
        fs::path cand = fs::path(p.substr(i, j - i)) / name;
        if (!p.substr(i, j - i).empty() && ::access(cand.c_str(), X_OK) == 0) return cand.string();
        i = j + 1;
    }
    return {};
}

/// The cue version deploy/kumori/kmodule.cue pins ("v0.4.3").
inline std::string pinned_cue_version() {
    std::smatch m;
    auto text = read_text(source_dir() / "deploy/kumori/kmodule.cue");
    if (!std::regex_search(text, m, std::regex(R"re(cue:\s*"(v[^"]+)")re")))
        throw std::runtime_error("no cue version in deploy/kumori/kmodule.cue");
    return m[1];
}

/// FAASD_TEST_CUE, else the one scripts/install-cue.sh installs, else cue in PATH.
inline std::string cue_binary() {
    if (const char* e = std::getenv("FAASD_TEST_CUE"); e && *e) return e;
    const char* cache = std::getenv("FAASD_DOWNLOADS_DIR");
    const char* home = std::getenv("HOME");
    fs::path dir = cache && *cache ? fs::path(cache) : fs::path(home ? home : "/root") / ".cache/faasd";
    fs::path cached = dir / "cue" / pinned_cue_version() / "bin/cue";
    if (::access(cached.c_str(), X_OK) == 0) return cached.string();
    if (auto p = find_in_path("cue"); !p.empty()) return p;
    throw std::runtime_error("cue not found: run scripts/install-cue.sh (or set FAASD_TEST_CUE)");
}

inline std::string compose_binary() {
    if (auto p = find_in_path("docker-compose"); !p.empty()) return p;
    throw std::runtime_error("docker-compose not found: apt-get install docker-compose (`config` needs no engine)");
}

/// What the binary reads, from `faasd --dump-options`.
inline const binary_info& binary() {
    static const binary_info info = [] {
        auto r = run_process({faasd_binary(), "--dump-options"}, {}, {}, std::chrono::seconds(30));
        if (r.exit_code != 0) throw std::runtime_error("faasd --dump-options failed: " + r.err);
        return parse_dump(r.out);
    }();
    return info;
}

/// Runs argv with exactly `env` (nothing inherited from the test), like a container.
inline process_result run_clean(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                                std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    std::vector<std::string> full{"/usr/bin/env", "-i"};
    for (const auto& [k, v] : env) full.push_back(k + "=" + v);
    full.insert(full.end(), argv.begin(), argv.end());
    return run_process(full, {}, {}, timeout);
}

/// The compose variables of deploy/compose/.env.example with test secrets filled
/// in, plus `overrides`: the env file a test passes to docker-compose.
inline std::map<std::string, std::string> compose_variables(const std::map<std::string, std::string>& overrides = {}) {
    std::map<std::string, std::string> vars;
    std::istringstream in(read_text(source_dir() / "deploy/compose/.env.example"));
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        auto eq = line.find('=');
        if (eq == std::string::npos) throw std::runtime_error(".env.example: not NAME=value: " + line);
        vars[line.substr(0, eq)] = line.substr(eq + 1);
    }
    for (auto& [k, v] : vars)
        if (v.empty()) v = "test-" + unique_name(k);  // the secrets an operator must set
    vars["FAASD_CREDENTIALS_KEYS"] = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    for (const auto& [k, v] : overrides) vars[k] = v;
    return vars;
}

/// `docker-compose --env-file F -f FILE config`, converted to JSON by cue.
/// Throws with docker-compose's message if the file does not resolve.
inline boost::json::value compose_config(const std::string& file, const std::map<std::string, std::string>& vars) {
    temp_dir dir("faasd-compose");
    fs::path env_file = dir.path() / "test.env";
    {
        std::ofstream out(env_file);
        for (const auto& [k, v] : vars) out << k << '=' << v << '\n';
    }
    auto compose = compose_binary();
    auto r = run_clean({compose, "--env-file", env_file.string(), "-f", (source_dir() / file).string(), "config"},
                       {{"PATH", "/usr/bin:/bin"}, {"HOME", dir.path().string()}});
    if (r.exit_code != 0) throw std::runtime_error("docker-compose config " + file + " failed: " + r.err);
    auto y = run_process({cue_binary(), "export", "yaml:", "-", "--out", "json"}, {}, r.out);
    if (y.exit_code != 0) throw std::runtime_error("cue export (YAML to JSON) failed: " + y.err);
    return boost::json::parse(y.out);
}

/// Runs deploy/kumori/check.sh (on `module_dir`, default the repository's) with
/// output into `out_dir`; returns its result (exit code and output).
inline process_result kumori_check(const fs::path& out_dir, const fs::path& module_dir = {}) {
    fs::path dir = module_dir.empty() ? source_dir() / "deploy/kumori" : module_dir;
    return run_process({"/bin/bash", (dir / "check.sh").string(), out_dir.string()}, {"CUE=" + cue_binary()}, {},
                       std::chrono::seconds(300));
}

/// Validates an environment meant for a pending role against the shared options
/// (roles/common: add_common_options + add_kafka_options, the same functions the
/// roles will call): every FAASD_* variable must name one of them (or be read
/// directly), and the values must parse and pass the options' validate().
inline std::vector<std::string> shared_option_problems(const std::map<std::string, std::string>& env) {
    std::vector<std::string> out;
    CLI::App app;
    auto* sub = app.add_subcommand("pending");
    faasd::roles::common_config common;
    faasd::roles::kafka_config kafka;
    faasd::roles::add_common_options(*sub, common);
    faasd::roles::add_kafka_options(*sub, kafka);
    faasd::config::bind_env(app);
    std::vector<std::string> args{"faasd", "pending"};
    for (const auto& [name, value] : env) {
        if (!name.starts_with("FAASD_")) continue;
        const CLI::Option* opt = nullptr;
        for (const CLI::Option* o : sub->get_options())
            if (o->get_envname() == name) opt = o;
        if (opt == nullptr) {
            if (!read_directly(name)) out.push_back(name + " is none of the shared options (roles/common)");
            continue;
        }
        args.push_back("--" + opt->get_lnames().front() + "=" + value);
    }
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
        common.validate();
        kafka.validate();
    } catch (const std::exception& e) {
        out.push_back(std::string("invalid value: ") + e.what());
    }
    return out;
}

}  // namespace faasd::test::deploy
