#pragma once
// The observer's live parameters (the observer-config topic). Every field has a
// documented default and range (docs/observer.md, "Parameters"); validate()
// lists every violation, and apply_params_update() keeps the last good set
// when a new one is bad.

#include <faasd/stats/events.hpp>
#include <faasd/stats/queueing.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace faasd::stats {

struct observer_params {
    // Time base.
    std::int64_t tick_ms = 1'000;           ///< report and decision period; [100, 60000]
    std::int64_t short_window_ms = 10'000;  ///< reacts to load steps; [1000, 3600000], >= tick_ms
    std::int64_t long_window_ms = 60'000;   ///< scale-down evidence; [short_window_ms, 86400000]
    std::int64_t stale_after_ms = 10'000;  ///< heartbeat / lag sample age after which it is ignored; [tick_ms, 3600000]
    std::int64_t settle_ms =
        1'000;  ///< windows end this long before now, so late events are in; [0, short_window_ms / 2]

    // Service target (both enabled conditions must hold).
    std::int64_t target_wait_ms = 1'000;    ///< t in P(Wq > t) <= epsilon; [0, 86400000]
    double epsilon = 0.05;                  ///< (0, 1]; 1 disables the tail condition
    std::int64_t max_mean_response_ms = 0;  ///< E[W] bound; 0 disables, else [1, 86400000]

    // Load to plan for.
    double max_arrival_rate = 0;          ///< jobs/s always provisioned for (a floor); 0 = unset; [0, 1e6]
    std::int64_t drain_time_ms = 30'000;  ///< empty the present backlog within this; [1000, 86400000]

    // Actuation.
    int min_workers = 1;                     ///< [0, 10000]
    int max_workers = 20;                    ///< [max(1, min_workers), 10000]
    int slots_per_worker = 4;                ///< concurrent jobs per worker (worker --slots); [1, 1024]
    int max_step_up = 10;                    ///< workers added per decision at most; [1, 10000]
    int max_step_down = 2;                   ///< workers removed per decision at most; [1, 10000]
    std::int64_t up_cooldown_ms = 5'000;     ///< no scale-up sooner than this after a change; [0, 3600000]
    std::int64_t down_cooldown_ms = 30'000;  ///< no scale-down sooner than this after a change; [0, 3600000]
    double up_confidence_z = 2.0;  ///< scale up only if the rate's lower bound (this many std. errors) needs it; [0, 5]
    double down_confidence_z =
        2.0;  ///< scale down only if the rate's upper bound (this many std. errors) allowed it; [0, 5]

    friend bool operator==(const observer_params&, const observer_params&) = default;

    /// The model target derived from the fields above.
    service_target target() const noexcept;
};

/// One violated rule: the field and a sentence saying what was expected and what was given.
struct param_error {
    std::string field;
    std::string reason;
    friend bool operator==(const param_error&, const param_error&) = default;
};

/// Every rule the parameters break (empty = valid).
std::vector<param_error> validate(const observer_params& p);

/// {"v":1, "<field>": value, ...}: every field, durations in integer ms.
boost::json::object to_json(const observer_params& p);

/// Parses a complete configuration: missing fields take their defaults (not the
/// previous values, so the compacted topic's last message alone defines the
/// configuration). Unknown fields, wrong types and values that fail validate()
/// are all reported. Never throws.
struct params_parse_result {
    observer_params params;  ///< meaningful only when errors is empty
    std::vector<param_error> errors;
    bool ok() const noexcept { return errors.empty(); }
};
params_parse_result params_from_json(const boost::json::value& v);
/// Same, from text (a JSON syntax error is reported as field "").
params_parse_result params_from_json(std::string_view text);

/// What a live update does: the new parameters if they are valid, else the
/// last good ones and the reasons.
struct params_update {
    observer_params params;  ///< in force after the update
    bool accepted = false;
    std::vector<param_error> errors;  ///< why it was rejected
};
params_update apply_params_update(const observer_params& last_good, const boost::json::value& v);

/// "field: reason; field: reason" for logs and reports.
std::string to_string(const std::vector<param_error>& errors);

}  // namespace faasd::stats
