#pragma once
// The scaling decision: a sans-io state machine. Each tick the observer role
// calls decide() with the short- and long-window observations, the number of
// workers it has now and the live parameters; the controller keeps only what
// hysteresis needs (the time of the last change and the workers each recent
// tick would have needed) and answers how many workers there should be, and
// why. docs/observer.md, "Decision", walks through the algorithm.
//
// Thread safety: none; one owner. Memory: the history holds at most one
// entry per tick of the long window (capped at history_cap entries).

#include <faasd/stats/params.hpp>
#include <faasd/stats/queueing.hpp>
#include <faasd/stats/window.hpp>

#include <boost/json/object.hpp>

#include <cstddef>
#include <deque>
#include <optional>
#include <string>

namespace faasd::stats {

enum class scaling_action {
    none,    ///< keep the current number of workers
    add,     ///< scale up to target
    remove,  ///< scale down to target
};
const char* to_string(scaling_action a) noexcept;

/// The size the model asks for, before bounds, steps and hysteresis.
struct sizing {
    double lambda = 0;                ///< the arrival rate planned for (after the max_arrival_rate floor)
    double mu = 0;                    ///< service rate per slot used
    double backlog = 0;               ///< jobs queued now
    std::optional<int> target_slots;  ///< smallest c meeting the service target (nullopt: none up to max)
    int drain_slots = 0;              ///< c needed to drain the backlog within drain_time (0: no backlog)
    int workers = 0;                  ///< ceil(max(target, drain) / slots_per_worker); max_workers + 1 if infeasible
    bool feasible = true;             ///< some c <= max_workers * slots_per_worker meets the target
};

/// Pure sizing: lambda_observed is raised to p.max_arrival_rate when that is set.
sizing size_for(double lambda_observed, double mu, double backlog, const observer_params& p) noexcept;

/// Confidence bounds of a Poisson rate estimated from `count` events in
/// `span_s` seconds (normal approximation): max(0, count -/+ z sqrt(count)) / span_s;
/// 0 if span_s <= 0.
double rate_lower_bound(std::size_t count, double span_s, double z) noexcept;
double rate_upper_bound(std::size_t count, double span_s, double z) noexcept;

/// The service rate per slot (1 / mean service time) and its confidence
/// bounds from the sample's standard error: 1 / (mean +/- z stddev / sqrt(n)).
/// All 0 without samples; the bounds equal the rate with fewer than 2 samples;
/// high is +infinity when the lower bound of the mean is not positive.
struct rate_bounds {
    double rate = 0;
    double low = 0;
    double high = 0;
};
rate_bounds service_rate_bounds(const distribution& service_s, double z) noexcept;

struct scaling_decision {
    unix_ms at = 0;
    scaling_action action = scaling_action::none;
    int current = 0;             ///< the target the actuator was given before (decide()'s current_workers)
    int live = -1;               ///< workers live (up) per the heartbeats; -1 = not known
    /// What the scale-up trigger and at_current compare with: the live workers,
    /// or `current` while a change is pending (see decide()) or live is unknown.
    int basis = 0;
    bool pending = false;        ///< live != current within the cooldown of the last change
    int target = 0;              ///< workers wanted from now on (== current when action is none)
    int needed = 0;              ///< the size a scale-up goes to: point rate, service rate's lower bound; in [min, max]
    int needed_optimistic = 0;   ///< for the target at the rate's lower / service rate's upper bound (trigger)
    int needed_to_drain = 0;     ///< to drain the backlog within drain_time, optimistically (trigger); 0 = no backlog
    int needed_pessimistic = 0;  ///< at the rate's upper / service rate's lower bound (scale-down evidence)
    std::string reason;          ///< one or two sentences for humans

    double lambda_short = 0;  ///< point estimates used
    double lambda_long = 0;
    double lambda_trigger = 0;  ///< max of the windows' lower confidence bounds (scale-up trigger)
    double lambda_upper = 0;    ///< the short window's upper confidence bound (scale-down evidence)
    double lambda_plan = 0;     ///< the rate the target is sized for
    double mu = 0;              ///< service rate per slot; 0 when unknown
    double mu_low = 0;          ///< its lower bound (down_confidence_z): scale-down evidence
    double mu_high = 0;         ///< its upper bound (up_confidence_z): scale-up trigger
    std::int64_t backlog = 0;
    bool saturated = false;     ///< the model wants more than max_workers, or no size meets the target
    bool cooling_down = false;  ///< a change was wanted but a cooldown holds it
    bool model_ready = false;   ///< a service rate was known (else only bounds are enforced)

    mmc_prediction at_current;  ///< the model at current * slots_per_worker
    mmc_prediction at_target;   ///< the model at target * slots_per_worker
};

class controller {
public:
    static constexpr std::size_t history_cap = 1 << 16;

    /// One tick. `now` must not go backwards (an earlier now is treated as the
    /// last one). `current_workers` is the target the actuator was given (the
    /// previous decision's, or the initial one); `live_workers` the workers the
    /// heartbeats show up (nullopt: not known, then current_workers stands for
    /// them). Whether capacity is short is judged against the live workers:
    /// a failing actuator does not make the controller reason about workers
    /// that do not exist. Only within the cooldown of its last change, while
    /// live != current, is that change taken as still under way (`pending`):
    /// the controller judges against current_workers then, so that it does
    /// not ask for the same change again. Scale-down compares the long-window
    /// need with current_workers (the target is what is too high). Never
    /// throws; assumes validate(p) is empty.
    scaling_decision decide(const observation& short_obs, const observation& long_obs, int current_workers,
                            const observer_params& p, unix_ms now, std::optional<int> live_workers = std::nullopt);

    /// Forgets all state (a restarted observer starts like this).
    void reset() noexcept;

    std::optional<unix_ms> last_change() const noexcept { return last_change_; }
    /// The last service rate seen in an observation (kept across empty windows).
    double last_service_rate() const noexcept { return last_service_.mean > 0 ? 1.0 / last_service_.mean : 0.0; }

private:
    struct need_sample {
        unix_ms at;
        int workers;  // what this tick would have needed at its rate's upper bound
    };
    std::deque<need_sample> history_;
    std::optional<unix_ms> last_change_;
    std::optional<unix_ms> first_tick_;
    unix_ms last_now_ = 0;
    distribution last_service_;       // the newest non-empty service-time sample
    std::optional<unix_ms> last_up_;  // the last scale-up (follow-through)
    scaling_action last_action_ = scaling_action::none;  // the direction of the last change
};

boost::json::object to_json(const mmc_prediction& p);
boost::json::object to_json(const scaling_decision& d);

}  // namespace faasd::stats
