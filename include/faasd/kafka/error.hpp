#pragma once
// Kafka errors, classified once (STYLE.md section 5).
//
// Every failure the adapters report carries a boost::system::error_code in
// kafka_category() (its value is librdkafka's rd_kafka_resp_err_t) and an
// error_class that tells the caller what to do about it:
//
//   retryable  transient (broker down, leader moving, timeout): try the same request again later
//   abortable  the current unit of work is void (transaction needs abort, group generation moved
//              on, client shutting down): abort it and let the caller redo it from the start
//   permanent  this request can never succeed (message too large, unknown topic, bad config);
//              the client itself is still usable
//   fatal      the client instance is unusable (fenced producer, fatal idempotence error,
//              authentication or authorisation failure): the adapters throw kafka::exception
//
// Expected outcomes (retryable, abortable, permanent) are returned as values:
// kafka::result<T> = boost::system::result<T, kafka::error>. Fatal errors are
// thrown as kafka::exception, so a task boundary logs them and the process
// restarts rather than limping on.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace faasd::kafka {

/// What a caller should do about an error.
enum class error_class {
    retryable,  ///< transient: retry the same request later
    abortable,  ///< the unit of work is void: abort it (abort_transaction, drop revoked work) and redo it
    permanent,  ///< cannot succeed as asked; the client is still usable
    fatal,      ///< the client is unusable: thrown as kafka::exception
};

const char* to_string(error_class c) noexcept;

/// The librdkafka error codes callers need to name, with librdkafka's values
/// (static_asserted in src/kafka/error.cpp). Any rd_kafka_resp_err_t can
/// appear in an error_code of kafka_category(); these are just the named ones.
enum class errc {
    no_error = 0,
    // Local (client-side) conditions.
    destroy = -197,             ///< the client is being closed
    transport = -195,           ///< a broker connection failed
    msg_timed_out = -192,       ///< not delivered within message.timeout.ms
    partition_eof = -191,       ///< reached the end of a partition (handled inside the consumer)
    unknown_partition = -190,   ///< no such partition
    unknown_topic = -188,       ///< no such topic in the cluster metadata
    all_brokers_down = -187,    ///< no broker is reachable
    invalid_arg = -186,         ///< bad argument or configuration
    timed_out = -185,           ///< a local deadline passed
    queue_full = -184,          ///< the producer queue is full (handled inside the producer)
    state = -172,               ///< the operation is not valid in the client's current state
    purge_queue = -152,         ///< the message was purged before it was sent (close, abort)
    fatal = -150,               ///< the client raised a fatal error
    max_poll_exceeded = -147,   ///< the application did not poll within max.poll.interval.ms
    not_configured = -145,      ///< a feature was used that is not configured (e.g. transactions)
    assignment_lost = -142,     ///< the consumer lost its partitions without a clean revoke
    // Broker error codes.
    unknown_topic_or_part = 3,  ///< the broker does not know the topic or partition
    msg_size_too_large = 10,    ///< the message exceeds the broker's limit
    not_enough_replicas = 19,   ///< fewer in-sync replicas than min.insync.replicas
    illegal_generation = 22,    ///< the group generation moved on (commit rejected)
    unknown_member_id = 25,     ///< this member is no longer in the group
    rebalance_in_progress = 27, ///< the group is rebalancing
    topic_already_exists = 36,  ///< CreateTopics: the topic exists (ensure_topics treats this as success)
    invalid_replication_factor = 38,
    invalid_config = 40,
    invalid_txn_state = 48,
    producer_fenced = 90,       ///< another producer with the same transactional.id took over
};

/// The category of librdkafka error codes; message() is rd_kafka_err2str().
const boost::system::error_category& kafka_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), kafka_category()};
}

/// An error_code for any rd_kafka_resp_err_t value.
inline boost::system::error_code make_error_code_from_rd(int rd_kafka_resp_err) noexcept {
    return {rd_kafka_resp_err, kafka_category()};
}

/// The static classification of an error code. Codes of other categories:
/// faasd::errc::timeout / unavailable are retryable, cancelled is abortable,
/// everything else permanent. Pure; the table is unit-tested.
error_class classify(boost::system::error_code ec) noexcept;

/// librdkafka's symbolic name of a code of kafka_category() ("_QUEUE_FULL").
std::string error_name(boost::system::error_code ec);

/// An error returned by a Kafka operation. `detail` is librdkafka's
/// explanation (broker and partition names, never payloads).
struct error {
    boost::system::error_code code;
    error_class cls = error_class::permanent;
    std::string detail;

    bool retryable() const noexcept { return cls == error_class::retryable; }
    bool abortable() const noexcept { return cls == error_class::abortable; }
    bool fatal() const noexcept { return cls == error_class::fatal; }
    /// "<name> (<class>): <detail>", for logs.
    std::string message() const;

    friend bool operator==(const error& a, const error& b) noexcept { return a.code == b.code && a.cls == b.cls; }
};

/// Writes error::message() (for logs and test failure messages).
std::ostream& operator<<(std::ostream& os, const error& e);

/// Builds an error with the static classification of `code`.
error make_error(boost::system::error_code code, std::string detail = {});
inline error make_error(errc e, std::string detail = {}) { return make_error(make_error_code(e), std::move(detail)); }

/// Result of Kafka operations that can fail in expected ways.
template <class T>
using result = boost::system::result<T, error>;

/// Thrown for fatal client errors, invalid configuration at construction and
/// misuse (e.g. polling a closed consumer). Carries the classified error.
class exception : public std::runtime_error {
public:
    explicit exception(error e);
    const error& err() const noexcept { return err_; }

private:
    error err_;
};

/// Called by result<T>::value() when it holds an error (found by ADL).
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

}  // namespace faasd::kafka

template <>
struct boost::system::is_error_code_enum<faasd::kafka::errc> : std::true_type {};
