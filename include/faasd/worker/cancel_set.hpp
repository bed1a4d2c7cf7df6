#pragma once
// The ids of cancelled jobs a worker remembers (pure): bounded in size and in
// time, so that a job cancelled before any worker picked it up is skipped
// when it arrives, without the set growing forever.
//
// Thread safety: none (one loop thread).

#include <faasd/jobs/model.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

namespace faasd::worker {

class cancel_set {
public:
    /// Keeps at most `max_entries` ids (the oldest go first), each for `ttl`
    /// after the time it was cancelled.
    cancel_set(std::size_t max_entries, std::chrono::milliseconds ttl);

    /// Remembers that job `id` was cancelled at `at` (the request's time).
    /// Entries older than the ttl relative to `now` are not added.
    void add(std::string id, jobs::unix_ms at, jobs::unix_ms now);
    /// True when `id` was cancelled and the entry has not expired at `now`.
    bool contains(std::string_view id, jobs::unix_ms now) const;
    /// Drops entries older than the ttl.
    void expire(jobs::unix_ms now);

    std::size_t size() const noexcept { return by_id_.size(); }

private:
    std::size_t max_;
    std::int64_t ttl_ms_;
    std::unordered_map<std::string, jobs::unix_ms> by_id_;
    std::deque<std::pair<jobs::unix_ms, std::string>> order_;  // insertion order
};

}  // namespace faasd::worker
