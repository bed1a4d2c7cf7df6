#pragma once
// Which offsets a worker may commit (pure; docs/semantics.md).
//
// A worker runs several jobs of one partition at once, and they finish in any
// order. Kafka commits a position per partition, and committing position n
// acknowledges every offset below n, so the position committed is the
// *watermark*: the lowest offset received and not yet released, or one past
// the highest offset received when every offset is released.
//
//   received 10 11 12 13, released 11 13  ->  watermark 10 (10 still runs)
//   release 10                             ->  watermark 12
//   release 12                             ->  watermark 14
//
// Thread safety: none (one loop thread).

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace faasd::worker {

/// A partition of a topic (the core's own type: no Kafka headers here).
struct partition_id {
    std::string topic;
    std::int32_t partition = 0;
    friend auto operator<=>(const partition_id&, const partition_id&) = default;
};

/// A position to commit: the next offset to read.
struct commit_position {
    partition_id partition;
    std::int64_t offset = 0;
    friend bool operator==(const commit_position&, const commit_position&) = default;
};

class offset_tracker {
public:
    /// A message was received. Offsets of one partition arrive in increasing
    /// order; an offset at or below one already seen is ignored (a redelivery
    /// after pause/resume) and false is returned.
    bool track(const partition_id& p, std::int64_t offset);

    /// The work of a received message is finished (or handed to a
    /// transaction): it no longer holds the watermark back. Unknown offsets are
    /// ignored (false).
    bool release(const partition_id& p, std::int64_t offset);

    /// The position that may be committed for p, or nullopt if nothing was received.
    std::optional<std::int64_t> watermark(const partition_id& p) const;

    /// Every partition whose watermark is above its last committed position.
    std::vector<commit_position> pending() const;

    /// Records an acknowledged commit (positions only move forward).
    void committed(const partition_id& p, std::int64_t position);
    /// The last acknowledged position of p (-1 if none).
    std::int64_t committed_position(const partition_id& p) const;
    /// True when an acknowledged commit covers the offset (committed position > offset).
    bool covered(const partition_id& p, std::int64_t offset) const;

    /// Drops a partition (revoked or lost): its state is forgotten.
    void forget(const partition_id& p);

    /// Received but not released offsets of p (all partitions with the overload).
    std::size_t outstanding(const partition_id& p) const;
    std::size_t outstanding() const;
    std::vector<partition_id> partitions() const;

private:
    struct state {
        std::set<std::int64_t> open;  // received, not released
        std::int64_t next = -1;       // highest received + 1 (-1: nothing)
        std::int64_t committed = -1;  // last acknowledged position
    };
    std::map<partition_id, state> parts_;
};

}  // namespace faasd::worker
