// Delivery semantics under faults, against the real 3-broker Kafka cluster
// (FAASD_TEST_KAFKA3, replication factor 3, min.insync.replicas 2): a
// `faasd worker` child process is killed with SIGKILL in the middle of jobs
// and another one takes over. The function appends to a run log outside the
// sandbox (--sandbox=none, a world-writable file), so that the test counts
// every run; the results topic is read with read_committed.
//
//   at-least-once  no job is lost (duplicates are allowed and reported)
//   exactly-once   no job is lost and no job has two results
//   at-most-once   no job runs twice and none has two results (losses are allowed and reported)

#include "integration/worker/worker_harness.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace faasd;
using namespace faasd::test::worker;
namespace gitfx = faasd::test::git;
using jobs::delivery_mode;
using jobs::job_state;

namespace {

const char* runlog_script = R"(#!/bin/sh
echo "$FAASD_JOB_ID $FAASD_ATTEMPT start" >> "$FN_RUNLOG"
sleep "${FN_SLEEP:-1}"
echo "$FAASD_JOB_ID $FAASD_ATTEMPT done" >> "$FN_RUNLOG"
echo '{"ok": true}'
)";

struct run_counts {
    std::map<std::string, int> starts, dones;
};

run_counts read_runlog(const fs::path& p) {
    run_counts c;
    std::ifstream f(p);
    std::string id, attempt, what;
    while (f >> id >> attempt >> what) {
        if (what == "start") ++c.starts[id];
        else if (what == "done") ++c.dones[id];
    }
    return c;
}

