// Window statistics over hand-built event sequences with a fixed clock.

#include <faasd/stats/window.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

using namespace faasd::stats;

namespace {

constexpr unix_ms T = 1'700'000'000'000;  // the window below is (T, T + 10 s]
constexpr unix_ms now = T + 10'000;

// Jobs (submitted, started, finished) in ms after T; 0 = not (yet) happened.
//   f: -5000  -4000   1000   finished in the window, arrived before it
//   a:  1000   2000   4000
//   b:  2000   2500   6500
//   c:  3000   5000   9000
//   d:  8000   9000     -    running
//   e:  9500     -      -    queued
std::vector<event> scenario_events() {
    std::vector<event> ev;
    auto job = [&](const char* id, unix_ms s, unix_ms st, unix_ms f) {
        ev.push_back(job_submitted{id, 1, T + s});
        if (st != 0) ev.push_back(job_started{id, 1, T + st, "w1"});
        if (f != 0) {
            job_finished fin{id, 1, T + s, T + st, f - st - 100, T + f, faasd::jobs::job_state::succeeded, "w1"};
            ev.push_back(fin);
        }
    };
    job("f", -5000, -4000, 1000);
    job("a", 1000, 2000, 4000);
    job("b", 2000, 2500, 6500);
    job("c", 3000, 5000, 9000);
    job("d", 8000, 9000, 0);
    job("e", 9500, 0, 0);
    ev.push_back(worker_heartbeat{"w1", 2, 1, T + 9000, worker_state::up});
    ev.push_back(worker_heartbeat{"w2", 2, 0, T + 9500, worker_state::up});
    ev.push_back(worker_heartbeat{"w3", 2, 1, T + 9800, worker_state::draining});
    ev.push_back(worker_heartbeat{"w4", 2, 2, T - 5000, worker_state::up});  // stale (15 s old)
    ev.push_back(worker_heartbeat{"w5", 2, 0, T + 9900, worker_state::down});
    ev.push_back(lag_sample{T + 9000, 5});
    return ev;
}

tracker_config config() {
    tracker_config c;
    c.retention_ms = 20'000;
    c.stale_after_ms = 10'000;
    return c;
}

// Everything the scenario promises about the window (T, T + 10 s].
void check_scenario(const observation& o) {
    CHECK(o.at == now);
    CHECK(o.span_s == 10.0);
    CHECK(o.arrivals == 5);     // a b c d e
    CHECK(o.starts == 4);       // a b c d
    CHECK(o.completions == 4);  // f a b c
    CHECK(o.arrival_rate == Approx(0.5));
    CHECK(o.start_rate == Approx(0.4));
    CHECK(o.completion_rate == Approx(0.4));

    // W of f a b c: 6, 3, 4.5, 6
    CHECK(o.response.count == 4);
    CHECK(o.response.mean == Approx(4.875));
    CHECK(o.response.p50 == Approx(4.5));  // 2nd of 4
    CHECK(o.response.p95 == Approx(6.0));  // 4th of 4
    CHECK(o.response.max == Approx(6.0));
    // Wq of a b c d (started in the window): 1, 0.5, 2, 1
    CHECK(o.wait.count == 4);
    CHECK(o.wait.mean == Approx(1.125));
    CHECK(o.wait.p50 == Approx(1.0));
    CHECK(o.wait.p99 == Approx(2.0));
    // S of f a b c: 5, 2, 4, 4
    CHECK(o.service.count == 4);
    CHECK(o.service.mean == Approx(3.75));
    CHECK(o.service.stddev == Approx(std::sqrt((1.25 * 1.25 + 1.75 * 1.75 + 0.25 * 0.25 * 2) / 3)));
    CHECK(o.service_rate == Approx(1 / 3.75));
    CHECK(o.mean_run_s == Approx(3.65));  // run_ms = S - 100 ms

    CHECK(o.queued_from_events == 1);  // e
    REQUIRE(o.lag);
    CHECK(*o.lag == 5);
    CHECK(o.queue_from_lag == 3);  // lag 5 - busy 2
    CHECK(o.queue_length == 3);
    CHECK(o.queue_from == queue_source::lag);

    CHECK(o.workers == 2);  // w1 w2 (w3 draining, w4 stale, w5 down)
    CHECK(o.draining_workers == 1);
    CHECK(o.slots == 4);
    CHECK(o.busy == 2);
    CHECK(o.utilisation == Approx(0.5 / (4 / 3.75)));
    // Busy area: f 1000 + a 2000 + b 4000 + c 4000 + d 1000 = 12 slot-seconds over 10 s, 4 slots.
    CHECK(o.busy_fraction == Approx(0.3));

    // In-system area: f 1000 + a 3000 + b 4500 + c 6000 + d 2000 + e 500 ms = 1.7 jobs on average;
    // queue area: a 1000 + b 500 + c 2000 + d 1000 + e 500 = 0.5.
    CHECK(o.l_time_average == Approx(1.7));
    CHECK(o.lq_time_average == Approx(0.5));
    CHECK(o.l_little == Approx(0.5 * 4.875));
    CHECK(o.lq_little == Approx(0.5 * 1.125));
    CHECK(o.little_error == Approx((2.4375 - 1.7) / 2.4375));  // edge effects in a short window
}

}  // namespace

