#pragma once
// An idempotent (optionally transactional) Kafka producer on the io_context.
//
// Delivery reports are librdkafka events on the handle's main queue; the
// queue's io-event fd is watched by an asio::posix::stream_descriptor and a
// pump coroutine drains the queue on the loop, completing the matching
// send(). Blocking calls (flush, transactional calls, destroy) run on the
// blocking pool; while they wait, the loop keeps serving delivery reports.
//
// Defaults: enable.idempotence=true, acks=all, partitioner=murmur2_random
// (same partition for a key as Java clients), linger.ms=5. client_options::
// properties override them, except that a durable producer (the default)
// refuses properties that would weaken acks=all or enable.idempotence=true.
//
// Thread safety: a producer is used from the loop thread only (any number of
// coroutines at once). Its completions resume on the executor given at
// construction.

#include <faasd/kafka/client.hpp>
#include <faasd/kafka/error.hpp>
#include <faasd/kafka/types.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace faasd::kafka {

class consumer;

struct producer_options : client_options {
    /// Set to enable transactions (transactional.id); empty: idempotent only.
    std::string transactional_id;
    /// Upper bound on records waiting for room in librdkafka's queue (post()
    /// and send() on queue-full). post() drops and counts beyond it; send()
    /// returns errc::queue_full (retryable).
    std::size_t max_backlog = 100000;
    /// Durable (default): `properties` may not weaken acks=all or
    /// enable.idempotence=true (see durability_violation); the constructor
    /// throws kafka::exception (invalid_arg) if they do. A delivered record is
    /// then on min.insync.replicas brokers, and retries add no duplicates.
    bool durable = true;
};

/// Why these librdkafka properties would weaken a durable producer, or "" if
/// they do not: `acks` or its alias `request.required.acks` other than all or
/// -1, or `enable.idempotence` other than true. Pure; roles call it to refuse
/// --kafka-property at start-up, the producer calls it when durable.
std::string durability_violation(const std::map<std::string, std::string>& properties);

/// Counters, for logs and the observer.
struct producer_stats {
    std::uint64_t delivered = 0;    ///< acknowledged records (send and post)
    std::uint64_t failed = 0;       ///< records whose delivery failed (send and post)
    std::uint64_t post_failed = 0;  ///< post() records that failed or were dropped
    std::size_t in_flight = 0;      ///< handed to librdkafka, waiting for the delivery report
    std::size_t backlog = 0;        ///< waiting for room in librdkafka's queue
};

class producer {
public:
    /// Creates the librdkafka handle and starts serving its queue on `loop`
    /// (the io_context's executor: the loop thread). Throws kafka::exception
    /// (invalid_arg) for a bad configuration.
    producer(boost::asio::any_io_executor loop, producer_options opts);
    /// If close() was not awaited: purges undelivered records (their send()
    /// calls complete with errc::destroy) and destroys the handle on the pool.
    ~producer();
    producer(producer&&) noexcept;
    producer& operator=(producer&&) noexcept;
    producer(const producer&) = delete;
    producer& operator=(const producer&) = delete;

    /// Produces one record and completes when the broker acknowledged it
    /// (acks=all: all in-sync replicas have it) or delivery failed: retryable
    /// (msg_timed_out, not_enough_replicas...), permanent (msg_size_too_large,
    /// unknown_topic...), abortable (inside a transaction: the transaction must
    /// be aborted). Throws kafka::exception on a fatal producer error. When
    /// librdkafka's queue is full, waits (on the loop, without blocking it) for
    /// delivery reports to make room; order between sends of one coroutine is
    /// kept. Cancelling the awaiting coroutine abandons the wait, not the record.
    boost::asio::awaitable<result<delivery>> send(record r);

    /// Fire-and-forget: enqueues the record and returns at once. A failure is
    /// logged (`kafka.post_failed`, topic and key, never the value) and counted
    /// in stats().post_failed. Not for records inside a transaction.
    void post(record r);

    /// Waits (on the pool) until every record handed to librdkafka has a
    /// delivery report, or the timeout passes (errc::timed_out, retryable).
    boost::asio::awaitable<result<void>> flush(std::chrono::milliseconds timeout);

    // --- Transactions (transactional_id set; one transaction at a time) -----
    // Every call runs on the pool. Retryable errors are retried inside the call
    // until `timeout`; then errc::timed_out (retryable) is returned. Abortable
    // errors are returned: call abort_transaction() and redo the work. Fatal
    // errors (e.g. producer_fenced) throw kafka::exception.

    /// Registers the transactional.id with the coordinator (fences older producers).
    boost::asio::awaitable<result<void>> init_transactions(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    /// Starts a transaction (local, does not block).
    result<void> begin_transaction();
    /// Adds the consumer's offsets (next positions to read) to the transaction,
    /// with the consumer's group metadata (generation, member id).
    boost::asio::awaitable<result<void>> send_offsets_to_transaction(std::vector<topic_partition> offsets,
                                                                     const consumer& source,
                                                                     std::chrono::milliseconds timeout = std::chrono::seconds(30));
    /// Flushes and commits the transaction.
    boost::asio::awaitable<result<void>> commit_transaction(std::chrono::milliseconds timeout = std::chrono::seconds(60));
    /// Aborts the transaction; its records are never seen by read_committed consumers.
    boost::asio::awaitable<result<void>> abort_transaction(std::chrono::milliseconds timeout = std::chrono::seconds(60));

    // ------------------------------------------------------------------------

    /// Flushes (up to `flush_timeout`, on the pool), fails what is left with
    /// errc::destroy, stops serving the queue and destroys the handle on the
    /// pool. Idempotent. After close(), send() returns errc::destroy.
    boost::asio::awaitable<void> close(std::chrono::milliseconds flush_timeout = std::chrono::seconds(10));

    producer_stats stats() const noexcept;
    /// The last readiness reported (see client.hpp).
    bool ready() const noexcept;
    /// librdkafka's instance name (e.g. "faasd#producer-1").
    std::string name() const;

    class impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace faasd::kafka
