#pragma once
// Kafka topic names, all sharing one configurable prefix (default "faasd.").
// docs/architecture.md describes what each topic carries and who reads it.

#include <faasd/jobs/model.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace faasd::jobs {

struct topic_names {
    std::string jobs_at_most_once;   ///< <p>jobs.at-most-once: submissions with delivery at-most-once
    std::string jobs_at_least_once;  ///< <p>jobs.at-least-once
    std::string jobs_exactly_once;   ///< <p>jobs.exactly-once
    std::string state;               ///< <p>state: compacted job-state snapshots, key = job id
    std::string results;             ///< <p>results: one result per finished attempt, key = job id
    std::string cancel;              ///< <p>cancel: cancellation requests, key = job id
    std::string heartbeats;          ///< <p>heartbeats: worker announcements, key = worker id
    std::string observer;            ///< <p>observer: reports and scaling decisions
    std::string observer_config;     ///< <p>observer-config: compacted live parameters
    std::string dead_letter;         ///< <p>dead-letter: poison messages and exhausted retries

    static topic_names with_prefix(std::string_view prefix);

    const std::string& jobs(delivery_mode d) const noexcept;
    std::vector<std::string> all_jobs() const;
    std::vector<std::string> all() const;
    /// Topics whose cleanup.policy is "compact".
    bool compacted(std::string_view topic) const noexcept;
};

}  // namespace faasd::jobs
