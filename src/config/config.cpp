#include <faasd/config/config.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

namespace faasd::config {
namespace {

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
}

std::string normalise_key(std::string_view k) {
    std::string out(k);
    std::replace(out.begin(), out.end(), '_', '-');
    return out;
}

std::string long_name(const CLI::Option& o) {
    const auto& l = o.get_lnames();
    return l.empty() ? std::string() : l.front();
}

void collect_names(const CLI::App& app, std::set<std::string>& out) {
    for (const CLI::Option* o : app.get_options())
        if (auto n = long_name(*o); !n.empty()) out.insert(n);
    for (const CLI::App* sub : app.get_subcommands({})) collect_names(*sub, out);
}

void collect_env(const CLI::App& app, std::set<std::string>& out) {
    for (const CLI::Option* o : app.get_options())
        if (!o->get_envname().empty()) out.insert(o->get_envname());
    for (const CLI::App* sub : app.get_subcommands({})) collect_env(*sub, out);
}

// FAASD_* variables that are not options but are read directly: by faasd (the
// key ring, a secret) or by the project's own tooling, which developers export in
// the shell they run faasd from (test/services/services.sh, scripts/). Exact
// names only: a prefix would hide typos of real options (FAASD_CACHE_MAXSIZE).
// FAASD_TEST_* (the test harness's service addresses) is the one prefix.
constexpr std::string_view read_directly[] = {
    "FAASD_CREDENTIALS_KEYS",  // roles/frontend, roles/worker: the credentials key ring
    "FAASD_SERVICES_DIR",      // test/services/services.sh state (exported by services.env)
    "FAASD_DOWNLOADS_DIR",     // download cache of services.sh, install-cue.sh, image-check.sh, kumori/check.sh
};

bool parse_u64(std::string_view s, std::uint64_t& v) {
    if (s.empty()) return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

bool is_bool(const CLI::Option& o) { return o.get_items_expected_max() == 1 && o.get_type_name() == "BOOLEAN"; }

std::string env_name_for(std::string_view n) {
    std::string out = "FAASD_";
    for (char c : n) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    return out;
}

void bind_env(CLI::App& app) {
    for (CLI::Option* o : app.get_options()) {
        auto n = long_name(*o);
        if (n.empty() || n == "help" || n == "help-all" || n == "version") continue;
        if (o->get_envname().empty()) o->envname(env_name_for(n));
        if (o->get_items_expected_max() == 1) o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        // CLI11 prints a bool's default as 1/0; help and the config example say true|false.
        if (is_bool(*o) && (o->get_default_str() == "1" || o->get_default_str() == "0"))
            o->default_str(o->get_default_str() == "1" ? "true" : "false");
    }
    for (CLI::App* sub : app.get_subcommands({})) bind_env(*sub);
}

std::vector<file_entry> read_file(const std::filesystem::path& path) {
    // An ifstream opens a directory and then reads nothing: refuse it explicitly.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw config_error("cannot read config file " + path.string() + ": it is a directory");
    errno = 0;
    std::ifstream in(path);
    if (!in)
        throw config_error("cannot read config file " + path.string() +
                           (errno != 0 ? ": " + std::string(std::strerror(errno)) : std::string()));
    std::vector<file_entry> out;
    std::string section, raw;
    int line_no = 0;
    while (std::getline(in, raw)) {
        ++line_no;
        std::string line = trim(raw);
        auto where = [&] { return "config file " + path.string() + " line " + std::to_string(line_no) + ": "; };
        if (line.empty() || line[0] == '#') continue;
        if (line.front() == '[') {
            if (line.back() != ']' || line.size() < 3) throw config_error(where() + "malformed section header");
            section = trim(std::string_view(line).substr(1, line.size() - 2));
            continue;
        }
        auto eq = line.find('=');
        if (eq == std::string::npos) throw config_error(where() + "expected key = value");
        std::string key = trim(std::string_view(line).substr(0, eq));
        std::string value = trim(std::string_view(line).substr(eq + 1));
        if (key.empty()) throw config_error(where() + "empty key");
        if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
            char q = value.front();
            auto close = value.find(q, 1);
            if (close == std::string::npos) throw config_error(where() + "unterminated string");
            auto rest = trim(std::string_view(value).substr(close + 1));
            if (!rest.empty() && rest[0] != '#') throw config_error(where() + "text after closing quote");
            value = value.substr(1, close - 1);
        } else if (auto hash = value.find(" #"); hash != std::string::npos) {
            value = trim(std::string_view(value).substr(0, hash));
        }
        out.push_back({section, normalise_key(key), value, line_no});
    }
    if (in.bad()) throw config_error("cannot read config file " + path.string() + ": read error");
    return out;
}

std::vector<std::string> all_long_names(const CLI::App& app) {
    std::set<std::string> names;
    collect_names(app, names);
    return {names.begin(), names.end()};
}

void apply_file(CLI::App& sub, const std::vector<file_entry>& entries, const std::string& file,
                const std::vector<std::string>& known_keys) {
    const std::string name = sub.get_name();
    for (const auto& e : entries) {
        auto where = "config file " + file + " line " + std::to_string(e.line) + ": ";
        if (!e.section.empty() && e.section != name) continue;
        CLI::Option* opt = nullptr;
        try {
            opt = sub.get_option("--" + e.key);
        } catch (const CLI::OptionNotFound&) {
        }
        if (opt == nullptr) {
            bool known_elsewhere = std::find(known_keys.begin(), known_keys.end(), e.key) != known_keys.end();
            if (!e.section.empty() || !known_elsewhere)
                throw config_error(where + "unknown option '" + e.key + "'" +
                                   (e.section.empty() ? std::string() : " in section [" + e.section + "]"));
            continue;  // a shared key meant for another subcommand
        }
        if (opt->count() > 0) continue;  // the command line or the environment won
        try {
            if (opt->get_items_expected_max() > 1) {
                // Lists: comma-separated in the file.
                std::string_view v = e.value;
                while (!v.empty()) {
                    auto comma = v.find(',');
                    opt->add_result(trim(v.substr(0, comma)));
                    if (comma == std::string_view::npos) break;
                    v.remove_prefix(comma + 1);
                }
            } else {
                opt->add_result(e.value);
            }
            opt->run_callback();
        } catch (const CLI::Error& err) {
            throw config_error(where + "bad value for '" + e.key + "': " + err.what());
        }
    }
}

std::vector<std::string> unknown_env(const CLI::App& app, char** env) {
    std::set<std::string> known;
    collect_env(app, known);
    known.insert("FAASD_CONFIG");
    std::vector<std::string> out;
    for (char** p = env; p && *p; ++p) {
        std::string_view kv(*p);
        if (!kv.starts_with("FAASD_")) continue;
        auto name = std::string(kv.substr(0, kv.find('=')));
        if (name.starts_with("FAASD_TEST_") || std::find(std::begin(read_directly), std::end(read_directly), name) !=
                                                    std::end(read_directly))
            continue;
        if (!known.count(name)) out.push_back(name);
    }
    return out;
}

result<std::vector<std::string>> parse_broker_list(std::string_view s) {
    std::vector<std::string> out;
    if (trim(s).empty()) return errc::invalid_argument;
    while (true) {
        auto comma = s.find(',');
        std::string item = trim(s.substr(0, comma));
        auto colon = item.rfind(':');
        if (item.empty() || colon == std::string::npos || colon == 0) return errc::invalid_argument;
        std::uint64_t port = 0;
        if (!parse_u64(std::string_view(item).substr(colon + 1), port) || port == 0 || port > 65535)
            return errc::invalid_argument;
        for (char c : item.substr(0, colon))
            if (std::isspace(static_cast<unsigned char>(c)) || c == '/') return errc::invalid_argument;
        out.push_back(item);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return out;
}

result<std::chrono::milliseconds> parse_duration(std::string_view s) {
    std::string t = trim(s);
    std::size_t i = 0;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    std::uint64_t n = 0;
    if (i == 0 || !parse_u64(std::string_view(t).substr(0, i), n)) return errc::invalid_argument;
    std::string unit = t.substr(i);
    std::uint64_t mult = 0;
    if (unit.empty() || unit == "s") mult = 1000;
    else if (unit == "ms") mult = 1;
    else if (unit == "m") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else return errc::invalid_argument;
    if (n > (std::uint64_t{1} << 40)) return errc::invalid_argument;
    return std::chrono::milliseconds(static_cast<std::int64_t>(n * mult));
}

result<std::uint64_t> parse_size(std::string_view s) {
    std::string t = trim(s);
    std::size_t i = 0;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    std::uint64_t n = 0;
    if (i == 0 || !parse_u64(std::string_view(t).substr(0, i), n)) return errc::invalid_argument;
    std::string unit = trim(std::string_view(t).substr(i));
    std::uint64_t mult = 0;
    if (unit.empty() || unit == "B") mult = 1;
    else if (unit == "KiB") mult = 1ull << 10;
    else if (unit == "MiB") mult = 1ull << 20;
    else if (unit == "GiB") mult = 1ull << 30;
    else if (unit == "kB" || unit == "KB") mult = 1000;
    else if (unit == "MB") mult = 1000 * 1000;
    else if (unit == "GB") mult = 1000 * 1000 * 1000;
    else return errc::invalid_argument;
    if (n > (std::uint64_t{1} << 50) / mult) return errc::invalid_argument;
    return n * mult;
}

result<endpoint> parse_endpoint(std::string_view s) {
    std::string t = trim(s);
    auto colon = t.rfind(':');
    if (colon == std::string::npos) return errc::invalid_argument;
    endpoint e;
    e.host = colon == 0 ? "127.0.0.1" : t.substr(0, colon);
    if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') e.host = e.host.substr(1, e.host.size() - 2);
    std::uint64_t port = 0;
    if (!parse_u64(std::string_view(t).substr(colon + 1), port) || port > 65535) return errc::invalid_argument;
    e.port = static_cast<std::uint16_t>(port);
    return e;
}

}  // namespace faasd::config
