#pragma once
// The worker's bounded view of live jobs on the state topic, for counting
// deliveries (pure; docs/semantics.md "Bounded deliveries").
//
// A worker that dies in the middle of a run (killed, out of memory, a
// function that brings the machine down) leaves its job's last snapshot at
// `running`, and the message is delivered again to another worker with the
// same attempt. Every running snapshot carries `deliveries`, the number of
// deliveries of that attempt that reached `running`; the next worker that
// takes the message finds the snapshot here and counts one more. A graceful
// hand-back (a revoked partition, a stop after the drain timeout) publishes a
// `queued` snapshot of the same attempt with the same count, so it is not
// counted. The lifecycle (lifecycle.hpp, action count_delivery) ends a job
// whose count passes --max-deliveries with worker_lost.
//
// Only the last snapshot of each job matters, and only while it is running or
// handed back: terminal snapshots, new attempts' queued snapshots and
// tombstones drop the job. At most `max_entries` jobs are kept (the oldest
// first out), so a worker's memory stays bounded whatever the topic holds.
//
// Thread safety: none (one loop thread).

#include <faasd/jobs/model.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace faasd::worker {

class delivery_view {
public:
    explicit delivery_view(std::size_t max_entries = 100000);

    /// Folds a snapshot read from the state topic (in log order).
    void apply(const jobs::job_status& s);
    /// A tombstone: the job was erased.
    void erase(std::string_view id);

    /// This process handed attempt `attempt` of `id` back (its own running
    /// snapshot then does not count as a lost worker).
    void handed_back(const std::string& id, int attempt);

    /// Deliveries of attempt `attempt` that already happened and count, as far
    /// as the view knows: the running snapshot's `deliveries` (1 if it has
    /// none), or the same without the last one when that delivery was handed
    /// back (a queued snapshot of the attempt with a count, or a running one by
    /// `self` that this process handed back). 0 when the view knows nothing of
    /// the attempt.
    int prior_deliveries(std::string_view id, int attempt, std::string_view self) const;

    std::size_t size() const noexcept { return by_id_.size(); }

private:
    struct entry {
        jobs::job_state state = jobs::job_state::queued;
        int attempt = 1;
        int deliveries = 0;
        std::string worker;
        std::uint64_t seq = 0;
    };
    void forget_oldest();

    std::size_t max_;
    std::uint64_t next_seq_ = 1;
    std::unordered_map<std::string, entry> by_id_;
    std::deque<std::pair<std::uint64_t, std::string>> order_;  // insertion order (stale pairs skipped)
    std::set<std::pair<std::string, int>> handed_back_;
    std::deque<std::pair<std::string, int>> handed_back_order_;
};

}  // namespace faasd::worker
