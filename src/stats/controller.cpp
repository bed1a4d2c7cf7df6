#include <faasd/stats/controller.hpp>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>

namespace faasd::stats {
namespace json = boost::json;

namespace {

// printf into a std::string (reasons are short).
std::string format(const char* f, ...) {
    char buf[512];
    va_list args;
    va_start(args, f);
    std::vsnprintf(buf, sizeof buf, f, args);
    va_end(args);
    return buf;
}

double secs(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }

json::value num(double v) {
    if (!std::isfinite(v)) return nullptr;
    return v;
}

// "P(wait > 1 s) = 0.012" or "mean response 1.4 s", whichever targets are on.
std::string describe(const mmc_prediction& m, const observer_params& p) {
    if (!m.stable) return format("unstable (rho %.2f)", m.rho);
    std::string s;
    if (p.epsilon < 1)
        s = format("P(wait > %gs) = %.3g (target <= %g)", secs(p.target_wait_ms), m.p_wait_exceeds_t, p.epsilon);
    if (p.max_mean_response_ms > 0) {
        if (!s.empty()) s += ", ";
        s += format("mean response %.3gs (target <= %gs)", m.mean_response_s, secs(p.max_mean_response_ms));
    }
    return s;
}

}  // namespace

const char* to_string(scaling_action a) noexcept {
    switch (a) {
        case scaling_action::none:
            return "none";
        case scaling_action::add:
            return "add";
        case scaling_action::remove:
            return "remove";
    }
    return "none";
}

double rate_lower_bound(std::size_t count, double span_s, double z) noexcept {
    if (!(span_s > 0)) return 0.0;
    const double n = static_cast<double>(count);
    return std::max(0.0, n - z * std::sqrt(n)) / span_s;
}

double rate_upper_bound(std::size_t count, double span_s, double z) noexcept {
    if (!(span_s > 0)) return 0.0;
    const double n = static_cast<double>(count);
    return (n + z * std::sqrt(n)) / span_s;
}

rate_bounds service_rate_bounds(const distribution& s, double z) noexcept {
    rate_bounds b;
    if (s.count == 0 || !(s.mean > 0)) return b;
    b.rate = b.low = b.high = 1.0 / s.mean;
    if (s.count < 2) return b;
    const double se = s.stddev / std::sqrt(static_cast<double>(s.count));
    b.low = 1.0 / (s.mean + z * se);
    const double fast = s.mean - z * se;
    b.high = fast > 0 ? 1.0 / fast : std::numeric_limits<double>::infinity();
    return b;
}

namespace {
int workers_for_slots(std::int64_t slots, const observer_params& p) {
    const std::int64_t w = (slots + p.slots_per_worker - 1) / p.slots_per_worker;
    return static_cast<int>(std::min<std::int64_t>(w, std::int64_t{p.max_workers} + 1));
}
}  // namespace

sizing size_for(double lambda_observed, double mu, double backlog, const observer_params& p) noexcept {
    sizing s;
    s.lambda = std::max(std::max(lambda_observed, 0.0), p.max_arrival_rate);
    s.mu = mu;
    s.backlog = std::max(backlog, 0.0);
    const int spw = std::max(p.slots_per_worker, 1);
    const int max_slots = p.max_workers * spw;
    s.target_slots = slots_for_target(s.lambda, mu, p.target(), max_slots);
    s.drain_slots = slots_to_drain(s.lambda, mu, s.backlog, secs(p.drain_time_ms));
    if (!s.target_slots) {
        s.feasible = false;
        s.workers = p.max_workers + 1;
        return s;
    }
    s.workers = workers_for_slots(std::max<std::int64_t>(*s.target_slots, s.drain_slots), p);
    return s;
}

void controller::reset() noexcept {
    history_.clear();
    last_change_.reset();
    first_tick_.reset();
    last_now_ = 0;
    last_service_ = {};
    last_up_.reset();
    last_action_ = scaling_action::none;
}

scaling_decision controller::decide(const observation& short_obs, const observation& long_obs, int current_workers,
                                    const observer_params& p, unix_ms now, std::optional<int> live_workers) {
    if (first_tick_ && now < last_now_) now = last_now_;
    last_now_ = now;
    if (!first_tick_) first_tick_ = now;

    scaling_decision d;
    d.at = now;
    d.current = std::max(current_workers, 0);
    const int current = d.current;
    const int spw = p.slots_per_worker;
    const auto clamp = [&](int w) { return std::clamp(w, p.min_workers, p.max_workers); };
    const std::int64_t since_change = last_change_ ? now - *last_change_ : std::numeric_limits<std::int64_t>::max();

    // 0. The workers to judge capacity by: the live ones, unless the last
    //    change is still within its cooldown and not yet visible (pending).
    if (live_workers) d.live = std::max(*live_workers, 0);
    const std::int64_t pending_for = last_action_ == scaling_action::remove ? p.down_cooldown_ms : p.up_cooldown_ms;
    d.pending = live_workers && d.live != current && since_change < pending_for;
    d.basis = (!live_workers || d.pending) ? current : d.live;
    const int basis = d.basis;

    // 1. Service rate per slot: the long window has more samples; fall back to
    //    the short one, then to the last sample ever seen.
    if (long_obs.service.count > 0)
        last_service_ = long_obs.service;
    else if (short_obs.service.count > 0)
        last_service_ = short_obs.service;
    const auto mu_up = service_rate_bounds(last_service_, p.up_confidence_z);
    const auto mu_down = service_rate_bounds(last_service_, p.down_confidence_z);
    d.mu = mu_up.rate;
    d.mu_high = mu_up.high;
    d.mu_low = mu_down.low;
    d.model_ready = d.mu > 0;

    // 2. Arrival rates: point estimates for sizing, the lower confidence bound
    //    to trigger a scale-up, the upper one as scale-down evidence.
    d.lambda_short = short_obs.arrival_rate;
    d.lambda_long = long_obs.arrival_rate;
    d.lambda_trigger = std::max(rate_lower_bound(short_obs.arrivals, short_obs.span_s, p.up_confidence_z),
                                rate_lower_bound(long_obs.arrivals, long_obs.span_s, p.up_confidence_z));
    d.lambda_upper = rate_upper_bound(short_obs.arrivals, short_obs.span_s, p.down_confidence_z);
    d.lambda_plan = std::max({d.lambda_short, d.lambda_long, p.max_arrival_rate});
    d.backlog = short_obs.queue_length;
    const double backlog = static_cast<double>(d.backlog);
    const bool has_load = d.lambda_plan > 0 || d.backlog > 0;

    // 3. What the model needs
    //    - optimistically (rate's lower bound, service rate's upper bound),
    //      for the service target or to drain the backlog: the scale-up trigger;
    //    - pessimistically (rate's upper bound, service rate's lower bound):
    //      this tick's entry in the scale-down history;
    //    - at the point rate and the service rate's lower bound (the service
    //      estimate moves slowly; err on the generous side): the size a
    //      scale-up goes to.
    int need_optimistic = 0, need_drain = 0, need_upper = 0, need_plan = 0;
    sizing plan;
    if (d.model_ready) {
        need_upper = size_for(d.lambda_upper, d.mu_low, backlog, p).workers;
        // With too few samples to bound the service time from below, the
        // optimistic view is "service is instant": only the backlog can trigger.
        need_optimistic = std::isfinite(d.mu_high) ? size_for(d.lambda_trigger, d.mu_high, 0, p).workers : 0;
        need_drain = std::isfinite(d.mu_high)
                         ? workers_for_slots(slots_to_drain(std::max(d.lambda_trigger, p.max_arrival_rate), d.mu_high,
                                                            backlog, secs(p.drain_time_ms)),
                                             p)
                         : 0;
        plan = size_for(d.lambda_plan, d.mu_low, backlog, p);
        need_plan = plan.workers;
        d.saturated = need_plan > p.max_workers || !plan.feasible;
    } else {
        // No service time seen yet: keep what we have (at least one worker
        // when there is work, so that service times can be measured at all).
        const int w = has_load ? std::max(current, 1) : 0;
        need_optimistic = need_upper = need_plan = w;
    }
    d.needed_optimistic = clamp(need_optimistic);
    d.needed_to_drain = std::min(need_drain, p.max_workers);  // 0: no backlog
    d.needed_pessimistic = need_upper = clamp(need_upper);
    d.needed = clamp(need_plan);
    const int need_trigger = std::max(d.needed_optimistic, d.needed_to_drain);

    // 4. Remember this tick's need (the scale-down evidence), for one long window.
    if (history_.size() >= history_cap) {
        // Coalesce: the newest entry absorbs this tick (and is kept longer: conservative).
        history_.back().workers = std::max(history_.back().workers, need_upper);
        history_.back().at = now;
    } else {
        history_.push_back({now, need_upper});
    }
    while (!history_.empty() && history_.front().at <= now - p.long_window_ms) history_.pop_front();

    const std::string model_text =
        d.model_ready ? format("arrivals %.3g/s (short %.3g/s, long %.3g/s%s), mean service %.3gs", d.lambda_plan,
                               d.lambda_short, d.lambda_long,
                               p.max_arrival_rate > 0 ? format(", planned floor %g/s", p.max_arrival_rate).c_str() : "",
                               1.0 / d.mu)
                      : std::string("no service time measured yet");
    // 5. Decide. A scale-up opens a follow-through period (one short window
    //    plus the up cooldown): the load has changed, the short window is
    //    still filling with the new rate, so sizing follows the point estimate
    //    without asking the confidence test again. This also carries a
    //    scale-up capped by max_step_up to its size.
    const bool following_up = last_up_ && now - *last_up_ <= p.short_window_ms + p.up_cooldown_ms;
    int target = current;
    // A scale-up goes to the need, at most max_step_up beyond what is there or asked for.
    const int step_from = std::max(basis, current);
    if (current < p.min_workers) {
        target = std::max(p.min_workers, need_trigger > basis
                                             ? std::min(std::max(d.needed, need_trigger), step_from + p.max_step_up)
                                             : p.min_workers);
        d.reason = format("below min_workers (%d): scale up %d -> %d", p.min_workers, current, target);
    } else if (current > p.max_workers) {
        target = p.max_workers;
        d.reason = format("above max_workers (%d): scale down %d -> %d", p.max_workers, current, target);
    } else if (need_trigger > basis || (following_up && d.needed > basis)) {
        const int want = std::min(std::max(d.needed, need_trigger), step_from + p.max_step_up);
        if (want <= current) {
            // Short of live capacity, but the target already asks for enough:
            // the actuator has not delivered it (yet). Do not ask again.
            d.reason = format("keep %d: %d workers are needed and %d are live; the target already covers them, "
                              "waiting for the actuator; ",
                              current, want, basis) +
                       model_text;
        } else if (since_change < p.up_cooldown_ms) {
            d.cooling_down = true;
            d.reason = format("would scale up %d -> %d, but the last change was %.3gs ago (up_cooldown %gs); ", current,
                              want, secs(since_change), secs(p.up_cooldown_ms)) +
                       model_text;
        } else {
            target = want;
            const auto at_target = predict_mmc(target * spw, d.lambda_plan, d.mu, secs(p.target_wait_ms));
            std::string why;
            if (!d.model_ready) {
                why = "there is work and no worker to measure service times";
            } else if (need_trigger <= basis) {
                why = format("following through the scale-up %.3gs ago: the point estimate needs %d workers",
                             secs(now - *last_up_), d.needed);
            } else {
                if (d.needed_to_drain > basis)
                    why = format("backlog %lld jobs needs %d workers to drain within %gs",
                                 static_cast<long long>(d.backlog), d.needed_to_drain, secs(p.drain_time_ms));
                if (d.needed_optimistic > basis)
                    why += (why.empty() ? "" : " and ") + format("the target needs %d workers", d.needed_optimistic);
                why += format(", even optimistically (arrivals >= %.3g/s, service <= %.3gs)",
                              std::max(d.lambda_trigger, p.max_arrival_rate), 1.0 / d.mu_high);
            }
            d.reason = format("scale up %d -> %d: ", current, target) + why;
            if (d.model_ready) {
                d.reason += "; sized for " + model_text;
                d.reason += format("; at %d workers ", target) + describe(at_target, p);
                if (d.needed > target && !d.saturated) d.reason += format(" (max_step_up %d)", p.max_step_up);
            }
        }
    } else {
        int max_need = 0;
        unix_ms last_high = 0;  // the newest tick that needed `current` or more
        for (const auto& s : history_) {
            max_need = std::max(max_need, s.workers);
            if (s.workers >= current) last_high = s.at;
        }
        const bool covered = *first_tick_ <= now - p.long_window_ms;
        if (covered && max_need < current) {
            const int want = std::max({max_need, current - p.max_step_down, p.min_workers});
            if (since_change < p.down_cooldown_ms) {
                d.cooling_down = true;
                d.reason = format("would scale down %d -> %d, but the last change was %.3gs ago (down_cooldown %gs)",
                                  current, want, secs(since_change), secs(p.down_cooldown_ms));
            } else {
                target = want;
                d.reason = format(
                               "scale down %d -> %d: for the whole long window (%gs) at most %d workers were "
                               "needed, even at the rate's upper bound; ",
                               current, target, secs(p.long_window_ms), max_need) +
                           model_text;
            }
        } else if (!covered) {
            d.reason = format("keep %d: observing for %.3gs, scale-down needs a whole long window (%gs); ", current,
                              secs(now - *first_tick_), secs(p.long_window_ms)) +
                       model_text;
        } else if (current > p.min_workers && last_high != 0 && d.model_ready) {
            d.reason = format("keep %d: %d workers were needed %.3gs ago, scale-down needs %gs without; ", current,
                              current, secs(now - last_high), secs(p.long_window_ms)) +
                       model_text;
        } else {
            d.reason = format("keep %d: ", current) + model_text;
        }
        if (d.model_ready && !d.cooling_down && target == current) {
            const auto at_current = predict_mmc(basis * spw, d.lambda_plan, d.mu, secs(p.target_wait_ms));
            d.reason += "; now " + describe(at_current, p);
        }
    }
    if (d.saturated) d.reason += format("; saturated: the target needs more than max_workers (%d)", p.max_workers);
    if (live_workers && d.live != current)
        d.reason += format("; %d of %d workers live%s", d.live, current,
                           d.pending ? format(" (the change %.3gs ago is under way)", secs(since_change)).c_str()
                                     : "");

    d.target = target;
    d.action = target > current   ? scaling_action::add
               : target < current ? scaling_action::remove
                                  : scaling_action::none;
    if (d.action != scaling_action::none) {
        last_change_ = now;
        last_action_ = d.action;
    }
    if (d.action == scaling_action::add) last_up_ = now;
    if (d.action == scaling_action::remove) last_up_.reset();

    const double t = secs(p.target_wait_ms);
    d.at_current = predict_mmc(basis * spw, d.lambda_plan, d.mu, t);
    d.at_target = predict_mmc(target * spw, d.lambda_plan, d.mu, t);
    return d;
}

json::object to_json(const mmc_prediction& p) {
    return {{"slots", p.slots},
            {"lambda", num(p.lambda)},
            {"mu", num(p.mu)},
            {"rho", num(p.rho)},
            {"stable", p.stable},
            {"p_wait", num(p.p_wait)},
            {"mean_wait_s", num(p.mean_wait_s)},
            {"mean_response_s", num(p.mean_response_s)},
            {"wait_t_s", num(p.wait_t_s)},
            {"p_wait_exceeds_t", num(p.p_wait_exceeds_t)},
            {"mean_queue", num(p.mean_queue)},
            {"mean_in_system", num(p.mean_in_system)}};
}

json::object to_json(const scaling_decision& d) {
    return {{"at", d.at},
            {"action", to_string(d.action)},
            {"current", d.current},
            {"live", d.live},
            {"basis", d.basis},
            {"pending", d.pending},
            {"target", d.target},
            {"needed", d.needed},
            {"needed_optimistic", d.needed_optimistic},
            {"needed_to_drain", d.needed_to_drain},
            {"needed_pessimistic", d.needed_pessimistic},
            {"reason", d.reason},
            {"lambda_short", num(d.lambda_short)},
            {"lambda_long", num(d.lambda_long)},
            {"lambda_trigger", num(d.lambda_trigger)},
            {"lambda_upper", num(d.lambda_upper)},
            {"lambda_plan", num(d.lambda_plan)},
            {"mu", num(d.mu)},
            {"mu_low", num(d.mu_low)},
            {"mu_high", num(d.mu_high)},
            {"backlog", d.backlog},
            {"saturated", d.saturated},
            {"cooling_down", d.cooling_down},
            {"model_ready", d.model_ready},
            {"at_current", to_json(d.at_current)},
            {"at_target", to_json(d.at_target)}};
}

}  // namespace faasd::stats
