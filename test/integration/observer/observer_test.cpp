// The observer role against a real Kafka (FAASD_TEST_KAFKA): job, result and
// heartbeat events with event timestamps go in, run_observer runs in-process,
// and the reports it publishes on the observer topic are checked. Also the
// scaler (runs a command with the target) and the worker supervisor.

#include "support/support.hpp"
#include "unit/kafka/kafka_test_util.hpp"

#include "observer/observer.hpp"

#include <faasd/jobs/codec.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/kafka.hpp>
#include <faasd/worker/messages.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <sys/wait.h>
#include <fstream>
#include <sstream>

extern char** environ;

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;
namespace kafka = faasd::kafka;
namespace jobs = faasd::jobs;
namespace roles = faasd::roles;
using faasd::kafka::testing::log_capture;

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

// One test's topics, clients and the observer under test.
struct harness {
    log_capture logs;
    std::string brokers = faasd::test::require_env("FAASD_TEST_KAFKA");
    std::string prefix = faasd::test::unique_name("obs") + ".";
    jobs::topic_names names = jobs::topic_names::with_prefix(prefix);
    asio::any_io_executor ex;
    std::unique_ptr<kafka::producer> producer;
    std::unique_ptr<kafka::consumer> reports;  // reads the observer topic
    std::unique_ptr<kafka::admin> admin;
    std::vector<json::object> seen;            // every report read so far
    std::vector<int> targets;                  // on_target calls
    std::optional<faasd::runtime::role_env> env;
    bool done = false;
    std::exception_ptr error;
    int seq = 0;

    roles::kafka_config kafka_cfg() const {
        roles::kafka_config k;
        k.brokers = brokers;
        k.topic_prefix = prefix;
        k.topic_partitions = 2;
        k.topic_replication = 1;
        return k;
    }

    template <class O>
    O opts(const char* id) const {
        O o;
        o.brokers = brokers;
        o.client_id = id;
        o.log = logs.logger(faasd::log_level::info);
        return o;
    }

    asio::awaitable<void> setup() {
        ex = co_await asio::this_coro::executor;
        admin = std::make_unique<kafka::admin>(ex, opts<kafka::admin_options>("test-admin"));
        CO_REQUIRE(co_await kafka::ensure_faasd_topics(*admin, names, 2, 1));
        producer = std::make_unique<kafka::producer>(ex, opts<kafka::producer_options>("test-producer"));
        reports = std::make_unique<kafka::consumer>(ex, opts<kafka::consumer_options>("test-reports"));
        std::vector<std::string> observer_topic{names.observer};
        CO_REQUIRE(co_await reports->assign_topics(std::move(observer_topic), kafka::offset_beginning));
    }

    asio::awaitable<void> send(std::string topic, std::string key, std::string value, std::int64_t ts) {
        kafka::record r;
        r.topic = std::move(topic);
        r.key = std::move(key);
        r.value = std::move(value);
        r.timestamp_ms = ts;
        CO_REQUIRE(co_await producer->send(std::move(r)));
    }

    // A job queued at `sub`, started at `start`, finished at `fin` (0: not finished yet).
    asio::awaitable<void> job(std::int64_t sub, std::int64_t start, std::int64_t fin, const std::string& worker = "w1") {
        jobs::job_message m;
        m.id = "job-" + std::to_string(++seq);
        m.submitted_at = sub;
        m.spec.repo.url = "https://example.com/fn.git";
        m.spec.repo.ref = "main";
        co_await send(names.jobs_at_least_once, m.id, jobs::encode(m), sub);
        if (fin == 0) co_return;
        jobs::job_result r;
        r.id = m.id;
        r.state = jobs::job_state::succeeded;
        r.worker = worker;
        r.times.submitted_at = sub;
        r.times.started_at = start;
        r.times.run_started_at = start;
        r.times.finished_at = fin;
        r.times.queue_wait_ms = start - sub;
        r.times.run_ms = fin - start;
        r.times.total_ms = fin - sub;
        co_await send(names.results, m.id, jobs::encode(r), fin);
    }