/// `faasd worker` as a child process (its own process group, log to a file).
std::unique_ptr<gitfx::background_process> start_worker(const setup& s, const std::string& brokers, const std::string& name,
                                                        const std::string& prefix,
                                                        const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{faasd::test::faasd_binary(),
                                  "worker",
                                  "--kafka-brokers=" + brokers,
                                  "--topic-prefix=" + prefix,
                                  "--topic-partitions=4",
                                  "--topic-replication=3",
                                  "--worker-id=" + name,
                                  "--slots=4",
                                  "--sandbox=none",
                                  "--cache-dir=" + (s.tmp.path() / "cache").string(),
                                  "--jobs-dir=" + (s.tmp.path() / ("jobs-" + name)).string(),
                                  "--allowed-schemes=file",
                                  "--retry-backoff=200ms",
                                  "--transaction-timeout=10s",
                                  "--heartbeat-interval=500ms",
                                  "--kafka-property=session.timeout.ms=6000",
                                  "--kafka-property=heartbeat.interval.ms=500",
                                  "--log-level=info",
                                  "--shutdown-grace=5s"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<gitfx::background_process>(argv, s.tmp.path() / (name + ".log"));
}

bool succeeded(const observed& seen, const std::string& id) {
    auto it = seen.results.find(id);
    if (it == seen.results.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(), [](const auto& r) { return r.state == job_state::succeeded; });
}

/// Results of one attempt beyond the first (a duplicate); results of different
/// attempts (an infrastructure retry) are not duplicates.
int duplicate_results(const observed& seen, const std::string& id) {
    auto it = seen.results.find(id);
    if (it == seen.results.end()) return 0;
    std::map<int, int> per_attempt;
    int extra = 0;
    for (const auto& r : it->second)
        if (++per_attempt[r.attempt] > 1) ++extra;
    return extra;
}

/// Submits `n` jobs, starts worker A, kills it with SIGKILL once `kill_after`
/// runs have started, starts worker B and waits until every job finished or
/// nothing has moved for a while. Returns what the test needs to count.
struct fault_run {
    std::vector<jobs::job_message> jobs;
    observed seen;
    run_counts runs;
    int started_before_kill = 0;
    int finished_before_kill = 0;
    std::string log_a, log_b;
};

/// The file every run of the function appends to (world-writable: the runs may use other uids).
fs::path make_runlog(const setup& s) {
    auto p = s.shared() / "runs.log";
    std::ofstream(p).close();
    ::chmod(p.c_str(), 0666);
    return p;
}

/// Submits `n` jobs of the run-log function (1 s each) in `mode`.
asio::awaitable<void> submit_runlog_jobs(kafka_side& k, const std::string& url, const fs::path& runlog,
                                         delivery_mode mode, int n, std::vector<jobs::job_message>& out) {
    for (int i = 0; i < n; ++i) {
        auto j = make_job(url, "main", nullptr, {}, mode);
        j.spec.env["FN_RUNLOG"] = runlog.string();
        j.spec.env["FN_SLEEP"] = "1";
        out.push_back(j);
        co_await k.submit(j);
    }
}

/// What had started and finished when the fault was injected.
void note_fault(fault_run& out, const fs::path& runlog) {
    auto c = read_runlog(runlog);
    out.started_before_kill = static_cast<int>(c.starts.size());
    out.finished_before_kill = static_cast<int>(c.dones.size());
}

/// Until every job has succeeded, or (at-most-once may lose jobs) no result came for `stall`;
/// then 3 s more, in which late duplicates (at-least-once) would show up. A failed attempt's
/// result does not end the wait: an infrastructure failure (say, a repository lock a killed
/// worker left behind) is retried as attempt + 1.
asio::awaitable<void> wait_settled(kafka_side& k, const std::vector<jobs::job_message>& jobs,
                                   std::chrono::seconds stall) {
    std::size_t last_total = 0;
    auto last_change = std::chrono::steady_clock::now();
    co_await k.wait_for(
        [&] {
            std::size_t results = 0, settled = 0;
            for (const auto& j : jobs) {
                results += k.seen.result_count(j.id);
                settled += succeeded(k.seen, j.id) ? 1 : 0;
            }
            if (results != last_total) {
                last_total = results;
                last_change = std::chrono::steady_clock::now();
            }
            return settled == jobs.size() || std::chrono::steady_clock::now() - last_change > stall;
        },
        120s);
    co_await k.wait_for([] { return false; }, 3s);
}

fault_run crash_and_take_over(delivery_mode mode, int n, int kill_after) {
    setup s;
    const std::string brokers = faasd::test::require_env("FAASD_TEST_KAFKA3");
    const auto url = shell_repo(s.tmp.path(), "runlog", runlog_script);
    const auto runlog = make_runlog(s);
    fault_run out;

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, brokers, s.prefix, s.logs.logger(log_level::warn), 4, 3);
            co_await k.start();
            co_await submit_runlog_jobs(k, url, runlog, mode, n, out.jobs);
            auto a = start_worker(s, brokers, "a-" + faasd::random_hex(3), s.prefix);
            // Kill A in the middle: some runs done, some running.
            bool midway = co_await k.wait_for(
                [&] {
                    auto c = read_runlog(runlog);
                    return static_cast<int>(c.starts.size()) >= kill_after;
                },
                90s);
            out.log_a = a->log();
            INFO(out.log_a.substr(out.log_a.size() > 4000 ? out.log_a.size() - 4000 : 0));
            REQUIRE(midway);
            a->stop();  // SIGKILL to the worker's process group
            note_fault(out, runlog);
            auto b = start_worker(s, brokers, "b-" + faasd::random_hex(3), s.prefix);
            co_await wait_settled(k, out.jobs, 25s);
            out.log_b = b->log();
            b->stop();
            out.seen = k.seen;
            out.runs = read_runlog(runlog);
            co_await k.close();
        },
        std::chrono::seconds(175));
    return out;
}

std::string tail(const std::string& s, std::size_t n = 3000) { return s.size() > n ? s.substr(s.size() - n) : s; }

/// The broker that coordinates a worker's transactions, from librdkafka's EOS
/// debug lines in its log ("Transaction coordinator changed from ... -> host:port/ID"): 0 if none.
int transaction_coordinator(const std::string& log) {
    int id = 0;
    const std::string marker = "Transaction coordinator changed from";
    for (auto at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
        auto arrow = log.find("-> ", at);
        auto eol = log.find('\n', at);
        if (arrow == std::string::npos || arrow > eol) continue;
        auto colon = log.find(':', arrow);
        auto slash = log.find('/', arrow);
        if (slash == std::string::npos || slash > eol || colon > slash) continue;
        int n = std::atoi(log.c_str() + slash + 1);
        if (n >= 1 && n <= 3) id = n;
    }
    return id;
}

