#pragma once
// The in-memory job view every frontend replica materialises from the
// compacted state topic (docs/frontend.md, "State view"). Pure data structure:
// no I/O, no clock, loop-thread only (not thread-safe).
//
// Snapshots are folded with jobs::merge; a tombstone erases the job. The view
// stores jobs compactly (about 110 bytes per live job plus its stored result):
// ids inline, repeated strings (owners, repositories, refs, workers, error
// codes, tag lists) interned with reference counts, rare fields out of line.
// Indexes: by id, by owner newest first (opaque-cursor paging), and counters
// per state and per owner (unfinished jobs).
//
// Results: a terminal snapshot's result is kept as timing numbers plus one
// JSON text (output, stdout, stderr, outputs, error). When that text exceeds
// view_limits::max_result_bytes the result is capped: output is dropped,
// stdout and stderr keep their last bytes, and "result_capped": true is set.
// The full result stays on the results topic for 7 days (docs/frontend.md).

#include <faasd/jobs/model.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::jobs {

struct view_limits {
    std::size_t max_result_bytes = 16 * 1024;  ///< stored result JSON text per job; larger results are capped
    std::size_t remember_erased = 16 * 1024;   ///< erased ids remembered to drop late duplicates
};

/// What apply() did.
enum class apply_outcome {
    inserted,  ///< a new job
    replaced,  ///< the snapshot superseded the stored one (a visible change)
    kept,      ///< older or duplicate: nothing changed
    ignored,   ///< invalid id, or a late duplicate of an erased job
};

/// One page of GET /v1/jobs.
struct job_page {
    std::vector<job_status> items;  ///< newest first, without results
    std::string next_cursor;        ///< empty when there is nothing more
};

/// Counts of jobs by state, indexed by static_cast<int>(job_state).
using state_counts = std::array<std::size_t, 6>;

class job_view {
public:
    explicit job_view(view_limits limits = {});
    ~job_view();
    job_view(const job_view&) = delete;
    job_view& operator=(const job_view&) = delete;

    /// Folds a snapshot into the view with jobs::merge.
    apply_outcome apply(const job_status& s);

    /// A tombstone: drops the job and remembers its id (with submitted_at) so
    /// that late duplicates of the erased job do not bring it back. Returns
    /// false if the job was unknown.
    bool erase(std::string_view id);

    /// The job without its result (result stays empty), or nothing.
    std::optional<job_status> get(std::string_view id) const;

    /// The job with its stored result (capped results carry result_capped).
    std::optional<job_status> get_with_result(std::string_view id) const;

    /// The stored result as JSON text (an object with id, state, attempt,
    /// worker, exit_code, timing, output, stdout, stderr, outputs, error, and
    /// result_capped when capped), without re-parsing; nothing when the job is
    /// unknown or has no result.
    std::optional<std::string> result_json(std::string_view id) const;

    bool contains(std::string_view id) const;
    /// The owner's subject of a job ("" when unknown): authorisation checks
    /// without materialising the job.
    std::string_view owner_of(std::string_view id) const;
    std::optional<job_state> state_of(std::string_view id) const;

    /// The owner's jobs, newest first (by submitted_at, then id), optionally
    /// only those in `state`. `cursor` is a next_cursor from an earlier page
    /// ("" for the first). At most `limit` items; at most `max_scan` jobs are
    /// examined, so a filtered page may be short while next_cursor is still
    /// set. A malformed cursor gives nothing (check with is_valid_cursor).
    job_page list(std::string_view owner_subject, std::optional<job_state> state, std::size_t limit,
                  std::string_view cursor, std::size_t max_scan = 10000) const;
    static bool is_valid_cursor(std::string_view cursor);

    std::size_t size() const noexcept;
    std::size_t unfinished(std::string_view owner_subject) const;
    const state_counts& counts() const noexcept;

    /// An estimate of the heap bytes held by the view (records, indexes,
    /// interned strings, stored results), for metrics and the memory bench.
    std::size_t memory_bytes() const;

    const view_limits& limits() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// Encodes a result as the view stores it and returns the stored JSON text;
/// exposed for tests of the capping rule.
std::string capped_result_json(const job_result& r, std::size_t max_bytes);

}  // namespace faasd::jobs