    asio::awaitable<void> heartbeat(std::string worker, int slots, int busy, std::int64_t at) {
        faasd::worker::heartbeat h{worker, slots, busy, at, faasd::worker::worker_state::up};
        co_await send(names.heartbeats, worker, faasd::worker::encode(h), at);
    }

    asio::awaitable<void> config(std::string value) {
        co_await send(names.observer_config, "config", std::move(value), now_ms());
    }

    // Commits the workers' group at the jobs topics' high watermarks: everything consumed.
    asio::awaitable<void> commit_workers() {
        auto wm = co_await admin->watermarks(names.all_jobs());
        REQUIRE(kafka::testing::ok(wm));
        std::vector<kafka::topic_partition> pos;
        for (const auto& p : *wm) pos.push_back({p.topic, p.partition, p.high});
        auto o = opts<kafka::consumer_options>("test-workers");
        o.group_id = prefix + "workers";
        kafka::consumer c(ex, o);
        CO_REQUIRE(co_await c.commit(pos));
        co_await c.close();
    }

    void start(roles::observer_config cfg) {
        done = false;
        error = nullptr;
        env.emplace(faasd::runtime::role_env{logs.logger(faasd::log_level::info),
                                             std::make_shared<faasd::runtime::health>(),
                                             std::make_shared<faasd::runtime::shutdown_signal>(ex), 5s});
        asio::co_spawn(ex, roles::run_observer(cfg, kafka_cfg(), *env, [this](int t) { targets.push_back(t); }),
                       [this](std::exception_ptr e) {
                           error = e;
                           done = true;
                       });
    }

    // Reads reports until one satisfies pred (returned) or the timeout passes (fails).
    asio::awaitable<json::object> wait_report(std::function<bool(const json::object&)> pred,
                                              std::chrono::milliseconds timeout, const char* what) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (std::size_t i = 0;;) {
            for (; i < seen.size(); ++i)
                if (pred(seen[i])) co_return seen[i];
            REQUIRE_FALSE(done);  // the observer must not have stopped
            const auto now = std::chrono::steady_clock::now();
            if (now >= deadline) {
                INFO("last report: " << (seen.empty() ? std::string("none") : json::serialize(seen.back())));
                INFO("logs:\n" << logs.dump("observer."));
                FAIL("no report " << what << " within " << timeout.count() << " ms");
            }
            auto batch = co_await reports->poll(
                256, std::min<std::chrono::milliseconds>(
                         500ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)));
            for (auto& m : batch)
                if (m.value) seen.push_back(json::parse(*m.value).as_object());
        }
    }

    // Stops the observer only (topics and clients stay).
    asio::awaitable<void> stop_observer() {
        if (!env) co_return;  // none started in-process
        env->shutdown->request();
        for (int i = 0; i < 200 && !done; ++i) co_await sleep_for(50ms);
        REQUIRE(done);
        if (error) std::rethrow_exception(error);
    }

    asio::awaitable<void> stop() {
        co_await stop_observer();
        co_await reports->close();
        co_await producer->close(5s);
        CO_REQUIRE(co_await admin->delete_topics(names.all()));
        co_await admin->close();
    }
};

double num(const json::object& o, std::string_view a, std::string_view b) {
    const auto& v = o.at(a).as_object().at(b);
    return v.is_null() ? -1.0 : v.to_number<double>();
}

// The test parameters (fast ticks, short windows), with overrides.
std::string params_json(json::object overrides = {}) {
    json::object p{{"tick_ms", 200},          {"short_window_ms", 10000}, {"long_window_ms", 20000},
                   {"settle_ms", 0},          {"min_workers", 1},         {"max_workers", 10},
                   {"slots_per_worker", 4}};
    for (const auto& kv : overrides) p[kv.key()] = kv.value();
    return json::serialize(p);
}

}  // namespace

