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

void add_observer_commands(CLI::App& app, command_list& out) {
    // faasd observer
    {
        struct state {
            observer_config observer;
            common_config common;
            kafka_config kafka;
        };
        auto s = std::make_shared<state>();
        auto* sub = app.add_subcommand(
            "observer",
            "Measure the job flow (arrivals, waits, service times, queue, workers), predict it with an M/M/c "
            "model and decide how many workers to run; publishes a report every tick on the observer topic. "
            "Live parameters come from the observer-config topic. --supervise also runs the workers");
        add_observer_options(*sub, s->observer);
        add_common_options(*sub, s->common);
        add_kafka_options(*sub, s->kafka);
        out.push_back({sub,
                       [s] {
                           s->common.validate();
                           s->kafka.validate();
                           s->observer.validate();
                           if (s->observer.supervise) {
                               supervisor_config sc;
                               sc.worker_args = s->observer.worker_args;
                               sc.stop_timeout = s->observer.stop_timeout;
                               sc.validate();
                           }
                       },
                       [s] {
                           return run_roles(s->common, {{"observer", [s](runtime::role_env& env) -> asio::awaitable<void> {
                                                             if (!s->observer.supervise) {
                                                                 co_await run_observer(s->observer, s->kafka, env);
                                                                 co_return;
                                                             }
                                                             supervisor_config sc;
                                                             sc.worker_args = s->observer.worker_args;
                                                             sc.inherited_args = kafka_args(s->kafka);
                                                             sc.stop_timeout = s->observer.stop_timeout;
                                                             sc.max_workers = 10000;
                                                             // Workers must be stopped within the shutdown grace.
                                                             const auto cap = std::max<std::chrono::milliseconds>(
                                                                 env.shutdown_grace - std::chrono::seconds(2),
                                                                 std::chrono::milliseconds(100));
                                                             if (*config::parse_duration(sc.stop_timeout) > cap)
                                                                 sc.stop_timeout = std::to_string(cap.count()) + "ms";
                                                             auto ex = co_await asio::this_coro::executor;
                                                             auto sup_log = env.log.with({{"component", "supervisor"}});
                                                             worker_supervisor sup(ex, sc, sup_log);
                                                             auto control = [&]() -> asio::awaitable<void> {
                                                                 co_await run_observer(
                                                                     s->observer, s->kafka, env,
                                                                     [&](int t) { sup.set_target(t); });
                                                                 sup.stop();
                                                             };
                                                             co_await (control() && sup.run());
                                                         }}});
                       }});
    }
    // faasd scaler
    {
        struct state {
            scaler_config scaler;
            common_config common;
            kafka_config kafka;
        };
        auto s = std::make_shared<state>();
        auto* sub = app.add_subcommand(
            "scaler",
            "Follow the observer's reports and run a command whenever the target worker count changes, "
            "e.g. --exec 'docker compose -f deploy/compose/faas.yml up -d --scale worker={workers}'");
        sub->add_option("--exec", s->scaler.exec,
                        "Command run by /bin/sh -c; {workers} is replaced by the target (required)");
        sub->add_option("--exec-timeout", s->scaler.timeout, "Kill the command (its process group) after this")
            ->capture_default_str();
        sub->add_option("--retry", s->scaler.retry, "Retry a failed command after this")->capture_default_str();
        sub->add_option("--min-workers", s->scaler.min_workers, "Never ask for fewer workers")->capture_default_str();
        sub->add_option("--max-workers", s->scaler.max_workers, "Never ask for more workers")->capture_default_str();
        add_common_options(*sub, s->common);
        add_kafka_options(*sub, s->kafka);
        out.push_back({sub,
                       [s] {
                           s->common.validate();
                           s->kafka.validate();
                           s->scaler.validate();
                       },
                       [s] {
                           return run_roles(s->common, {{"scaler", [s](runtime::role_env& env) {
                                                             return run_scaler(s->scaler, s->kafka, env);
                                                         }}});
                       }});
    }
    // faasd supervisor
    {
        struct state {
            supervisor_config sup;
            common_config common;
            kafka_config kafka;
        };
        auto s = std::make_shared<state>();
        auto* sub = app.add_subcommand(
            "supervisor",
            "Follow the observer's reports and keep that many `faasd worker` child processes running "
            "(this binary); surplus workers get SIGTERM and drain");
        sub->add_option("--worker-arg", s->sup.worker_args,
                        "An argument for each `faasd worker` child (repeatable); children also inherit FAASD_*");
        sub->add_option("--min-workers", s->sup.min_workers, "Never run fewer workers")->capture_default_str();
        sub->add_option("--max-workers", s->sup.max_workers, "Never run more workers")->capture_default_str();
        sub->add_option("--stop-timeout", s->sup.stop_timeout, "SIGKILL a worker this long after SIGTERM")
            ->capture_default_str();
        sub->add_option("--restart-delay", s->sup.restart_delay, "Wait this long before replacing a crashed worker")
            ->capture_default_str();
        add_common_options(*sub, s->common);
        add_kafka_options(*sub, s->kafka);
        out.push_back({sub,
                       [s] {
                           s->common.validate();
                           s->kafka.validate();
                           s->sup.validate();
                       },
                       [s] {
                           return run_roles(s->common, {{"supervisor", [s](runtime::role_env& env) {
                                                             return run_supervisor(s->sup, s->kafka, env);
                                                         }}});
                       }});
    }
}

}  // namespace faasd::roles
