// The observer role: Kafka in, faasd::stats in the middle, reports out.
// Composition only; every number and decision comes from the pure core.

#include "observer/observer.hpp"

#include <faasd/config/config.hpp>
#include <faasd/jobs/codec.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/http/health.hpp>
#include <faasd/kafka/kafka.hpp>
#include <faasd/metrics/registry.hpp>
#include <faasd/stats/reaper.hpp>
#include <faasd/stats/report.hpp>
#include <faasd/worker/messages.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace faasd::roles {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace asio::experimental::awaitable_operators;

namespace {

stats::unix_ms now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::chrono::milliseconds duration_or_throw(const std::string& option, const std::string& v) {
    auto d = config::parse_duration(v);
    if (!d || d->count() < 0) throw config::config_error(option + ": '" + v + "' is not a duration (e.g. 1s, 500ms)");
    return *d;
}

// Parses a JSON text; a syntax error becomes a param_error with field "".
std::optional<json::value> parse_json(std::string_view text, std::vector<stats::param_error>& errors) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) {
        errors.push_back({"", "not valid JSON: " + ec.message()});
        return std::nullopt;
    }
    return v;
}

stats::worker_state to_stats(worker::worker_state s) {
    switch (s) {
        case worker::worker_state::up:
            return stats::worker_state::up;
        case worker::worker_state::draining:
            return stats::worker_state::draining;
        case worker::worker_state::down:
            return stats::worker_state::down;
    }
    return stats::worker_state::down;
}

template <class Options>
Options client_options(const kafka_config& k, const faasd::logger& log, std::string client_id,
                       std::shared_ptr<runtime::health> health, std::string component) {
    Options o;
    o.brokers = k.brokers;
    o.properties = kafka::parse_properties(k.properties);
    o.client_id = std::move(client_id);
    o.log = log;
    if (health)
        o.on_readiness = [health, component](bool ready, std::string_view detail) {
            health->set(component, ready, std::string(detail));
        };
    return o;
}

// The role's metrics (docs/observer.md, "Health and metrics").
struct observer_metrics {
    explicit observer_metrics(metrics::registry& r)
        : target(r.gauge("faasd_observer_target_workers", "The worker count the actuators should run").with({})),
          live(r.gauge("faasd_observer_live_workers", "Workers up per their heartbeats").with({})),
          queue(r.gauge("faasd_observer_queue_length", "Jobs waiting for a slot (short window)").with({})),
          arrival_rate(r.gauge("faasd_observer_arrival_rate", "Jobs per second submitted (short window)").with({})),
          running(r.gauge("faasd_observer_running_jobs", "Jobs running per the state topic").with({})),
          orphaned(r.gauge("faasd_observer_orphaned_jobs",
                           "Running at-least-once/exactly-once jobs whose worker went silent")
                       .with({})),
          decisions(r.counter("faasd_observer_decisions_total", "Ticks decided").with({})),
          changes(r.counter("faasd_observer_target_changes_total", "Target changes").with({})),
          lost(r.counter("faasd_observer_jobs_lost_total", "At-most-once jobs ended as worker_lost").with({})),
          bad_messages(r.counter("faasd_observer_bad_messages_total", "Undecodable input messages").with({})) {}
    metrics::gauge& target;
    metrics::gauge& live;
    metrics::gauge& queue;
    metrics::gauge& arrival_rate;
    metrics::gauge& running;
    metrics::gauge& orphaned;
    metrics::counter& decisions;
    metrics::counter& changes;
    metrics::counter& lost;
    metrics::counter& bad_messages;
};

// Everything one observer holds; lives in run_observer's frame.
struct observer_state {
    stats::observer_params params;
    stats::tracker tracker;
    stats::controller controller;
    stats::job_table jobs;  // the state topic: starts, and the reaper's running jobs
    int target = 0;
    bool replayed = false;
    bool started = false;  // the initial target was announced