TEST_CASE("window statistics of a hand-built sequence", "[stats][unit]") {
    tracker t(config());
    for (const auto& e : scenario_events()) CHECK(t.add(e) == ingest_result::added);
    check_scenario(t.summarize(now, 10'000));
    CHECK(t.counters().records == 6);
    CHECK(t.counters().workers == 5);
}

TEST_CASE("order of arrival does not matter, only event time", "[stats][unit]") {
    auto ev = scenario_events();
    SECTION("reversed") { std::reverse(ev.begin(), ev.end()); }
    SECTION("shuffled") {
        std::mt19937 g(42);
        std::shuffle(ev.begin(), ev.end(), g);
    }
    tracker t(config());
    for (const auto& e : ev) t.add(e);
    check_scenario(t.summarize(now, 10'000));
}

TEST_CASE("redelivered events are recognised by job id and attempt", "[stats][unit]") {
    tracker t(config());
    const auto ev = scenario_events();
    for (const auto& e : ev) t.add(e);
    std::size_t dups = 0;
    for (const auto& e : ev) {
        const auto r = t.add(e);
        CHECK(r == ingest_result::duplicate);
        dups += r == ingest_result::duplicate;
    }
    CHECK(t.counters().duplicates == dups);
    CHECK(dups == ev.size());
    check_scenario(t.summarize(now, 10'000));

    SECTION("another attempt of the same job is a different arrival") {
        CHECK(t.add(job_submitted{"a", 2, T + 9000}) == ingest_result::added);
        CHECK(t.summarize(now, 10'000).arrivals == 6);
        CHECK(t.summarize(now, 10'000).queued_from_events == 2);
    }
}

TEST_CASE("a result alone stands for its submission and start", "[stats][unit]") {
    tracker t(config());
    for (const auto& e : scenario_events()) {
        // Drop the submissions and starts of finished jobs: the results carry them.
        const bool finished_job = [&] {
            if (auto s = std::get_if<job_submitted>(&e)) return s->id != "d" && s->id != "e";
            if (auto s = std::get_if<job_started>(&e)) return s->id != "d";
            return false;
        }();
        if (!finished_job) t.add(e);
    }
    check_scenario(t.summarize(now, 10'000));
}

TEST_CASE("summarize looks at event time: the future is invisible", "[stats][unit]") {
    tracker t(config());
    for (const auto& e : scenario_events()) t.add(e);
    // At T + 5 s with a 5 s window: a and b arrived, a b started, f and a finished (c started at exactly 5000).
    const auto o = t.summarize(T + 5'000, 5'000);
    CHECK(o.arrivals == 3);     // a b c (c at 3000)
    CHECK(o.starts == 3);       // a b c
    CHECK(o.completions == 2);  // f a
    CHECK(o.queued_from_events == 0);
    CHECK(o.response.mean == Approx((6.0 + 3.0) / 2));
    // Still running at T + 5 s: b (since 2500) and c (since 5000): they count in L, not in W.
    // Areas over (T, T+5 s]: f 1000, a 3000, b 3000, c 2000 ms.
    CHECK(o.l_time_average == Approx(9.0 / 5));
}

TEST_CASE("Little's law holds exactly when every job starts and ends inside the window", "[stats][unit]") {
    tracker t(config());
    // Three jobs entirely inside (T, T + 10 s].
    const unix_ms jobs[][3] = {{1000, 1500, 3000}, {2000, 3000, 7000}, {4000, 4000, 9500}};
    int i = 0;
    for (const auto& j : jobs) {
        const std::string id = "j" + std::to_string(i++);
        t.add(job_finished{id, 1, T + j[0], T + j[1], j[2] - j[1], T + j[2], faasd::jobs::job_state::succeeded, "w"});
    }
    const auto o = t.summarize(now, 10'000);
    // Sum of W = 2 + 5 + 5.5 = 12.5 s over 10 s.
    CHECK(o.l_time_average == Approx(1.25));
    CHECK(o.l_little == Approx(1.25));
    CHECK(o.little_error == Approx(0.0).margin(1e-12));
    // Sum of Wq = 0.5 + 1 + 0 = 1.5 s over 10 s.
    CHECK(o.lq_time_average == Approx(0.15));
    CHECK(o.lq_little == Approx(0.15));
}

TEST_CASE("queue length falls back to events without a fresh lag sample", "[stats][unit]") {
    tracker t(config());
    for (const auto& e : scenario_events())
        if (!std::holds_alternative<lag_sample>(e)) t.add(e);
    SECTION("no sample") {}
    SECTION("a stale sample") { t.add(lag_sample{T - 1'000, 50}); }  // 11 s old, stale_after 10 s
    SECTION("a sample newer than now is not used") { t.add(lag_sample{now + 1, 50}); }
    const auto o = t.summarize(now, 10'000);
    CHECK_FALSE(o.lag);
    CHECK(o.queue_length == 1);
    CHECK(o.queue_from == queue_source::events);
}

TEST_CASE("a lag below the busy slots means an empty queue", "[stats][unit]") {
    tracker t(config());
    for (const auto& e : scenario_events()) t.add(e);
    t.add(lag_sample{T + 9'500, 1});
    const auto o = t.summarize(now, 10'000);
    CHECK(o.lag == 1);
    CHECK(o.queue_from_lag == 0);
    CHECK(o.queue_length == 0);
}

TEST_CASE("heartbeats: the newest per worker wins, whatever the order", "[stats][unit]") {
    tracker t(config());
    CHECK(t.add(worker_heartbeat{"w1", 4, 1, T + 9000, worker_state::up}) == ingest_result::added);
    CHECK(t.add(worker_heartbeat{"w1", 4, 3, T + 8000, worker_state::up}) == ingest_result::duplicate);
    CHECK(t.summarize(now, 10'000).busy == 1);
    CHECK(t.add(worker_heartbeat{"w1", 4, 0, T + 9500, worker_state::down}) == ingest_result::added);
    CHECK(t.summarize(now, 10'000).workers == 0);
    CHECK(t.add(worker_heartbeat{"", 4, 0, T, worker_state::up}) == ingest_result::invalid);
}

TEST_CASE("eviction drops what no window needs and rejects late events", "[stats][unit]") {
    tracker t(config());  // retention 20 s
    for (const auto& e : scenario_events()) t.add(e);
    t.evict(T + 30'000);  // horizon T + 10 s: f a b c finished before it
    auto c = t.counters();
    CHECK(c.evicted == 4);
    CHECK(c.records == 2);  // d (running) and e (queued) stay: unfinished
    CHECK(c.workers == 0);  // all heartbeats older than the retention

    CHECK(t.add(job_submitted{"old", 1, T + 9'999}) == ingest_result::late);
    CHECK(t.add(job_finished{"a", 1, T + 1000, T + 2000, 1900, T + 4000, faasd::jobs::job_state::succeeded, "w1"}) ==
          ingest_result::late);
    CHECK(t.counters().late == 2);

    // d finishes later: its record was kept, so it is complete.
    CHECK(t.add(job_finished{"d", 1, T + 8000, T + 9000, 3000, T + 25'000, faasd::jobs::job_state::succeeded, "w1"}) ==
          ingest_result::added);
    const auto o = t.summarize(T + 30'000, 10'000);
    CHECK(o.arrivals == 0);
    CHECK(o.completions == 1);
    CHECK(o.response.mean == Approx(17.0));
    CHECK(o.queued_from_events == 1);  // e, still waiting

    // The horizon never moves back.
    t.evict(T);
    CHECK(t.add(job_submitted{"older", 1, T + 5'000}) == ingest_result::late);
}

TEST_CASE("unfinished attempts are forgotten after the pending horizon", "[stats][unit]") {
    auto cfg = config();
    cfg.pending_horizon_ms = 60'000;
    tracker t(cfg);
    t.add(job_submitted{"lost", 1, T});
    t.evict(T + 59'000);
    CHECK(t.counters().records == 1);
    t.evict(T + 61'000);
    CHECK(t.counters().records == 0);
}

TEST_CASE("memory stays bounded: the oldest attempts go first", "[stats][unit]") {
    auto cfg = config();
    cfg.max_records = 100;
    tracker t(cfg);
    for (int i = 0; i < 1000; ++i) t.add(job_submitted{"j" + std::to_string(i), 1, T + i});
    const auto c = t.counters();
    CHECK(c.records <= 100);
    CHECK(c.records >= 90);
    CHECK(c.overflow == 1000 - c.records);
    // The newest survive: the last 90 arrived within the last 90 ms.
    const auto o = t.summarize(T + 999, 90);
    CHECK(o.arrivals == 90);
}

TEST_CASE("known_since shortens windows that reach before the history", "[stats][unit]") {
    auto cfg = config();
    cfg.known_since = T + 5'000;
    tracker t(cfg);
    for (const auto& e : scenario_events()) t.add(e);
    const auto o = t.summarize(now, 10'000);
    CHECK(o.span_s == 5.0);
    CHECK(o.arrivals == 2);  // d e
    CHECK(o.arrival_rate == Approx(0.4));
}

TEST_CASE("invalid events are ignored", "[stats][unit]") {
    tracker t(config());
    CHECK(t.add(job_submitted{"", 1, T}) == ingest_result::invalid);
    CHECK(t.add(job_started{"x", 1, 0, "w"}) == ingest_result::invalid);
    CHECK(t.add(job_finished{"x", 1, T, T, 0, 0, faasd::jobs::job_state::succeeded, "w"}) == ingest_result::invalid);
    CHECK(t.add(lag_sample{T, -1}) == ingest_result::invalid);
    CHECK(t.counters().records == 0);
    const auto o = t.summarize(now, 10'000);
    CHECK(o.arrivals == 0);
    CHECK(o.service_rate == 0.0);
    CHECK(o.utilisation == 0.0);
    CHECK(std::isnan(o.busy_fraction));  // no slots: unknown
}

TEST_CASE("a job cancelled while queued leaves the queue without a service sample", "[stats][unit]") {
    tracker t(config());
    t.add(job_submitted{"x", 1, T + 1000});
    t.add(job_finished{"x", 1, T + 1000, 0, 0, T + 3000, faasd::jobs::job_state::cancelled, "w"});
    const auto o = t.summarize(now, 10'000);
    CHECK(o.completions == 1);
    CHECK(o.service.count == 0);
    CHECK(o.response.count == 1);
    CHECK(o.queued_from_events == 0);
    CHECK(o.lq_time_average == Approx(0.2));  // waited 2 s of 10
}

// At-least-once jobs finish out of order: a long job holds its partition's
// committed offset back, and every job finished above it still counts in the
// workers' lag, as does a retry waiting for its backoff. lag - busy then shows a
// backlog that is not there; the events (starts included) do not.
//
//   offset  job     submitted started  finished   (ms after T)
//   0       long    1000      1100     -          running: the committed offset stays at 0
//   1..7    j1..j7  1000+100i 1200+100i 1700+100i done, yet above the committed offset
//   8, 9    q8, q9  8000      -        -          waiting for a slot
//   10      r2      3000      -        -          attempt 2 of j1's sibling, not before T + 12 s
TEST_CASE("a long job holding the committed offset does not inflate the queue", "[stats][unit]") {
    tracker t(config());
    t.add(job_submitted{"long", 1, T + 1'000});
    t.add(job_started{"long", 1, T + 1'100, "w1"});
    for (int i = 1; i <= 7; ++i) {
        const std::string id = "j" + std::to_string(i);
        const unix_ms sub = T + 1'000 + 100 * i, start = T + 1'200 + 100 * i, fin = T + 1'700 + 100 * i;
        t.add(job_submitted{id, 1, sub});
        t.add(job_started{id, 1, start, "w1"});
        t.add(job_finished{id, 1, sub, start, fin - start, fin, faasd::jobs::job_state::succeeded, "w1"});
    }
    t.add(job_submitted{"q8", 1, T + 8'000});
    t.add(job_submitted{"q9", 1, T + 8'000});
    t.add(job_submitted{"r2", 2, T + 3'000, T + 12'000});
    t.add(worker_heartbeat{"w1", 2, 1, T + 9'500, worker_state::up});
    t.add(lag_sample{T + 9'000, 11});  // offsets 0..10 uncommitted

    SECTION("without complete events, the lag is all there is (the old estimate: 10)") {
        const auto o = t.summarize(now, 10'000);
        CHECK_FALSE(o.events_fresh);
        CHECK(o.queue_from == queue_source::lag);
        CHECK(o.queue_length == 10);
        CHECK(o.queued_from_events == 2);
    }
    SECTION("with the events complete, the queue is what waits for a slot") {
        t.mark_caught_up(T + 9'800);
        const auto o = t.summarize(now, 10'000);
        CHECK(o.events_fresh);
        CHECK(o.queue_from == queue_source::events);
        CHECK(o.queue_length == 2);  // q8 q9; r2 waits for its backoff, not for a slot
        CHECK(o.queued_from_events == 2);
        CHECK(o.queue_from_lag == 10);  // still reported, as a cross-check
        CHECK(o.lag_bound == 11);
        // The long job occupies a slot for the whole window: busy time includes running jobs.
        // Busy area: long 8900 + j1..j7 7 x 500 = 12400 ms over 10 s and 2 slots.
        CHECK(o.busy_fraction == Approx(0.62));
        // Once its backoff is over, the retry waits like any job.
        t.mark_caught_up(T + 12'500);
        t.add(lag_sample{T + 12'400, 11});
        const auto later = t.summarize(T + 12'500, 10'000);
        CHECK(later.queue_length == 3);
    }
    SECTION("the events stop being trusted stale_after after the last catch-up") {
        t.mark_caught_up(T - 1);  // 10.001 s before now
        CHECK_FALSE(t.summarize(now, 10'000).events_fresh);
        t.mark_caught_up(T - 10'000);  // never moves back
        CHECK_FALSE(t.summarize(now, 10'000).events_fresh);
        t.mark_caught_up(T);
        CHECK(t.summarize(now, 10'000).events_fresh);
    }
}

TEST_CASE("the lag bounds the queue from the events, counting what came after the sample", "[stats][unit]") {
    tracker t(config());
    t.mark_caught_up(now);
    SECTION("a burst after the lag sample is not cut by it") {
        t.add(lag_sample{T + 9'000, 0});
        for (int i = 0; i < 5; ++i) t.add(job_submitted{"b" + std::to_string(i), 1, T + 9'200 + 100 * i});
        const auto o = t.summarize(now, 10'000);
        CHECK(o.lag_bound == 5);
        CHECK(o.queue_length == 5);
    }
    SECTION("attempts whose start the observer missed are capped by the lag") {
        for (int i = 0; i < 5; ++i) t.add(job_submitted{"m" + std::to_string(i), 1, T + 1'000 + 100 * i});
        t.add(lag_sample{T + 9'000, 2});
        const auto o = t.summarize(now, 10'000);
        CHECK(o.queued_from_events == 5);
        CHECK(o.lag_bound == 2);
        CHECK(o.queue_length == 2);
        CHECK(o.queue_from == queue_source::events);
    }
}

TEST_CASE("a retry waits for a slot from its not_before on", "[stats][unit]") {
    tracker t(config());
    t.add(job_submitted{"r", 2, T + 2'000, T + 4'000});
    t.add(job_started{"r", 2, T + 4'500, "w1"});
    t.add(job_finished{"r", 2, T + 2'000, T + 4'500, 1'000, T + 5'500, faasd::jobs::job_state::succeeded, "w1"});
    const auto o = t.summarize(now, 10'000);
    CHECK(o.wait.count == 1);
    CHECK(o.wait.mean == Approx(0.5));
    CHECK(o.response.mean == Approx(3.5));  // the response counts from the retry's queueing
    CHECK(o.lq_time_average == Approx(0.05));  // 500 ms of 10 s waiting for a slot
    const auto during_backoff = t.summarize(T + 3'000, 10'000);
    CHECK(during_backoff.queued_from_events == 0);
}
