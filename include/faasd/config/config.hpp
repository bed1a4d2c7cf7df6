#pragma once
// Configuration plumbing shared by every subcommand (STYLE.md section 7).
//
// Every long option --some-name can be given three ways, with this precedence:
//
//   1. the command line        --some-name=value
//   2. the environment         FAASD_SOME_NAME=value
//   3. the config file         some-name = value   (or some_name = value)
//   4. the built-in default
//
// The config file (--config FILE or FAASD_CONFIG) is a small TOML subset:
// `key = value` lines, `#` comments, quoted or bare values, and optional
// `[frontend]`, `[worker]`, ... sections whose keys apply only to that
// subcommand. Keys outside a section apply to every subcommand that has the
// option; a key that no subcommand knows is an error.

#include <faasd/core/error.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
class Option;
}

namespace faasd::config {

/// A configuration problem: main prints what() on one line and exits with status 2.
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// "kafka-brokers" -> "FAASD_KAFKA_BROKERS".
std::string env_name_for(std::string_view long_name);

/// Gives every long option of app and of all its subcommands an environment
/// variable named by env_name_for, sets TakeLast for single-value options, and
/// shows the defaults of boolean options as true/false (CLI11 says 1/0).
void bind_env(CLI::App& app);

/// True for an option that takes one true|false value (CLI11 type BOOLEAN).
bool is_bool(const CLI::Option& o);

struct file_entry {
    std::string section;  ///< "" for top-level keys
    std::string key;      ///< normalised: underscores become dashes
    std::string value;
    int line = 0;
};

/// Reads a config file. Throws config_error naming the file (and line) when it
/// cannot be read or does not parse.
std::vector<file_entry> read_file(const std::filesystem::path& path);

/// Applies file entries to the chosen subcommand: only to options that got no
/// value from the command line or the environment. Throws config_error for a key
/// the subcommand does not have (keys outside sections may belong to other
/// subcommands; they are checked against known_keys).
void apply_file(CLI::App& subcommand, const std::vector<file_entry>& entries, const std::string& file,
                const std::vector<std::string>& known_keys);

/// Every long option name of app and its subcommands (to check top-level keys).
std::vector<std::string> all_long_names(const CLI::App& app);

/// Names of FAASD_* environment variables that no option of app uses and that
/// are not read directly (FAASD_CREDENTIALS_KEYS, the tooling's
/// FAASD_SERVICES_DIR and FAASD_DOWNLOADS_DIR, the test harness's FAASD_TEST_*).
/// A normal start warns about each; --check-config exits 2 (README.md, Configuration).
std::vector<std::string> unknown_env(const CLI::App& app, char** environ_ptr);

// ---- Value parsers (pure) ------------------------------------------------

/// "host:port[,host:port...]"; each host non-empty, each port 1..65535.
result<std::vector<std::string>> parse_broker_list(std::string_view s);

/// "250ms", "30s", "5m", "1h", or a bare number of seconds.
result<std::chrono::milliseconds> parse_duration(std::string_view s);

/// "512", "64KiB", "64MiB", "1GiB", "10MB" (SI), in bytes.
result<std::uint64_t> parse_size(std::string_view s);

/// "host:port" or ":port" (host defaults to 127.0.0.1); port may be 0 (any).
struct endpoint {
    std::string host;
    std::uint16_t port = 0;
};
result<endpoint> parse_endpoint(std::string_view s);

}  // namespace faasd::config
