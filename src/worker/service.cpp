// The worker's shell: Kafka in and out, slots, the lifecycle of each message,
// commits and transactions, cancellation, heartbeats and graceful shutdown.
// docs/worker.md describes the moving parts, docs/semantics.md the promises.

#include <faasd/worker/service.hpp>

#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/sealing.hpp>
#include <faasd/git/cache.hpp>
#include <faasd/git/url.hpp>
#include <faasd/jobs/codec.hpp>
#include <faasd/kafka/consumer.hpp>
#include <faasd/kafka/producer.hpp>
#include <faasd/metrics/registry.hpp>
#include <faasd/sandbox/manifest.hpp>
#include <faasd/sandbox/runner.hpp>
#include <faasd/worker/cancel_set.hpp>
#include <faasd/worker/delivery_view.hpp>
#include <faasd/worker/lifecycle.hpp>
#include <faasd/worker/messages.hpp>
#include <faasd/worker/offset_tracker.hpp>
#include <faasd/worker/outcome.hpp>
#include <faasd/worker/outcome_map.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/system_error.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>

namespace faasd::worker {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

jobs::unix_ms now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// A wake-up for one waiting coroutine: notify() before or during wait()
/// makes wait() return true; a passed deadline makes it return false.
class notifier {
public:
    explicit notifier(const asio::any_io_executor& ex) : timer_(ex) {}
    void notify() {
        pending_ = true;
        timer_.cancel();
    }
    asio::awaitable<bool> wait(steady::time_point deadline = steady::time_point::max()) {
        if (pending_) {
            pending_ = false;
            co_return true;
        }
        timer_.expires_at(deadline);
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        bool woken = pending_;
        pending_ = false;
        co_return woken;
    }

private:
    asio::steady_timer timer_;
    bool pending_ = false;
};

kafka::record make_record(std::string topic, std::string key, std::optional<std::string> value) {
    kafka::record r;
    r.topic = std::move(topic);
    r.key = std::move(key);
    r.value = std::move(value);
    return r;
}

/// Shared state of send_all: completions counted on the loop thread.
struct send_state {
    explicit send_state(const asio::any_io_executor& ex, std::size_t n) : left(n), done(ex) {}
    std::size_t left;
    std::optional<kafka::error> error;
    std::exception_ptr exception;
    notifier done;
};

/// Produces records concurrently and waits for every acknowledgement; the
/// first error is returned. Fatal producer errors are rethrown.
asio::awaitable<kafka::result<void>> send_all(kafka::producer& p, std::vector<kafka::record> records) {
    if (records.empty()) co_return kafka::result<void>{};
    auto ex = co_await asio::this_coro::executor;
    auto st = std::make_shared<send_state>(ex, records.size());
    for (auto& r : records) {
        auto op = p.send(std::move(r));
        auto on_done = [st](std::exception_ptr e, kafka::result<kafka::delivery> d) {
            if (e && !st->exception) st->exception = e;
            if (!e && !d && !st->error) st->error = d.error();
            if (--st->left == 0) st->done.notify();
        };
        asio::co_spawn(ex, std::move(op), std::move(on_done));
    }
    while (st->left > 0) co_await st->done.wait();
    if (st->exception) std::rethrow_exception(st->exception);
    if (st->error) co_return *st->error;
    co_return kafka::result<void>{};
}

}  // namespace

/// The service's counters as Prometheus families (docs/worker.md "Metrics").
/// Counters follow service_stats by deltas (sync), so the stats stay the one
/// source of truth; durations are observed when a job ends.
class service_metrics {
public:
    explicit service_metrics(metrics::registry& r)
        : jobs_(r.counter("faasd_worker_jobs_total", "Jobs ended by this worker, by final state.", {"state"})),
          received_(r.counter("faasd_worker_messages_total", "Messages taken from the jobs topics.").with({})),
          started_(r.counter("faasd_worker_attempts_started_total", "Attempts that published running.").with({})),
          retried_(r.counter("faasd_worker_retries_total", "Retries scheduled (a new message for attempt + 1).").with({})),
          dead_(r.counter("faasd_worker_dead_letters_total", "Messages sent to the dead-letter topic.").with({})),
          poison_(r.counter("faasd_worker_poison_total", "Messages that did not decode.").with({})),
          abandoned_(r.counter("faasd_worker_handed_back_total", "Jobs handed back uncommitted (revoked, stopping).").with({})),
          lost_(r.counter("faasd_worker_worker_lost_total", "Jobs ended failed because their workers were lost too often.").with({})),
          revocations_(r.counter("faasd_worker_revocations_total", "Rebalances that took partitions away.").with({})),
          commits_(r.counter("faasd_worker_commits_total", "Acknowledged offset commits.").with({})),
          transactions_(r.counter("faasd_worker_transactions_total", "Committed Kafka transactions.").with({})),
          kafka_errors_(r.counter("faasd_worker_kafka_errors_total", "Failed produce, commit or transaction calls.").with({})),
          publish_errors_(r.counter("faasd_worker_publish_errors_total", "Failed produce calls of job records.").with({})),
          refused_(r.counter("faasd_worker_publish_refused_total", "Job records Kafka refused for good (too large).").with({})),
          capped_(r.counter("faasd_worker_results_capped_total", "Results cut to the result size budget.").with({})),
          slots_(r.gauge("faasd_worker_slots", "Jobs this worker runs at once (--slots).").with({})),
          busy_(r.gauge("faasd_worker_busy_slots", "Slots held by a job.").with({})),
          waiting_(r.gauge("faasd_worker_waiting_jobs", "Prefetched messages waiting for a slot.").with({})),
          held_(r.gauge("faasd_worker_held_retries", "Retries waiting for their not_before without a slot.").with({})),
          paused_(r.gauge("faasd_worker_paused", "1 while the jobs consumer is paused.").with({})),
          durations_(r.histogram("faasd_worker_job_phase_seconds",
                                 "Elapsed times of ended attempts by phase (the result's timing).", buckets(), {"phase"})) {}

    void sync(const service_stats& s) {
        add(received_, s.received, last_.received);
        add(started_, s.started, last_.started);
        add(retried_, s.retried, last_.retried);
        add(dead_, s.dead_lettered, last_.dead_lettered);
        add(poison_, s.poison, last_.poison);
        add(abandoned_, s.abandoned, last_.abandoned);
        add(lost_, s.worker_lost, last_.worker_lost);
        add(revocations_, s.revocations, last_.revocations);
        add(commits_, s.commits, last_.commits);
        add(transactions_, s.transactions, last_.transactions);
        add(kafka_errors_, s.kafka_errors, last_.kafka_errors);
        add(publish_errors_, s.publish_errors, last_.publish_errors);
        add(refused_, s.publish_refused, last_.publish_refused);
        add(capped_, s.results_capped, last_.results_capped);
        add(jobs_.with({"succeeded"}), s.succeeded, last_.succeeded);
        add(jobs_.with({"failed"}), s.failed, last_.failed);
        add(jobs_.with({"timed_out"}), s.timed_out, last_.timed_out);
        add(jobs_.with({"cancelled"}), s.cancelled, last_.cancelled);
        slots_.set(s.slots);
        busy_.set(s.busy);
        waiting_.set(s.waiting);
        held_.set(s.held);
        paused_.set(s.paused ? 1 : 0);
    }

    void observe(const jobs::timing& t) {
        auto secs = [](std::int64_t ms) { return static_cast<double>(std::max<std::int64_t>(ms, 0)) / 1000.0; };
        durations_.with({"queue_wait"}).observe(secs(t.queue_wait_ms));
        durations_.with({"prepare"}).observe(secs(t.prepare_ms));
        durations_.with({"run"}).observe(secs(t.run_ms));
        durations_.with({"upload"}).observe(secs(t.upload_ms));
        durations_.with({"total"}).observe(secs(t.total_ms));
    }

private:
    static std::span<const double> buckets() {
        static const double b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800};
        return b;
    }
    static void add(metrics::counter& c, std::uint64_t now, std::uint64_t& last) {
        if (now > last) c.inc(static_cast<double>(now - last));
        last = now;
    }

    metrics::counter_family& jobs_;
    metrics::counter &received_, &started_, &retried_, &dead_, &poison_, &abandoned_, &lost_, &revocations_, &commits_,
        &transactions_, &kafka_errors_, &publish_errors_, &refused_, &capped_;
    metrics::gauge &slots_, &busy_, &waiting_, &held_, &paused_;
    metrics::histogram_family& durations_;
    service_stats last_;
};

