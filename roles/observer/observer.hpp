#pragma once
// The observer role and its actuators (docs/observer.md, "The role").
//
//   faasd observer     measures the job flow (jobs.*, results, heartbeats, the
//                      workers' group lag), decides a worker count with
//                      faasd::stats and publishes a report every tick on the
//                      observer topic; live parameters from observer-config.
//   faasd scaler       follows the observer topic and runs a command with the
//                      target ("docker compose ... --scale worker={workers}").
//   faasd supervisor   follows the observer topic and keeps that many
//                      `faasd worker` child processes running.
//
// `faasd dev` and tests run the observer in-process through run_observer.

#include "common/common.hpp"

#include <faasd/runtime/runtime.hpp>
#include <faasd/stats/params.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace faasd::roles {

/// Every option of `faasd observer`, with its default.
struct observer_config {
    /// Initial parameters: a JSON object (the observer-config format, see
    /// docs/observer.md "Parameters") or @path of a file holding one. Empty:
    /// defaults. A valid message on the observer-config topic replaces them.
    std::string params;                  ///< --params
    std::optional<int> min_workers;      ///< --min-workers (overrides params; unset: params, default 1)
    std::optional<int> max_workers;      ///< --max-workers (overrides params; unset: params, default 20)
    std::optional<int> slots_per_worker; ///< --slots-per-worker (overrides params; unset: params, default 4)
    std::string tick;                    ///< --tick, e.g. 1s (overrides params; empty: keep)
    /// Workers the actuator has when the observer starts; unset: the live
    /// workers seen in the heartbeats after the replay, within [min, max].
    std::optional<int> initial_workers;  ///< --initial-workers
    std::string group;                   ///< --observer-group: own consumer group id (default <prefix>observer)
    std::string workers_group;           ///< --workers-group: whose lag is the queue (default <prefix>workers)
    std::string replay_timeout = "30s";  ///< --replay-timeout: decide after this even if the replay is not done
    bool sample_lag = true;              ///< --sample-lag: query the workers' group lag every tick
    /// --lost-after: a running at-most-once job whose worker sent no heartbeat
    /// for this long is ended failed (worker_lost); "0s": never.
    std::string lost_after = "20s";
    std::string health_listen;           ///< --health-listen host:port for /healthz, /readyz, /metrics (empty: off)

    // `faasd observer --supervise`: drive local worker processes directly.
    bool supervise = false;                    ///< --supervise
    std::vector<std::string> worker_args;      ///< --worker-arg (repeatable), passed to `faasd worker`
    std::string stop_timeout;                  ///< --stop-timeout: SIGKILL a draining worker after this (empty: auto)

    /// Checks every value (and reads --params); throws config::config_error naming the option.
    void validate();
    /// The initial parameters (after validate()).
    const stats::observer_params& initial_params() const noexcept { return params_; }
    std::chrono::milliseconds replay_timeout_ms() const;
    std::chrono::milliseconds lost_after_ms() const;

    stats::observer_params params_;  ///< filled by validate()
};

void add_observer_options(CLI::App& app, observer_config& cfg);

/// Runs the observer until env.shutdown. Reads jobs.*, results and heartbeats
/// from the beginning (assign mode, never commits: a restarted observer
/// rebuilds its windows from event times; events older than the retention
/// horizon are dropped cheaply) and observer-config (the latest valid message
/// is in force). Decides nothing until the replay is caught up (or
/// replay_timeout passed). Then every tick: samples the workers' group lag,
/// runs stats::observe_tick, publishes the report (key "report") on the
/// observer topic, and calls on_target(target) whenever the target changes;
/// also once with the initial target when the replay is done. on_target runs
/// on the loop and must not block. Creates the topics if kafka.create_topics.
/// Throws on infrastructure failure (bad Kafka config).
boost::asio::awaitable<void> run_observer(observer_config cfg, kafka_config kafka, runtime::role_env& env,
                                          std::function<void(int target_workers)> on_target = {});

/// `faasd scaler --exec 'COMMAND {workers}'`.
struct scaler_config {
    std::string exec;                    ///< --exec: run by /bin/sh -c; {workers} is replaced by the target
    std::string timeout = "120s";        ///< --exec-timeout: the command is killed (process group) after this
    std::string retry = "10s";           ///< --retry: a failed command is retried after this
    int min_workers = 0;                 ///< --min-workers: clamp of the target
    int max_workers = 1000;              ///< --max-workers
    void validate() const;
};

/// Runs the scaler until env.shutdown: follows the observer topic from its
/// last record, and runs cfg.exec whenever the reported target differs from
/// the last one applied successfully (one command at a time, off the loop via
/// a child process; a newer target waits for the running command). Failures
/// (exit status, timeout) are logged and retried after cfg.retry.
boost::asio::awaitable<void> run_scaler(scaler_config cfg, kafka_config kafka, runtime::role_env& env);

