#pragma once
// Test support for the worker's integration tests: fresh topics on the real
// Kafka, readers of the state, results, dead-letter and heartbeats topics,
// job submission, a worker running in-process (run_worker) and small git
// repositories with functions.

#include "integration/git/git_fixtures.hpp"
#include "support/support.hpp"
#include "unit/kafka/kafka_test_util.hpp"
#include "worker/worker.hpp"

#include <faasd/core/id.hpp>
#include <faasd/jobs/codec.hpp>
#include <faasd/kafka/kafka.hpp>
#include <faasd/worker/messages.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace faasd::test::worker {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

inline jobs::unix_ms now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

inline fs::path example(const std::string& name) { return source_dir() / "examples/functions" / name; }
inline fs::path fixture(const std::string& name) { return source_dir() / "test/fixtures/functions" / name; }

/// A job message as the frontend would publish it.
inline jobs::job_message make_job(const std::string& url, const std::string& ref = "main", json::value data = nullptr,
                                  std::vector<std::string> entry = {},
                                  jobs::delivery_mode mode = jobs::delivery_mode::at_least_once) {
    jobs::job_message m;
    m.id = new_job_id();
    m.owner = {"sub-test", "tester", {"user"}};
    m.submitted_at = now_ms();
    m.attempt = 1;
    m.spec.repo.url = url;
    m.spec.repo.ref = ref;
    m.spec.entry = std::move(entry);
    m.spec.data = std::move(data);
    m.spec.delivery = mode;
    m.spec.timeout_s = 30;
    m.spec.retries = 2;
    return m;
}

/// A shell function `main` in a fresh repository; returns the file:// URL.
inline std::string shell_repo(const fs::path& root, const std::string& name, const std::string& script) {
    git::repo r(root / ("work-" + name), root / "served" / (name + ".git"));
    r.write("main", script, true);
    r.commit("init");
    return r.file_url();
}

/// Sleeps for its first argument (or FN_SLEEP) seconds, then reports when it ran.
inline const char* sleeper_script = R"(#!/bin/sh
s=${1:-${FN_SLEEP:-1}}
start=$(date +%s%3N)
sleep "$s"
end=$(date +%s%3N)
printf '{"start": %s, "end": %s}\n' "$start" "$end" > "$FAASD_RESULT_FILE"
)";

/// Everything a test reads from Kafka, decoded.
struct observed {
    std::map<std::string, std::vector<jobs::job_result>> results;  // by job id, in order
    std::map<std::string, std::vector<jobs::job_status>> states;
    std::vector<kafka::message> dead_letters;
    std::vector<faasd::worker::heartbeat> heartbeats;

    const jobs::job_status* last_state(const std::string& id) const {
        auto it = states.find(id);
        return it == states.end() || it->second.empty() ? nullptr : &it->second.back();
    }
    bool has_state(const std::string& id, jobs::job_state s, int attempt = 0) const {
        auto it = states.find(id);
        if (it == states.end()) return false;
        for (const auto& st : it->second)
            if (st.state == s && (attempt == 0 || st.attempt == attempt)) return true;
        return false;
    }
    /// The terminal snapshot of a job, if one arrived.
    const jobs::job_status* terminal(const std::string& id) const {
        auto it = states.find(id);
        if (it == states.end()) return nullptr;
        for (const auto& st : it->second)
            if (jobs::is_terminal(st.state)) return &st;
        return nullptr;
    }
    std::size_t result_count(const std::string& id) const {
        auto it = results.find(id);
        return it == results.end() ? 0 : it->second.size();
    }
};

/// Fresh topics (created here) and readers of the worker's outputs.
class kafka_side {
public:
    kafka_side(asio::any_io_executor ex, std::string brokers, std::string prefix, faasd::logger log,
               int partitions = 2, int replication = 1)
        : ex_(std::move(ex)),
          brokers_(std::move(brokers)),
          prefix_(std::move(prefix)),
          log_(std::move(log)),
          partitions_(partitions),
          replication_(replication),
          topics(jobs::topic_names::with_prefix(prefix_)) {}

