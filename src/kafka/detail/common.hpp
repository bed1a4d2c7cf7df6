#pragma once
// Internals shared by the Kafka adapters: owning handles for librdkafka
// objects, conversions, the blocking pool bridge, the queue watcher (io-event
// fd on the loop) and a one-shot result slot. Private to src/kafka.

#include <faasd/kafka/client.hpp>
#include <faasd/kafka/error.hpp>
#include <faasd/kafka/types.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace faasd::kafka::detail {

namespace asio = boost::asio;

struct event_deleter {
    void operator()(rd_kafka_event_t* e) const noexcept { rd_kafka_event_destroy(e); }
};
struct tpl_deleter {
    void operator()(rd_kafka_topic_partition_list_t* l) const noexcept { rd_kafka_topic_partition_list_destroy(l); }
};
struct rd_error_deleter {
    void operator()(rd_kafka_error_t* e) const noexcept { rd_kafka_error_destroy(e); }
};
struct conf_deleter {
    void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
struct message_deleter {
    void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};
struct options_deleter {
    void operator()(rd_kafka_AdminOptions_t* o) const noexcept { rd_kafka_AdminOptions_destroy(o); }
};

using event_ptr = std::unique_ptr<rd_kafka_event_t, event_deleter>;
using tpl_ptr = std::unique_ptr<rd_kafka_topic_partition_list_t, tpl_deleter>;
using rd_error_ptr = std::unique_ptr<rd_kafka_error_t, rd_error_deleter>;
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;
using message_ptr = std::unique_ptr<rd_kafka_message_t, message_deleter>;
using options_ptr = std::unique_ptr<rd_kafka_AdminOptions_t, options_deleter>;

/// Owns an rd_kafka_t. Shared with blocking-pool tasks so the handle outlives
/// them; rd_kafka_destroy (blocking) runs wherever the last reference drops,
/// which the adapters arrange to be a pool thread.
struct rk_holder {
    rd_kafka_t* rk = nullptr;
    int destroy_flags = 0;
    explicit rk_holder(rd_kafka_t* h, int flags = 0) : rk(h), destroy_flags(flags) {}
    ~rk_holder() {
        if (rk) rd_kafka_destroy_flags(rk, destroy_flags);
    }
    rk_holder(const rk_holder&) = delete;
    rk_holder& operator=(const rk_holder&) = delete;
};

// --- errors ----------------------------------------------------------------

/// An error from a response code, statically classified.
error rd_error(rd_kafka_resp_err_t err, std::string detail = {});
/// An error from an rd_kafka_error_t, classified by its own flags (fatal,
/// txn_requires_abort, retriable) before the static table.
error rd_error(const rd_kafka_error_t* e);

// --- conversions -------------------------------------------------------------

tpl_ptr to_rd_list(const std::vector<topic_partition>& parts);
std::vector<topic_partition> from_rd_list(const rd_kafka_topic_partition_list_t* list);
/// "topic[0],topic[1]" for logs (at most `max` entries).
std::string describe(const std::vector<topic_partition>& parts, std::size_t max = 16);
/// Converts (copies) a consumed message.
message to_message(const rd_kafka_message_t* m);

/// Builds a configuration; throws kafka::exception (invalid_arg) naming the bad property.
conf_ptr make_conf(const std::map<std::string, std::string>& props);

// --- metadata (blocking: call on the pool) ------------------------------------

/// Metadata of the listed topics (all topics if `topics` is empty), via one
/// Metadata request. Topics missing from the cluster are absent from the result.
result<std::vector<topic_metadata>> blocking_topic_metadata(rd_kafka_t* rk, const std::vector<std::string>& topics,
                                                            std::chrono::milliseconds timeout);
/// The brokers of the cluster (Metadata request without topics).
result<std::vector<broker_metadata>> blocking_brokers(rd_kafka_t* rk, std::chrono::milliseconds timeout);

// --- the blocking pool -----------------------------------------------------

/// The process-wide pool for blocking librdkafka calls (8 threads).
asio::any_io_executor default_blocking_executor();

/// The coroutine run_blocking() spawns on the pool. A class with a
/// constructor, not a lambda: see the GCC 12 note at run_blocking().
template <class F, class R>
class blocking_call {
public:
    explicit blocking_call(F f) : fn_(std::move(f)) {}
    asio::awaitable<R> operator()() { co_return fn_(); }

private:
    F fn_;
};

/// Runs f() on `pool` and resumes the awaiting coroutine on its own executor
/// (the loop) with f's result or exception. Not cancellable: f runs to its end.
///
/// GCC 12.2 destroys lambda (and other aggregate) temporaries twice when they
/// are created inside a co_await full-expression (cf. equeim/tremotesf2#551,
/// chriskohlhoff/asio#1007): `co_await co_spawn(pool, [p = ptr] {...}, ...)`
/// double-frees `p`. So this is not a coroutine, and callers name their
/// lambda first: `auto call = [..] {..}; co_await run_blocking(ex, std::move(call));`
template <class F>
auto run_blocking(asio::any_io_executor pool, F f) -> asio::awaitable<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    // An empty cancellation slot: the caller's cancellation must not reach the
    // pool coroutine. With Boost 1.81 a cancelled co_spawn entry point throws
    // operation_aborted on the pool thread, outside any handler: std::terminate
    // (seen when the observer shut down during an admin::group_lag call).
    return asio::co_spawn(pool, blocking_call<F, R>(std::move(f)),
                          asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
}

// --- waiting on the loop ----------------------------------------------------

/// A value delivered once, awaited by one coroutine on the loop thread.
template <class T>
class oneshot {
public:
    explicit oneshot(const asio::any_io_executor& ex) : timer_(ex, asio::steady_timer::time_point::max()) {}