/// Exactly-once jobs on one worker; once `kill_after` runs have started, the broker that
/// coordinates the worker's transactions is SIGKILLed (the cluster keeps 2 of 3, which
/// min.insync.replicas 2 allows), and started again 10 s later.
struct broker_fault_run : fault_run {
    int coordinator = 0;
    bool restarted = false;
};

broker_fault_run kill_coordinator(int n, int kill_after) {
    setup s;
    const std::string brokers = faasd::test::require_env("FAASD_TEST_KAFKA3");
    const std::string ctl = faasd::test::require_env("FAASD_TEST_KAFKA3_CTL");
    const auto url = shell_repo(s.tmp.path(), "runlog", runlog_script);
    const auto runlog = make_runlog(s);
    broker_fault_run out;

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, brokers, s.prefix, s.logs.logger(log_level::warn), 4, 3);
            co_await k.start();
            co_await submit_runlog_jobs(k, url, runlog, delivery_mode::exactly_once, n, out.jobs);
            auto a = start_worker(s, brokers, "a-" + faasd::random_hex(3), s.prefix,
                                  {"--kafka-property=debug=eos", "--log-level=debug"});
            bool midway = co_await k.wait_for(
                [&] { return static_cast<int>(read_runlog(runlog).starts.size()) >= kill_after; }, 90s);
            out.coordinator = transaction_coordinator(a->log());
            INFO(tail(a->log(), 4000));
            REQUIRE(midway);
            REQUIRE(out.coordinator != 0);
            note_fault(out, runlog);
            auto killed = faasd::test::run_process({ctl, "kafka3-kill", std::to_string(out.coordinator)});
            INFO(killed.out << killed.err);
            REQUIRE(killed.exit_code == 0);
            co_await k.wait_for([] { return false; }, 10s);
            auto started = faasd::test::run_process({ctl, "kafka3-start", std::to_string(out.coordinator)}, {}, {},
                                                    std::chrono::seconds(120));
            out.restarted = started.exit_code == 0;
            co_await wait_settled(k, out.jobs, 30s);
            out.log_a = a->log();
            a->stop();
            out.seen = k.seen;
            out.runs = read_runlog(runlog);
            co_await k.close();
        },
        std::chrono::seconds(290));
    return out;
}


/// What the test saw of one job, and every log line of both workers that names it
/// (for the message of a failed check).
std::string story(const fault_run& r, const std::string& id) {
    std::ostringstream o;
    o << "job " << id << ": runs started " << (r.runs.starts.count(id) ? r.runs.starts.at(id) : 0) << "; states";
    if (auto it = r.seen.states.find(id); it != r.seen.states.end())
        for (const auto& st : it->second)
            o << ' ' << jobs::to_string(st.state) << "/a" << st.attempt << "/d" << st.deliveries << '@' << st.worker;
    o << "; results";
    if (auto it = r.seen.results.find(id); it != r.seen.results.end())
        for (const auto& res : it->second) o << ' ' << jobs::to_string(res.state) << '(' << res.error.code << ')';
    o << '\n';
    for (const auto* log : {&r.log_a, &r.log_b}) {
        std::istringstream lines(*log);
        for (std::string line; std::getline(lines, line);)
            if (line.find(id) != std::string::npos) o << "  " << line << '\n';
    }
    return o.str();
}

}  // namespace

TEST_CASE("at-least-once: a worker killed mid-run loses no job", "[worker][integration][kafka3]") {
    auto r = crash_and_take_over(delivery_mode::at_least_once, 24, 6);
    INFO("worker A:\n" << tail(r.log_a) << "\nworker B:\n" << tail(r.log_b));
    int lost = 0, duplicated = 0, reruns = 0;
    for (const auto& j : r.jobs) {
        if (!succeeded(r.seen, j.id)) {
            ++lost;
            WARN(story(r, j.id));
        }
        if (duplicate_results(r.seen, j.id) > 0) ++duplicated;
        if (r.runs.starts[j.id] > 1) ++reruns;
    }
    WARN("at-least-once: " << r.jobs.size() << " jobs, started before kill " << r.started_before_kill << ", finished before kill "
                           << r.finished_before_kill << ", re-run " << reruns << ", duplicate results " << duplicated
                           << ", lost " << lost);
    CHECK(r.started_before_kill > r.finished_before_kill);  // the kill hit running jobs
    CHECK(lost == 0);
    CHECK(reruns >= 1);  // the interrupted runs were repeated
}

