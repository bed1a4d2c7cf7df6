#pragma once
// Jobs in flight as the state topic shows them, and the reaper of lost
// at-most-once jobs (docs/observer.md, "The reaper").
//
// The observer folds every state snapshot into a job_table with the merge rule
// of jobs/merge.hpp, so it sees the same state as the frontend: a job's
// `running` snapshot names its attempt, start time and worker; the heartbeats
// say whether that worker is still alive. A worker that dies after the
// at-most-once commit leaves its job `running` for ever: its message is never
// delivered again. When such a job's worker has been silent for lost_after,
// reap() returns the records that end it (a terminal `failed` snapshot with
// error `worker_lost` and the attempt's result), built only from what the
// table holds, so that every observer, and the same observer again, builds
// the same ones. At-least-once and exactly-once jobs of a silent worker are
// delivered again by Kafka: they are only counted (orphaned).
//
// Pure: no clock (now is an argument), no I/O. Thread safety: none; one owner.
// Memory: the running jobs, plus a compact marker per job that ended in the
// last terminal_memory_ms (at most max_ended of them).

#include <faasd/jobs/model.hpp>
#include <faasd/stats/events.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace faasd::stats {

struct reaper_config {
    /// A running job whose worker sent no heartbeat (and whose snapshot was
    /// not updated) for this long is lost. 0: never reap, count nothing.
    std::int64_t lost_after_ms = 20'000;
    /// Ended jobs are remembered this long, so that a `running` snapshot read
    /// after the job ended (a frontend cancel racing the start) is ignored.
    std::int64_t terminal_memory_ms = 600'000;
    std::size_t max_ended = 200'000;  ///< ended jobs remembered at most (oldest forgotten first)
};

/// The records that end one lost at-most-once job.
struct lost_job {
    jobs::job_status snapshot;  ///< terminal `failed` (worker_lost) with the result inside: for the state topic
    jobs::job_result result;    ///< the attempt's result: for the results topic
    unix_ms last_seen = 0;      ///< the last sign of life of the job or its worker
};

/// What one reap() found.
struct reap_plan {
    std::vector<lost_job> lost;  ///< at-most-once jobs to end now (each returned once)
    std::size_t running = 0;     ///< jobs running now (per the state topic)
    std::size_t orphaned = 0;    ///< running at-least-once / exactly-once jobs of silent workers (Kafka redelivers them)
    std::size_t ending = 0;      ///< lost jobs returned earlier whose terminal snapshot has not been read back yet
};

/// Counters over the table's life.
struct job_table_counters {
    std::uint64_t snapshots = 0;  ///< add() calls
    std::uint64_t starts = 0;     ///< start events returned by add()
    std::uint64_t reaped = 0;     ///< lost jobs returned by reap()
    std::size_t running = 0;      ///< running jobs held now
    std::size_t ended = 0;        ///< ended jobs remembered now
};

class job_table {
public:
    explicit job_table(reaper_config cfg = {});
    void configure(const reaper_config& cfg) { cfg_ = cfg; }
    const reaper_config& config() const noexcept { return cfg_; }

    /// Folds a state-topic snapshot by the merge rule. When it makes the job
    /// `running` (a newer attempt or a redelivery), returns the start it
    /// shows. `now` only ages out what is remembered of ended jobs: a
    /// terminal snapshot that ended more than terminal_memory_ms before it is
    /// not remembered.
    std::optional<job_started> add(const jobs::job_status& s, unix_ms now);
    /// A results-topic message: that attempt ended (its snapshot may come later).
    void add_result(const std::string& id, int attempt);
    /// A heartbeat: the worker was alive at `at`.
    void add_heartbeat(const std::string& worker, unix_ms at);

    /// The running jobs whose worker has been silent for lost_after_ms, as of
    /// now: at-most-once ones are returned (once; see retry()) with the
    /// records that end them, the others counted as orphaned.
    reap_plan reap(unix_ms now);
    /// Publishing a lost job's records failed: return it again at the next reap().
    void retry(const std::string& id);

    /// Forgets ended jobs older than terminal_memory_ms and workers silent for
    /// longer than that with no running job.
    void evict(unix_ms now);

    job_table_counters counters() const noexcept;

private:
    struct entry {
        jobs::job_state state = jobs::job_state::queued;
        int attempt = 1;
        bool has_result = false;
        unix_ms finished_at = 0;
        unix_ms updated_at = 0;
        std::string worker;
        std::unique_ptr<jobs::job_status> running;  // the snapshot, while running
        int ended_attempt = 0;                      // the highest attempt with a result seen
        bool ending = false;                        // returned by reap(), terminal snapshot not read back yet
        unix_ms ended_at = 0;                       // when it became terminal (memory)
    };
    void remember_ended(const std::string& id, entry& e, unix_ms at);

    reaper_config cfg_;
    std::unordered_map<std::string, entry> jobs_;
    std::unordered_set<std::string> running_;            // ids of jobs_ in state running
    std::deque<std::pair<unix_ms, std::string>> ended_;  // terminal jobs in the order they ended
    std::unordered_map<std::string, unix_ms> workers_;   // last heartbeat
    job_table_counters counters_;
};

/// The records that end a lost at-most-once job: its `running` snapshot turned
/// `failed` with error worker_lost, finished (and updated) at `declared_at`,
/// with the attempt's result inside and beside it. The same inputs give the
/// same records, so publishing them twice changes nothing (merge rule 4).
lost_job worker_lost_outcome(const jobs::job_status& running, unix_ms last_seen, unix_ms declared_at);

}  // namespace faasd::stats
