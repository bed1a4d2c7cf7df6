#include <faasd/stats/params.hpp>

#include <boost/json/parse.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <variant>

namespace faasd::stats {
namespace json = boost::json;

namespace {

using member = std::variant<std::int64_t observer_params::*, int observer_params::*, double observer_params::*>;

struct field {
    const char* name;
    member m;
};

// Every parameter, in documentation order. to_json, params_from_json and the
// unknown-field check all walk this one table.
const field fields[] = {
    {"tick_ms", &observer_params::tick_ms},
    {"short_window_ms", &observer_params::short_window_ms},
    {"long_window_ms", &observer_params::long_window_ms},
    {"stale_after_ms", &observer_params::stale_after_ms},
    {"settle_ms", &observer_params::settle_ms},
    {"target_wait_ms", &observer_params::target_wait_ms},
    {"epsilon", &observer_params::epsilon},
    {"max_mean_response_ms", &observer_params::max_mean_response_ms},
    {"max_arrival_rate", &observer_params::max_arrival_rate},
    {"drain_time_ms", &observer_params::drain_time_ms},
    {"min_workers", &observer_params::min_workers},
    {"max_workers", &observer_params::max_workers},
    {"slots_per_worker", &observer_params::slots_per_worker},
    {"max_step_up", &observer_params::max_step_up},
    {"max_step_down", &observer_params::max_step_down},
    {"up_cooldown_ms", &observer_params::up_cooldown_ms},
    {"down_cooldown_ms", &observer_params::down_cooldown_ms},
    {"up_confidence_z", &observer_params::up_confidence_z},
    {"down_confidence_z", &observer_params::down_confidence_z},
};

std::string fmt(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}
std::string fmt(std::int64_t v) { return std::to_string(v); }

// Appends "must be in [lo, hi], got v" when v is outside.
template <class T>
void range(std::vector<param_error>& out, const char* name, T v, T lo, T hi) {
    if (v < lo || v > hi) out.push_back({name, "must be in [" + fmt(lo) + ", " + fmt(hi) + "], got " + fmt(v)});
}

constexpr std::int64_t day_ms = 86'400'000;
constexpr std::int64_t hour_ms = 3'600'000;

}  // namespace

service_target observer_params::target() const noexcept {
    service_target t;
    t.wait_s = static_cast<double>(target_wait_ms) / 1000.0;
    t.epsilon = epsilon;
    t.max_mean_response_s = static_cast<double>(max_mean_response_ms) / 1000.0;
    return t;
}

std::vector<param_error> validate(const observer_params& p) {
    std::vector<param_error> e;
    range<std::int64_t>(e, "tick_ms", p.tick_ms, 100, 60'000);
    range<std::int64_t>(e, "short_window_ms", p.short_window_ms, 1'000, hour_ms);
    if (p.short_window_ms < p.tick_ms)
        e.push_back(
            {"short_window_ms", "must be at least tick_ms (" + fmt(p.tick_ms) + "), got " + fmt(p.short_window_ms)});
    range<std::int64_t>(e, "long_window_ms", p.long_window_ms, 1'000, day_ms);
    if (p.long_window_ms < p.short_window_ms)
        e.push_back({"long_window_ms", "must be at least short_window_ms (" + fmt(p.short_window_ms) + "), got " +
                                           fmt(p.long_window_ms)});
    range<std::int64_t>(e, "stale_after_ms", p.stale_after_ms, 100, hour_ms);
    if (p.stale_after_ms < p.tick_ms)
        e.push_back(
            {"stale_after_ms", "must be at least tick_ms (" + fmt(p.tick_ms) + "), got " + fmt(p.stale_after_ms)});

    range<std::int64_t>(e, "settle_ms", p.settle_ms, 0, hour_ms);
    if (p.settle_ms > p.short_window_ms / 2)
        e.push_back({"settle_ms", "must be at most half of short_window_ms (" + fmt(p.short_window_ms / 2) + "), got " +
                                      fmt(p.settle_ms)});

    range<std::int64_t>(e, "target_wait_ms", p.target_wait_ms, 0, day_ms);
    if (!(p.epsilon > 0 && p.epsilon <= 1))
        e.push_back({"epsilon", "must be in (0, 1] (1 disables the wait-tail target), got " + fmt(p.epsilon)});
    if (p.max_mean_response_ms != 0) range<std::int64_t>(e, "max_mean_response_ms", p.max_mean_response_ms, 1, day_ms);
    if (p.epsilon == 1.0 && p.max_mean_response_ms == 0)
        e.push_back({"epsilon", "no service target: set epsilon below 1 or max_mean_response_ms above 0"});

    if (!std::isfinite(p.max_arrival_rate) || p.max_arrival_rate < 0 || p.max_arrival_rate > 1e6)
        e.push_back({"max_arrival_rate", "must be in [0, 1e+06] jobs/s (0 = unset), got " + fmt(p.max_arrival_rate)});
    range<std::int64_t>(e, "drain_time_ms", p.drain_time_ms, 1'000, day_ms);

    range<std::int64_t>(e, "min_workers", p.min_workers, 0, 10'000);
    range<std::int64_t>(e, "max_workers", p.max_workers, 1, 10'000);
    if (p.max_workers < p.min_workers)
        e.push_back({"max_workers", "must be at least min_workers (" + fmt(std::int64_t{p.min_workers}) + "), got " +
                                        fmt(std::int64_t{p.max_workers})});
    range<std::int64_t>(e, "slots_per_worker", p.slots_per_worker, 1, 1'024);
    range<std::int64_t>(e, "max_step_up", p.max_step_up, 1, 10'000);
    range<std::int64_t>(e, "max_step_down", p.max_step_down, 1, 10'000);
    range<std::int64_t>(e, "up_cooldown_ms", p.up_cooldown_ms, 0, hour_ms);
    range<std::int64_t>(e, "down_cooldown_ms", p.down_cooldown_ms, 0, hour_ms);
    if (!std::isfinite(p.up_confidence_z) || p.up_confidence_z < 0 || p.up_confidence_z > 5)
        e.push_back({"up_confidence_z", "must be in [0, 5], got " + fmt(p.up_confidence_z)});
    if (!std::isfinite(p.down_confidence_z) || p.down_confidence_z < 0 || p.down_confidence_z > 5)
        e.push_back({"down_confidence_z", "must be in [0, 5], got " + fmt(p.down_confidence_z)});
    // The largest size the model may search must fit in an int.
    if (static_cast<std::int64_t>(p.max_workers) * p.slots_per_worker > 10'000'000)
        e.push_back({"max_workers", "max_workers * slots_per_worker must be at most 1e+07"});
    return e;
}

json::object to_json(const observer_params& p) {
    json::object o;
    o["v"] = 1;
    for (const auto& f : fields) {
        std::visit([&](auto m) { o[f.name] = p.*m; }, f.m);
    }
    return o;
}

params_parse_result params_from_json(const json::value& v) {
    params_parse_result r;
    const auto* o = v.if_object();
    if (!o) {
        r.errors.push_back({"", "the configuration must be a JSON object"});
        return r;
    }
    for (const auto& [k, value] : *o) {
        if (k == "v") {
            if (!value.is_int64() || value.get_int64() != 1)
                r.errors.push_back({"v", "unsupported version (expected 1)"});
            continue;
        }
        const field* f = nullptr;
        for (const auto& candidate : fields)
            if (k == candidate.name) f = &candidate;
        if (!f) {
            r.errors.push_back({std::string(k), "unknown parameter"});
            continue;
        }
        std::visit(
            [&](auto m) {
                using T = std::remove_reference_t<decltype(r.params.*m)>;
                if constexpr (std::is_same_v<T, double>) {
                    if (!value.is_number()) {
                        r.errors.push_back({f->name, "must be a number"});
                        return;
                    }
                    r.params.*m = value.to_number<double>();
                } else {
                    // Integers: accept 5 and 5.0, reject 5.5 and out-of-range values.
                    std::int64_t i = 0;
                    if (value.is_int64()) {
                        i = value.get_int64();
                    } else if (value.is_double() && std::nearbyint(value.get_double()) == value.get_double() &&
                               std::abs(value.get_double()) < 9e15) {
                        i = static_cast<std::int64_t>(value.get_double());
                    } else {
                        r.errors.push_back(
                            {f->name, value.is_number() ? "must be an integer (within range)" : "must be an integer"});
                        return;
                    }
                    if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max()) {
                        r.errors.push_back({f->name, "is out of range, got " + fmt(i)});
                        return;
                    }
                    r.params.*m = static_cast<T>(i);
                }
            },
            f->m);
    }
    if (r.errors.empty()) r.errors = validate(r.params);
    return r;
}

params_parse_result params_from_json(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) {
        params_parse_result r;
        r.errors.push_back({"", "not valid JSON: " + ec.message()});
        return r;
    }
    return params_from_json(v);
}

params_update apply_params_update(const observer_params& last_good, const json::value& v) {
    auto parsed = params_from_json(v);
    params_update u;
    if (parsed.ok()) {
        u.params = parsed.params;
        u.accepted = true;
    } else {
        u.params = last_good;
        u.errors = std::move(parsed.errors);
    }
    return u;
}

std::string to_string(const std::vector<param_error>& errors) {
    std::string s;
    for (const auto& e : errors) {
        if (!s.empty()) s += "; ";
        if (!e.field.empty()) s += e.field + ": ";
        s += e.reason;
    }
    return s;
}

}  // namespace faasd::stats
