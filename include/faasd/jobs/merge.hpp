#pragma once
// The job-state merge rule (docs/architecture.md, "Job lifecycle and the state
// topic"). Every frontend replica folds the snapshots of the compacted state
// topic with it; the frontend also applies its own writes with it at once
// (read-your-writes). Pure: no clock, no I/O.
//
// The rule is a maximum over a total order of snapshots, so the outcome does
// not depend on the order in which a replica sees them (a replica that applied
// its own write early converges with one that read the log in order):
//
//   1. a terminal snapshot beats any non-terminal one: terminal is final, and
//      cancelled (terminal) beats queued and running of any attempt;
//   2. between two non-terminal snapshots, the higher (attempt, rank) wins,
//      rank queued < running;
//   3. between two terminal snapshots (a cancel racing a worker's finish, or a
//      redelivered attempt finishing twice), the one carrying a result wins,
//      then the higher attempt, then the earlier finished_at (the first finish
//      stays final);
//   4. what is still tied (duplicates) is broken by the later updated_at, then
//      the greater worker id, then the greater state, so that equal keys mean
//      interchangeable snapshots.

#include <faasd/jobs/model.hpp>

#include <compare>
#include <string_view>

namespace faasd::jobs {

/// Rank of a state within an attempt: queued 0, running 1, terminal 2.
int state_rank(job_state s) noexcept;

/// The fields of a snapshot that merge looks at. Views that store snapshots
/// in a compact form build this without materialising a job_status.
struct merge_key {
    job_state state = job_state::queued;
    int attempt = 1;
    bool has_result = false;
    unix_ms finished_at = 0;
    unix_ms updated_at = 0;
    std::string_view worker;
};

merge_key key_of(const job_status& s) noexcept;

/// The total order of snapshots: precedence(a, b) < 0 means b supersedes a.
std::strong_ordering precedence(const merge_key& a, const merge_key& b) noexcept;

/// Does a snapshot with key `incoming` replace the current one? (strictly greater)
inline bool supersedes(const merge_key& incoming, const merge_key& current) noexcept {
    return precedence(incoming, current) > 0;
}

/// What merge decided.
enum class merge_outcome {
    inserted,  ///< there was no current snapshot: incoming was moved into current
    replaced,  ///< incoming supersedes current: it was moved into current
    kept,      ///< current stays (incoming is older or an exact duplicate)
};

/// Folds `incoming` into `current` (empty when the job is unknown). `incoming`
/// is moved from only when it wins.
merge_outcome merge(std::optional<job_status>& current, job_status&& incoming);

}  // namespace faasd::jobs