TEST_CASE("observer: report numbers from replayed events (W, Wq, mu, lambda, Little, queue from lag, workers)",
          "[observer][integration]") {
    harness h;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            co_await h.setup();
            // 50 jobs over the last 10 s: 5/s, each waiting 0.2 s and running 0.5 s.
            const auto t0 = now_ms();
            for (int i = 0; i < 50; ++i) {
                const auto sub = t0 - 10'000 + i * 200;
                co_await h.job(sub, sub + 200, sub + 700, i % 2 ? "w1" : "w2");
            }
            co_await h.heartbeat("w1", 4, 1, t0);
            co_await h.heartbeat("w2", 4, 1, t0);
            co_await h.commit_workers();

            roles::observer_config cfg;
            cfg.params = params_json();
            cfg.initial_workers = 2;
            h.start(cfg);
            auto r = co_await h.wait_report([](const json::object&) { return true; }, 30s, "at all");
            INFO(json::serialize(r));
            CHECK(num(r, "measured", "W_s") == Approx(0.7).margin(0.002));
            CHECK(num(r, "measured", "Wq_s") == Approx(0.2).margin(0.002));
            CHECK(num(r, "measured", "mu") == Approx(2.0).epsilon(0.01));
            // The long window (20 s) holds all 50 arrivals; the short one most of them.
            CHECK(num(r, "measured", "lambda_long") == Approx(2.5).epsilon(0.01));
            // The short window (10 s) ends at the tick: exactly the arrivals after its start.
            const auto end = r.at("windows").at("short").at("at").as_int64();
            int in_short = 0;
            for (int i = 0; i < 50; ++i) {
                const auto sub = t0 - 10'000 + i * 200;
                if (sub > end - 10'000 && sub <= end) ++in_short;
            }
            CHECK(r.at("windows").at("short").at("arrivals").as_int64() == in_short);
            CHECK(num(r, "measured", "lambda") == Approx(in_short / 10.0));
            // Little's law: L = lambda W from the same window.
            CHECK(num(r, "measured", "L_little") ==
                  Approx(num(r, "measured", "lambda") * num(r, "measured", "W_s")).epsilon(0.01));
            CHECK(r.at("measured").as_object().contains("little_error"));
            CHECK(r.at("measured").at("workers").as_int64() == 2);
            CHECK(r.at("measured").at("slots").as_int64() == 8);
            // Every topic read: the queue comes from the events, the lag is the cross-check.
            CHECK(r.at("measured").at("queue_source").as_string() == "events");
            CHECK(r.at("measured").at("events_fresh").as_bool());
            CHECK(r.at("measured").at("lag").as_int64() == 0);
            CHECK(r.at("measured").at("queue_from_lag").as_int64() == 0);
            CHECK(r.at("measured").at("queue_length").as_int64() == 0);
            CHECK(r.at("decision").at("action").as_string() == "none");
            CHECK(r.at("target").as_int64() == 2);
            CHECK_FALSE(r.at("decision").at("reason").as_string().empty());
            CHECK(r.at("model").at("at_current").at("slots").as_int64() == 8);
            CHECK(r.at("params").at("tick_ms").as_int64() == 200);
            CHECK(h.targets == std::vector<int>{2});  // announced once at start
            co_await h.stop();
        },
        90s);
}

TEST_CASE("observer: a restarted observer rebuilds the same windows from event times", "[observer][integration]") {
    harness h;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            co_await h.setup();
            const auto t0 = now_ms();
            for (int i = 0; i < 30; ++i) {
                const auto sub = t0 - 15'000 + i * 500;
                co_await h.job(sub, sub + 100, sub + 400);
            }
            co_await h.heartbeat("w1", 4, 0, t0);
            roles::observer_config cfg;
            cfg.params = params_json({{"long_window_ms", 60000}});
            cfg.initial_workers = 1;
            cfg.sample_lag = false;
            h.start(cfg);
            auto a = co_await h.wait_report([](const json::object&) { return true; }, 30s, "from the first observer");
            co_await h.stop_observer();
            const auto a_at = a.at("at").as_int64();
            h.start(cfg);
            auto b = co_await h.wait_report(
                [&](const json::object& o) {
                    return o.at("at").as_int64() > a_at && o.at("observer").at("decisions").as_int64() == 1;
                },
                30s, "from the restarted observer");
            INFO(json::serialize(b));
            const auto& la = a.at("windows").at("long").as_object();
            const auto& lb = b.at("windows").at("long").as_object();
            CHECK(lb.at("arrivals").as_int64() == 30);
            CHECK(la.at("arrivals").as_int64() == 30);
            CHECK(lb.at("completions").as_int64() == la.at("completions").as_int64());
            CHECK(lb.at("response_s").at("mean").to_number<double>() == Approx(0.4));
            CHECK(lb.at("wait_s").at("mean").to_number<double>() == Approx(0.1));
            CHECK(lb.at("service_rate").to_number<double>() == Approx(1 / 0.3));
            CHECK(b.at("tracker").at("records").as_int64() == 30);
            co_await h.stop();
        },
        90s);
}

