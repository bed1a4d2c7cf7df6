#include <faasd/jobs/topics.hpp>

namespace faasd::jobs {

topic_names topic_names::with_prefix(std::string_view p) {
    std::string prefix(p);
    return topic_names{
        .jobs_at_most_once = prefix + "jobs.at-most-once",
        .jobs_at_least_once = prefix + "jobs.at-least-once",
        .jobs_exactly_once = prefix + "jobs.exactly-once",
        .state = prefix + "state",
        .results = prefix + "results",
        .cancel = prefix + "cancel",
        .heartbeats = prefix + "heartbeats",
        .observer = prefix + "observer",
        .observer_config = prefix + "observer-config",
        .dead_letter = prefix + "dead-letter",
    };
}

const std::string& topic_names::jobs(delivery_mode d) const noexcept {
    switch (d) {
        case delivery_mode::at_most_once: return jobs_at_most_once;
        case delivery_mode::exactly_once: return jobs_exactly_once;
        case delivery_mode::at_least_once: break;
    }
    return jobs_at_least_once;
}

std::vector<std::string> topic_names::all_jobs() const {
    return {jobs_at_most_once, jobs_at_least_once, jobs_exactly_once};
}

std::vector<std::string> topic_names::all() const {
    return {jobs_at_most_once, jobs_at_least_once, jobs_exactly_once, state, results, cancel,
            heartbeats, observer, observer_config, dead_letter};
}

bool topic_names::compacted(std::string_view topic) const noexcept {
    return topic == state || topic == observer_config;
}

}  // namespace faasd::jobs