/// `faasd supervisor`: keeps N `faasd worker` children.
struct supervisor_config {
    std::vector<std::string> worker_args;  ///< --worker-arg (repeatable)
    /// The whole child command line; empty: {executable, "worker"} +
    /// inherited_args (those whose option worker_args does not set) + worker_args.
    std::vector<std::string> worker_command;
    std::string executable;  ///< the faasd binary the workers run (empty: this one, /proc/self/exe)
    /// Set by the commands: the supervisor's own Kafka options (kafka_args()),
    /// so the workers use the same cluster and topic prefix.
    std::vector<std::string> inherited_args;
    int min_workers = 0;                   ///< --min-workers: clamp of the target
    int max_workers = 100;                 ///< --max-workers
    /// --stop-timeout: SIGKILL after SIGTERM + this. Empty: 60s for a
    /// worker_command, else resolve_stop_rule()'s (the workers' grace + 2s).
    std::string stop_timeout;
    std::string restart_delay = "1s";      ///< --restart-delay: after a worker died unexpectedly
    void validate() const;
};

/// How long the supervisor waits for a worker it stopped, and the shutdown
/// grace its workers get (docs/observer.md, "Stopping workers without losing
/// jobs"). A worker given SIGTERM drains for its --drain-timeout (its grace
/// - 8s), stops what still runs (--kill-grace), commits and flushes, and exits
/// at the latest when its --shutdown-grace is over; SIGKILL must not come
/// before that. So: the workers' grace is their --shutdown-grace worker
/// argument, else the supervisor's own grace - 2s (given to them as
/// --shutdown-grace, so that they are done before the supervisor's own
/// shutdown kills them); the stop timeout is at least that grace + 2s. Pure.
struct stop_rule {
    std::optional<std::chrono::milliseconds> worker_grace;  ///< nullopt: unknown (a worker_command is set)
    std::optional<std::string> grace_arg;                   ///< "--shutdown-grace=<ms>ms" to give the workers
    std::chrono::milliseconds stop_timeout{60000};          ///< SIGKILL this long after SIGTERM
    bool raised = false;             ///< the configured --stop-timeout was below the minimum and was raised
    bool exceeds_own_grace = false;  ///< the workers' grace + 2s exceeds the supervisor's own shutdown grace
};
/// Throws config::config_error for a --stop-timeout or worker --shutdown-grace that is not a duration.
stop_rule resolve_stop_rule(const supervisor_config& cfg, std::chrono::milliseconds own_grace);
/// cfg with the rule applied (grace_arg added to inherited_args, stop_timeout
/// set); logs a raised stop timeout and a grace that does not fit.
supervisor_config apply_stop_rule(supervisor_config cfg, std::chrono::milliseconds own_grace, const faasd::logger& log);

/// Child processes of `faasd worker`: set_target() starts or stops (SIGTERM,
/// so they drain; SIGKILL after stop_timeout) workers until `target` run.
/// Workers that exit by themselves are replaced after restart_delay. Loop
/// thread only; run() reaps children (polling waitpid(WNOHANG), never
/// blocking) until stop(); stop() terminates every child and run() returns
/// once they are gone (or killed after stop_timeout).
class worker_supervisor {
public:
    worker_supervisor(boost::asio::any_io_executor ex, supervisor_config cfg, faasd::logger log);
    ~worker_supervisor();
    void set_target(int target);
    int target() const noexcept { return target_; }
    /// Children running and not asked to stop.
    int running() const noexcept;
    /// Children asked to stop and not yet exited.
    int stopping() const noexcept;
    std::vector<int> pids() const;
    boost::asio::awaitable<void> run();
    void stop();

private:
    struct child {
        int pid = 0;
        bool stopping = false;
        std::chrono::steady_clock::time_point stop_sent{};
    };
    void reconcile();
    void spawn();
    std::vector<std::string> command() const;

    boost::asio::any_io_executor ex_;
    supervisor_config cfg_;
    faasd::logger log_;
    std::chrono::milliseconds stop_timeout_{60000};
    std::chrono::milliseconds restart_delay_{1000};
    std::chrono::steady_clock::time_point next_spawn_{};
    int target_ = 0;
    bool stopped_ = false;
    std::vector<child> children_;
};

/// Runs the supervisor until env.shutdown, following the observer topic.
boost::asio::awaitable<void> run_supervisor(supervisor_config cfg, kafka_config kafka, runtime::role_env& env);

/// The Kafka options as `faasd worker` arguments (--kafka-brokers=..., --topic-prefix=..., ...). Pure.
std::vector<std::string> kafka_args(const kafka_config& k);

/// The target in a report (top-level "target", else decision.target); nullopt if absent. Pure.
std::optional<int> target_from_report(std::string_view json);
/// cfg.exec with every {workers} replaced. Pure.
std::string scaler_command(std::string_view exec, int workers);

}  // namespace faasd::roles