// One message being handled.
struct job_ctx {
    explicit job_ctx(const asio::any_io_executor& ex) : wake(ex) {}
    ~job_ctx() { wipe(); }

    void wipe() noexcept {
        crypto::wipe(credentials);
        for (auto& [k, v] : secrets) crypto::wipe(v);
        secrets.clear();
    }
    std::string secret(const std::string& name) const {
        if (name.empty()) return {};
        auto it = secrets.find(name);
        return it == secrets.end() ? std::string() : it->second;
    }

    std::uint64_t seq = 0;
    kafka::message msg;  // the original, for dead-letter
    partition_id part;
    jobs::delivery_mode mode = jobs::delivery_mode::at_least_once;
    std::string id;  // empty for poison
    std::optional<lifecycle> fsm;
    faasd::logger log;

    notifier wake;                        // waits of this job (not_before, slot, commit, backoff)
    asio::cancellation_signal cancel;     // interrupts the step in progress
    bool in_step = false;                 // an interruptible step is running
    bool cancel_requested = false;        // a cancel for this job arrived
    bool abort_requested = false;         // hand it back (revoked, shutdown)
    bool holds_slot = false;
    bool waiting_slot = false;
    bool held = false;                    // waiting for not_before

    std::unique_ptr<sandbox::workspace> ws;
    std::optional<sandbox::function_command> command;
    std::vector<sandbox::produced_output> produced;
    std::string credentials;              // the opened JSON, wiped when the job ends
    std::map<std::string, std::string> secrets;
};

