#pragma once
// The report the observer publishes every tick on the observer topic (key
// "report"): the measured numbers of both windows, the model's prediction, the
// decision and its reason. docs/observer.md, "Report", shows an example.

#include <faasd/stats/controller.hpp>
#include <faasd/stats/params.hpp>
#include <faasd/stats/window.hpp>

#include <boost/json/object.hpp>

#include <string>

namespace faasd::stats {

struct observer_report {
    unix_ms at = 0;
    observation short_window;
    observation long_window;
    scaling_decision decision;
    tracker_counters tracker;
    observer_params params;  ///< the parameters in force
};

/// One tick's pure work after the events are in: evict at now, summarize both
/// windows ending at now - p.settle_ms, decide at now. `current_workers` is
/// the target the actuator was given; the live workers come from the short
/// window's heartbeats (controller::decide).
observer_report observe_tick(tracker& t, controller& c, int current_workers, const observer_params& p, unix_ms now);

/// {"v":1,"at":…,"measured":{…},"windows":{"short":…,"long":…},"model":{…},"decision":{…},"params":{…}}.
/// Non-finite numbers are written as null.
boost::json::object to_json(const observer_report& r);
std::string encode(const observer_report& r);

}  // namespace faasd::stats
