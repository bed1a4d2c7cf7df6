#include "common.hpp"
#include "command.hpp"

#include <faasd/config/config.hpp>
#include <faasd/kafka/client.hpp>
#include <faasd/kafka/producer.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace faasd::roles {
namespace asio = boost::asio;

CLI::App* add_subcommand(CLI::App& app, const std::string& name, const std::string& help) {
    return app.add_subcommand(name, help);
}

void add_common_options(CLI::App& app, common_config& cfg) {
    app.add_option("--config", cfg.config_file,
                   "Config file (key = value lines; see config/faasd.example.toml). "
                   "Precedence: flag > FAASD_* environment > file > default");
    app.add_option("--log-level", cfg.log_level, "trace|debug|info|warn|error|off")->capture_default_str();
    app.add_option("--log-format", cfg.log_format, "text (key=value) or json, one line per event")
        ->capture_default_str();
    app.add_option("--shutdown-grace", cfg.shutdown_grace,
                   "How long SIGINT/SIGTERM waits for in-flight work before forcing exit")
        ->capture_default_str();
}

void add_kafka_options(CLI::App& app, kafka_config& cfg) {
    app.add_option("--kafka-brokers", cfg.brokers, "Bootstrap brokers, host:port[,host:port...]")
        ->capture_default_str();
    app.add_option("--topic-prefix", cfg.topic_prefix, "Prefix of every topic name")->capture_default_str();
    app.add_option("--kafka-property", cfg.properties,
                   "Extra librdkafka property key=value (repeatable; e.g. security.protocol=SSL); "
                   "may not weaken the producers' acks=all or enable.idempotence=true");
    app.add_option("--topic-partitions", cfg.topic_partitions, "Partitions of topics created at start-up")
        ->capture_default_str();
    app.add_option("--topic-replication", cfg.topic_replication,
                   "Replication factor of topics created at start-up (capped at the number of brokers)")
        ->capture_default_str();
    app.add_option("--create-topics", cfg.create_topics, "Create missing topics at start-up (true|false)")
        ->capture_default_str();
}

void common_config::validate() const {
    if (!parse_log_level(log_level))
        throw config::config_error("--log-level: '" + log_level + "' is not one of trace|debug|info|warn|error|off");
    if (!parse_log_format(log_format))
        throw config::config_error("--log-format: '" + log_format + "' is not one of text|json");
    if (!config::parse_duration(shutdown_grace))
        throw config::config_error("--shutdown-grace: '" + shutdown_grace + "' is not a duration (e.g. 20s, 500ms)");
}

faasd::logger common_config::make_logger() const {
    return faasd::logger(*parse_log_level(log_level), *parse_log_format(log_format), stderr_sink());
}

std::chrono::milliseconds common_config::grace() const { return *config::parse_duration(shutdown_grace); }

void kafka_config::validate() const {
    if (brokers.empty()) throw config::config_error("--kafka-brokers: required (host:port[,host:port...])");
    if (!config::parse_broker_list(brokers))
        throw config::config_error("--kafka-brokers: '" + brokers + "' is not a list of host:port");
    for (const auto& p : properties) {
        auto eq = p.find('=');
        if (eq == std::string::npos || eq == 0)
            throw config::config_error("--kafka-property: '" + p + "' is not key=value");
    }
    // Every role's producer is durable (kafka::producer_options::durable): refuse
    // here, at start-up with exit status 2, what its constructor would refuse later.
    if (auto why = kafka::durability_violation(kafka::parse_properties(properties)); !why.empty())
        throw config::config_error("--kafka-property: " + why);
    if (topic_partitions < 1 || topic_partitions > 10000)
        throw config::config_error("--topic-partitions: must be between 1 and 10000");
    if (topic_replication < 1 || topic_replication > 100)
        throw config::config_error("--topic-replication: must be between 1 and 100");
}

int run_roles(const common_config& cfg, std::vector<std::pair<std::string, role_fn>> roles) {
    asio::io_context ioc(1);
    runtime::role_env env{cfg.make_logger(), std::make_shared<runtime::health>(),
                          std::make_shared<runtime::shutdown_signal>(ioc.get_executor()), cfg.grace()};

    struct role_state {
        std::string name;
        asio::cancellation_signal cancel;
        bool done = false;
    };
    std::vector<std::unique_ptr<role_state>> states;
    int exit_status = 0;
    std::size_t running = roles.size();

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    asio::steady_timer grace_timer(ioc);
    bool forced = false;

    auto force = [&] {
        if (forced) return;
        forced = true;
        env.log.warn("shutdown.forced", {{"reason", "grace period over or second signal"}});
        for (auto& s : states)
            if (!s->done) s->cancel.emit(asio::cancellation_type::terminal);
        // Give cancelled roles a moment to unwind, then stop the loop whatever happens.
        grace_timer.expires_after(std::chrono::seconds(2));
        grace_timer.async_wait([&](boost::system::error_code) { ioc.stop(); });
    };

    auto begin_shutdown = [&](std::string_view reason, int sig) {
        env.log.info("shutdown.requested", {{"reason", reason}, {"signal", sig}, {"grace_ms", env.shutdown_grace.count()}});
        env.shutdown->request();
        grace_timer.expires_after(env.shutdown_grace);
        grace_timer.async_wait([&](boost::system::error_code e) {
            if (!e) force();
        });
    };

    std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int sig) {
        if (ec) return;
        if (env.shutdown->requested()) {
            force();
            return;
        }
        begin_shutdown("signal", sig);
        signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);

    for (auto& [name, fn] : roles) {
        auto st = std::make_unique<role_state>();
        st->name = name;
        auto* raw = st.get();
        states.push_back(std::move(st));
        auto role_log = env.log.with({{"role", name}});
        runtime::role_env role_env = env;
        role_env.log = role_log;
        asio::co_spawn(
            ioc,
            [fn, role_env]() mutable -> asio::awaitable<void> { co_await fn(role_env); },
            asio::bind_cancellation_slot(raw->cancel.slot(), [&, raw, role_log](std::exception_ptr e) {
                raw->done = true;
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        role_log.error("role.failed", {{"error", ex.what()}});
                    }
                    exit_status = 1;
                    // One role failing takes the process down gracefully: the
                    // platform restarts it, rather than leaving it half-alive.
                    if (!env.shutdown->requested()) begin_shutdown("role failed", 0);
                } else {
                    role_log.info("role.stopped");
                }
                if (--running == 0) {
                    signals.cancel();
                    grace_timer.cancel();
                }
            }));
    }
    ioc.run();
    if (forced && exit_status == 0) exit_status = 1;
    return exit_status;
}

std::string take_secret_env(const char* name) {
    char* v = std::getenv(name);
    if (v == nullptr) return {};
    std::string value(v);
    // volatile: the compiler must not drop the stores to memory it sees as dead.
    for (volatile char* p = v; *p != '\0'; ++p) *p = '\0';
    ::unsetenv(name);
    return value;
}

}  // namespace faasd::roles