TEST_CASE("observer: a load step makes it scale up, and on_target follows", "[observer][integration]") {
    harness h;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            co_await h.setup();
            const auto t0 = now_ms();
            // History: 1/s for 20 s, service 0.5 s; one worker is plenty.
            for (int i = 0; i < 20; ++i) {
                const auto sub = t0 - 20'000 + i * 1000;
                co_await h.job(sub, sub + 100, sub + 600);
            }
            roles::observer_config cfg;
            cfg.params = params_json({{"short_window_ms", 5000}, {"slots_per_worker", 2}, {"up_cooldown_ms", 0}});
            cfg.initial_workers = 1;
            cfg.sample_lag = false;
            h.start(cfg);
            auto before = co_await h.wait_report([](const json::object&) { return true; }, 30s, "at all");
            CHECK(before.at("target").as_int64() == 1);
            CHECK(before.at("decision").at("action").as_string() == "none");
            // The step, live: 10/s for 5 s (a whole short window).
            const auto until = std::chrono::steady_clock::now() + 5s;
            while (std::chrono::steady_clock::now() < until) {
                const auto now = now_ms();
                co_await h.job(now - 600, now - 500, now);
                co_await sleep_for(100ms);
            }
            // 10/s x 0.5 s = 5 erlangs on 2-slot workers: at least 3 workers (6 slots).
            auto r = co_await h.wait_report(
                [](const json::object& o) { return o.at("target").as_int64() >= 3; }, 20s, "with target >= 3");
            INFO(json::serialize(r));
            CHECK(num(r, "measured", "lambda") > 5.0);
            const auto first_add = co_await h.wait_report(
                [](const json::object& o) { return o.at("decision").at("action").as_string() == "add"; }, 1s,
                "with action add");
            CHECK(first_add.at("decision").at("current").as_int64() == 1);
            CHECK(first_add.at("decision").at("reason").as_string().find("scale up") != std::string::npos);
            // on_target saw 1 first, then only increases, ending at the report's target.
            REQUIRE(h.targets.size() >= 2);
            CHECK(h.targets.front() == 1);
            CHECK(std::is_sorted(h.targets.begin(), h.targets.end()));
            CHECK(h.targets.back() >= r.at("target").as_int64());
            co_await h.stop();
        },
        90s);
}

