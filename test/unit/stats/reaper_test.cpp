// The job table and the reaper of lost at-most-once jobs, with hand-built
// state snapshots and heartbeats and a fixed clock.

#include <faasd/jobs/merge.hpp>
#include <faasd/stats/reaper.hpp>

#include <catch2/catch.hpp>

#include <optional>

using namespace faasd::stats;
namespace jobs = faasd::jobs;

namespace {

constexpr unix_ms T = 1'700'000'000'000;

jobs::job_status snapshot(const std::string& id, jobs::job_state state, int attempt, unix_ms at,
                          jobs::delivery_mode mode = jobs::delivery_mode::at_most_once, const std::string& worker = "w1") {
    jobs::job_status s;
    s.id = id;
    s.owner = {"sub-1", "alice", {"user"}};
    s.state = state;
    s.attempt = attempt;
    s.submitted_at = T;
    s.delivery = mode;
    s.repo.url = "https://example.com/fn.git";
    s.repo.ref = "main";
    s.tags = {"t1"};
    s.updated_at = at;
    if (state != jobs::job_state::queued) {
        s.worker = worker;
        s.started_at = at;
    }
    if (jobs::is_terminal(state)) {
        s.finished_at = at;
        jobs::job_result r;
        r.id = id;
        r.state = state;
        r.attempt = attempt;
        s.result = r;
    }
    return s;
}

reaper_config config() {
    reaper_config c;
    c.lost_after_ms = 10'000;
    c.terminal_memory_ms = 60'000;
    return c;
}

}  // namespace

