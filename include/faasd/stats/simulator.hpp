#pragma once
// A seeded discrete-event simulation of faasd's job queue: Poisson arrivals at
// a time-varying rate, exponential service, workers with a fixed number of
// slots, one FIFO queue; and, every tick, the real observer core in the loop
// (tracker -> summarize -> controller -> the workers it asks for). Used by the
// unit tests and by bench/sim_observer. Same config, same result: the random
// numbers come from a fixed generator and transform, never from <random>
// distributions (whose output differs between standard libraries).

#include <faasd/stats/controller.hpp>
#include <faasd/stats/params.hpp>
#include <faasd/stats/report.hpp>
#include <faasd/stats/window.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace faasd::stats::sim {

/// Arrival rate (jobs/s) as a function of simulated time (s since the start).
using rate_fn = std::function<double(double t_s)>;

rate_fn constant_rate(double rate);
/// `before` until at_s, then `after`.
rate_fn step_rate(double before, double after, double at_s);
/// mean + amplitude * sin(2 pi t / period_s); requires amplitude <= mean.
rate_fn sine_rate(double mean, double amplitude, double period_s);

struct config {
    std::uint64_t seed = 1;
    double duration_s = 600;
    rate_fn rate = constant_rate(1.0);
    double rate_max = 1.0;        ///< an upper bound of rate(t) (thinning)
    double mean_service_s = 1.0;  ///< exponential slot occupancy
    int slots_per_worker = 4;     ///< the simulated workers' slots
    int initial_workers = 1;
    bool autoscale = true;        ///< false: the worker count stays initial_workers (model validation)
    double worker_startup_s = 0;  ///< a new worker takes jobs after this delay
    double heartbeat_period_s = 1;
    observer_params params;            ///< the controller's parameters (tick_ms is the observer period)
    double max_delivery_delay_s = 0;   ///< each event reaches the observer after U(0, max) seconds
    double duplicate_probability = 0;  ///< each job event is delivered twice with this probability
    double stats_after_s = 0;          ///< job statistics ignore jobs submitted before this
    bool record_reports = false;       ///< keep every decision's full report (memory!)
};

/// One observer tick.
struct sample {
    double t_s = 0;
    double true_rate = 0;     ///< rate(t)
    double lambda_short = 0;  ///< measured
    double lambda_long = 0;
    double mu = 0;                    ///< measured (long window)
    int workers = 0;                  ///< provisioned (up or starting)
    int ready_workers = 0;            ///< taking jobs
    int busy = 0;                     ///< occupied slots (true)
    int queue_length = 0;             ///< waiting jobs (true)
    std::int64_t observed_queue = 0;  ///< the observer's queue_length
    double mean_response_s = 0;       ///< short window
    double mean_wait_s = 0;           ///< short window
    std::size_t wait_samples = 0;     ///< jobs behind mean_wait_s (started in the short window)
    double p95_wait_s = 0;            ///< short window
    double predicted_wait_s = 0;      ///< model at the current size and measured lambda, mu
    scaling_action action = scaling_action::none;
    int target = 0;
};

/// A change the controller made.
struct change {
    double t_s = 0;
    int from = 0;
    int to = 0;
    std::string reason;
};

/// Statistics of the simulated jobs themselves (ground truth, full precision).
struct job_stats {
    std::size_t submitted = 0;
    std::size_t completed = 0;
    double mean_wait_s = 0;
    double mean_response_s = 0;
    double mean_service_s = 0;
    double p95_wait_s = 0;
    double p99_wait_s = 0;
    double fraction_waited = 0;              ///< P(Wq > 0): compare with Erlang C
    double fraction_waited_over_target = 0;  ///< P(Wq > params.target_wait_ms)
};

struct result {
    std::vector<sample> samples;
    std::vector<change> changes;
    std::vector<observer_report> reports;  ///< only with record_reports
    job_stats jobs;
    int direction_changes = 0;  ///< add after remove or remove after add
    int max_workers_seen = 0;
    tracker_counters tracker;
};

/// Runs the simulation to duration_s. Deterministic in the config.
result run(const config& cfg);

/// Number of workers alive at the end: samples.back().workers, or initial_workers.
int final_workers(const result& r, const config& cfg);

}  // namespace faasd::stats::sim