TEST_CASE("observer: steady load does not make the target oscillate", "[observer][integration]") {
    harness h;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            co_await h.setup();
            auto t0 = now_ms();
            // 4/s for the last 20 s, service 0.5 s, no wait: 2 erlangs.
            for (int i = 0; i < 80; ++i) {
                const auto sub = t0 - 20'000 + i * 250;
                co_await h.job(sub, sub, sub + 500);
            }
            roles::observer_config cfg;
            cfg.params = params_json({{"short_window_ms", 5000},
                                     {"long_window_ms", 10000},
                                     {"slots_per_worker", 2},
                                     {"up_cooldown_ms", 1000},
                                     {"down_cooldown_ms", 1000}});
            cfg.initial_workers = 3;
            cfg.sample_lag = false;
            h.start(cfg);
            // Keep the load going, live, for 12 s (more than a long window): ~60 decisions.
            const auto until = std::chrono::steady_clock::now() + 12s;
            while (std::chrono::steady_clock::now() < until) {
                const auto now = now_ms();
                co_await h.job(now - 500, now - 500, now);
                co_await h.heartbeat("w1", 2, 1, now);
                co_await sleep_for(250ms);
            }
            auto last = co_await h.wait_report(
                [](const json::object& o) { return o.at("observer").at("decisions").as_int64() >= 40; }, 20s,
                "after 40 decisions");
            INFO(json::serialize(last));
            // The targets announced: the initial one, then at most two adjustments (it may settle in
            // two steps), never back and forth, and on_target saw every change.
            std::string seq;
            for (int t : h.targets) seq += std::to_string(t) + " ";
            INFO("targets: " << seq);
            CHECK(h.targets.front() == 3);
            const auto changes = last.at("observer").at("changes").as_int64();
            CHECK(changes <= 2);
            CHECK(h.targets.size() == static_cast<std::size_t>(changes) + 1);
            int reversals = 0;
            for (std::size_t i = 2; i < h.targets.size(); ++i)
                if ((h.targets[i] - h.targets[i - 1]) * (h.targets[i - 1] - h.targets[i - 2]) < 0) ++reversals;
            CHECK(reversals == 0);
            // Every report agrees: the target never moved back and forth between ticks either.
            std::vector<std::int64_t> reported;
            for (const auto& o : h.seen)
                if (reported.empty() || reported.back() != o.at("target").as_int64())
                    reported.push_back(o.at("target").as_int64());
            CHECK(reported.size() == h.targets.size());
            // 4/s of 0.5 s jobs on 2-slot workers is 2 erlangs: 2 workers meet the target, 3 are plenty.
            CHECK(h.targets.back() >= 2);
            CHECK(h.targets.back() <= 3);
            CHECK(num(last, "measured", "lambda") == Approx(4.0).epsilon(0.35));
            co_await h.stop();
        },
        120s);
}

TEST_CASE("observer: a live config change is applied, a bad one rejected and reported", "[observer][integration]") {
    harness h;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            co_await h.setup();
            roles::observer_config cfg;
            cfg.params = params_json();
            cfg.initial_workers = 1;
            cfg.sample_lag = false;
            h.start(cfg);
            auto first = co_await h.wait_report([](const json::object&) { return true; }, 30s, "at all");
            CHECK(first.at("params").at("min_workers").as_int64() == 1);
            CHECK(first.at("config").at("source").as_string() == "startup");

            const auto raise_min = params_json({{"min_workers", 3}});
            co_await h.config(raise_min);
            auto applied = co_await h.wait_report(
                [](const json::object& o) { return o.at("params").at("min_workers").as_int64() == 3; }, 30s,
                "with min_workers 3");
            CHECK(applied.at("config").at("source").as_string() == "observer-config");
            auto raised = co_await h.wait_report(
                [](const json::object& o) { return o.at("target").as_int64() == 3; }, 30s, "with target 3");
            CHECK(raised.at("params").at("min_workers").as_int64() == 3);
            CHECK(h.targets == std::vector<int>{1, 3});

            // Invalid values, unknown fields and broken JSON are rejected; the last good config stays.
            co_await h.config(R"({"min_workers":-5,"tick_ms":200})");
            auto rejected = co_await h.wait_report(
                [](const json::object& o) { return o.at("config").at("rejected_count").as_int64() == 1; }, 30s,
                "with one rejected config");
            INFO(json::serialize(rejected));
            CHECK(rejected.at("params").at("min_workers").as_int64() == 3);
            CHECK(rejected.at("params").at("tick_ms").as_int64() == 200);
            const auto msg = std::string(rejected.at("config").at("last_rejected").at("message").as_string());
            CHECK(msg.find("min_workers") != std::string::npos);
            co_await h.config(R"({"bogus_field":1})");
            co_await h.config("{not json");
            auto rejected3 = co_await h.wait_report(
                [](const json::object& o) { return o.at("config").at("rejected_count").as_int64() == 3; }, 30s,
                "with three rejected configs");
            CHECK(rejected3.at("params").at("min_workers").as_int64() == 3);
            CHECK(rejected3.at("target").as_int64() == 3);
            CHECK(h.logs.count("observer.config_rejected") == 3);
            co_await h.stop();
        },
        120s);
}

