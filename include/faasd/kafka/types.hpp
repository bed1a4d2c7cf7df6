#pragma once
// Plain data exchanged with the Kafka adapters: messages read, records to
// write, partitions with offsets, delivery reports, watermarks, metadata.
// Owning values (std::string), safe to move between coroutines.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::kafka {

/// Logical offsets (librdkafka's RD_KAFKA_OFFSET_*).
inline constexpr std::int64_t offset_beginning = -2;  ///< the oldest retained message
inline constexpr std::int64_t offset_end = -1;        ///< the next message produced after assignment
inline constexpr std::int64_t offset_stored = -1000;  ///< the group's committed offset (else auto.offset.reset)
inline constexpr std::int64_t offset_invalid = -1001; ///< no offset

/// A partition of a topic, with an offset whose meaning depends on the call:
/// for commit() it is the *next* offset to read (last processed + 1); for
/// assign() the start position; for committed_offsets() the committed offset
/// (offset_invalid when the group has none).
struct topic_partition {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t offset = offset_invalid;

    friend auto operator<=>(const topic_partition&, const topic_partition&) = default;
};

/// One Kafka record header. A header may have a null value.
struct header {
    std::string key;
    std::optional<std::string> value;

    friend bool operator==(const header&, const header&) = default;
};

/// A message read by a consumer.
struct message {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t offset = 0;
    std::optional<std::string> key;
    std::optional<std::string> value;  ///< nullopt: a tombstone (delete marker of a compacted topic)
    std::int64_t timestamp_ms = -1;    ///< create time (or log-append time), -1 if unknown
    std::vector<header> headers;

    bool tombstone() const noexcept { return !value.has_value(); }
    /// The position to commit once this message is processed (offset + 1).
    topic_partition next_position() const { return {topic, partition, offset + 1}; }
    /// The first header with this key, if any.
    const header* find_header(std::string_view k) const noexcept {
        for (const auto& h : headers)
            if (h.key == k) return &h;
        return nullptr;
    }
};

/// A record to produce.
struct record {
    std::string topic;
    std::optional<std::string> key;
    std::optional<std::string> value;         ///< nullopt: produce a tombstone
    std::vector<header> headers;
    std::optional<std::int32_t> partition;    ///< nullopt: chosen by the key (murmur2, as Java clients do)
    std::optional<std::int64_t> timestamp_ms; ///< nullopt: now
};

/// The broker's acknowledgement of a produced record.
struct delivery {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t offset = offset_invalid;  ///< offset_invalid when the broker did not return it
    std::int64_t timestamp_ms = -1;
};

/// Low and high watermarks of a partition: the first retained offset and the
/// offset the next message will get (high - low = messages retained).
struct watermarks {
    std::int64_t low = offset_invalid;
    std::int64_t high = offset_invalid;
};

/// Watermarks of one partition, as returned for a set of topics.
struct partition_watermarks {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t low = offset_invalid;
    std::int64_t high = offset_invalid;
};

/// A consumer group's progress on one partition.
struct partition_lag {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t committed = offset_invalid;  ///< offset_invalid: the group never committed here
    std::int64_t high = offset_invalid;
    /// Messages not yet committed: high - committed, or high - low when nothing is committed.
    std::int64_t lag = 0;
};

/// Cluster metadata of a partition (broker ids).
struct partition_metadata {
    std::int32_t id = 0;
    std::int32_t leader = -1;
    std::vector<std::int32_t> replicas;
    std::vector<std::int32_t> in_sync_replicas;
};

/// Cluster metadata of a topic; `partitions` sorted by id.
struct topic_metadata {
    std::string name;
    std::vector<partition_metadata> partitions;
};

/// One broker of the cluster.
struct broker_metadata {
    std::int32_t id = 0;
    std::string host;
    int port = 0;
};

}  // namespace faasd::kafka