    // Config status for the report.
    std::string params_source = "startup";
    stats::unix_ms params_at = 0;
    std::int64_t params_offset = -1;
    std::optional<json::object> rejected;  // the last rejected update
    std::uint64_t rejected_count = 0;

    std::uint64_t bad_messages = 0;
    std::uint64_t decisions = 0;
    std::uint64_t changes = 0;

    // The reaper, for the report.
    stats::reap_plan last_reap;
    std::uint64_t lost_published = 0;  // lost jobs whose records Kafka acknowledged
    std::uint64_t lost_failed = 0;     // attempts to publish them that failed (retried)

    std::shared_ptr<metrics::registry> registry = std::make_shared<metrics::registry>();
    observer_metrics metrics{*registry};
};

// Applies one observer-config message (the latest wins; a bad one is reported and ignored).
void apply_config(observer_state& st, const kafka::message& m, const faasd::logger& log) {
    if (m.tombstone()) return;  // deleting the config keeps the last good one
    std::vector<stats::param_error> errors;
    auto v = parse_json(*m.value, errors);
    if (v) {
        auto u = stats::apply_params_update(st.params, *v);
        if (u.accepted) {
            const bool window_change = u.params.long_window_ms != st.params.long_window_ms ||
                                       u.params.stale_after_ms != st.params.stale_after_ms;
            st.params = u.params;
            st.params_source = "observer-config";
            st.params_at = m.timestamp_ms;
            st.params_offset = m.offset;
            if (window_change) st.tracker.configure(stats::tracker_config_for(st.params));
            log.info("observer.config_applied", {{"offset", m.offset},
                                                 {"min_workers", st.params.min_workers},
                                                 {"max_workers", st.params.max_workers},
                                                 {"tick_ms", st.params.tick_ms}});
            return;
        }
        errors = std::move(u.errors);
    }
    const auto text = stats::to_string(errors);
    json::array list;
    for (const auto& e : errors) list.push_back({{"field", e.field}, {"reason", e.reason}});
    st.rejected = json::object{{"at", m.timestamp_ms}, {"offset", m.offset}, {"errors", std::move(list)},
                               {"message", text}};
    ++st.rejected_count;
    log.warn("observer.config_rejected", {{"offset", m.offset}, {"errors", text}});
}

// One event-bearing message into the tracker. Malformed messages are counted, not fatal.
void ingest(observer_state& st, const jobs::topic_names& names, const kafka::message& m, const faasd::logger& log) {
    if (m.tombstone()) return;
    const std::string_view value = *m.value;
    bool ok = true;
    if (m.topic == names.results) {
        if (auto r = jobs::decode_job_result(value)) {
            st.tracker.add(stats::finished_from_result(*r));
            st.jobs.add_result(r->id, r->attempt);
        } else {
            ok = false;
        }
    } else if (m.topic == names.state) {
        // `running` snapshots are the starts; every snapshot feeds the reaper's view.
        if (auto s = jobs::decode_job_status(value)) {
            if (auto started = st.jobs.add(*s, now_ms())) st.tracker.add(*started);
        } else {
            ok = false;
        }
    } else if (m.topic == names.heartbeats) {
        if (auto h = worker::decode_heartbeat(value)) {
            st.tracker.add(stats::worker_heartbeat{h->worker, h->slots, h->busy, h->at, to_stats(h->state)});
            st.jobs.add_heartbeat(h->worker, h->at);
        } else {
            ok = false;
        }
    } else {  // a jobs topic
        if (auto j = jobs::decode_job_message(value)) {
            // Attempt 1 was queued at submission; a retry when it was produced.
            const stats::unix_ms queued_at =
                j->attempt <= 1 || m.timestamp_ms <= 0 ? j->submitted_at : m.timestamp_ms;
            st.tracker.add(stats::submitted_from_message(*j, queued_at));
        } else {
            ok = false;
        }
    }
    if (!ok) {
        ++st.bad_messages;
        st.metrics.bad_messages.inc();
        // One line per power of two: a flood of garbage cannot flood the log.
        if ((st.bad_messages & (st.bad_messages - 1)) == 0)
            log.warn("observer.bad_message", {{"topic", m.topic},
                                              {"partition", m.partition},
                                              {"offset", m.offset},
                                              {"count", st.bad_messages}});
    }
}