TEST_CASE("scaler: runs its command with each new target, retries a failure", "[observer][integration]") {
    harness h;
    faasd::test::temp_dir dir("faasd-scaler");
    const auto out = dir.path() / "targets.txt";
    const auto marker = dir.path() / "failed-once";
    auto read_out = [&] {
        std::ifstream in(out);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    };
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            co_await h.setup();
            roles::scaler_config sc;
            // The first run fails (exit 1): the scaler must retry it.
            sc.exec = "if [ ! -e '" + marker.string() + "' ]; then touch '" + marker.string() +
                      "'; exit 1; fi; echo {workers} >> '" + out.string() + "'";
            sc.retry = "200ms";
            sc.max_workers = 8;
            faasd::runtime::role_env env{h.logs.logger(faasd::log_level::info),
                                         std::make_shared<faasd::runtime::health>(),
                                         std::make_shared<faasd::runtime::shutdown_signal>(h.ex), 5s};
            bool done = false;
            std::exception_ptr err;
            co_await h.send(h.names.observer, "report", R"({"v":1,"target":3,"decision":{"target":3}})", now_ms());
            asio::co_spawn(h.ex, roles::run_scaler(sc, h.kafka_cfg(), env), [&](std::exception_ptr e) {
                err = e;
                done = true;
            });
            for (int i = 0; i < 200 && read_out() != "3\n"; ++i) co_await sleep_for(50ms);
            CHECK(read_out() == "3\n");
            CHECK(h.logs.count("scaler.failed") == 1);
            // The same target again: nothing runs. A new one runs; above max it is clamped.
            co_await h.send(h.names.observer, "report", R"({"v":1,"target":3})", now_ms());
            co_await h.send(h.names.observer, "report", R"({"v":1,"decision":{"target":5}})", now_ms());
            for (int i = 0; i < 200 && read_out() != "3\n5\n"; ++i) co_await sleep_for(50ms);
            CHECK(read_out() == "3\n5\n");
            co_await h.send(h.names.observer, "report", R"({"v":1,"target":50})", now_ms());
            for (int i = 0; i < 200 && read_out() != "3\n5\n8\n"; ++i) co_await sleep_for(50ms);
            CHECK(read_out() == "3\n5\n8\n");
            // The command wrote the file; the scaler logs once it has reaped it.
            for (int i = 0; i < 200 && h.logs.count("scaler.applied") < 3; ++i) co_await sleep_for(50ms);
            env.shutdown->request();
            for (int i = 0; i < 200 && !done; ++i) co_await sleep_for(50ms);
            REQUIRE(done);
            if (err) std::rethrow_exception(err);
            CHECK(h.logs.count("scaler.applied") == 3);
            co_await h.reports->close();
            co_await h.producer->close(5s);
            co_await h.admin->close();
        },
        90s);
}

TEST_CASE("supervisor: starts, stops (SIGTERM) and replaces worker processes", "[observer][integration]") {
    log_capture logs;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            roles::supervisor_config sc;
            sc.worker_command = {"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"};
            sc.max_workers = 5;
            sc.stop_timeout = "5s";
            sc.restart_delay = "100ms";
            roles::worker_supervisor sup(ex, sc, logs.logger(faasd::log_level::info));
            bool done = false;
            asio::co_spawn(ex, sup.run(), [&](std::exception_ptr) { done = true; });
            auto wait = [&](std::function<bool()> pred) -> asio::awaitable<bool> {
                for (int i = 0; i < 200; ++i) {
                    if (pred()) co_return true;
                    co_await sleep_for(25ms);
                }
                co_return pred();
            };
            sup.set_target(2);
            CHECK(sup.running() == 2);
            const auto pids = sup.pids();
            for (int pid : pids) CHECK(::kill(pid, 0) == 0);

            sup.set_target(1);  // the newest gets SIGTERM and drains
            CHECK(co_await wait([&] { return sup.stopping() == 0; }));
            CHECK(sup.running() == 1);
            CHECK(sup.pids() == std::vector<int>{pids[0]});
            CHECK(logs.count("supervisor.stopped") == 1);

            ::kill(pids[0], SIGKILL);  // a crash: replaced after restart_delay
            CHECK(co_await wait([&] { return sup.running() == 1 && sup.pids() != std::vector<int>{pids[0]}; }));
            CHECK(logs.count("supervisor.worker_exited") == 1);

            sup.set_target(99);  // clamped to max_workers
            CHECK(sup.running() == 5);
            sup.stop();
            CHECK(co_await wait([&] { return done; }));
            CHECK(sup.running() == 0);
        },
        60s);
}

