// `faasd observer`, `faasd scaler`, `faasd supervisor` (docs/observer.md).

#include "common/command.hpp"
#include "common/common.hpp"
#include "observer/observer.hpp"

#include <faasd/config/config.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

namespace faasd::roles {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

// `faasd observer`, alone or driving local worker processes (--supervise).
asio::awaitable<void> observe(server_state<observer_config>& s, runtime::role_env& env) {
    if (!s.role.supervise) {
        co_await run_observer(s.role, s.kafka, env);
        co_return;
    }
    supervisor_config sc;
    sc.worker_args = s.role.worker_args;
    sc.inherited_args = kafka_args(s.kafka);
    sc.stop_timeout = s.role.stop_timeout;
    sc.max_workers = 10000;
    auto sup_log = env.log.with({{"component", "supervisor"}});
    sc = apply_stop_rule(std::move(sc), env.shutdown_grace, sup_log);
    auto ex = co_await asio::this_coro::executor;
    worker_supervisor sup(ex, sc, sup_log);
    auto control = [&]() -> asio::awaitable<void> {
        co_await run_observer(s.role, s.kafka, env, [&](int t) { sup.set_target(t); });
        sup.stop();
    };
    co_await (control() && sup.run());
}

}  // namespace

void add_observer_commands(CLI::App& app, command_list& out) {
    add_server_command<observer_config>(
        app, out, "observer",
        "Measure the job flow (arrivals, waits, service times, queue, workers), predict it with an M/M/c "
        "model and decide how many workers to run; publishes a report every tick on the observer topic. "
        "Live parameters come from the observer-config topic. --supervise also runs the workers",
        [](CLI::App& sub, server_state<observer_config>& s) { add_observer_options(sub, s.role); },
        [](server_state<observer_config>& s) {
            s.role.validate();
            if (s.role.supervise) {
                supervisor_config sc;
                sc.worker_args = s.role.worker_args;
                sc.stop_timeout = s.role.stop_timeout;
                sc.validate();
            }
        },
        observe);

    add_server_command<scaler_config>(
        app, out, "scaler",
        "Follow the observer's reports and run a command whenever the target worker count changes, "
        "e.g. --exec 'docker compose -f deploy/compose/faas.yml up -d --scale worker={workers}'",
        [](CLI::App& sub, server_state<scaler_config>& s) {
            sub.add_option("--exec", s.role.exec,
                           "Command run by /bin/sh -c; {workers} is replaced by the target (required)");
            sub.add_option("--exec-timeout", s.role.timeout, "Kill the command (its process group) after this")
                ->capture_default_str();
            sub.add_option("--retry", s.role.retry, "Retry a failed command after this")->capture_default_str();
            sub.add_option("--min-workers", s.role.min_workers, "Never ask for fewer workers")->capture_default_str();
            sub.add_option("--max-workers", s.role.max_workers, "Never ask for more workers")->capture_default_str();
        },
        [](server_state<scaler_config>& s) { s.role.validate(); },
        [](server_state<scaler_config>& s, runtime::role_env& env) { return run_scaler(s.role, s.kafka, env); });

    add_server_command<supervisor_config>(
        app, out, "supervisor",
        "Follow the observer's reports and keep that many `faasd worker` child processes running "
        "(this binary); surplus workers get SIGTERM and drain",
        [](CLI::App& sub, server_state<supervisor_config>& s) {
            sub.add_option("--worker-arg", s.role.worker_args,
                           "An argument for each `faasd worker` child (repeatable); children also inherit FAASD_*");
            sub.add_option("--min-workers", s.role.min_workers, "Never run fewer workers")->capture_default_str();
            sub.add_option("--max-workers", s.role.max_workers, "Never run more workers")->capture_default_str();
            sub.add_option("--stop-timeout", s.role.stop_timeout,
                           "SIGKILL a worker this long after SIGTERM (default and minimum: the workers' "
                           "--shutdown-grace + 2s; the workers get the supervisor's --shutdown-grace - 2s unless "
                           "a --worker-arg sets it)");
            sub.add_option("--restart-delay", s.role.restart_delay, "Wait this long before replacing a crashed worker")
                ->capture_default_str();
        },
        [](server_state<supervisor_config>& s) { s.role.validate(); },
        [](server_state<supervisor_config>& s, runtime::role_env& env) {
            return run_supervisor(s.role, s.kafka, env);
        });
}

}  // namespace faasd::roles
