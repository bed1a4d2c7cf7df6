// The replication test of the issue, on the 3-broker cluster (RF 3,
// min.insync.replicas 2): 10,000 messages produced with acks=all through the
// adapter while the leader of some partitions is killed with SIGKILL half way;
// a consumer group of two members must see every message once, the log must
// hold each record once (idempotent producer), and the loop must stay
// responsive throughout.

#include "support/support.hpp"
#include "unit/kafka/kafka_test_util.hpp"

#include <faasd/kafka/kafka.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <cstdio>
#include <future>
#include <map>
#include <set>
#include <thread>

using namespace faasd::kafka;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using faasd::kafka::testing::log_capture;

namespace {

// The services script's fault-injection command, started before the
// measured phase and fired later by writing a line to its stdin: forking this
// big multi-threaded process in the middle of the run would stall the loop
// (page-table copy, then copy-on-write faults) and be blamed on the adapter.
// posix_spawn (vfork-style) keeps even the start cheap.
class armed_command {
public:
    armed_command(const std::string& verb, int node) {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        auto ctl = faasd::test::require_env("FAASD_TEST_KAFKA3_CTL");
        log_path_ = "/tmp/faasd-kafka3-" + verb + "-" + std::to_string(::getpid()) + ".log";
        std::string script = "read go && exec \"$0\" " + verb + " " + std::to_string(node) + " >" + log_path_ + " 2>&1";
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
        std::vector<std::string> args{"/bin/sh", "-c", script, ctl};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int rc = ::posix_spawn(&pid_, "/bin/sh", &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(fds[0]);
        REQUIRE(rc == 0);
        write_fd_ = fds[1];
        waiter_ = std::async(std::launch::async, [pid = pid_] {
            int status = 0;
            ::waitpid(pid, &status, 0);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        });
    }
    ~armed_command() {
        if (write_fd_ >= 0) ::close(write_fd_);  // EOF: an unfired command exits without running
        if (waiter_.valid()) waiter_.wait();
    }
    void fire() {
        (void)!::write(write_fd_, "\n", 1);
        ::close(write_fd_);
        write_fd_ = -1;
    }
    bool done() const { return waiter_.wait_for(0s) == std::future_status::ready; }
    int exit_code() { return waiter_.get(); }
    std::string output() const {
        std::ifstream in(log_path_);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

private:
    pid_t pid_ = -1;
    int write_fd_ = -1;
    std::string log_path_;
    std::future<int> waiter_;
};

asio::awaitable<int> await_command(armed_command& cmd) {
    while (!cmd.done()) co_await testing::sleep(50ms);
    co_return cmd.exit_code();
}

}  // namespace

TEST_CASE("kafka3: 10,000 acks=all messages survive a SIGKILLed leader, each consumed once, loop responsive",
          "[kafka][integration][kafka3]") {
    const auto brokers = faasd::test::require_env("FAASD_TEST_KAFKA3");
    (void)faasd::test::require_env("FAASD_TEST_KAFKA3_CTL");
    constexpr int total = 10000;
    constexpr int window = 500;  // sends in flight at once
    log_capture logs;
    int killed = -1;
    bool restarted = false;

    auto test_body = [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto opts = [&]<class O>(O o, const char* id) {
            o.brokers = brokers;
            o.client_id = id;
            o.log = logs.logger(faasd::log_level::info);
            return o;
        };
        testing::lateness_probe probe(ex);
        probe.start();
        testing::control_probe control;

        admin adm(ex, opts(admin_options{}, "adm"));
        auto topic = faasd::test::unique_name("repl");
        auto group = faasd::test::unique_name("workers");
        std::vector<topic_spec> specs{{topic, 6, 3, {{"min.insync.replicas", "2"}}}};
        CO_REQUIRE(co_await adm.ensure_topics(specs));
        std::vector<std::string> topics{topic};
        // Brokers learn new topics at slightly different times (a broker
        // restarted by the previous run may lag): ask until one answers.
        auto md = co_await adm.describe_topics(topics);
        for (int i = 0; i < 50 && !(md && md->size() == 1 && md->at(0).partitions.size() == 6); ++i) {
            co_await testing::sleep(100ms);
            md = co_await adm.describe_topics(topics);
        }
        REQUIRE(testing::ok(md));
        REQUIRE(md->size() == 1);
        std::map<int, int> led;  // broker -> partitions it leads
        for (const auto& p : md->at(0).partitions) {
            CHECK(p.replicas.size() == 3);
            ++led[p.leader];
        }
        // The broker leading the most partitions (at least one) gets killed.
        killed = std::max_element(led.begin(), led.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
        REQUIRE(killed >= 1);
        REQUIRE(killed <= 3);

        // Two group members, consuming with commit-after-processing.
        std::map<std::string, int> seen;  // payload -> times consumed
        std::atomic<bool> stop_consumers{false};
        int consumers_done = 0;
        int revocations = 0;  // all members
        std::map<std::string, std::set<std::int32_t>> owned;  // member -> partitions
        auto run_member = [&](const char* id) -> asio::awaitable<void> {
            // Positions after the last processed message, per partition: the
            // commit-after-processing discipline. On a revoke they are handed
            // to the consumer, which commits them before letting go of the
            // partitions, so the next owner does not see them again.
            std::map<std::int32_t, topic_partition> processed;
            auto co = opts(consumer_options{}, id);
            co.group_id = group;
            co.on_assigned = [&, id](const std::vector<topic_partition>& added) {
                for (const auto& tp : added) owned[id].insert(tp.partition);
            };
            co.on_revoked = [&, id](const std::vector<topic_partition>& revoked, bool) {
                ++revocations;
                for (const auto& tp : revoked) owned[id].erase(tp.partition);
                std::vector<topic_partition> final_positions;
                for (const auto& tp : revoked) {
                    if (auto it = processed.find(tp.partition); it != processed.end()) {
                        final_positions.push_back(it->second);
                        processed.erase(it);
                    }
                }
                return final_positions;
            };
            consumer c(ex, co);
            REQUIRE(c.subscribe(topics));
            while (!stop_consumers) {
                auto batch = co_await c.poll(500, 200ms);
                if (batch.empty()) continue;
                for (auto& m : batch) {
                    ++seen[*m.value];
                    processed[m.partition] = m.next_position();
                }
                std::vector<topic_partition> positions;
                for (auto& [part, tp] : processed) positions.push_back(tp);
                auto r = co_await c.commit(positions);
                if (!r) logs.logger(faasd::log_level::info).warn("test.commit_failed", {{"error", r.error().message()}});
            }
            co_await c.close();
            ++consumers_done;
        };
        asio::co_spawn(ex, run_member("member-a"), asio::detached);
        asio::co_spawn(ex, run_member("member-b"), asio::detached);
        // Produce once the group is stable: both members own partitions. (A
        // commit that races with a join can fail with ILLEGAL_GENERATION,
        // which librdkafka 2.0.2 treats as a lost assignment, and then the
        // uncommitted messages are redelivered: at-least-once, see docs/kafka.md.)
        auto group_deadline = std::chrono::steady_clock::now() + 60s;
        while (!(owned["member-a"].size() + owned["member-b"].size() == 6 && !owned["member-a"].empty() &&
                 !owned["member-b"].empty()) &&
               std::chrono::steady_clock::now() < group_deadline)
            co_await testing::sleep(20ms);
        REQUIRE(owned["member-a"].size() + owned["member-b"].size() == 6);
        int revocations_before = revocations;

        // Produce with a bounded window of outstanding sends; kill the leader half way.
        producer p(ex, opts(producer_options{}, "p"));
        int sent = 0, acked = 0, failed = 0, in_flight = 0;
        armed_command kill("kafka3-kill", killed);
        bool kill_fired = false;
        auto t0 = std::chrono::steady_clock::now();
        std::chrono::steady_clock::time_point kill_at;
        for (int i = 0; i < total; ++i) {
            while (in_flight >= window) co_await testing::sleep(1ms);
            if (i == total / 2) {
                logs.logger(faasd::log_level::info).info("test.kill_fired", {{"broker", killed}});
                kill.fire();
                kill_fired = true;
                kill_at = std::chrono::steady_clock::now();
            }
            ++in_flight;
            ++sent;
            asio::co_spawn(
                ex,
                [&, i]() -> asio::awaitable<void> {
                    record r;
                    r.topic = topic;
                    r.key = "k" + std::to_string(i % 97);
                    r.value = "m-" + std::to_string(i);
                    auto d = co_await p.send(std::move(r));
                    if (d)
                        ++acked;
                    else {
                        ++failed;
                        logs.logger(faasd::log_level::info).warn("test.send_failed", {{"error", d.error().message()}});
                    }
                    --in_flight;
                },
                asio::detached);
        }
        auto deadline = std::chrono::steady_clock::now() + 180s;
        while (acked + failed < total && std::chrono::steady_clock::now() < deadline) co_await testing::sleep(10ms);
        auto produce_time = std::chrono::steady_clock::now() - t0;
        REQUIRE(kill_fired);
        auto killed_rc = co_await await_command(kill);
        INFO(kill.output());
        CHECK(killed_rc == 0);
        CHECK(acked == total);
        CHECK(failed == 0);

        // Every message consumed (the group works on with two brokers).
        while (static_cast<int>(seen.size()) < total && std::chrono::steady_clock::now() < deadline)
            co_await testing::sleep(20ms);
        auto consume_time = std::chrono::steady_clock::now() - t0;
        co_await testing::sleep(1000ms);  // redeliveries, if any, would show up now
        int rebalances_during_run = revocations - revocations_before;
        stop_consumers = true;
        while (consumers_done < 2 && std::chrono::steady_clock::now() < deadline) co_await testing::sleep(20ms);

        int duplicates = 0;
        for (auto& [payload, n] : seen)
            if (n > 1) duplicates += n - 1;
        CHECK(static_cast<int>(seen.size()) == total);
        CHECK(duplicates == 0);
        for (int i = 0; i < total; i += 997) CHECK(seen.count("m-" + std::to_string(i)) == 1);

        // The log itself holds each record exactly once (idempotent producer).
        auto marks = co_await adm.watermarks(topics);
        REQUIRE(testing::ok(marks));
        std::int64_t records = 0;
        for (const auto& w : *marks) records += w.high - w.low;
        CHECK(records == total);
        consumer reader(ex, opts(consumer_options{}, "reader"));
        std::map<std::string, int> in_log;
        auto assigned = co_await reader.assign_topics(topics);
        REQUIRE(testing::ok(assigned));
        while (!reader.caught_up() && std::chrono::steady_clock::now() < deadline)
            for (auto& m : co_await reader.poll(1000, 1s)) ++in_log[*m.value];
        CHECK(in_log.size() == static_cast<std::size_t>(total));
        int log_duplicates = 0;
        for (auto& [payload, n] : in_log)
            if (n > 1) log_duplicates += n - 1;
        CHECK(log_duplicates == 0);
        co_await reader.close();

        probe.stop();
        control.stop();
        auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
        auto produced_ms = ms(produce_time);
        std::printf(
            "kafka3 replication: %d messages, broker %d (led %d of 6 partitions) SIGKILLed at message %d (%lld ms in); "
            "%.0f msg/s before the kill; all acked after %lld ms (%.0f msg/s overall), all consumed after %lld ms; "
            "consumed duplicates %d, log duplicates %d, "
            "revocations during the run %d\n"
            "  loop: max lateness %lld ms (tick due at %lld ms), %ld of %ld ticks > 50 ms late; max lateness not spent "
            "waiting for a CPU %lld ms (that interval: ran %lld ms, waited for a CPU %lld ms); "
            "idle control thread: max %lld ms, %ld of %ld ticks > 50 ms late\n",
            total, killed, led[killed], total / 2, static_cast<long long>(ms(kill_at - t0)),
            (total / 2) * 1000.0 / static_cast<double>(std::max<long long>(ms(kill_at - t0), 1)),
            static_cast<long long>(produced_ms), total * 1000.0 / static_cast<double>(std::max<long long>(produced_ms, 1)),
            static_cast<long long>(ms(consume_time)), duplicates, log_duplicates, rebalances_during_run,
            static_cast<long long>(probe.max_lateness().count()), static_cast<long long>(ms(probe.max_at() - t0)),
            probe.late_ticks(), probe.ticks(), static_cast<long long>(probe.max_unexplained().count()),
            static_cast<long long>(probe.worst_on_cpu().count()), static_cast<long long>(probe.worst_waiting().count()),
            static_cast<long long>(control.probe().max_lateness().count()),
            control.probe().late_ticks(), control.probe().ticks());
        std::fflush(stdout);
        // The loop never blocked (or computed) for 100 ms. Time its thread spent
        // runnable, waiting for one of this machine's CPUs, is excluded: it is
        // printed above (raw lateness) and is the same for an idle thread.
        REQUIRE(probe.schedstat_available());
        CHECK(probe.max_unexplained() < 100ms);

        // Bring the broker back so later tests have three (after the measurement).
        armed_command start("kafka3-start", killed);
        start.fire();
        auto started_rc = co_await await_command(start);
        INFO(start.output());
        CHECK(started_rc == 0);
        restarted = started_rc == 0;

        co_await p.close();
        CO_REQUIRE(co_await adm.delete_topics(topics));
        co_await adm.close();
    };

    try {
        faasd::test::run_coroutine(test_body, 420s);
    } catch (...) {
        // Whatever happened, leave three brokers for the next test.
        if (killed > 0 && !restarted)
            faasd::test::run_process({faasd::test::require_env("FAASD_TEST_KAFKA3_CTL"), "kafka3-start", std::to_string(killed)},
                                     {}, {}, std::chrono::seconds(240));
        throw;
    }
    INFO(logs.dump("warn"));
    CHECK(restarted);
}