json::object report_json(const observer_state& st, const stats::observer_report& r) {
    auto o = stats::to_json(r);
    o["target"] = st.target;
    json::object cfg{{"source", st.params_source},
                     {"applied_at", st.params_at},
                     {"offset", st.params_offset},
                     {"rejected_count", st.rejected_count}};
    cfg["last_rejected"] = st.rejected ? json::value(*st.rejected) : json::value(nullptr);
    o["config"] = std::move(cfg);
    o["observer"] = {{"decisions", st.decisions}, {"changes", st.changes}, {"bad_messages", st.bad_messages}};
    const auto jc = st.jobs.counters();
    o["reaper"] = {{"lost_after_ms", st.jobs.config().lost_after_ms},
                   {"running", jc.running},
                   {"orphaned", st.last_reap.orphaned},
                   {"ending", st.last_reap.ending},
                   {"lost", st.lost_published},
                   {"publish_failures", st.lost_failed},
                   {"ended_remembered", jc.ended}};
    return o;
}

}  // namespace

// ---------------------------------------------------------------------------
// Options

void add_observer_options(CLI::App& app, observer_config& cfg) {
    app.add_option("--params", cfg.params,
                   "Initial scaling parameters: a JSON object (docs/observer.md, Parameters) or @file; a valid "
                   "message on the observer-config topic replaces them");
    const stats::observer_params defaults;
    app.add_option("--min-workers", cfg.min_workers,
                   "Fewest workers to run; overrides params.min_workers (default: from --params, else " +
                       std::to_string(defaults.min_workers) + ")");
    app.add_option("--max-workers", cfg.max_workers,
                   "Most workers to run; overrides params.max_workers (default: from --params, else " +
                       std::to_string(defaults.max_workers) + ")");
    app.add_option("--slots-per-worker", cfg.slots_per_worker,
                   "The workers' --slots; overrides params.slots_per_worker (default: from --params, else " +
                       std::to_string(defaults.slots_per_worker) + ")");
    app.add_option("--tick", cfg.tick,
                   "Report and decision period, e.g. 1s; overrides params.tick_ms (default: from --params, else " +
                       std::to_string(defaults.tick_ms) + "ms)");
    app.add_option("--initial-workers", cfg.initial_workers,
                   "Workers running when the observer starts (default: the live workers in the heartbeats, "
                   "within min/max)");
    app.add_option("--observer-group", cfg.group, "The observer consumer's group id (default <prefix>observer)");
    app.add_option("--workers-group", cfg.workers_group,
                   "The workers' consumer group whose lag is the queue (default <prefix>workers)");
    app.add_option("--replay-timeout", cfg.replay_timeout,
                   "Start deciding after this even if the replay of the topics is not finished")
        ->capture_default_str();
    app.add_option("--sample-lag", cfg.sample_lag, "Sample the workers' group lag every tick (true|false)")
        ->capture_default_str();
    app.add_option("--lost-after", cfg.lost_after,
                   "End a running at-most-once job as failed (worker_lost) when its worker sent no heartbeat for "
                   "this long (0s: never)")
        ->capture_default_str();
    app.add_option("--health-listen", cfg.health_listen,
                   "host:port serving /healthz, /readyz and /metrics (empty: no health server)");
    app.add_flag("--supervise", cfg.supervise,
                 "Also start and stop local `faasd worker` processes to the decided target (SIGTERM: they drain)");
    app.add_option("--worker-arg", cfg.worker_args,
                   "With --supervise: an argument for each `faasd worker` child (repeatable)");
    app.add_option("--stop-timeout", cfg.stop_timeout,
                   "With --supervise: SIGKILL a worker this long after SIGTERM if it has not exited (default and "
                   "minimum: the workers' --shutdown-grace + 2s)");
}

