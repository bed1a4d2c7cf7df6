#pragma once
// Sliding-window statistics over event time. The tracker ingests events in any
// order (late and duplicated ones included), keeps what the longest window can
// still need, and answers summarize(now, window) for any window ending at
// `now`. It never reads a clock: `now` is always an argument.
//
// Thread safety: none; one owner (the observer role's loop) calls it.
// Memory: bounded by tracker_config::max_records and max_workers.

#include <faasd/stats/events.hpp>
#include <faasd/stats/params.hpp>

#include <boost/json/object.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace faasd::stats {

/// Summary of a sample of durations, in seconds (all 0 when count is 0).
/// Percentiles are nearest-rank: the ceil(p n)-th smallest value.
struct distribution {
    std::size_t count = 0;
    double mean = 0;
    double stddev = 0;  ///< sample standard deviation (n - 1); 0 when count < 2
    double p50 = 0;
    double p95 = 0;
    double p99 = 0;
    double max = 0;
};

/// Where observation::queue_length came from.
enum class queue_source {
    lag,     ///< a fresh consumer-lag sample minus busy slots (the events are not known to be complete)
    events,  ///< eligible and not started, from the events (capped by a fresh lag sample)
};
const char* to_string(queue_source s) noexcept;

/// What one window ending at `at` shows. Rates are per second, durations seconds.
struct observation {
    unix_ms at = 0;
    std::int64_t window_ms = 0;  ///< the requested window
    double span_s = 0;           ///< its covered part: shorter while history since known_since is shorter

    // Flows inside the window (event time in (at - span, at]).
    std::size_t arrivals = 0;     ///< attempts queued
    std::size_t starts = 0;       ///< attempts that took a slot
    std::size_t completions = 0;  ///< attempts finished (any terminal state)
    double arrival_rate = 0;      ///< lambda = arrivals / span
    double start_rate = 0;
    double completion_rate = 0;

    // Durations. response and service: attempts finished in the window;
    // wait: attempts started in the window.
    distribution response;    ///< W  = finished_at - submitted_at
    distribution wait;        ///< Wq = started_at - submitted_at
    distribution service;     ///< S  = finished_at - started_at (slot occupancy)
    double mean_run_s = 0;    ///< the function alone (run_ms), attempts finished in the window
    double service_rate = 0;  ///< mu = 1 / mean S per slot; 0 without samples

    // State at `at`.
    std::int64_t queued_from_events = 0;         ///< attempts eligible (past not_before) and not started
    std::optional<std::int64_t> lag;             ///< newest lag sample not older than stale_after
    /// lag + attempts submitted since that sample: an upper bound of the queue
    /// (every waiting job is above its partition's committed offset).
    std::optional<std::int64_t> lag_bound;
    std::optional<std::int64_t> queue_from_lag;  ///< max(0, lag - busy): inflated by jobs finished out of order
    /// The events are complete up to at least stale_after before `at` (the role
    /// said it was caught up with every topic, mark_caught_up()).
    bool events_fresh = false;
    /// events_fresh: min(queued_from_events, lag_bound); else queue_from_lag
    /// when there is a fresh lag sample; else queued_from_events.
    std::int64_t queue_length = 0;
    queue_source queue_from = queue_source::events;
    bool workers_known = false;  ///< some heartbeat was ever seen (else workers = 0 means "unknown")
    int workers = 0;           ///< live workers in state up (heartbeat not older than stale_after)
    int draining_workers = 0;  ///< live workers in state draining
    int slots = 0;             ///< slots of the up workers
    int busy = 0;              ///< busy slots of up and draining workers
    double utilisation = 0;    ///< rho = lambda / (slots mu); +inf if lambda > 0 and slots mu = 0
    double busy_fraction = 0;  ///< time-average busy slots over the window / slots (measured rho)

    // Little's law as a consistency check (L = lambda W, Lq = lambda Wq).
    double l_time_average = 0;   ///< time-average number of attempts in the system over the window
    double l_little = 0;         ///< arrival_rate * response.mean
    double lq_time_average = 0;  ///< time-average number waiting
    double lq_little = 0;        ///< arrival_rate * wait.mean
    double little_error = 0;     ///< |L - lambda W| / max(L, lambda W); 0 when both are 0
};