TEST_CASE("exactly-once: a worker killed mid-run loses no job and duplicates no result", "[worker][integration][kafka3]") {
    auto r = crash_and_take_over(delivery_mode::exactly_once, 24, 6);
    INFO("worker A:\n" << tail(r.log_a) << "\nworker B:\n" << tail(r.log_b));
    int lost = 0, duplicated = 0, reruns = 0;
    for (const auto& j : r.jobs) {
        bool ok = succeeded(r.seen, j.id);
        if (!ok) {
            ++lost;
            WARN(story(r, j.id));
        }
        if (duplicate_results(r.seen, j.id) > 0) {
            ++duplicated;
            WARN(story(r, j.id));
        }
        if (r.runs.starts[j.id] > 1) ++reruns;
        if (ok) CHECK(r.seen.results[j.id].back().state == job_state::succeeded);  // nothing after the success
        // One terminal snapshot per job as well (snapshots of aborted transactions are invisible;
        // a retried attempt goes back to queued, not to a terminal state).
        int terminals = 0;
        for (const auto& st : r.seen.states[j.id]) terminals += jobs::is_terminal(st.state) ? 1 : 0;
        CHECK(terminals == (ok ? 1 : 0));
    }
    WARN("exactly-once: " << r.jobs.size() << " jobs, started before kill " << r.started_before_kill << ", finished before kill "
                          << r.finished_before_kill << ", re-run " << reruns << ", lost " << lost << ", duplicate results "
                          << duplicated);
    CHECK(r.started_before_kill > r.finished_before_kill);
    CHECK(lost == 0);
    CHECK(duplicated == 0);
}

TEST_CASE("at-most-once: a worker killed mid-run never runs a job twice", "[worker][integration][kafka3]") {
    auto r = crash_and_take_over(delivery_mode::at_most_once, 24, 6);
    INFO("worker A:\n" << tail(r.log_a) << "\nworker B:\n" << tail(r.log_b));
    int lost = 0, twice = 0, duplicated = 0;
    for (const auto& j : r.jobs) {
        if (r.seen.result_count(j.id) == 0) ++lost;
        if (duplicate_results(r.seen, j.id) > 0) ++duplicated;
        if (r.runs.starts[j.id] > 1) {
            ++twice;
            WARN(story(r, j.id));
        }
    }
    WARN("at-most-once: " << r.jobs.size() << " jobs, started before kill " << r.started_before_kill << ", finished before kill "
                          << r.finished_before_kill << ", lost " << lost << ", run twice " << twice);
    CHECK(r.started_before_kill > r.finished_before_kill);
    CHECK(twice == 0);
    CHECK(duplicated == 0);
    // What was lost is at most what was running (or committed and waiting) when A died.
    CHECK(lost <= r.started_before_kill - r.finished_before_kill + 4);
}

TEST_CASE("exactly-once: the broker coordinating the worker's transactions is SIGKILLed mid-run, no job is lost, "
          "no result duplicated",
          "[worker][integration][kafka3]") {
    auto r = kill_coordinator(24, 6);
    INFO("worker:\n" << tail(r.log_a, 6000));
    CHECK(r.restarted);  // later tests need three brokers
    int lost = 0, duplicated = 0, terminal_twice = 0;
    for (const auto& j : r.jobs) {
        bool ok = succeeded(r.seen, j.id);
        if (!ok) {
            ++lost;
            WARN(story(r, j.id));
        }
        if (duplicate_results(r.seen, j.id) > 0) {
            ++duplicated;
            WARN(story(r, j.id));
        }
        int terminals = 0;
        for (const auto& st : r.seen.states[j.id]) terminals += jobs::is_terminal(st.state) ? 1 : 0;
        if (terminals > 1) ++terminal_twice;
    }
    WARN("exactly-once, coordinator (broker " << r.coordinator << ") killed: " << r.jobs.size()
                                              << " jobs, started before kill " << r.started_before_kill
                                              << ", finished before kill " << r.finished_before_kill << ", lost " << lost
                                              << ", duplicate results " << duplicated);
    CHECK(r.started_before_kill > r.finished_before_kill);  // transactions were open when it died
    CHECK(lost == 0);
    CHECK(duplicated == 0);
    CHECK(terminal_twice == 0);
}