void observer_config::validate() {
    stats::observer_params p;
    if (!params.empty()) {
        std::string text = params;
        if (text.front() == '@') {
            std::ifstream in(text.substr(1));
            if (!in) throw config::config_error("--params: cannot read '" + text.substr(1) + "'");
            std::ostringstream ss;
            ss << in.rdbuf();
            text = ss.str();
        }
        auto r = stats::params_from_json(std::string_view(text));
        if (!r.ok()) throw config::config_error("--params: " + stats::to_string(r.errors));
        p = r.params;
    }
    if (min_workers) p.min_workers = *min_workers;
    if (max_workers) p.max_workers = *max_workers;
    if (slots_per_worker) p.slots_per_worker = *slots_per_worker;
    if (!tick.empty()) p.tick_ms = duration_or_throw("--tick", tick).count();
    if (auto errors = stats::validate(p); !errors.empty())
        throw config::config_error("observer parameters: " + stats::to_string(errors));
    if (initial_workers && (*initial_workers < 0 || *initial_workers > 10000))
        throw config::config_error("--initial-workers: must be between 0 and 10000");
    replay_timeout_ms();
    lost_after_ms();
    if (!stop_timeout.empty()) duration_or_throw("--stop-timeout", stop_timeout);
    if (!health_listen.empty() && !config::parse_endpoint(health_listen))
        throw config::config_error("--health-listen: '" + health_listen + "' is not host:port");
    params_ = p;
}

std::chrono::milliseconds observer_config::replay_timeout_ms() const {
    return duration_or_throw("--replay-timeout", replay_timeout);
}

std::chrono::milliseconds observer_config::lost_after_ms() const {
    return duration_or_throw("--lost-after", lost_after);
}

// ---------------------------------------------------------------------------
// The role