TEST_CASE("faasd observer --supervise runs real workers and sees their heartbeats", "[observer][integration]") {
    harness h;
    faasd::test::temp_dir dir("faasd-supervise");
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            co_await h.setup();
            const std::vector<std::string> argv{faasd::test::faasd_binary(),
                                                "observer",
                                                "--supervise",
                                                "--worker-arg=--sandbox=none",
                                                "--worker-arg=--slots=2",
                                                "--worker-arg=--cache-dir=" + (dir.path() / "cache").string(),
                                                "--worker-arg=--jobs-dir=" + (dir.path() / "jobs").string(),
                                                "--worker-arg=--heartbeat-interval=500ms",
                                                "--min-workers=2",
                                                "--slots-per-worker=2",
                                                "--tick=500ms",
                                                "--kafka-brokers=" + h.brokers,
                                                "--topic-prefix=" + h.prefix,
                                                "--topic-partitions=2",
                                                "--topic-replication=1",
                                                "--shutdown-grace=15s"};
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            // The observer's and its workers' logs go to a file (shown on failure).
            const auto log_file = (dir.path() / "faasd.log").string();
            posix_spawn_file_actions_t fa;
            posix_spawn_file_actions_init(&fa);
            posix_spawn_file_actions_addopen(&fa, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            posix_spawn_file_actions_adddup2(&fa, 1, 2);
            pid_t pid = 0;
            const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
            posix_spawn_file_actions_destroy(&fa);
            REQUIRE(rc == 0);
            // On a failed assertion: stop it (SIGTERM, so it stops its workers), then SIGKILL.
            struct reaper {
                pid_t pid;
                bool reaped = false;
                ~reaper() {
                    if (reaped) return;
                    ::kill(pid, SIGTERM);
                    int st = 0;
                    for (int i = 0; i < 300; ++i) {
                        if (::waitpid(pid, &st, WNOHANG) == pid) return;
                        ::usleep(50'000);  // test teardown only
                    }
                    ::kill(pid, SIGKILL);
                    ::waitpid(pid, &st, 0);
                }
            } guard{pid};
            auto read_log = [&] {
                std::ifstream in(log_file);
                std::stringstream ss;
                ss << in.rdbuf();
                return ss.str();
            };
            // The workers' heartbeats reach the observer: 2 live workers, 4 slots.
            auto r = co_await h.wait_report(
                [](const json::object& o) { return o.at("measured").at("workers").as_int64() == 2; }, 60s,
                "with 2 live workers");
            CHECK(r.at("measured").at("slots").as_int64() == 4);
            CHECK(r.at("target").as_int64() == 2);
            ::kill(pid, SIGTERM);  // the observer stops its workers (they drain) and exits cleanly
            int status = -1;
            for (int i = 0; i < 400; ++i) {
                if (::waitpid(pid, &status, WNOHANG) == pid) {
                    guard.reaped = true;
                    break;
                }
                co_await sleep_for(50ms);
            }
            INFO("faasd log:\n" << read_log());
            if (!WIFEXITED(status)) ::kill(pid, SIGKILL);
            REQUIRE(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 0);
            CHECK(read_log().find("supervisor.stopped") != std::string::npos);
            co_await h.stop();
        },
        120s);
}
