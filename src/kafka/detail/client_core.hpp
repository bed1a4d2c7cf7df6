#pragma once
// What every Kafka client shares: the librdkafka handle, the main queue served
// on the loop (logs, errors, request results), the readiness monitor and the
// close protocol. producer::impl, consumer::impl and admin::impl derive from it.

#include "detail/common.hpp"

#include <faasd/core/log.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

namespace faasd::kafka::detail {

class client_core : public std::enable_shared_from_this<client_core> {
public:
    client_core(asio::any_io_executor loop, const client_options& opts, const char* kind);
    virtual ~client_core();
    client_core(const client_core&) = delete;
    client_core& operator=(const client_core&) = delete;

    /// Properties every client gets (bootstrap.servers, client.id, log.queue,
    /// log_level). Throws kafka::exception if brokers is empty.
    std::map<std::string, std::string> base_properties() const;

    /// Creates the handle from `conf` (consumed; its opaque is set to this) and
    /// watches the main queue, which also receives logs. Throws kafka::exception.
    void create(rd_kafka_type_t type, conf_ptr conf, int destroy_flags);
    /// Starts serving the main queue and the readiness monitor.
    void start();

    rd_kafka_t* rk() const noexcept { return holder_ ? holder_->rk : nullptr; }
    const std::shared_ptr<rk_holder>& holder() const noexcept { return holder_; }
    bool closed() const noexcept { return closed_; }
    bool ready() const noexcept { return ready_; }
    std::string name() const;
    const faasd::logger& log() const noexcept { return log_; }
    const asio::any_io_executor& loop() const noexcept { return loop_; }

    /// Throws kafka::exception if a fatal error was raised.
    void throw_if_fatal() const;

    /// Runs f() on the blocking pool, resuming on the loop.
    template <class F>
    auto blocking(F f) {
        return run_blocking(blocking_ex_, std::move(f));
    }

    /// A request whose result event carries opaque = id. Await it with
    /// wait_request(); the event is null if the client closed meanwhile.
    std::pair<std::uint64_t, std::shared_ptr<oneshot<event_ptr>>> new_request();
    void drop_request(std::uint64_t id) { requests_.erase(id); }
    /// Waits for a request's event; throws operation_aborted if cancelled.
    asio::awaitable<event_ptr> wait_request(std::shared_ptr<oneshot<event_ptr>> slot);

protected:
    /// Main-queue events that are not logs, errors or registered requests
    /// (delivery reports). The event is destroyed after the call.
    virtual void on_event(rd_kafka_event_t* ev);
    /// Called after each batch of served events (the producer fills its backlog).
    virtual void after_serve() {}

    void handle_error(rd_kafka_resp_err_t err, const char* reason, bool fatal);
    void handle_log(int level, const char* fac, const char* msg);
    void set_ready(bool ready, std::string_view detail);
    /// All brokers down: not ready, and probe again now.
    void report_trouble();

    /// Stops serving (pump, monitor), fails outstanding requests, releases the
    /// queue handles, then destroys the handle on the pool. Idempotent.
    asio::awaitable<void> shutdown_core();
    /// The same without waiting: the destruction is posted to the pool.
    void abandon_core() noexcept;

    asio::any_io_executor loop_;
    asio::any_io_executor blocking_ex_;
    client_options opts_;
    faasd::logger log_;
    bool closed_ = false;

private:
    /// Serves up to a batch of main-queue events; true if more may be queued.
    bool serve_main();
    void dispatch(rd_kafka_event_t* ev);
    void stop_loop_side() noexcept;
    asio::awaitable<void> pump();
    asio::awaitable<void> monitor();

    const char* kind_;
    std::shared_ptr<rk_holder> holder_;
    std::unique_ptr<queue_watcher> main_q_;
    std::unordered_map<std::uint64_t, std::shared_ptr<oneshot<event_ptr>>> requests_;
    std::uint64_t next_request_ = 1;
    bool ready_ = false;
    bool ready_reported_ = false;
    bool fatal_ = false;
    error fatal_error_;
    bool trouble_ = false;
    asio::steady_timer monitor_timer_;
};

/// Measures a librdkafka call made on the loop thread and logs
/// `kafka.slow_call` (warn) if it took longer than 50 ms: such calls (e.g.
/// rd_kafka_incremental_assign, which waits for librdkafka's main thread)
/// delay every other coroutine.
class slow_call_guard {
public:
    slow_call_guard(const faasd::logger& log, const char* what) : log_(log), what_(what), t0_(std::chrono::steady_clock::now()) {}
    ~slow_call_guard() {
        auto d = std::chrono::steady_clock::now() - t0_;
        if (d > std::chrono::milliseconds(50))
            log_.warn("kafka.slow_call", {{"call", what_}, {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(d).count()}});
    }
    slow_call_guard(const slow_call_guard&) = delete;
    slow_call_guard& operator=(const slow_call_guard&) = delete;

private:
    const faasd::logger& log_;
    const char* what_;
    std::chrono::steady_clock::time_point t0_;
};

/// Spawns a background coroutine on `ex` that logs (and swallows) its exception.
void spawn_logged(const asio::any_io_executor& ex, asio::awaitable<void> task, faasd::logger log, const char* what);

}  // namespace faasd::kafka::detail