    void set(T v) {
        if (value_) return;
        value_.emplace(std::move(v));
        timer_.cancel();
    }
    bool has_value() const noexcept { return value_.has_value(); }

    /// The value, once set; nullopt if the awaiting coroutine was cancelled first.
    asio::awaitable<std::optional<T>> wait();

private:
    std::optional<T> value_;
    asio::steady_timer timer_;
};

/// Waits until `timer` is cancelled (a signal) or expires. Returns false if
/// the awaiting coroutine was cancelled. Like every co_await of an awaitable,
/// calling it from an already cancelled coroutine throws operation_aborted.
asio::awaitable<bool> wait_signal(asio::steady_timer& timer);

/// Sleeps on the loop; returns false if cancelled (the coroutine or the timer).
asio::awaitable<bool> sleep_for(asio::steady_timer& timer, std::chrono::steady_clock::duration d);

template <class T>
asio::awaitable<std::optional<T>> oneshot<T>::wait() {
    while (!value_) {
        bool ok = co_await wait_signal(timer_);
        if (value_) break;
        if (!ok) co_return std::nullopt;
    }
    co_return std::move(value_);
}

/// Watches one librdkafka queue through an eventfd: librdkafka writes to the
/// fd when an op lands on the (previously served) queue, the loop awaits
/// readability. Owns the queue handle. Loop thread only.
class queue_watcher {
public:
    queue_watcher(const asio::any_io_executor& ex, rd_kafka_queue_t* queue);
    ~queue_watcher();
    queue_watcher(const queue_watcher&) = delete;
    queue_watcher& operator=(const queue_watcher&) = delete;

    rd_kafka_queue_t* get() const noexcept { return queue_; }

    /// Waits until librdkafka signals the queue or `timeout` passes; empties
    /// the fd. Returns true if signalled. Throws system_error
    /// (operation_aborted) if the coroutine is cancelled or cancel() is called.
    asio::awaitable<bool> wait_for(std::chrono::steady_clock::duration timeout);
    asio::awaitable<void> wait();

    /// Cancels outstanding waits.
    void cancel();
    /// Disables the io event, destroys the queue handle and closes the fd
    /// (before the rd_kafka_t is destroyed). Idempotent.
    void shutdown();

private:
    void clear() noexcept;

    rd_kafka_queue_t* queue_ = nullptr;
    int fd_ = -1;
    asio::posix::stream_descriptor sd_;
};

}  // namespace faasd::kafka::detail
