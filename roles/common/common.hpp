#pragma once
// Options shared by the server roles and the harness that runs roles on one
// io_context with graceful, bounded shutdown.

#include <faasd/runtime/runtime.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace faasd::roles {

/// Logging, config file and shutdown options of every server subcommand.
struct common_config {
    std::string config_file;                       ///< --config
    std::string log_level = "info";                ///< --log-level
    std::string log_format = "text";               ///< --log-format
    std::string shutdown_grace = "20s";            ///< --shutdown-grace

    /// Throws config::config_error.
    void validate() const;
    faasd::logger make_logger() const;
    std::chrono::milliseconds grace() const;
};

/// Kafka connection and topic layout shared by every role.
struct kafka_config {
    std::string brokers = "127.0.0.1:9092";         ///< --kafka-brokers
    std::string topic_prefix = "faasd.";             ///< --topic-prefix
    std::vector<std::string> properties;             ///< --kafka-property key=value (librdkafka)
    int topic_partitions = 6;                        ///< --topic-partitions
    int topic_replication = 3;                       ///< --topic-replication
    bool create_topics = true;                       ///< --create-topics

    /// Throws config::config_error naming the bad value.
    void validate() const;
};

void add_common_options(CLI::App& app, common_config& cfg);
void add_kafka_options(CLI::App& app, kafka_config& cfg);

/// A role: a coroutine that runs until env.shutdown is requested and then
/// finishes or hands back its work.
using role_fn = std::function<boost::asio::awaitable<void>(runtime::role_env&)>;

/// Runs the roles on one io_context (one thread) until they all return, or
/// until SIGINT/SIGTERM: then requests shutdown, waits up to the grace period,
/// then cancels them (terminal) and exits. A second signal forces termination
/// at once. Returns the process exit status (0 clean, 1 if a role failed).
int run_roles(const common_config& cfg, std::vector<std::pair<std::string, role_fn>> roles);

/// Reads a secret from the environment and removes it from the process: the
/// value is overwritten in place (so that /proc/<pid>/environ, which shows
/// the environment the process started with, no longer holds it) and the
/// variable is unset. "" when it is not set. Not thread-safe (call it while
/// validating the configuration, before threads start).
std::string take_secret_env(const char* name);

}  // namespace faasd::roles