    asio::awaitable<void> start() {
        kafka::admin_options ao;
        ao.brokers = brokers_;
        ao.log = log_;
        kafka::admin adm(ex_, ao);
        auto r = co_await kafka::ensure_faasd_topics(adm, topics, partitions_, replication_);
        co_await adm.close();
        CO_REQUIRE(r);
        kafka::producer_options po;
        po.brokers = brokers_;
        po.log = log_;
        producer = std::make_unique<kafka::producer>(ex_, po);
        results_ = reader(topics.results, true);
        state_ = reader(topics.state, true);
        dead_ = reader(topics.dead_letter, true);
        beats_ = reader(topics.heartbeats, true);
        // Named vectors: no braced lists inside co_await (GCC 12).
        std::vector<std::string> tr{topics.results};
        CO_REQUIRE(co_await results_->assign_topics(tr));
        std::vector<std::string> ts{topics.state};
        CO_REQUIRE(co_await state_->assign_topics(ts));
        std::vector<std::string> td{topics.dead_letter};
        CO_REQUIRE(co_await dead_->assign_topics(td));
        std::vector<std::string> th{topics.heartbeats};
        CO_REQUIRE(co_await beats_->assign_topics(th));
    }

    asio::awaitable<void> submit(const jobs::job_message& m, jobs::delivery_mode mode) {
        kafka::record r;
        r.topic = topics.jobs(mode);
        r.key = m.id;
        r.value = jobs::encode(m);
        auto d = co_await producer->send(std::move(r));
        CO_REQUIRE(d);
    }
    asio::awaitable<void> submit(const jobs::job_message& m) { co_await submit(m, m.spec.delivery); }

    asio::awaitable<void> submit_raw(const std::string& topic, std::string key, std::optional<std::string> value) {
        kafka::record r;
        r.topic = topic;
        r.key = std::move(key);
        r.value = std::move(value);
        auto d = co_await producer->send(std::move(r));
        CO_REQUIRE(d);
    }

    asio::awaitable<void> cancel(const std::string& id) {
        faasd::worker::cancel_request c{id, "sub-test", now_ms()};
        co_await submit_raw(topics.cancel, id, faasd::worker::encode(c));
    }

    /// Polls every reader once (briefly).
    asio::awaitable<void> poll_once(std::chrono::milliseconds each = 25ms) {
        for (auto& m : co_await results_->poll(256, each)) {
            if (!m.value) continue;
            auto r = jobs::decode_job_result(*m.value);
            if (r) seen.results[r->id].push_back(std::move(*r));
        }
        for (auto& m : co_await state_->poll(256, each)) {
            if (!m.value) continue;
            auto s = jobs::decode_job_status(*m.value);
            if (s) seen.states[s->id].push_back(std::move(*s));
        }
        for (auto& m : co_await dead_->poll(256, each)) seen.dead_letters.push_back(std::move(m));
        for (auto& m : co_await beats_->poll(256, each)) {
            if (!m.value) continue;
            auto h = faasd::worker::decode_heartbeat(*m.value);
            if (h) seen.heartbeats.push_back(*h);
        }
    }

    /// Polls until pred() holds or the timeout passes; returns pred().
    asio::awaitable<bool> wait_for(std::function<bool()> pred, std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!pred()) {
            if (std::chrono::steady_clock::now() >= deadline) co_return pred();
            co_await poll_once();
        }
        co_return true;
    }

    asio::awaitable<void> close() {
        for (auto* c : {results_.get(), state_.get(), dead_.get(), beats_.get()})
            if (c) co_await c->close();
        if (producer) co_await producer->close(std::chrono::seconds(5));
    }

    const std::string& prefix() const { return prefix_; }

private:
    std::unique_ptr<kafka::consumer> reader(const std::string&, bool read_committed) {
        kafka::consumer_options co;
        co.brokers = brokers_;
        co.log = log_;
        co.read_committed = read_committed;
        co.properties["fetch.wait.max.ms"] = "50";
        return std::make_unique<kafka::consumer>(ex_, co);
    }

    asio::any_io_executor ex_;
    std::string brokers_, prefix_;
    faasd::logger log_;
    int partitions_, replication_;

