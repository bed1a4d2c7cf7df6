#include <faasd/stats/report.hpp>

#include <boost/json/serialize.hpp>

#include <cmath>
#include <optional>

namespace faasd::stats {
namespace json = boost::json;

namespace {
json::value num(double v) {
    if (!std::isfinite(v)) return nullptr;
    return v;
}
}  // namespace

observer_report observe_tick(tracker& t, controller& c, int current_workers, const observer_params& p, unix_ms now) {
    t.evict(now);
    observer_report r;
    r.at = now;
    r.params = p;
    // Windows end settle_ms ago: events that happened since may still be on their way.
    const unix_ms end = now - p.settle_ms;
    r.short_window = t.summarize(end, p.short_window_ms);
    r.long_window = t.summarize(end, p.long_window_ms);
    // The live workers are the short window's (heartbeats up to stale_after
    // old); unknown until some heartbeat was seen.
    const auto live = r.short_window.workers_known ? std::optional<int>(r.short_window.workers) : std::nullopt;
    r.decision = c.decide(r.short_window, r.long_window, current_workers, p, now, live);
    r.tracker = t.counters();
    return r;
}

json::object to_json(const observer_report& r) {
    const auto& s = r.short_window;
    const auto& l = r.long_window;
    const auto& d = r.decision;
    json::object o;
    o["v"] = 1;
    o["at"] = r.at;
    // The headline numbers: short window for what moves fast, long window for mu.
    o["measured"] = {
        {"lambda", num(s.arrival_rate)},
        {"lambda_long", num(l.arrival_rate)},
        {"completion_rate", num(s.completion_rate)},
        {"mu", num(d.mu)},
        {"W_s", num(s.response.mean)},
        {"Wq_s", num(s.wait.mean)},
        {"L", num(s.l_time_average)},
        {"L_little", num(s.l_little)},
        {"little_error", num(s.little_error)},
        {"queue_length", s.queue_length},
        {"queue_source", to_string(s.queue_from)},
        {"queued_from_events", s.queued_from_events},
        {"queue_from_lag", s.queue_from_lag ? json::value(*s.queue_from_lag) : json::value(nullptr)},
        {"lag", s.lag ? json::value(*s.lag) : json::value(nullptr)},
        {"events_fresh", s.events_fresh},
        {"workers", s.workers},
        {"draining_workers", s.draining_workers},
        {"slots", s.slots},
        {"busy", s.busy},
        {"utilisation", num(s.utilisation)},
    };
    o["windows"] = {{"short", to_json(s)}, {"long", to_json(l)}};
    o["model"] = {{"at_current", to_json(d.at_current)}, {"at_target", to_json(d.at_target)}};
    o["decision"] = {{"action", to_string(d.action)},
                     {"current", d.current},
                     {"live", d.live},
                     {"basis", d.basis},
                     {"pending", d.pending},
                     {"target", d.target},
                     {"needed", d.needed},
                     {"reason", d.reason},
                     {"lambda_plan", num(d.lambda_plan)},
                     {"lambda_trigger", num(d.lambda_trigger)},
                     {"backlog", d.backlog},
                     {"saturated", d.saturated},
                     {"cooling_down", d.cooling_down},
                     {"model_ready", d.model_ready}};
    o["tracker"] = {{"events", r.tracker.events},     {"duplicates", r.tracker.duplicates},
                    {"late", r.tracker.late},         {"evicted", r.tracker.evicted},
                    {"overflow", r.tracker.overflow}, {"records", r.tracker.records},
                    {"workers", r.tracker.workers}};
    o["params"] = to_json(r.params);
    return o;
}

std::string encode(const observer_report& r) { return json::serialize(to_json(r)); }

}  // namespace faasd::stats