TEST_CASE("running snapshots are start events, once per attempt and delivery", "[stats][unit]") {
    job_table t(config());
    auto started = t.add(snapshot("a", jobs::job_state::running, 1, T + 1'000), T + 1'000);
    REQUIRE(started);
    CHECK(*started == job_started{"a", 1, T + 1'000, "w1"});
    // The same snapshot again (a duplicate): nothing new.
    CHECK_FALSE(t.add(snapshot("a", jobs::job_state::running, 1, T + 1'000), T + 1'000));
    // The frontend's queued snapshot read late: superseded, no start, still running.
    CHECK_FALSE(t.add(snapshot("a", jobs::job_state::queued, 1, T + 500), T + 1'000));
    CHECK(t.counters().running == 1);
    // Queued jobs are not held.
    CHECK_FALSE(t.add(snapshot("q", jobs::job_state::queued, 1, T), T));
    CHECK(t.counters().running == 1);
    CHECK(t.counters().ended == 0);
    // The end; a running snapshot read after it (a cancel raced the start) changes nothing.
    CHECK_FALSE(t.add(snapshot("a", jobs::job_state::succeeded, 1, T + 3'000), T + 3'000));
    CHECK(t.counters().running == 0);
    CHECK_FALSE(t.add(snapshot("a", jobs::job_state::running, 1, T + 3'500), T + 3'500));
    CHECK(t.counters().running == 0);
    // A retry's queued snapshot ends the running attempt; the next one starts.
    t.add(snapshot("b", jobs::job_state::running, 1, T + 1'000), T + 1'000);
    t.add(snapshot("b", jobs::job_state::queued, 2, T + 2'000), T + 2'000);
    CHECK(t.counters().running == 0);
    auto b2 = t.add(snapshot("b", jobs::job_state::running, 2, T + 4'000, jobs::delivery_mode::at_most_once, "w2"),
                    T + 4'000);
    REQUIRE(b2);
    CHECK(b2->attempt == 2);
    CHECK(b2->worker == "w2");
    CHECK(t.counters().starts == 3);
}

TEST_CASE("a running at-most-once job whose worker went silent is ended once, as worker_lost", "[stats][unit]") {
    job_table t(config());
    t.add(snapshot("amo", jobs::job_state::running, 1, T + 1'000), T + 1'000);
    t.add(snapshot("alo", jobs::job_state::running, 1, T + 1'000, jobs::delivery_mode::at_least_once), T + 1'000);
    t.add(snapshot("other", jobs::job_state::running, 1, T + 1'000, jobs::delivery_mode::at_most_once, "w2"),
          T + 1'000);
    for (unix_ms at = T + 1'000; at <= T + 5'000; at += 1'000) t.add_heartbeat("w1", at);  // w1 dies after T + 5 s
    for (unix_ms at = T + 1'000; at <= T + 30'000; at += 1'000) t.add_heartbeat("w2", at);

    // Silent for 9.999 s: not yet.
    auto plan = t.reap(T + 14'999);
    CHECK(plan.lost.empty());
    CHECK(plan.running == 3);
    CHECK(plan.orphaned == 0);

    plan = t.reap(T + 15'000);
    REQUIRE(plan.lost.size() == 1);
    CHECK(plan.orphaned == 1);  // alo: Kafka redelivers it; only counted
    const auto& lost = plan.lost.front();
    CHECK(lost.last_seen == T + 5'000);
    const auto& s = lost.snapshot;
    CHECK(s.id == "amo");
    CHECK(s.state == jobs::job_state::failed);
    CHECK(s.error.code == "worker_lost");
    CHECK(s.error.message.find("w1") != std::string::npos);
    CHECK(s.attempt == 1);
    CHECK(s.worker == "w1");
    CHECK(s.finished_at == T + 15'000);  // last sign of life + lost_after: the same for every observer
    CHECK(s.updated_at == T + 15'000);
    CHECK(s.delivery == jobs::delivery_mode::at_most_once);
    CHECK(s.owner.subject == "sub-1");
    CHECK(s.repo.url == "https://example.com/fn.git");
    REQUIRE(s.result);
    CHECK(s.result->state == jobs::job_state::failed);
    const auto& r = lost.result;
    CHECK(r.id == "amo");
    CHECK(r.owner_subject == "sub-1");
    CHECK(r.attempt == 1);
    CHECK(r.error.code == "worker_lost");
    CHECK(r.times.started_at == T + 1'000);
    CHECK(r.times.finished_at == T + 15'000);
    CHECK(r.times.queue_wait_ms == 1'000);
    CHECK(r.times.total_ms == 15'000);
    CHECK(r.tags == std::vector<std::string>{"t1"});

    // Returned once: not again while its snapshot is on its way.
    plan = t.reap(T + 16'000);
    CHECK(plan.lost.empty());
    CHECK(plan.ending == 1);
    // Publishing failed: offered again, with the very same records.
    t.retry("amo");
    plan = t.reap(T + 20'000);
    REQUIRE(plan.lost.size() == 1);
    CHECK(plan.lost.front().snapshot.finished_at == T + 15'000);
    CHECK(std::is_eq(jobs::precedence(jobs::key_of(plan.lost.front().snapshot), jobs::key_of(s))));
    // The snapshot read back ends it; a second copy (another observer's) changes nothing.
    CHECK_FALSE(t.add(s, T + 21'000));
    CHECK_FALSE(t.add(s, T + 21'000));
    plan = t.reap(T + 22'000);
    CHECK(plan.running == 2);
    CHECK(plan.lost.empty());
    CHECK(plan.ending == 0);
    CHECK(t.counters().reaped == 2);
}

TEST_CASE("the reaper waits for the newest sign of life, and for nothing when the result is in", "[stats][unit]") {
    job_table t(config());
    SECTION("a worker never heard of counts from the snapshot") {
        t.add(snapshot("x", jobs::job_state::running, 1, T), T);
        CHECK(t.reap(T + 9'999).lost.empty());
        CHECK(t.reap(T + 10'000).lost.size() == 1);
    }
    SECTION("a late heartbeat of the worker postpones it") {
        t.add(snapshot("x", jobs::job_state::running, 1, T), T);
        t.add_heartbeat("w1", T + 8'000);
        t.add_heartbeat("w1", T + 3'000);  // older news
        CHECK(t.reap(T + 17'999).lost.empty());
        CHECK(t.reap(T + 18'000).lost.size() == 1);
    }
    SECTION("the attempt's result arrived first: its snapshot follows, nothing to reap") {
        t.add(snapshot("x", jobs::job_state::running, 1, T), T);
        t.add_result("x", 1);
        CHECK(t.reap(T + 60'000).lost.empty());
    }
    SECTION("a redelivery to a live worker is not lost") {
        t.add(snapshot("x", jobs::job_state::running, 1, T, jobs::delivery_mode::at_least_once), T);
        CHECK(t.reap(T + 10'000).orphaned == 1);
        t.add(snapshot("x", jobs::job_state::running, 1, T + 11'000, jobs::delivery_mode::at_least_once, "w2"),
              T + 11'000);
        t.add_heartbeat("w2", T + 19'000);
        CHECK(t.reap(T + 20'000).orphaned == 0);
    }
    SECTION("lost_after 0 turns the reaper off") {
        auto c = config();
        c.lost_after_ms = 0;
        t.configure(c);
        t.add(snapshot("x", jobs::job_state::running, 1, T), T);
        const auto plan = t.reap(T + 3'600'000);
        CHECK(plan.lost.empty());
        CHECK(plan.running == 1);
    }
}

TEST_CASE("ended jobs are remembered for terminal_memory, then forgotten", "[stats][unit]") {
    job_table t(config());  // memory 60 s
    // A replayed job that ended long ago is not even remembered.
    t.add(snapshot("old", jobs::job_state::succeeded, 1, T), T + 61'000);
    CHECK(t.counters().ended == 0);
    t.add(snapshot("a", jobs::job_state::cancelled, 1, T + 1'000), T + 1'000);
    CHECK(t.counters().ended == 1);
    t.evict(T + 60'000);
    CHECK(t.counters().ended == 1);
    t.evict(T + 61'001);
    CHECK(t.counters().ended == 0);
    SECTION("at most max_ended") {
        auto c = config();
        c.max_ended = 10;
        t.configure(c);
        for (int i = 0; i < 50; ++i) t.add(snapshot("e" + std::to_string(i), jobs::job_state::failed, 1, T + 62'000), T + 62'000);
        t.evict(T + 62'000);
        CHECK(t.counters().ended == 10);
    }
}
