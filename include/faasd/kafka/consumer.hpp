#pragma once
// A Kafka consumer on the io_context: group consumption (subscribe) or manual
// assignment (assign), driven by the consumer queue's io-event fd.
//
// poll() drains librdkafka's consumer queue without blocking (consumer_poll
// with timeout 0) and, when it is empty, awaits the queue's eventfd on the
// loop. Rebalances are served inside poll() on the loop thread:
// incremental_assign/unassign when rebalance_protocol() is COOPERATIVE
// (default strategy cooperative-sticky), assign/unassign otherwise, and the
// user's on_assigned / on_revoked hooks run right there.
//
// max.poll.interval.ms: librdkafka counts the time between two application
// polls. poll() polls librdkafka at least every max.poll.interval.ms / 4 (at
// most every 5 s) while it waits, so a consumer that keeps awaiting poll() is
// never dropped from the group, even when every partition is paused. A worker
// whose slots are all busy therefore pauses its partitions and keeps calling
// poll(), which then returns nothing but keeps the membership (and serves
// rebalances); it resumes when a slot frees up. Not calling poll() for longer
// than max.poll.interval.ms makes librdkafka leave the group: its partitions
// are revoked (on_revoked with lost=true at the next poll).
//
// Offsets: enable.auto.commit=false and enable.auto.offset.store=false. The
// application commits explicitly with commit(), passing the next position to
// read (message::next_position()); a commit is acknowledged by the group
// coordinator when the awaitable completes.
//
// Defaults: isolation.level=read_committed, auto.offset.reset=earliest,
// partition.assignment.strategy=cooperative-sticky, enable.partition.eof=true
// (used for caught_up(); EOF markers are never returned to the caller).
//
// Thread safety: loop thread only; poll() must not be awaited by two
// coroutines at once. Other calls may interleave with an outstanding poll().

#include <faasd/kafka/client.hpp>
#include <faasd/kafka/error.hpp>
#include <faasd/kafka/types.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct rd_kafka_consumer_group_metadata_s;

namespace faasd::kafka {

struct consumer_options : client_options {
    /// group.id. Required for subscribe() and commit(). Empty: an assign-only
    /// consumer (a private, never-joined group id is generated, since
    /// librdkafka 2.0.2 needs one for assign()).
    std::string group_id;
    std::string auto_offset_reset = "earliest";  ///< where to start without a committed offset
    bool read_committed = true;                  ///< isolation.level
    /// Called inside poll() (loop thread) after partitions were added to the
    /// assignment. Must not block; may start coroutines.
    std::function<void(const std::vector<topic_partition>&)> on_assigned;
    /// Called inside poll() or close() (loop thread) *before* the partitions
    /// are removed: the moment to hand back or abandon in-flight work of them.
    /// It returns the final positions to commit for those partitions (may be
    /// empty); the consumer sends that commit before unassigning and logs its
    /// outcome. `lost` is true when the partitions were lost without a clean
    /// rebalance (session timeout, max.poll.interval.ms exceeded): the
    /// returned positions are then ignored, another member owns the partitions.
    std::function<std::vector<topic_partition>(const std::vector<topic_partition>& revoked, bool lost)> on_revoked;
};

/// The consumer group's identity for transactions (send_offsets_to_transaction).
class consumer_group_metadata {
public:
    consumer_group_metadata() = default;
    explicit consumer_group_metadata(std::shared_ptr<rd_kafka_consumer_group_metadata_s> h) : h_(std::move(h)) {}
    rd_kafka_consumer_group_metadata_s* get() const noexcept { return h_.get(); }
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    std::shared_ptr<rd_kafka_consumer_group_metadata_s> h_;
};

class consumer {
public:
    /// Creates the librdkafka handle; serves logs, errors and commit results on
    /// `loop`. Throws kafka::exception (invalid_arg) for a bad configuration.
    consumer(boost::asio::any_io_executor loop, consumer_options opts);
    /// If close() was not awaited: destroys the handle on the pool without
    /// leaving the group cleanly (no rebalance callbacks run).
    ~consumer();
    consumer(consumer&&) noexcept;
    consumer& operator=(consumer&&) noexcept;
    consumer(const consumer&) = delete;
    consumer& operator=(const consumer&) = delete;

    /// Joins the group for these topics (needs group_id). Non-blocking.
    result<void> subscribe(const std::vector<std::string>& topics);

    /// Replaces the assignment with these partitions, each starting at its
    /// offset (offset_beginning, offset_end, offset_stored or a number).
    /// Resets caught_up(). No group membership is involved.
    result<void> assign(const std::vector<topic_partition>& partitions);

    /// Assigns every partition of the topics (metadata on the pool), starting at `start`.
    boost::asio::awaitable<result<void>> assign_topics(std::vector<std::string> topics,
                                                       std::int64_t start = offset_beginning);

    /// Waits until at least one message is available and returns up to
    /// `max_batch` of them, in partition order. Also returns (possibly empty)
    /// when caught_up() turns true. Serves rebalances and errors meanwhile.
    /// Cancellable through the coroutine's cancellation slot (throws
    /// boost::system::system_error(operation_aborted)). Throws
    /// kafka::exception on a fatal consumer error. Returns an empty batch once
    /// close() has begun.
    boost::asio::awaitable<std::vector<message>> poll(std::size_t max_batch = 256);

    /// As poll(max_batch), but returns an empty batch after `max_wait`.
    boost::asio::awaitable<std::vector<message>> poll(std::size_t max_batch, std::chrono::milliseconds max_wait);

    /// Stops fetching these partitions (offsets ignored); already fetched
    /// messages of them are discarded and fetched again after resume(), from
    /// the position after the last message poll() returned.
    result<void> pause(const std::vector<topic_partition>& partitions);
    result<void> resume(const std::vector<topic_partition>& partitions);
    /// pause()/resume() of the whole current assignment.
    result<void> pause_all();
    result<void> resume_all();

    /// The current assignment (offsets unset).
    std::vector<topic_partition> assignment() const;

    /// Commits these positions (next offset to read) for the group and
    /// completes when the coordinator acknowledged them. Errors: abortable
    /// (illegal_generation, unknown_member_id: the partitions are no longer
    /// ours), retryable (coordinator moving, rebalance_in_progress).
    boost::asio::awaitable<result<void>> commit(std::vector<topic_partition> positions);

    /// The group's committed offsets of these partitions (on the pool).
    boost::asio::awaitable<result<std::vector<topic_partition>>> committed(std::vector<topic_partition> partitions,
                                                                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

    /// True once every assigned partition has been read up to its end (the
    /// high watermark when it was reached, which is at least the one at
    /// assignment time); false with no assignment. Stays true as new messages
    /// arrive. Reset by assign() and by a rebalance that adds partitions.
    bool caught_up() const noexcept;

    /// Queries a partition's low and high watermarks from its leader (on the pool).
    boost::asio::awaitable<result<watermarks>> query_watermarks(topic_partition tp,
                                                                std::chrono::milliseconds timeout = std::chrono::seconds(10));

    /// The group metadata for producer::send_offsets_to_transaction().
    consumer_group_metadata group_metadata() const;

    /// Leaves the group (on_revoked runs for the current assignment, on the
    /// loop), stops serving and destroys the handle on the pool. Completes
    /// outstanding poll() calls with an empty batch. Idempotent.
    boost::asio::awaitable<void> close();

    /// The last readiness reported (see client.hpp).
    bool ready() const noexcept;
    /// The group id in use (the generated one for assign-only consumers).
    const std::string& group_id() const noexcept;
    std::string name() const;

    class impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace faasd::kafka