struct service::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor ex, service_config c, service_deps d, faasd::logger l,
         std::shared_ptr<runtime::health> h)
        : ex_(std::move(ex)),
          cfg(std::move(c)),
          deps(d),
          log(std::move(l)),
          health(std::move(h)),
          cancels(cfg.cancel_max_ids, cfg.cancel_ttl),
          rng(std::random_device{}()),
          poll_wake(ex_),
          commit_wake(ex_),
          txn_wake(ex_),
          hb_wake(ex_),
          jobs_changed(ex_),
          stop_event(ex_),
          loops_changed(ex_),
          state_wake(ex_) {
        if (cfg.slots < 1) cfg.slots = 1;
        if (cfg.max_held == 0) cfg.max_held = 8 * static_cast<std::size_t>(cfg.slots);
        if (cfg.prefetch == 0) cfg.prefetch = std::max<std::size_t>(4 * static_cast<std::size_t>(cfg.slots), 16);
        if (!health) health = std::make_shared<runtime::health>();
        eos_topic = cfg.topics.jobs_exactly_once;
        if (deps.metrics) metrics_.emplace(*deps.metrics);
        sync_metrics();
    }

    // ---- configuration and state ------------------------------------------------

    asio::any_io_executor ex_;
    service_config cfg;
    service_deps deps;
    faasd::logger log;
    std::shared_ptr<runtime::health> health;
    std::string eos_topic;

    std::unique_ptr<kafka::consumer> consumer;         // jobs topics, group
    std::unique_ptr<kafka::consumer> cancel_consumer;  // cancel topic, assign
    std::unique_ptr<kafka::producer> producer;         // idempotent: state, results, heartbeats, dead-letter, retries
    std::unique_ptr<kafka::producer> txn_producer;     // exactly-once results
    std::unique_ptr<kafka::consumer> state_consumer;   // state topic, assign (delivery counting)

    offset_tracker tracker;
    std::set<partition_id> assigned;
    cancel_set cancels;
    std::mt19937_64 rng;

    std::map<std::uint64_t, std::shared_ptr<job_ctx>> jobs_;
    std::multimap<std::string, std::uint64_t> by_id;
    std::uint64_t next_seq = 1;
    int busy = 0;
    std::deque<std::shared_ptr<job_ctx>> slot_waiters;
    int held = 0;
    bool paused = false;
    bool draining = false;
    bool cancels_ready = false;
    std::vector<std::weak_ptr<job_ctx>> commit_waiters;

    struct staged {
        partition_id part;
        std::int64_t offset = 0;
        std::string job;
        std::vector<kafka::record> records;
        kafka::record dead_letter;  // what goes instead when Kafka refuses the records twice
        int refusals = 0;
    };
    std::vector<staged> staged_;
    bool txn_busy = false;

    notifier poll_wake, commit_wake, txn_wake, hb_wake, jobs_changed, stop_event, loops_changed;
    bool poll_stop = false, commit_stop = false, txn_stop = false, hb_stop = false, cancel_stop = false;
    int loops = 0;
    std::exception_ptr fatal;
    service_stats st;
    std::optional<service_metrics> metrics_;

    // Delivery counting (docs/semantics.md "Bounded deliveries"): the state
    // topic's live jobs, and how far the view is known to be complete. A job
    // decides only once the view caught up in a round that started after its
    // partition was assigned (the lost worker's running snapshot was
    // acknowledged before that), or gives up waiting and uses what it knows.
    delivery_view deliveries_view;
    notifier state_wake;
    bool state_stop = false;
    bool state_sync_wanted = false;
    std::optional<steady::time_point> state_round_started;  // a round in progress, started then
    steady::time_point state_synced_at = steady::time_point::min();
    std::map<std::int32_t, std::int64_t> state_next;  // per state partition: next offset to read
    std::map<partition_id, steady::time_point> assigned_at;
    std::vector<std::weak_ptr<job_ctx>> delivery_waiters;

    service_stats stats() const {
        auto s = st;
        s.slots = cfg.slots;
        s.busy = busy;
        s.held = held;
        s.waiting = static_cast<int>(slot_waiters.size());
        s.paused = paused;
        return s;
    }

    /// Brings the metrics up to date with the stats (cheap: a few atomics).
    void sync_metrics() {
        if (metrics_) metrics_->sync(stats());
    }

    // ---- helpers ----------------------------------------------------------------

    std::optional<jobs::delivery_mode> mode_of(const std::string& topic) const {
        for (auto m : {jobs::delivery_mode::at_most_once, jobs::delivery_mode::at_least_once,
                       jobs::delivery_mode::exactly_once})
            if (cfg.topics.jobs(m) == topic) return m;
        return std::nullopt;
    }

    double jitter() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

    sandbox::limits limits_for(const jobs::job_spec& spec) const {
        auto l = cfg.limits;
        if (spec.timeout_s > 0)
            l.timeout = std::min<std::chrono::milliseconds>(std::chrono::seconds(spec.timeout_s), cfg.max_timeout);
        return l;
    }

    void spawn_loop(asio::awaitable<void> loop, const char* name) {
        ++loops;
        auto self = shared_from_this();
        std::string n = name;
        asio::co_spawn(ex_, std::move(loop), [self, n](std::exception_ptr e) {
            --self->loops;
            self->loops_changed.notify();
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                self->log.error("worker.loop_failed", {{"loop", n}, {"error", ex.what()}});
            }
            if (!self->fatal) self->fatal = e;
            self->stop_event.notify();
        });
    }

    void wake_poll() { poll_wake.notify(); }

    void request_cancel(job_ctx& c) {
        c.cancel_requested = true;
        if (c.in_step) c.cancel.emit(asio::cancellation_type::terminal);
        c.wake.notify();
    }

    void abort_job(job_ctx& c) {
        c.abort_requested = true;
        if (c.in_step) c.cancel.emit(asio::cancellation_type::terminal);
        c.wake.notify();
    }

    step_status interrupted_status(const job_ctx& c) const {
        if (c.abort_requested) return step_status::aborted;
        if (c.cancel_requested) return step_status::cancelled;
        return step_status::aborted;  // cancelled from outside (the role is being torn down)
    }

    static input failed_input(failure f) {
        input in;
        in.status = step_status::failed;
        in.fail = std::move(f);
        return in;
    }
    static input status_input(step_status s) {
        input in;
        in.status = s;
        return in;
    }

    /// Runs an operation that a cancel or an abort may interrupt; nullopt when
    /// it was interrupted before it started.
    template <class T>
    asio::awaitable<std::optional<T>> interruptible(job_ctx& c, asio::awaitable<T> op) {
        if (c.cancel_requested || c.abort_requested) co_return std::nullopt;
        c.in_step = true;
        struct reset {
            job_ctx& c;
            ~reset() {
                c.in_step = false;
                c.cancel.slot().clear();
            }
        } guard{c};
        auto token = asio::bind_cancellation_slot(c.cancel.slot(), asio::use_awaitable);
        std::optional<T> value;
        try {
            value.emplace(co_await asio::co_spawn(ex_, std::move(op), token));
        } catch (const boost::system::system_error& e) {
            // A cancel that lands after the spawn but before the operation's first
            // step ends it with an exception (Boost 1.81's co_spawn entry point):
            // an interruption like any other, not a failure of the worker.
            if (e.code() != asio::error::operation_aborted || !(c.cancel_requested || c.abort_requested)) throw;
        }
        co_return value;
    }

    // ---- slots ------------------------------------------------------------------

    void release_slot(job_ctx& c) {
        if (!c.holds_slot) return;
        c.holds_slot = false;
        --busy;
        while (!slot_waiters.empty()) {
            auto w = slot_waiters.front();
            slot_waiters.pop_front();
            if (!w->waiting_slot) continue;
            w->waiting_slot = false;
            w->holds_slot = true;
            ++busy;
            w->wake.notify();
            break;
        }
        wake_poll();
    }

    asio::awaitable<step_status> acquire_slot(job_ctx& c) {
        if (c.abort_requested) co_return step_status::aborted;
        if (c.cancel_requested) co_return step_status::cancelled;
        if (busy < cfg.slots && slot_waiters.empty()) {
            ++busy;
            c.holds_slot = true;
            co_return step_status::ok;
        }
        c.waiting_slot = true;
        slot_waiters.push_back(shared_from_job(c));
        wake_poll();
        while (!c.holds_slot && !c.cancel_requested && !c.abort_requested) co_await c.wake.wait();
        if (c.waiting_slot) {
            c.waiting_slot = false;
            std::erase_if(slot_waiters, [&](const auto& p) { return p.get() == &c; });
            wake_poll();
        }
        if (c.holds_slot) co_return step_status::ok;  // the machine looks at the cancelled set next
        co_return c.abort_requested ? step_status::aborted : step_status::cancelled;
    }

    std::shared_ptr<job_ctx> shared_from_job(job_ctx& c) {
        auto it = jobs_.find(c.seq);
        return it == jobs_.end() ? nullptr : it->second;
    }

    // ---- publishing -----------------------------------------------------------------

    /// Produces the records (acks=all), retrying transient errors with
    /// backoff until they are acknowledged or the job is aborted (shutdown).
    /// A permanent refusal (msg_size_too_large, an invalid record) is not
    /// retried: it is reported as failed with publish_refused_code, and the
    /// lifecycle publishes something smaller instead.
    asio::awaitable<input> publish(job_ctx& c, std::vector<kafka::record> records) {
        auto backoff = 200ms;
        for (;;) {
            auto copy = records;
            auto r = co_await send_all(*producer, std::move(copy));
            if (r) co_return input{};
            ++st.kafka_errors;
            ++st.publish_errors;
            if (r.error().cls == kafka::error_class::permanent) {
                ++st.publish_refused;
                std::size_t largest = 0;
                for (const auto& rec : records) largest = std::max(largest, rec.value ? rec.value->size() : 0);
                c.log.error("job.publish_refused", {{"error", r.error().message()},
                                                    {"largest_record", static_cast<std::int64_t>(largest)}});
                failure f;
                f.kind = failure_kind::permanent;
                f.code = publish_refused_code;
                f.message = "Kafka refused the record: " + kafka::error_name(r.error().code);
                co_return failed_input(std::move(f));
            }
            c.log.warn("job.publish_failed", {{"error", r.error().message()}, {"retry_in_ms", backoff.count()}});
            if (c.abort_requested) co_return status_input(step_status::aborted);
            co_await c.wake.wait(steady::now() + backoff);
            if (c.abort_requested) co_return status_input(step_status::aborted);
            backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
        }
    }

    kafka::record dead_letter_record(const job_ctx& c, const std::string& reason) const {
        kafka::record r;
        r.topic = cfg.topics.dead_letter;
        r.key = c.msg.key;
        r.value = c.msg.value;
        for (auto& [k, v] : dead_letter_headers(reason, c.msg.topic, c.msg.partition, c.msg.offset, cfg.worker_id,
                                                c.fsm && !c.fsm->is_poison() ? c.fsm->job().attempt : 0))
            r.headers.push_back({k, v});
        for (const auto& h : c.msg.headers) r.headers.push_back(h);
        return r;
    }

    std::vector<kafka::record> records_of(const job_ctx& c, const action& a) const {
        std::vector<kafka::record> out;
        if (a.retry) out.push_back(make_record(cfg.topics.jobs(c.mode), a.retry->id, jobs::encode(*a.retry)));
        if (a.snapshot) out.push_back(make_record(cfg.topics.state, a.snapshot->id, jobs::encode(*a.snapshot)));
        if (a.result) out.push_back(make_record(cfg.topics.results, a.result->id, jobs::encode(*a.result)));
        if (a.type == action_type::dead_letter || a.dead_letter) out.push_back(dead_letter_record(c, a.reason));
        return out;
    }

    void count_result(const jobs::job_result& r, bool final) {
        if (r.capped) ++st.results_capped;
        if (metrics_) metrics_->observe(r.times);
        if (!final) return;
        switch (r.state) {
            case jobs::job_state::succeeded: ++st.succeeded; break;
            case jobs::job_state::timed_out: ++st.timed_out; break;
            case jobs::job_state::cancelled: ++st.cancelled; break;
            default: ++st.failed; break;
        }
    }

    void log_result(const job_ctx& c, const jobs::job_result& r, bool final) {
        c.log.info(final ? "job.finished" : "job.attempt_failed",
                   {{"state", jobs::to_string(r.state)},
                    {"code", r.error.code},
                    {"exit_code", static_cast<std::int64_t>(r.exit_code.value_or(-1))},
                    {"queue_wait_ms", r.times.queue_wait_ms},
                    {"prepare_ms", r.times.prepare_ms},
                    {"run_ms", r.times.run_ms},
                    {"upload_ms", r.times.upload_ms},
                    {"total_ms", r.times.total_ms},
                    {"cache_hit", r.times.cache_hit}});
    }

    // ---- commits (at-most-once, at-least-once) --------------------------------------

    void request_commit() { commit_wake.notify(); }

    std::vector<kafka::topic_partition> commit_candidates(bool eos) const {
        std::vector<kafka::topic_partition> out;
        for (const auto& p : tracker.pending()) {
            if ((p.partition.topic == eos_topic) != eos) continue;
            if (!assigned.count(p.partition)) continue;
            out.push_back({p.partition.topic, p.partition.partition, p.offset});
        }
        return out;
    }

    asio::awaitable<void> commit_loop() {
        while (!commit_stop) {
            co_await commit_wake.wait(steady::now() + 1s);
            auto positions = commit_candidates(false);
            if (!positions.empty()) {
                auto r = co_await consumer->commit(positions);
                if (r) {
                    for (const auto& p : positions) tracker.committed({p.topic, p.partition}, p.offset);
                    ++st.commits;
                    log.debug("worker.committed", {{"partitions", static_cast<std::int64_t>(positions.size())}});
                } else {
                    ++st.kafka_errors;
                    log.warn("worker.commit_failed", {{"error", r.error().message()}});
                    if (r.error().retryable()) {
                        auto t = steady::now() + 200ms;
                        co_await commit_wake.wait(t);
                        commit_wake.notify();
                    }
                }
            }
            for (auto& w : commit_waiters)
                if (auto c = w.lock()) c->wake.notify();
            std::erase_if(commit_waiters, [](const auto& w) { return w.expired(); });
        }
    }

    /// At-most-once: releases the offset and waits until a commit covering it
    /// is acknowledged. aborted when the partition is gone (the job is handed
    /// back); failed with "commit_timeout" when no acknowledgement came within
    /// cfg.commit_timeout (the lifecycle then ends the job failed, not run: the
    /// released offset will be committed past it).
    asio::awaitable<input> commit_before_run(job_ctx& c) {
        tracker.release(c.part, c.msg.offset);
        request_commit();
        commit_waiters.push_back(shared_from_job(c));
        auto deadline = steady::now() + cfg.commit_timeout;
        while (!tracker.covered(c.part, c.msg.offset)) {
            if (!assigned.count(c.part) || c.abort_requested) co_return status_input(step_status::aborted);
            if (steady::now() >= deadline) {
                failure f;
                f.kind = failure_kind::permanent;
                f.code = "commit_timeout";
                f.message = "at-most-once: the offset commit was not acknowledged within " +
                            std::to_string(cfg.commit_timeout.count()) + " ms; the job did not run";
                c.log.warn("job.commit_timeout", {{"partition", c.part.partition}, {"offset", c.msg.offset}});
                co_return failed_input(std::move(f));
            }
            co_await c.wake.wait(deadline);
        }
        co_return input{};
    }

    // ---- transactions (exactly-once) ------------------------------------------------

    void stage(job_ctx& c, const action& a) {
        staged s;
        s.part = c.part;
        s.offset = c.msg.offset;
        s.job = c.id;
        s.records = records_of(c, a);
        s.dead_letter = dead_letter_record(c, "publish_refused: Kafka refused the job's records");
        staged_.push_back(std::move(s));
    }

    /// Kafka refused a transaction's records for good: the first time, the
    /// results in them are cut to the fallback size; the second time, the
    /// message goes to dead-letter instead; then nothing but the offset.
    void shrink_refused(staged& s) {
        ++s.refusals;
        ++st.publish_refused;
        if (s.refusals == 1) {
            for (auto& r : s.records) {
                if (!r.value) continue;
                if (r.topic == cfg.topics.results) {
                    if (auto res = jobs::decode_job_result(*r.value)) {
                        fit_result(*res, result_limits::fallback_bytes);
                        r.value = jobs::encode(*res);
                    }
                } else if (r.topic == cfg.topics.state) {
                    if (auto snap = jobs::decode_job_status(*r.value); snap && snap->result) {
                        fit_result(*snap->result, result_limits::fallback_bytes);
                        r.value = jobs::encode(*snap);
                    }
                }
            }
        } else if (s.refusals == 2) {
            s.records = {s.dead_letter};
        } else {
            s.records.clear();
        }
        log.error("job.publish_refused", {{"job", s.job}, {"refusals", s.refusals}});
    }

    asio::awaitable<void> txn_loop() {
        // Register the transactional id (fences an older instance of this worker id).
        for (auto backoff = 500ms;; backoff = std::min<std::chrono::milliseconds>(backoff * 2, 10s)) {
            auto r = co_await txn_producer->init_transactions();
            if (r) break;
            ++st.kafka_errors;
            log.warn("worker.init_transactions_failed", {{"error", r.error().message()}});
            co_await txn_wake.wait(steady::now() + backoff);
            if (txn_stop) co_return;
        }
        log.info("worker.transactions_ready");
        while (!txn_stop || !staged_.empty()) {
            co_await txn_wake.wait(steady::now() + 1s);
            // Jobs whose offset the watermark covers; the others wait for older jobs.
            std::vector<staged> batch;
            for (auto it = staged_.begin(); it != staged_.end();) {
                auto w = tracker.watermark(it->part);
                if (!assigned.count(it->part)) {
                    it = staged_.erase(it);  // revoked: another worker redoes the job
                } else if (w && *w > it->offset) {
                    batch.push_back(std::move(*it));
                    it = staged_.erase(it);
                } else {
                    ++it;
                }
            }
            auto positions = commit_candidates(true);
            if (batch.empty() && positions.empty()) {
                if (txn_stop) break;
                continue;
            }
            txn_busy = true;
            bool ok = co_await transaction(batch, positions);
            txn_busy = false;
            if (!ok) {
                for (auto& b : batch)
                    if (assigned.count(b.part)) staged_.push_back(std::move(b));
                std::sort(staged_.begin(), staged_.end(),
                          [](const staged& a, const staged& b) { return std::tie(a.part, a.offset) < std::tie(b.part, b.offset); });
                co_await txn_wake.wait(steady::now() + 200ms);
                txn_wake.notify();
                if (txn_stop && staged_.empty()) break;
            }
            jobs_changed.notify();
        }
    }

    /// One transaction: the batch's records and the positions. false after an
    /// abort (the caller retries what is still ours).
    asio::awaitable<bool> transaction(std::vector<staged>& batch, std::vector<kafka::topic_partition> positions) {
        if (auto b = txn_producer->begin_transaction(); !b) {
            ++st.kafka_errors;
            log.warn("worker.transaction_failed", {{"step", "begin"}, {"error", b.error().message()}});
            co_return false;
        }
        std::vector<kafka::record> records;
        for (auto& b : batch)
            for (auto& r : b.records) records.push_back(r);
        auto sent = co_await send_all(*txn_producer, std::move(records));
        kafka::result<void> r = sent;
        const char* step = "produce";
        if (!sent && sent.error().cls == kafka::error_class::permanent) {
            // Too large or invalid: never the same records again (no endless retry).
            for (auto& b : batch) shrink_refused(b);
        }
        if (r && !positions.empty()) {
            step = "send_offsets";
            r = co_await txn_producer->send_offsets_to_transaction(positions, *consumer);
        }
        if (r) {
            step = "commit";
            r = co_await txn_producer->commit_transaction();
            // A retryable error (a timeout) leaves the outcome unknown: the
            // coordinator may have committed. Aborting and staging the batch
            // again could then make its results visible twice, so, as
            // librdkafka's examples/transactions.c says, call
            // commit_transaction again: it resumes the same commit. If the
            // outcome stays unknown, stop the worker (the coordinator settles
            // the transaction; the next incarnation fences this one).
            const auto give_up = steady::now() + std::max<std::chrono::milliseconds>(60s, 3 * cfg.transaction_timeout);
            auto backoff = 200ms;
            while (!r && r.error().retryable()) {
                ++st.kafka_errors;
                log.warn("worker.transaction_commit_unknown", {{"error", r.error().message()}});
                if (steady::now() >= give_up)
                    throw kafka::exception(kafka::make_error(kafka::errc::fatal,
                                                             "the outcome of a transaction commit stays unknown"));
                co_await txn_wake.wait(steady::now() + backoff);
                backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
                r = co_await txn_producer->commit_transaction();
            }
        }
        if (r) {
            for (const auto& p : positions) tracker.committed({p.topic, p.partition}, p.offset);
            ++st.transactions;
            log.debug("worker.transaction_committed",
                      {{"jobs", static_cast<std::int64_t>(batch.size())}, {"partitions", static_cast<std::int64_t>(positions.size())}});
            co_return true;
        }
        ++st.kafka_errors;
        log.warn("worker.transaction_failed", {{"step", step}, {"error", r.error().message()}});
        auto a = co_await txn_producer->abort_transaction();
        if (!a) log.warn("worker.transaction_abort_failed", {{"error", a.error().message()}});
        co_return false;
    }

    // ---- rebalances -------------------------------------------------------------------

    void on_assigned(const std::vector<kafka::topic_partition>& parts) {
        const auto now = steady::now();
        for (const auto& p : parts) {
            assigned.insert({p.topic, p.partition});
            assigned_at[{p.topic, p.partition}] = now;
        }
        if (cfg.max_deliveries > 0) {
            // Catch the state view up past this moment before its jobs decide.
            state_sync_wanted = true;
            state_wake.notify();
        }
        if (paused) {
            auto r = consumer->pause(parts);
            if (!r) log.warn("worker.pause_failed", {{"error", r.error().message()}});
        }
        wake_poll();
    }

    std::vector<kafka::topic_partition> on_revoked(const std::vector<kafka::topic_partition>& parts, bool lost) {
        std::vector<kafka::topic_partition> final_positions;
        int handed_back = 0;
        for (const auto& tp : parts) {
            partition_id p{tp.topic, tp.partition};
            for (auto& [seq, c] : jobs_) {
                if (c->part != p) continue;
                // At-most-once jobs already committed are ours: nobody else will run them.
                if (c->mode == jobs::delivery_mode::at_most_once && c->fsm && c->fsm->released()) continue;
                abort_job(*c);
                ++handed_back;
            }
            if (!lost && p.topic != eos_topic) {
                auto w = tracker.watermark(p);
                if (w && *w > tracker.committed_position(p)) final_positions.push_back({p.topic, p.partition, *w});
            }
            std::erase_if(staged_, [&](const staged& s) { return s.part == p; });
            tracker.forget(p);
            assigned.erase(p);
        }
        ++st.revocations;
        log.info("worker.revoked", {{"partitions", static_cast<std::int64_t>(parts.size())},
                                    {"lost", lost},
                                    {"handed_back", static_cast<std::int64_t>(handed_back)}});
        for (auto& w : commit_waiters)
            if (auto c = w.lock()) c->wake.notify();
        wake_poll();
        return final_positions;
    }

    // ---- the jobs consumer --------------------------------------------------------------

    void on_message(kafka::message m) {
        if (draining) return;  // not tracked: redelivered to whoever owns the partition next
        auto mode = mode_of(m.topic);
        if (!mode) return;
        partition_id part{m.topic, m.partition};
        if (!tracker.track(part, m.offset)) return;
        ++st.received;
        auto c = std::make_shared<job_ctx>(ex_);
        c->seq = next_seq++;
        c->part = part;
        c->mode = *mode;
        lifecycle_config lc{cfg.worker_id, cfg.retry, cfg.results, cfg.max_deliveries};
        if (!m.value || m.value->empty()) {
            c->fsm.emplace(lifecycle::poison(*mode, "bad_message: empty value", lc));
        } else {
            auto decoded = jobs::decode_job_message(*m.value);
            if (!decoded) {
                auto e = decoded.error();
                c->fsm.emplace(lifecycle::poison(*mode, std::string(e == errc::unsupported_version ? "unsupported_version" : "bad_message") +
                                                            ": " + e.message(), lc));
            } else if (decoded->id.empty()) {
                c->fsm.emplace(lifecycle::poison(*mode, "bad_message: no job id", lc));
            } else {
                c->id = decoded->id;
                c->fsm.emplace(std::move(*decoded), *mode, lc, jitter());
            }
        }
        c->msg = std::move(m);
        if (c->fsm->is_poison()) {
            ++st.poison;
            c->log = log.with({{"topic", c->part.topic}, {"partition", c->part.partition}, {"offset", c->msg.offset}});
        } else {
            c->log = log.with({{"job", c->id}, {"attempt", c->fsm->job().attempt}, {"mode", jobs::to_string(c->mode)}});
            by_id.emplace(c->id, c->seq);
            if (cancels.contains(c->id, now_ms())) c->cancel_requested = true;
        }
        c->log.debug("job.received", {{"partition", c->part.partition}, {"offset", c->msg.offset}});
        jobs_.emplace(c->seq, c);
        sync_metrics();
        auto self = shared_from_this();
        auto op = run_job(c);
        asio::co_spawn(ex_, std::move(op), [self, c](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                c->log.error("job.failed_unexpectedly", {{"error", ex.what()}});
            }
            self->finish_job(*c, action_type::abandon);
            if (!self->fatal) self->fatal = e;
            self->stop_event.notify();
        });
    }

    asio::awaitable<void> poll_loop() {
        using namespace asio::experimental::awaitable_operators;
        auto topics = cfg.topics.all_jobs();
        if (auto r = consumer->subscribe(topics); !r) throw kafka::exception(r.error());
        while (!poll_stop) {
            // Back-pressure: up to `prefetch` messages may wait for a slot.
            // Pausing is cheap, resuming is not (the next fetch takes about a
            // second), so the consumer pauses only with a full waiting line
            // and resumes when half of it got slots.
            const int waiting = static_cast<int>(slot_waiters.size());
            const int cap = static_cast<int>(cfg.prefetch);
            bool full = draining || held >= static_cast<int>(cfg.max_held);
            if (!full) full = paused ? waiting > cap / 2 : waiting >= cap;
            if (full != paused) {
                auto r = full ? consumer->pause_all() : consumer->resume_all();
                if (!r) log.warn("worker.pause_failed", {{"error", r.error().message()}});
                paused = full;
                log.debug(full ? "worker.paused" : "worker.resumed", {{"busy", busy}, {"waiting", waiting}, {"held", held}});
            }
            std::size_t n = full ? 1 : static_cast<std::size_t>(std::max(1, cfg.slots - busy + cap - waiting));
            auto p = consumer->poll(n);
            auto w = poll_wake.wait();
            auto which = co_await (std::move(p) || std::move(w));
            if (which.index() == 0)
                for (auto& m : std::get<0>(which)) on_message(std::move(m));
        }
    }

    // ---- the cancel topic ---------------------------------------------------------------

    /// Assigns `topic` from its beginning (no group), retrying with a growing
    /// pause until it works or `stop` is set.
    asio::awaitable<void> assign_from_beginning(kafka::consumer& c, const std::string& topic, const bool& stop,
                                                std::string_view failed_event) {
        const std::vector<std::string> topics{topic};
        for (auto backoff = 500ms; !stop; backoff = std::min<std::chrono::milliseconds>(backoff * 2, 10s)) {
            auto r = co_await c.assign_topics(topics, kafka::offset_beginning);
            if (r) co_return;
            ++st.kafka_errors;
            log.warn(failed_event, {{"error", r.error().message()}});
            co_await sleep(backoff);
        }
    }

    asio::awaitable<void> cancel_loop() {
        co_await assign_from_beginning(*cancel_consumer, cfg.topics.cancel, cancel_stop, "worker.cancel_assign_failed");
        auto last_expire = steady::now();
        while (!cancel_stop) {
            auto batch = co_await cancel_consumer->poll(512);
            const auto now = now_ms();
            for (const auto& m : batch) {
                if (m.tombstone()) continue;
                std::optional<std::string_view> key;
                if (m.key) key = *m.key;
                auto c = decode_cancel(key, *m.value, m.timestamp_ms > 0 ? m.timestamp_ms : now);
                if (!c) {
                    log.warn("worker.bad_cancel", {{"offset", m.offset}, {"error", c.error().message()}});
                    continue;
                }
                cancels.add(c->id, c->at, now);
                auto [b, e] = by_id.equal_range(c->id);
                for (auto it = b; it != e; ++it) {
                    auto j = jobs_.find(it->second);
                    if (j == jobs_.end()) continue;
                    j->second->log.info("job.cancel_requested", {{"by", c->by}});
                    request_cancel(*j->second);
                }
            }
            if (!cancels_ready && cancel_consumer->caught_up()) {
                cancels_ready = true;
                health->set("cancel", true, "caught up");
                log.info("worker.cancels_loaded", {{"remembered", static_cast<std::int64_t>(cancels.size())}});
                jobs_changed.notify();
            }
            if (steady::now() - last_expire > 60s) {
                cancels.expire(now);
                last_expire = steady::now();
            }
        }
    }

    // ---- the state topic (delivery counting) ----------------------------------------

    asio::awaitable<void> state_loop() {
        using namespace asio::experimental::awaitable_operators;
        state_round_started = steady::now();
        co_await assign_from_beginning(*state_consumer, cfg.topics.state, state_stop, "worker.state_assign_failed");
        while (!state_stop) {
            auto p = state_consumer->poll(1024);
            auto w = state_wake.wait();
            auto which = co_await (std::move(p) || std::move(w));
            if (which.index() == 0) {
                for (const auto& m : std::get<0>(which)) {
                    state_next[m.partition] = m.offset + 1;
                    if (m.tombstone()) {
                        if (m.key) deliveries_view.erase(*m.key);
                        continue;
                    }
                    auto snap = jobs::decode_job_status(*m.value);
                    if (snap) deliveries_view.apply(*snap);
                }
            }
            if (state_round_started && state_consumer->caught_up()) {
                state_synced_at = *state_round_started;
                state_round_started.reset();
                log.debug("worker.state_synced", {{"live", static_cast<std::int64_t>(deliveries_view.size())}});
                for (auto& wj : delivery_waiters)
                    if (auto c = wj.lock()) c->wake.notify();
                delivery_waiters.clear();
            }
            if (state_sync_wanted && !state_round_started) {
                // A new round: read on from where we are; caught_up() turns
                // true again once every partition reached the end it has now.
                state_sync_wanted = false;
                std::vector<kafka::topic_partition> positions;
                for (auto tp : state_consumer->assignment()) {
                    auto it = state_next.find(tp.partition);
                    tp.offset = it == state_next.end() ? kafka::offset_beginning : it->second;
                    positions.push_back(tp);
                }
                state_round_started = steady::now();
                if (auto r = state_consumer->assign(positions); !r) {
                    ++st.kafka_errors;
                    log.warn("worker.state_assign_failed", {{"error", r.error().message()}});
                    state_round_started.reset();
                    state_sync_wanted = true;
                    co_await sleep(500ms);
                }
            }
        }
    }

    /// count_delivery: the earlier deliveries of this attempt that count, once
    /// the state view caught up past the assignment of the job's partition
    /// (at most cfg.delivery_sync_timeout; then with what the view knows).
    asio::awaitable<input> count_delivery(job_ctx& c) {
        const auto need_it = assigned_at.find(c.part);
        const auto need = need_it == assigned_at.end() ? steady::now() : need_it->second;
        const auto deadline = steady::now() + cfg.delivery_sync_timeout;
        while (state_synced_at < need && !c.abort_requested && !c.cancel_requested && steady::now() < deadline) {
            if (!state_round_started) {
                state_sync_wanted = true;
                state_wake.notify();
            }
            delivery_waiters.push_back(shared_from_job(c));
            co_await c.wake.wait(deadline);
        }
        if (c.abort_requested) co_return status_input(step_status::aborted);
        if (c.cancel_requested) co_return status_input(step_status::cancelled);
        const auto& job = c.fsm->job();
        input in;
        in.prior_deliveries = deliveries_view.prior_deliveries(job.id, job.attempt, cfg.worker_id);
        if (state_synced_at < need)
            c.log.warn("job.deliveries_unsure", {{"known", in.prior_deliveries}, {"detail", "the state view is behind; running"}});
        if (in.prior_deliveries > 0)
            c.log.warn("job.redelivered", {{"earlier_deliveries", in.prior_deliveries}, {"max", cfg.max_deliveries}});
        if (cfg.max_deliveries > 0 && in.prior_deliveries + 1 > cfg.max_deliveries) ++st.worker_lost;
        co_return in;
    }

    asio::awaitable<void> sleep(std::chrono::milliseconds d) {
        asio::steady_timer t(ex_, d);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }

    // ---- heartbeats ---------------------------------------------------------------------

    kafka::record heartbeat_record(worker_state s) const {
        heartbeat h{cfg.worker_id, cfg.slots, busy, now_ms(), s};
        return make_record(cfg.topics.heartbeats, cfg.worker_id, encode(h));
    }

    asio::awaitable<void> heartbeat_loop() {
        while (!hb_stop) {
            sync_metrics();  // counters of the loops (commits, transactions, errors) and the gauges
            producer->post(heartbeat_record(draining ? worker_state::draining : worker_state::up));
            co_await hb_wake.wait(steady::now() + cfg.heartbeat_interval);
        }
    }

    // ---- one job --------------------------------------------------------------------------

    asio::awaitable<void> run_job(std::shared_ptr<job_ctx> c) {
        input in;
        in.now = now_ms();
        for (;;) {
            action a = c->fsm->resume(in);
            if (a.type == action_type::done || a.type == action_type::abandon) {
                if (a.type == action_type::abandon && a.snapshot) {
                    // Handed back after running: say so on the state topic (best
                    // effort), so that the next worker does not count a lost worker.
                    deliveries_view.handed_back(c->id, a.snapshot->attempt);
                    producer->post(make_record(cfg.topics.state, c->id, jobs::encode(*a.snapshot)));
                }
                finish_job(*c, a.type);
                co_return;
            }
            try {
                in = co_await perform(*c, a);
            } catch (const kafka::exception&) {
                throw;  // fatal for the worker
            } catch (const boost::system::system_error& e) {
                if (e.code() == asio::error::operation_aborted) in = status_input(interrupted_status(*c));
                else in = failed_input(worker_failure(e.what()));
            } catch (const std::exception& e) {
                in = failed_input(worker_failure(e.what()));
            }
            in.now = now_ms();
        }
    }

    void finish_job(job_ctx& c, action_type how) {
        if (!jobs_.count(c.seq)) return;
        release_slot(c);
        if (c.waiting_slot) {
            c.waiting_slot = false;
            std::erase_if(slot_waiters, [&](const auto& p) { return p.get() == &c; });
        }
        if (c.held) {
            c.held = false;
            --held;
        }
        c.wipe();
        // Deleting the workspace may take a while (a big checkout): on the runner's pool.
        if (deps.runner) deps.runner->discard(std::move(c.ws));
        c.ws.reset();
        if (how == action_type::abandon) {
            ++st.abandoned;
            c.log.info("job.handed_back", {{"reason", c.abort_requested ? "revoked or stopping" : "not committed"}});
        }
        auto [b, e] = by_id.equal_range(c.id);
        for (auto it = b; it != e; ++it)
            if (it->second == c.seq) {
                by_id.erase(it);
                break;
            }
        auto keep = jobs_[c.seq];  // c stays alive until this function returns
        jobs_.erase(c.seq);
        jobs_changed.notify();
        wake_poll();
        sync_metrics();
    }

    asio::awaitable<input> perform(job_ctx& c, const action& a) {
        switch (a.type) {
            case action_type::check_cancel: {
                if (c.abort_requested) co_return status_input(step_status::aborted);
                if (c.cancel_requested || (!c.id.empty() && cancels.contains(c.id, now_ms())))
                    co_return status_input(step_status::cancelled);
                co_return input{};
            }
            case action_type::wait_until: {
                c.held = true;
                ++held;
                wake_poll();
                c.log.info("job.waiting", {{"not_before_in_ms", a.until - now_ms()}});
                while (!c.cancel_requested && !c.abort_requested) {
                    auto left = a.until - now_ms();
                    if (left <= 0) break;
                    co_await c.wake.wait(steady::now() + std::chrono::milliseconds(left));
                }
                if (c.held) {
                    c.held = false;
                    --held;
                }
                wake_poll();
                if (c.abort_requested) co_return status_input(step_status::aborted);
                if (c.cancel_requested) co_return status_input(step_status::cancelled);
                co_return input{};
            }
            case action_type::acquire_slot: {
                auto s = co_await acquire_slot(c);
                co_return status_input(s);
            }
            case action_type::commit_before_run:
                co_return co_await commit_before_run(c);
            case action_type::count_delivery:
                co_return co_await count_delivery(c);
            case action_type::publish_running: {
                std::vector<kafka::record> recs{make_record(cfg.topics.state, c.id, jobs::encode(*a.snapshot))};
                auto in = co_await publish(c, std::move(recs));
                if (in.status == step_status::ok) {
                    ++st.started;
                    sync_metrics();
                    c.log.info("job.started", {{"partition", c.part.partition}, {"offset", c.msg.offset}});
                }
                co_return in;
            }
            case action_type::open_credentials:
                co_return open_credentials(c);
            case action_type::prepare_repo:
                co_return co_await prepare(c);
            case action_type::download_sources:
                co_return co_await download(c);
            case action_type::run:
                co_return co_await run_function(c);
            case action_type::upload_sinks:
                co_return co_await upload(c);
            case action_type::dead_letter: {
                auto in = co_await publish(c, records_of(c, a));
                if (in.status == step_status::ok) {
                    ++st.dead_lettered;
                    c.log.warn("job.dead_lettered", {{"reason", a.reason}});
                }
                co_return in;
            }
            case action_type::schedule_retry: {
                auto in = co_await publish(c, records_of(c, a));
                if (in.status == step_status::ok) {
                    if (a.snapshot) ++st.retried;
                    c.log.info(a.snapshot ? "job.retry_scheduled" : "job.requeued",
                               {{"next_attempt", a.retry->attempt}, {"not_before_in_ms", a.retry->not_before - now_ms()}});
                }
                co_return in;
            }
            case action_type::publish_result: {
                auto in = co_await publish(c, records_of(c, a));
                if (in.status == step_status::ok && a.result) {
                    const bool final = a.snapshot.has_value();
                    count_result(*a.result, final);
                    log_result(c, *a.result, final);
                }
                co_return in;
            }
            case action_type::stage_for_transaction: {
                stage(c, a);
                if (a.result) {
                    const bool final = a.snapshot && a.snapshot->state != jobs::job_state::queued;
                    count_result(*a.result, final);
                    log_result(c, *a.result, final);
                    if (!final) ++st.retried;
                }
                if (a.dead_letter) {
                    ++st.dead_lettered;
                    c.log.warn("job.dead_lettered", {{"reason", a.reason}});
                }
                co_return input{};
            }
            case action_type::commit: {
                tracker.release(c.part, c.msg.offset);
                if (c.mode == jobs::delivery_mode::exactly_once) txn_wake.notify();
                else request_commit();
                co_return input{};
            }
            case action_type::abandon:
            case action_type::done:
                break;
        }
        co_return input{};
    }

    input open_credentials(job_ctx& c) {
        const auto& sealed = c.fsm->job().spec.credentials;
        if (deps.keys == nullptr || deps.keys->empty()) return failed_input(credentials_failure(errc::not_found));
        auto opened = crypto::open(*deps.keys, c.id, sealed);
        if (!opened) return failed_input(credentials_failure(opened.error() == errc::not_found ? errc::not_found : errc::unauthorized));
        c.credentials = std::move(*opened);
        boost::system::error_code ec;
        auto v = json::parse(c.credentials, ec);
        if (ec || !v.is_object()) return failed_input(credentials_failure(errc::bad_message));
        for (auto& [k, val] : v.as_object()) {
            if (!val.is_string()) continue;
            c.secrets[std::string(k)] = std::string(val.as_string());
            auto& s = val.as_string();
            std::fill(s.begin(), s.end(), '\0');
        }
        return input{};
    }

    git::repo_credentials repo_credentials(const job_ctx& c) const {
        git::repo_credentials rc;
        const auto& repo = c.fsm->job().spec.repo;
        auto secret = c.secret(repo.credential);
        if (secret.empty()) return rc;
        auto url = git::parse_repo_url(repo.url);
        if (url && url->scheme == "ssh") {
            rc.ssh_private_key = std::move(secret);
        } else {
            rc.password = std::move(secret);
            if (url) rc.username = url->user;
        }
        return rc;
    }

    asio::awaitable<input> prepare(job_ctx& c) {
        const auto& job = c.fsm->job();
        try {
            c.ws = std::make_unique<sandbox::workspace>(cfg.jobs_dir, job.id, job.attempt);
        } catch (const std::exception& e) {
            co_return failed_input(worker_failure(std::string("cannot create the workspace: ") + e.what()));
        }
        git::prepare_request req;
        req.url = job.spec.repo.url;
        req.ref = job.spec.repo.ref;
        req.commit = job.spec.repo.commit;
        req.credentials = repo_credentials(c);
        req.destination = c.ws->code_dir();
        auto op = deps.cache->prepare(std::move(req));
        auto r = co_await interruptible<git::prepare_result>(c, std::move(op));
        if (!r) co_return status_input(interrupted_status(c));
        if (!*r) {
            const auto& err = r->error();
            if (err.code == git::git_errc::cancelled) co_return status_input(interrupted_status(c));
            co_return failed_input(prepare_failure(err.code, err.message));
        }
        input in;
        in.cache_hit = (*r)->cache_hit;
        c.log.debug("job.prepared", {{"commit", (*r)->commit}, {"cache_hit", (*r)->cache_hit}});
        auto cmd = sandbox::load_function(c.ws->code_dir().string(), job.spec.entry);
        if (!cmd) co_return failed_input(convention_failure(cmd.error().code, cmd.error().message));
        c.command = std::move(*cmd);
        try {
            c.ws->write_input(job.spec.data);
        } catch (const std::exception& e) {
            co_return failed_input(worker_failure(std::string("cannot write the input: ") + e.what()));
        }
        co_return in;
    }

    asio::awaitable<input> download(job_ctx& c) {
        const auto& job = c.fsm->job();
        for (const auto& [name, src] : job.spec.sources) {
            failure f;
            f.code = "source_failed";
            auto path = c.ws->source_path(name);
            if (!path) {
                f.kind = failure_kind::permanent;
                f.message = "source '" + name + "': not a plain file name";
                co_return failed_input(f);
            }
            if (deps.transfer == nullptr) {
                f.kind = failure_kind::permanent;
                f.message = "source '" + name + "': this worker has no HTTP client for sources";
                co_return failed_input(f);
            }
            auto op = deps.transfer->download(src, c.secret(src.credential), *path, cfg.source_max_bytes);
            auto r = co_await interruptible<transfer_outcome>(c, std::move(op));
            if (!r || (!r->ok && (c.cancel_requested || c.abort_requested))) co_return status_input(interrupted_status(c));
            if (!r->ok) {
                f.kind = transfer_failure_kind(r->error, r->http_status);
                f.message = "source '" + name + "': " + r->message;
                co_return failed_input(f);
            }
            c.log.debug("job.source_downloaded", {{"source", name}, {"bytes", static_cast<std::int64_t>(r->bytes)}});
        }
        co_return input{};
    }

    asio::awaitable<input> run_function(job_ctx& c) {
        const auto& job = c.fsm->job();
        sandbox::run_request rr;
        rr.job_id = job.id;
        rr.attempt = job.attempt;
        rr.ws = c.ws.get();
        rr.command = *c.command;
        rr.stdin_data = json::serialize(job.spec.data);
        rr.credentials_json = c.credentials.empty() ? std::string("{}") : c.credentials;
        rr.env = job.spec.env;
        rr.lim = limits_for(job.spec);
        auto op = deps.runner->run(std::move(rr));
        std::optional<sandbox::run_result> r;
        try {
            r = co_await interruptible<sandbox::run_result>(c, std::move(op));
        } catch (const boost::system::system_error& e) {
            if (e.code() == asio::error::operation_aborted) co_return status_input(interrupted_status(c));
            co_return failed_input(worker_failure(std::string("the sandbox did not start: ") + e.what()));
        } catch (const std::exception& e) {
            co_return failed_input(worker_failure(std::string("the sandbox did not start: ") + e.what()));
        }
        if (!r) co_return status_input(interrupted_status(c));
        auto verdict = classify_run(r->status);
        run_report rep;
        rep.state = verdict.state;
        rep.fail = verdict.fail;
        rep.exit_code = r->status.exit_code;
        rep.output = std::move(r->result);
        rep.stdout_text = std::move(r->stdout_text);
        rep.stderr_text = std::move(r->stderr_text);
        rep.stdout_truncated = r->stdout_truncated;
        rep.stderr_truncated = r->stderr_truncated;
        std::vector<std::string> names, sinks;
        for (const auto& o : r->outputs) names.push_back(o.name);
        for (const auto& [name, s] : job.spec.sinks) sinks.push_back(name);
        auto matches = sandbox::match_outputs(names, sinks, c.command->outputs);
        for (const auto& m : matches) {
            jobs::output_file f;
            f.name = m.file;
            f.sink = m.sink;
            for (const auto& o : r->outputs)
                if (o.name == m.file) f.size = o.bytes;
            rep.outputs.push_back(std::move(f));
        }
        c.produced = std::move(r->outputs);
        input in;
        if (verdict.state == jobs::job_state::cancelled) in.status = interrupted_status(c);
        in.run = std::move(rep);
        co_return in;
    }

    asio::awaitable<input> upload(job_ctx& c) {
        const auto& job = c.fsm->job();
        input in;
        // The outputs as the run reported them, now with the sinks' answers.
        std::vector<jobs::output_file> outs;
        std::vector<std::string> names, sinks;
        for (const auto& o : c.produced) names.push_back(o.name);
        for (const auto& [name, s] : job.spec.sinks) sinks.push_back(name);
        for (const auto& m : sandbox::match_outputs(names, sinks, c.command->outputs)) {
            jobs::output_file f;
            f.name = m.file;
            f.sink = m.sink;
            for (const auto& o : c.produced)
                if (o.name == m.file) f.size = o.bytes;
            outs.push_back(std::move(f));
        }
        std::vector<std::pair<std::string, std::string>> extra{{"X-Faasd-Job", job.id},
                                                               {"X-Faasd-Attempt", std::to_string(job.attempt)}};
        for (auto& f : outs) {
            if (f.sink.empty()) continue;
            auto sink_it = job.spec.sinks.find(f.sink);
            if (sink_it == job.spec.sinks.end()) continue;
            failure fl;
            fl.code = "sink_failed";
            if (deps.transfer == nullptr) {
                fl.kind = failure_kind::permanent;
                fl.message = "sink '" + f.sink + "': this worker has no HTTP client for sinks";
                in = failed_input(fl);
                in.outputs = outs;
                co_return in;
            }
            std::filesystem::path file = c.ws->output_dir() / f.name;
            for (const auto& o : c.produced)
                if (o.name == f.name) file = o.path;
            auto backoff = cfg.sink_backoff;
            for (int attempt = 1;; ++attempt) {
                auto op = deps.transfer->upload(sink_it->second, c.secret(sink_it->second.credential), file, extra);
                auto r = co_await interruptible<transfer_outcome>(c, std::move(op));
                if (!r || (!r->ok && (c.cancel_requested || c.abort_requested))) {
                    input i2 = status_input(interrupted_status(c));
                    i2.outputs = outs;
                    co_return i2;
                }
                f.http_status = r->http_status;
                if (r->ok) break;
                fl.kind = transfer_failure_kind(r->error, r->http_status);
                fl.message = "sink '" + f.sink + "': " + r->message + " (" + std::to_string(attempt) +
                             (attempt == 1 ? " try)" : " tries)");
                if (fl.kind != failure_kind::infrastructure || attempt >= cfg.sink_attempts) {
                    input i2 = failed_input(fl);
                    i2.outputs = outs;
                    co_return i2;
                }
                c.log.info("job.sink_retry", {{"sink", f.sink}, {"status", r->http_status}, {"error", r->error}});
                co_await c.wake.wait(steady::now() + backoff);
                backoff *= 2;
            }
            c.log.debug("job.sink_uploaded", {{"sink", f.sink}, {"status", f.http_status}});
        }
        in = input{};
        in.outputs = std::move(outs);
        co_return in;
    }

    // ---- start and stop ----------------------------------------------------------------------

    void create_clients() {
        std::error_code ec;
        std::filesystem::create_directories(cfg.jobs_dir, ec);
        if (ec) throw std::runtime_error("cannot create the jobs directory " + cfg.jobs_dir.string() + ": " + ec.message());
        ::chmod(cfg.jobs_dir.c_str(), 0711);  // per-run uids must reach their workspace

        auto base = cfg.kafka;
        base.log = log;
        std::weak_ptr<impl> weak = shared_from_this();

        kafka::consumer_options co;
        static_cast<kafka::client_options&>(co) = base;
        co.client_id = "faasd-worker-" + cfg.worker_id;
        co.group_id = cfg.group_id;
        co.read_committed = true;
        co.on_readiness = [h = health](bool ready, std::string_view detail) { h->set("kafka", ready, std::string(detail)); };
        co.on_assigned = [weak](const std::vector<kafka::topic_partition>& parts) {
            if (auto self = weak.lock()) self->on_assigned(parts);
        };
        co.on_revoked = [weak](const std::vector<kafka::topic_partition>& parts, bool lost) {
            if (auto self = weak.lock()) return self->on_revoked(parts, lost);
            return std::vector<kafka::topic_partition>{};
        };
        consumer = std::make_unique<kafka::consumer>(ex_, std::move(co));

        kafka::consumer_options cc;
        static_cast<kafka::client_options&>(cc) = base;
        cc.client_id = "faasd-worker-" + cfg.worker_id + "-cancel";
        cc.group_id.clear();
        cc.read_committed = false;
        cancel_consumer = std::make_unique<kafka::consumer>(ex_, std::move(cc));

        if (cfg.max_deliveries > 0) {
            kafka::consumer_options sc;
            static_cast<kafka::client_options&>(sc) = base;
            sc.client_id = "faasd-worker-" + cfg.worker_id + "-state";
            sc.group_id.clear();
            sc.read_committed = true;
            state_consumer = std::make_unique<kafka::consumer>(ex_, std::move(sc));
        }

        kafka::producer_options po;
        static_cast<kafka::client_options&>(po) = base;
        po.client_id = "faasd-worker-" + cfg.worker_id;
        producer = std::make_unique<kafka::producer>(ex_, std::move(po));

        kafka::producer_options tp;
        static_cast<kafka::client_options&>(tp) = base;
        tp.client_id = "faasd-worker-" + cfg.worker_id + "-txn";
        tp.transactional_id = cfg.topics.jobs_exactly_once + ".worker." + cfg.worker_id;
        if (!tp.properties.count("transaction.timeout.ms"))
            tp.properties["transaction.timeout.ms"] = std::to_string(cfg.transaction_timeout.count());
        txn_producer = std::make_unique<kafka::producer>(ex_, std::move(tp));
    }

    template <class Pred>
    asio::awaitable<bool> wait_for_condition(Pred pred, steady::time_point deadline, notifier& n) {
        while (!pred()) {
            if (steady::now() >= deadline) co_return false;
            co_await n.wait(deadline);
        }
        co_return true;
    }

    asio::awaitable<void> run(std::shared_ptr<runtime::shutdown_signal> shutdown, std::chrono::milliseconds grace) {
        using namespace asio::experimental::awaitable_operators;
        create_clients();
        health->set("worker", false, "starting");
        health->set("cancel", false, "loading");
        log.info("worker.started", {{"worker", cfg.worker_id},
                                    {"slots", cfg.slots},
                                    {"group", cfg.group_id},
                                    {"jobs_dir", cfg.jobs_dir.string()}});
        spawn_loop(cancel_loop(), "cancel");
        spawn_loop(heartbeat_loop(), "heartbeat");
        spawn_loop(commit_loop(), "commit");
        spawn_loop(txn_loop(), "transactions");
        if (state_consumer) spawn_loop(state_loop(), "state");

        // Know the recent cancellations before taking jobs (bounded wait).
        {
            auto deadline = steady::now() + 15s;
            while (!cancels_ready && !shutdown->requested() && !fatal && steady::now() < deadline) {
                auto a = jobs_changed.wait(std::min(deadline, steady::now() + 100ms));
                auto b = shutdown->wait();
                co_await (std::move(a) || std::move(b));
            }
            if (!cancels_ready) log.warn("worker.cancels_not_loaded", {{"detail", "taking jobs anyway"}});
        }
        if (!shutdown->requested() && !fatal) {
            spawn_loop(poll_loop(), "poll");
            health->set("worker", true, "up");
            auto a = shutdown->wait();
            auto b = stop_event.wait();
            co_await (std::move(a) || std::move(b));
        }
        co_await drain(grace);
        if (fatal) std::rethrow_exception(fatal);
    }

    asio::awaitable<void> drain(std::chrono::milliseconds grace) {
        draining = true;
        health->set("worker", false, "draining");
        const auto drain_for = cfg.drain_timeout.count() > 0
                                   ? cfg.drain_timeout
                                   : std::max<std::chrono::milliseconds>(grace - 8s, grace / 2);
        log.info("worker.draining", {{"in_flight", static_cast<std::int64_t>(jobs_.size())},
                                     {"busy", busy},
                                     {"drain_ms", drain_for.count()}});
        hb_wake.notify();  // announce draining now
        wake_poll();       // pause everything

        // Jobs that have not started give their message back at once.
        for (auto& [seq, c] : jobs_)
            if (!c->holds_slot) abort_job(*c);
        // Running jobs may finish within the drain timeout.
        auto deadline = steady::now() + drain_for;
        auto no_running = [&] {
            for (auto& [seq, c] : jobs_)
                if (c->holds_slot) return false;
            return true;
        };
        co_await wait_for_condition(no_running, deadline, jobs_changed);
        if (!jobs_.empty()) {
            log.warn("worker.stopping_jobs", {{"jobs", static_cast<std::int64_t>(jobs_.size())}});
            for (auto& [seq, c] : jobs_) abort_job(*c);
            auto kill_deadline = steady::now() + cfg.limits.kill_grace + 5s;
            co_await wait_for_condition([&] { return jobs_.empty(); }, kill_deadline, jobs_changed);
        }

        // Stop polling (the consumer stays in the group until close()).
        poll_stop = true;
        wake_poll();
        // Flush what the transactions and commits still owe.
        auto flush_deadline = steady::now() + 10s;
        txn_wake.notify();
        request_commit();
        co_await wait_for_condition(
            [&] { return staged_.empty() && !txn_busy && commit_candidates(false).empty(); }, flush_deadline,
            jobs_changed);
        txn_stop = true;
        commit_stop = true;
        txn_wake.notify();
        commit_wake.notify();

        try {
            co_await consumer->close();  // leaves the group: the revoke hook commits final positions
        } catch (const std::exception& e) {
            log.warn("worker.close_failed", {{"what", "consumer"}, {"error", e.what()}});
        }
        hb_stop = true;
        hb_wake.notify();
        {
            std::vector<kafka::record> down{heartbeat_record(worker_state::down)};
            auto sent = co_await send_all(*producer, std::move(down));
            if (!sent) log.warn("worker.heartbeat_failed", {{"error", sent.error().message()}});
        }
        cancel_stop = true;
        co_await cancel_consumer->close();
        state_stop = true;
        state_wake.notify();
        if (state_consumer) co_await state_consumer->close();
        auto loops_deadline = steady::now() + 5s;
        co_await wait_for_condition([&] { return loops == 0; }, loops_deadline, loops_changed);
        co_await producer->close(5s);
        co_await txn_producer->close(5s);
        health->set("worker", false, "stopped");
        log.info("worker.stopped", {{"succeeded", static_cast<std::int64_t>(st.succeeded)},
                                    {"failed", static_cast<std::int64_t>(st.failed)},
                                    {"abandoned", static_cast<std::int64_t>(st.abandoned)}});
    }
};

service::service(asio::any_io_executor ex, service_config cfg, service_deps deps, faasd::logger log,
                 std::shared_ptr<runtime::health> health)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(cfg), deps, std::move(log), std::move(health))) {}

service::~service() = default;

asio::awaitable<void> service::run(std::shared_ptr<runtime::shutdown_signal> shutdown,
                                   std::chrono::milliseconds shutdown_grace) {
    auto self = impl_;
    co_await self->run(std::move(shutdown), shutdown_grace);
}

service_stats service::stats() const { return impl_->stats(); }

}  // namespace faasd::worker