asio::awaitable<void> run_observer(observer_config cfg, kafka_config kcfg, runtime::role_env& env,
                                   std::function<void(int target_workers)> on_target) {
    auto ex = co_await asio::this_coro::executor;
    const auto log = env.log;
    const auto names = jobs::topic_names::with_prefix(kcfg.topic_prefix);
    const std::string group = cfg.group.empty() ? kcfg.topic_prefix + "observer" : cfg.group;
    const std::string workers_group = cfg.workers_group.empty() ? kcfg.topic_prefix + "workers" : cfg.workers_group;
    cfg.validate();  // idempotent; callers (faasd dev, tests) may have skipped it
    const auto replay_timeout = cfg.replay_timeout_ms();

    auto state = std::make_unique<observer_state>();
    auto& st = *state;
    st.params = cfg.params_;
    st.tracker.configure(stats::tracker_config_for(st.params));
    // Events older than the retention horizon are dropped as late during the replay.
    st.tracker.evict(now_ms());
    stats::reaper_config rc;
    rc.lost_after_ms = cfg.lost_after_ms().count();
    st.jobs.configure(rc);
    if (env.health_state) env.health_state->set("observer", false, "replaying");

    auto aopts = client_options<kafka::admin_options>(kcfg, log, "faasd-observer-admin", env.health_state,
                                                      "observer.kafka");
    aopts.request_timeout = std::chrono::seconds(5);  // a lag query in flight delays shutdown at most this long
    kafka::admin adm(ex, aopts);
    if (kcfg.create_topics) {
        auto r = co_await kafka::ensure_faasd_topics(adm, names, kcfg.topic_partitions, kcfg.topic_replication);
        if (!r) log.warn("observer.ensure_topics_failed", {{"error", r.error().message()}});
    }
    auto copts = client_options<kafka::consumer_options>(kcfg, log, "faasd-observer", env.health_state,
                                                         "observer.kafka");
    copts.group_id = group;
    copts.read_committed = true;  // the state and results of aborted transactions never happened
    kafka::consumer consumer(ex, copts);
    kafka::producer producer(
        ex, client_options<kafka::producer_options>(kcfg, log, "faasd-observer", nullptr, "observer.kafka"));

    std::vector<std::string> topics = names.all_jobs();
    topics.push_back(names.results);
    topics.push_back(names.state);
    topics.push_back(names.heartbeats);
    topics.push_back(names.observer_config);
    const auto started = std::chrono::steady_clock::now();
    log.info("observer.starting", {{"group", group},
                                   {"workers_group", workers_group},
                                   {"tick_ms", st.params.tick_ms},
                                   {"min_workers", st.params.min_workers},
                                   {"max_workers", st.params.max_workers}});

    auto announce = [&](int target) {
        if (!on_target) return;
        try {
            on_target(target);
        } catch (const std::exception& e) {
            log.error("observer.on_target_failed", {{"target", target}, {"error", e.what()}});
        }
    };

    // Reads every topic from the beginning; the replay is done when caught up.
    auto consume = [&]() -> asio::awaitable<void> {
        kafka::backoff_policy retry;
        for (int failures = 0;;) {
            auto r = co_await consumer.assign_topics(topics, kafka::offset_beginning);
            if (r) break;
            ++failures;
            log.warn("observer.assign_failed", {{"error", r.error().message()}, {"attempt", failures}});
            asio::steady_timer t(ex, retry.delay(failures));
            co_await t.async_wait(asio::use_awaitable);
        }
        constexpr std::size_t max_batch = 1024;
        for (;;) {
            // At most a tick's wait: an empty batch says "nothing more to read" too.
            auto batch = co_await consumer.poll(max_batch, std::chrono::milliseconds(st.params.tick_ms));
            for (const auto& m : batch) {
                if (m.topic == names.observer_config)
                    apply_config(st, m, log);
                else
                    ingest(st, names, m, log);
            }
            // Less than a full batch: everything fetched is read, the events are
            // complete up to now (the tracker then trusts its queue count).
            if (st.replayed && batch.size() < max_batch) st.tracker.mark_caught_up(now_ms());
            if (!st.replayed && consumer.caught_up()) {
                st.replayed = true;
                st.tracker.mark_caught_up(now_ms());
                const auto c = st.tracker.counters();
                log.info("observer.replayed",
                         {{"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count()},
                          {"events", c.events},
                          {"late", c.late},
                          {"records", c.records}});
            }
        }
    };

    // Samples the workers' group lag (the queue) every tick; never delays a tick.
    auto sample_lag = [&]() -> asio::awaitable<void> {
        const auto jobs_topics = names.all_jobs();
        bool failing = false;
        for (;;) {
            auto r = co_await adm.group_lag(workers_group, jobs_topics);
            if (r) {
                std::int64_t lag = 0;
                for (const auto& p : *r) lag += std::max<std::int64_t>(0, p.lag);
                st.tracker.add(stats::lag_sample{now_ms(), lag});
                if (failing) log.info("observer.lag_recovered", {{"lag", lag}});
                failing = false;
            } else if (!failing) {
                failing = true;
                log.warn("observer.lag_failed", {{"group", workers_group}, {"error", r.error().message()}});
            }
            asio::steady_timer t(ex, std::chrono::milliseconds(st.params.tick_ms));
            co_await t.async_wait(asio::use_awaitable);
        }
    };

    // Ends lost at-most-once jobs (stats::job_table::reap) once the replay is
    // done, so that every heartbeat up to now is known. Never delays a tick.
    auto reaper = [&]() -> asio::awaitable<void> {
        asio::steady_timer t(ex);
        for (;;) {
            t.expires_after(std::chrono::milliseconds(st.params.tick_ms));
            co_await t.async_wait(asio::use_awaitable);
            if (!st.replayed) continue;
            const auto now = now_ms();
            st.jobs.evict(now);
            auto plan = st.jobs.reap(now);
            st.metrics.running.set(static_cast<double>(plan.running));
            st.metrics.orphaned.set(static_cast<double>(plan.orphaned));
            for (auto& lost : plan.lost) {
                const auto& s = lost.snapshot;
                log.warn("observer.job_lost", {{"job", s.id},
                                               {"attempt", s.attempt},
                                               {"worker", s.worker},
                                               {"silent_ms", now - lost.last_seen}});
                // The snapshot and the result, keyed by job id; both acknowledged or retried.
                kafka::record snap, res;
                snap.topic = names.state;
                snap.key = s.id;
                snap.value = jobs::encode(s);
                res.topic = names.results;
                res.key = s.id;
                res.value = jobs::encode(lost.result);
                // (No co_await inside a conditional expression: GCC 12 destroys its temporaries twice.)
                std::string error;
                auto a = co_await producer.send(std::move(snap));
                if (a) {
                    auto b = co_await producer.send(std::move(res));
                    if (!b) error = b.error().message();
                } else {
                    error = a.error().message();
                }
                if (error.empty()) {
                    ++st.lost_published;
                    st.metrics.lost.inc();
                } else {
                    ++st.lost_failed;
                    st.jobs.retry(s.id);
                    log.warn("observer.job_lost_publish_failed", {{"job", s.id}, {"error", error}});
                }
            }
            plan.lost.clear();
            st.last_reap = std::move(plan);
        }
    };

    auto tick = [&]() -> asio::awaitable<void> {
        asio::steady_timer t(ex);
        auto next = std::chrono::steady_clock::now();
        for (;;) {
            next += std::chrono::milliseconds(st.params.tick_ms);
            const auto now_steady = std::chrono::steady_clock::now();
            if (next < now_steady) next = now_steady;  // fell behind: do not burst
            t.expires_at(next);
            co_await t.async_wait(asio::use_awaitable);
            if (!st.replayed && now_steady - started < replay_timeout) continue;
            const auto now = now_ms();
            if (!st.started) {
                st.started = true;
                if (!st.replayed) log.warn("observer.replay_timeout", {{"timeout_ms", replay_timeout.count()}});
                const int initial = cfg.initial_workers ? *cfg.initial_workers
                                                        : st.tracker.summarize(now, st.params.short_window_ms).workers;
                st.target = std::clamp(initial, st.params.min_workers, st.params.max_workers);
                log.info("observer.initial_target", {{"target", st.target}, {"live_workers", initial}});
                if (env.health_state) env.health_state->set("observer", true, "deciding");
                announce(st.target);
            }
            auto report = stats::observe_tick(st.tracker, st.controller, st.target, st.params, now);
            ++st.decisions;
            st.metrics.decisions.inc();
            const auto& d = report.decision;
            st.metrics.live.set(report.short_window.workers);
            st.metrics.queue.set(static_cast<double>(report.short_window.queue_length));
            st.metrics.arrival_rate.set(report.short_window.arrival_rate);
            if (d.target != st.target) {
                ++st.changes;
                st.metrics.changes.inc();
                log.info("observer.scale", {{"action", stats::to_string(d.action)},
                                            {"from", st.target},
                                            {"to", d.target},
                                            {"reason", d.reason}});
                st.target = d.target;
                announce(st.target);
            }
            st.metrics.target.set(st.target);
            kafka::record rec;
            rec.topic = names.observer;
            rec.key = "report";
            rec.value = json::serialize(report_json(st, report));
            producer.post(std::move(rec));
        }
    };

    auto observe = [&]() -> asio::awaitable<void> {
        if (cfg.sample_lag)
            co_await (consume() || tick() || reaper() || sample_lag() || env.shutdown->wait());
        else
            co_await (consume() || tick() || reaper() || env.shutdown->wait());
    };
    std::exception_ptr failure;
    try {
        if (cfg.health_listen.empty())
            co_await observe();
        else
            co_await (observe() && http::serve_health(env, cfg.health_listen, st.registry));
    } catch (...) {
        failure = std::current_exception();
    }
    log.info("observer.stopping", {{"decisions", st.decisions}, {"changes", st.changes}, {"failed", failure != nullptr}});
    if (env.health_state) env.health_state->set("observer", false, "stopped");
    co_await consumer.close();
    co_await producer.close(std::chrono::seconds(failure ? 2 : 5));
    co_await adm.close();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace faasd::roles