/// What the tracker keeps and for how long.
struct tracker_config {
    /// Job events older than (newest evict() time - retention) are evicted, and
    /// such events arriving later are dropped as late. Must cover the longest
    /// window plus the lateness to tolerate.
    std::int64_t retention_ms = 120'000;
    /// Attempts queued but never seen starting or finishing are kept this long
    /// (they count in queued_from_events until then).
    std::int64_t pending_horizon_ms = 3'600'000;
    std::int64_t stale_after_ms = 10'000;  ///< heartbeats and lag samples older than this are ignored
    std::size_t max_records = 200'000;     ///< attempts kept at most (oldest evicted first)
    std::size_t max_workers = 100'000;     ///< workers remembered at most
    /// The tracker has complete history from this time on (the role's replay
    /// start); windows reaching further back are shortened to it so rates are
    /// not diluted. Default: no such limit.
    unix_ms known_since = std::numeric_limits<unix_ms>::min();
};

/// retention = 2 x long window; stale_after from the parameters.
tracker_config tracker_config_for(const observer_params& p, unix_ms known_since = std::numeric_limits<unix_ms>::min());

/// Counters over the tracker's life (for the report and for tests).
struct tracker_counters {
    std::uint64_t events = 0;      ///< ingested calls
    std::uint64_t duplicates = 0;  ///< events that added nothing new (redeliveries)
    std::uint64_t late = 0;        ///< dropped: older than the retention horizon
    std::uint64_t evicted = 0;     ///< attempts dropped by age
    std::uint64_t overflow = 0;    ///< attempts dropped because max_records was reached
    std::size_t records = 0;       ///< attempts held now
    std::size_t workers = 0;       ///< workers held now
};

/// What add() did with an event.
enum class ingest_result {
    added,      ///< new information
    duplicate,  ///< already known (same job id and attempt, same field)
    late,       ///< older than the retention horizon: ignored
    invalid,    ///< missing id/worker or non-positive time: ignored
};

class tracker {
public:
    explicit tracker(tracker_config cfg = {});

    /// Replaces the configuration (live parameter change); takes effect at the next evict().
    void configure(const tracker_config& cfg);
    const tracker_config& config() const noexcept { return cfg_; }

    /// Ingests an event. Job events are keyed by (id, attempt): a field already
    /// known is kept (first value wins), except that a job_finished overrides
    /// the submission and start times it carries (the result is authoritative).
    ingest_result add(const event& e);
    ingest_result add(const job_submitted& e);
    ingest_result add(const job_started& e);
    ingest_result add(const job_finished& e);
    ingest_result add(const worker_heartbeat& e);
    ingest_result add(const lag_sample& e);

    /// The caller has read every event source up to `at` (its consumer had
    /// nothing more to give at that time). Windows ending no later than
    /// stale_after after the newest such mark count as fresh: their queue
    /// comes from the events rather than from the lag. Never moves back.
    void mark_caught_up(unix_ms at) noexcept;

    /// Advances the retention horizon to now - retention and drops what lies
    /// beyond it (the horizon never moves back). Call once per tick.
    void evict(unix_ms now);

    /// Statistics of the window (now - window_ms, now]. Pure: does not change the tracker.
    observation summarize(unix_ms now, std::int64_t window_ms) const;

    tracker_counters counters() const noexcept;

private:
    struct key {
        std::string id;
        int attempt;
        friend bool operator==(const key&, const key&) = default;
    };
    struct key_hash {
        std::size_t operator()(const key& k) const noexcept;
    };
    // One attempt; 0 = not known.
    struct record {
        unix_ms submitted = 0;
        unix_ms not_before = 0;  // eligible from max(submitted, not_before)
        unix_ms started = 0;
        unix_ms finished = 0;
        std::int64_t run_ms = 0;
        bool finished_seen = false;  // a job_finished arrived (started may be 0: never ran)
        unix_ms latest() const noexcept;
        unix_ms eligible() const noexcept { return std::max(submitted, not_before); }
    };
    record* find_or_insert(const std::string& id, int attempt, bool& inserted);
    bool is_late(unix_ms t) const noexcept;
    /// The common start of every add(): counts the event; invalid (no id or no
    /// time) or late events get their result, accepted ones nullopt.
    std::optional<ingest_result> refuse(const std::string& subject, unix_ms at);
    void enforce_cap();

    tracker_config cfg_;
    unix_ms horizon_ = std::numeric_limits<unix_ms>::min();  // events before this are late
    std::unordered_map<key, record, key_hash> records_;
    std::unordered_map<std::string, worker_heartbeat> workers_;
    std::deque<lag_sample> lags_;  // sorted by time, bounded
    unix_ms caught_up_at_ = 0;     // mark_caught_up(); 0 = never
    bool heartbeats_seen_ = false;
    tracker_counters counters_;
};

boost::json::object to_json(const distribution& d);
boost::json::object to_json(const observation& o);

}  // namespace faasd::stats