public:
    jobs::topic_names topics;
    std::unique_ptr<kafka::producer> producer;
    observed seen;

private:
    std::unique_ptr<kafka::consumer> results_, state_, dead_, beats_;
};

/// A worker running in-process with run_worker, stopped through its shutdown signal.
class worker_run {
public:
    worker_run(asio::any_io_executor ex, faasd::logger log, std::chrono::milliseconds grace = 10s) {
        env_->log = std::move(log);
        env_->health_state = std::make_shared<runtime::health>();
        env_->shutdown = std::make_shared<runtime::shutdown_signal>(ex);
        env_->shutdown_grace = grace;
        ex_ = std::move(ex);
    }

    /// A failed REQUIRE leaves the test's coroutine early: stop the worker so
    /// that the io_context runs out of work instead of running to the timeout.
    ~worker_run() {
        if (!state_->done && !env_->shutdown->requested()) env_->shutdown->request();
    }
    worker_run(const worker_run&) = delete;
    worker_run& operator=(const worker_run&) = delete;

    void start(roles::worker_config cfg, roles::kafka_config kafka) {
        auto st = state_;
        auto op = roles::run_worker(std::move(cfg), std::move(kafka), *env_);
        // The handler keeps the environment alive as long as the worker runs.
        asio::co_spawn(ex_, std::move(op), [st, env = env_](std::exception_ptr e) {
            st->error = e;
            st->done = true;
        });
    }

    /// Requests shutdown and waits (up to timeout) until run_worker returned.
    asio::awaitable<bool> stop(std::chrono::milliseconds timeout = 30s) {
        env_->shutdown->request();
        auto deadline = std::chrono::steady_clock::now() + timeout;
        asio::steady_timer t(ex_);
        while (!state_->done && std::chrono::steady_clock::now() < deadline) {
            t.expires_after(20ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        if (state_->error) std::rethrow_exception(state_->error);
        co_return state_->done;
    }

    bool done() const { return state_->done; }
    runtime::role_env& env() { return *env_; }

private:
    struct state {
        bool done = false;
        std::exception_ptr error;
    };
    asio::any_io_executor ex_;
    std::shared_ptr<runtime::role_env> env_ = std::make_shared<runtime::role_env>();
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

/// The settings most tests share: a fresh prefix, 2 partitions, fast retries.
struct setup {
    temp_dir tmp{"faasd-worker"};
    std::string brokers = require_env("FAASD_TEST_KAFKA");
    std::string prefix = unique_name("w") + ".";
    kafka::testing::log_capture logs;

    setup() { ::chmod(tmp.path().c_str(), 0755); }

    /// A directory every uid may write (functions run as per-run uids when the worker is root).
    fs::path shared() const {
        auto p = tmp.path() / "shared";
        fs::create_directories(p);
        ::chmod(p.c_str(), 0777);
        return p;
    }

    roles::kafka_config kafka() const {
        roles::kafka_config k;
        k.brokers = brokers;
        k.topic_prefix = prefix;
        k.topic_partitions = 2;
        k.topic_replication = 1;
        k.properties = {"session.timeout.ms=6000", "heartbeat.interval.ms=500", "fetch.wait.max.ms=50"};
        return k;
    }

    roles::worker_config worker(const std::string& sandbox = "bwrap", int slots = 2) const {
        roles::worker_config w;
        w.slots = slots;
        w.cache_dir = (tmp.path() / "cache").string();
        w.jobs_dir = (tmp.path() / "jobs").string();
        w.allowed_schemes = "https,ssh,git,http,file";
        w.sandbox = sandbox;
        w.retry_backoff = "300ms";
        w.retry_backoff_max = "2s";
        w.heartbeat_interval = "500ms";
        w.drain_timeout = "3s";
        w.kill_grace = "500ms";
        return w;
    }
};

/// A cap on a whole test's coroutine.
inline constexpr auto test_timeout = std::chrono::seconds(170);

}  // namespace faasd::test::worker
