#pragma once
// The observer's inputs: what happened to jobs and workers, each stamped with
// the time at which it happened (event time, milliseconds since the Unix
// epoch, taken by the process that saw it happen). The observer role decodes
// Kafka messages into these; everything in faasd::stats is a pure function of
// them and of a clock value passed in. docs/observer.md describes the mapping.

#include <faasd/core/error.hpp>
#include <faasd/jobs/model.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace faasd::stats {

/// Milliseconds since the Unix epoch, as in the job model.
using unix_ms = jobs::unix_ms;

/// An attempt of a job entered a jobs topic (the first submission, or a retry).
struct job_submitted {
    std::string id;
    int attempt = 1;
    unix_ms at = 0;  ///< when this attempt was queued (job_message.submitted_at for attempt 1)
    /// A retry waits for its backoff: no worker takes it before this time
    /// (job_message.not_before; 0 = at once). It counts as queued from
    /// max(at, not_before) on: waiting for a backoff is not waiting for a slot.
    unix_ms not_before = 0;
    friend bool operator==(const job_submitted&, const job_submitted&) = default;
};

/// A worker took an attempt off the queue and occupied a slot with it (a
/// `running` snapshot on the state topic).
struct job_started {
    std::string id;
    int attempt = 1;
    unix_ms at = 0;  ///< timing.started_at
    std::string worker;
    friend bool operator==(const job_started&, const job_started&) = default;
};

/// An attempt finished (one message on the results topic). It carries the whole
/// history of the attempt, so it also stands for the submission and the start.
struct job_finished {
    std::string id;
    int attempt = 1;
    unix_ms submitted_at = 0;  ///< when the attempt was queued; 0 = unknown
    unix_ms started_at = 0;    ///< when a slot took it; 0 = never ran (e.g. cancelled while queued)
    std::int64_t run_ms = 0;   ///< the function alone (timing.run_ms)
    unix_ms finished_at = 0;   ///< when the slot was released
    jobs::job_state state = jobs::job_state::succeeded;
    std::string worker;
    friend bool operator==(const job_finished&, const job_finished&) = default;
};

/// What a worker says about itself on the heartbeats topic.
enum class worker_state {
    up,        ///< taking jobs
    draining,  ///< finishing its jobs, taking no new ones
    down,      ///< gone (its last word)
};

struct worker_heartbeat {
    std::string worker;
    int slots = 0;  ///< concurrent jobs it can run
    int busy = 0;   ///< slots occupied when it sent this
    unix_ms at = 0;
    worker_state state = worker_state::up;
    friend bool operator==(const worker_heartbeat&, const worker_heartbeat&) = default;
};

/// The workers' consumer-group lag: the sum over the jobs partitions of
/// (high watermark - committed offset), sampled by the role at `at`.
struct lag_sample {
    unix_ms at = 0;
    std::int64_t lag = 0;
    friend bool operator==(const lag_sample&, const lag_sample&) = default;
};

/// Any input of the tracker.
using event = std::variant<job_submitted, job_started, job_finished, worker_heartbeat, lag_sample>;

/// The event time of any event (finished_at for job_finished).
unix_ms event_time(const event& e) noexcept;

const char* to_string(worker_state s) noexcept;
std::optional<worker_state> parse_worker_state(std::string_view s) noexcept;

/// Mapping from the wire model (docs/observer.md, "Inputs").
/// A jobs-topic message: `queued_at` is when this attempt was queued; for the
/// first attempt pass m.submitted_at, for a retry the message's Kafka timestamp.
job_submitted submitted_from_message(const jobs::job_message& m, unix_ms queued_at);
/// A results-topic message.
job_finished finished_from_result(const jobs::job_result& r);
/// A state-topic snapshot: a `running` one with a start time is a start
/// (attempt, started_at, worker); any other snapshot is none.
std::optional<job_started> started_from_status(const jobs::job_status& s);

/// The heartbeats-topic value: {"v":1,"worker":…,"slots":n,"busy":k,"at":ms,"state":"up"|"draining"|"down"}.
boost::json::object to_json(const worker_heartbeat& h);
/// errc::bad_message for a malformed value, errc::unsupported_version when "v" is not 1.
result<worker_heartbeat> heartbeat_from_json(const boost::json::value& v);

}  // namespace faasd::stats
