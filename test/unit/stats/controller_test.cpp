// The scaling controller driven tick by tick with hand-built observations and
// a fixed clock. Expected sizes were computed independently (Python, Erlang C
// by the B recurrence; see the comments): lambda = 20/s, mean service 1 s,
// P(Wq > 1 s) <= 0.05 needs 23 slots (22 give 0.077, 23 give 0.021), i.e.
// 6 workers of 4 slots.

#include <faasd/stats/controller.hpp>
#include <faasd/stats/report.hpp>

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace faasd::stats;

namespace {

constexpr unix_ms t0 = 1'700'000'000'000;

// An observation with `arrivals` in `span_s` seconds, a service-time sample of
// `services` values with mean 1 s and standard deviation 1 s (exponential-like),
// and `queue` jobs waiting.
observation obs(std::size_t arrivals, double span_s, std::size_t services = 1000, std::int64_t queue = 0,
                double mean_service_s = 1.0) {
    observation o;
    o.span_s = span_s;
    o.window_ms = static_cast<std::int64_t>(span_s * 1000);
    o.arrivals = arrivals;
    o.arrival_rate = static_cast<double>(arrivals) / span_s;
    o.service.count = services;
    o.service.mean = services ? mean_service_s : 0.0;
    o.service.stddev = services > 1 ? mean_service_s : 0.0;
    o.service_rate = services ? 1.0 / mean_service_s : 0.0;
    o.queue_length = queue;
    return o;
}

// Short and long windows of a steady rate (per second).
struct load {
    observation s, l;
};
load steady(double rate, std::int64_t queue = 0) {
    return {obs(static_cast<std::size_t>(rate * 10), 10.0, 1000, queue),
            obs(static_cast<std::size_t>(rate * 60), 60.0, 1000, queue)};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("confidence bounds of rates", "[stats][unit]") {
    CHECK(rate_lower_bound(100, 10.0, 2.0) == Approx(8.0));  // (100 - 2*10) / 10
    CHECK(rate_upper_bound(100, 10.0, 2.0) == Approx(12.0));
    CHECK(rate_lower_bound(3, 10.0, 2.0) == 0.0);  // clipped at 0
    CHECK(rate_upper_bound(0, 10.0, 2.0) == 0.0);
    CHECK(rate_lower_bound(100, 0.0, 2.0) == 0.0);
    CHECK(rate_lower_bound(100, 10.0, 0.0) == Approx(10.0));  // z = 0: the point estimate

    distribution d;
    d.count = 100;
    d.mean = 2.0;
    d.stddev = 1.0;  // standard error 0.1
    const auto b = service_rate_bounds(d, 2.0);
    CHECK(b.rate == Approx(0.5));
    CHECK(b.low == Approx(1 / 2.2));
    CHECK(b.high == Approx(1 / 1.8));
    d.count = 1;
    CHECK(service_rate_bounds(d, 2.0).low == Approx(0.5));
    d.count = 4;
    d.stddev = 10.0;  // mean - 2 se < 0
    CHECK(std::isinf(service_rate_bounds(d, 2.0).high));
    CHECK(service_rate_bounds(distribution{}, 2.0).rate == 0.0);
}

TEST_CASE("size_for: target, drain and the planned-rate floor", "[stats][unit]") {
    observer_params p;  // 4 slots per worker, P(Wq > 1 s) <= 0.05, drain 30 s
    auto s = size_for(20.0, 1.0, 0, p);
    CHECK(s.target_slots == 23);
    CHECK(s.drain_slots == 0);
    CHECK(s.workers == 6);
    CHECK(s.feasible);

    s = size_for(10.0, 1.0, 300, p);  // target 13 slots; drain (10 + 300/30) = 20 slots
    CHECK(s.target_slots == 13);
    CHECK(s.drain_slots == 20);
    CHECK(s.workers == 5);

    p.max_arrival_rate = 20;  // plan for at least 20/s
    s = size_for(1.0, 1.0, 0, p);
    CHECK(s.lambda == 20.0);
    CHECK(s.workers == 6);

    p.max_arrival_rate = 0;
    s = size_for(200.0, 1.0, 0, p);  // needs 203 slots = 51 workers > max 20
    CHECK_FALSE(s.feasible);
    CHECK(s.workers == p.max_workers + 1);
}

TEST_CASE("a load step scales up at once to the size the model needs", "[stats][unit]") {
    observer_params p;
    controller c;
    // Short window: 20/s (lower bound 17.2/s needs 5 workers even optimistically); long: 10/s.
    const auto d = c.decide(obs(200, 10.0), obs(600, 60.0), 2, p, t0);
    CHECK(d.action == scaling_action::add);
    CHECK(d.current == 2);
    CHECK(d.target == 6);
    CHECK(d.needed == 6);
    CHECK(d.needed_optimistic == 5);
    CHECK(d.lambda_plan == Approx(20.0));
    CHECK(d.lambda_trigger == Approx(17.1716).epsilon(1e-4));
    CHECK(d.mu == Approx(1.0));
    CHECK(d.model_ready);
    CHECK_FALSE(d.saturated);
    CHECK(d.at_target.slots == 24);
    CHECK(d.at_target.p_wait_exceeds_t < p.epsilon);
    CHECK_FALSE(d.at_current.stable);  // 8 slots for 20/s
    CHECK(contains(d.reason, "scale up 2 -> 6"));
    CHECK(contains(d.reason, "even optimistically"));
    CHECK(c.last_change() == t0);
}

TEST_CASE("scale-up is capped per step and held by the up cooldown", "[stats][unit]") {
    observer_params p;
    p.max_step_up = 2;
    controller c;
    const auto l = steady(20.0);
    auto d = c.decide(l.s, l.l, 1, p, t0);
    CHECK(d.action == scaling_action::add);
    CHECK(d.target == 3);
    CHECK(contains(d.reason, "max_step_up 2"));

    // 1 s later: still short of 6, but cooling down (5 s).
    d = c.decide(l.s, l.l, 3, p, t0 + 1'000);
    CHECK(d.action == scaling_action::none);
    CHECK(d.target == 3);
    CHECK(d.cooling_down);
    CHECK(contains(d.reason, "up_cooldown"));
    d = c.decide(l.s, l.l, 3, p, t0 + 4'999);
    CHECK(d.action == scaling_action::none);

    d = c.decide(l.s, l.l, 3, p, t0 + 5'000);
    CHECK(d.action == scaling_action::add);
    CHECK(d.target == 5);
    d = c.decide(l.s, l.l, 5, p, t0 + 10'000);
    CHECK(d.target == 6);
    d = c.decide(l.s, l.l, 6, p, t0 + 15'000);
    CHECK(d.action == scaling_action::none);
}

TEST_CASE("scale-down waits for a whole long window of evidence", "[stats][unit]") {
    observer_params p;  // long window 60 s, down cooldown 30 s, max_step_down 2
    controller c;
    const auto low = steady(2.0);  // upper bound 2.89/s with mu >= 0.94 needs 5 slots: 2 workers
    int workers = 6;
    std::vector<std::pair<unix_ms, int>> changes;
    for (unix_ms t = 0; t <= 200'000; t += 1'000) {
        const auto d = c.decide(low.s, low.l, workers, p, t0 + t);
        CHECK(d.action != scaling_action::add);
        if (d.action == scaling_action::remove) {
            changes.emplace_back(t, d.target);
            workers = d.target;
        }
        if (t < 60'000) CHECK(d.action == scaling_action::none);
        if (t == 30'000) CHECK(contains(d.reason, "scale-down needs a whole long window"));
    }
    // 6 -> 4 after the long window, 4 -> 2 after the down cooldown, then stay (2 are needed).
    REQUIRE(changes.size() == 2);
    CHECK(changes[0] == std::pair<unix_ms, int>{60'000, 4});
    CHECK(changes[1] == std::pair<unix_ms, int>{90'000, 2});
}

TEST_CASE("one busy tick inside the long window blocks scale-down until it leaves", "[stats][unit]") {
    observer_params p;
    controller c;
    const auto low = steady(2.0);
    const auto high = steady(20.0);  // needs 6 (the current size): no scale-up, but no scale-down either
    int first_removal = -1;
    for (unix_ms t = 0; t <= 120'000 && first_removal < 0; t += 1'000) {
        const auto& l = t == 30'000 ? high : low;
        const auto d = c.decide(l.s, l.l, 6, p, t0 + t);
        CHECK(d.action != scaling_action::add);
        if (t == 70'000) CHECK(contains(d.reason, "keep 6: 6 workers were needed 40s ago"));
        if (d.action == scaling_action::remove) first_removal = static_cast<int>(t);
    }
    CHECK(first_removal == 90'000);
}

TEST_CASE("steady load: no change, tick after tick", "[stats][unit]") {
    observer_params p;
    controller c;
    const auto l = steady(20.0);
    auto d = c.decide(l.s, l.l, 2, p, t0);
    REQUIRE(d.action == scaling_action::add);
    const int settled = d.target;
    for (unix_ms t = 1'000; t <= 3'600'000; t += 1'000) {
        d = c.decide(l.s, l.l, settled, p, t0 + t);
        REQUIRE(d.action == scaling_action::none);
    }
    CHECK(d.target == 6);
    CHECK(d.needed_pessimistic == 7);  // upper bounds: 22.8/s at mu 0.94 needs 27 slots
    CHECK(contains(d.reason, "keep 6"));
}

TEST_CASE("capacity is judged by the live workers, not by a target the actuator did not deliver", "[stats][unit]") {
    observer_params p;  // 4 slots per worker; 10/s needs 4 workers (3 optimistically), 20/s needs 6 (5)
    controller c;
    SECTION("a failing actuator: 1 of 4 workers live") {
        const auto l = steady(10.0);
        const auto d = c.decide(l.s, l.l, 4, p, t0, 1);
        CHECK(d.current == 4);
        CHECK(d.live == 1);
        CHECK(d.basis == 1);
        CHECK_FALSE(d.pending);
        // Short of capacity, but 4 is already the target: nothing new to ask for.
        CHECK(d.action == scaling_action::none);
        CHECK(d.target == 4);
        CHECK(contains(d.reason, "keep 4: 4 workers are needed and 1 are live"));
        CHECK(contains(d.reason, "waiting for the actuator"));
        CHECK(contains(d.reason, "1 of 4 workers live"));
        // The model describes the workers that exist.
        CHECK(d.at_current.slots == 4);
        CHECK_FALSE(d.at_current.stable);
        // Without heartbeats the target stands for the workers (the old view).
        controller blind;
        const auto b = blind.decide(l.s, l.l, 4, p, t0);
        CHECK(b.basis == 4);
        CHECK(b.at_current.slots == 16);
    }
    SECTION("more needed than the target: the step counts from the target") {
        const auto l = steady(20.0);
        p.max_step_up = 1;
        const auto d = c.decide(l.s, l.l, 4, p, t0, 1);
        CHECK(d.action == scaling_action::add);
        CHECK(d.target == 5);  // not 1 + 1
    }
    SECTION("more workers live than asked for: no scale-up the live ones already cover") {
        const auto l = steady(20.0);
        const auto d = c.decide(l.s, l.l, 4, p, t0, 6);
        CHECK(d.basis == 6);
        CHECK(d.action == scaling_action::none);
        CHECK(d.target == 4);
        controller blind;
        CHECK(blind.decide(l.s, l.l, 4, p, t0).action == scaling_action::add);
    }
    SECTION("a change under way is not asked for again") {
        const auto l = steady(20.0);
        auto d = c.decide(l.s, l.l, 2, p, t0, 2);
        REQUIRE(d.action == scaling_action::add);
        REQUIRE(d.target == 6);
        // Within the up cooldown, the new workers are not up yet: pending, judged at the target.
        d = c.decide(l.s, l.l, 6, p, t0 + 1'000, 2);
        CHECK(d.pending);
        CHECK(d.basis == 6);
        CHECK(d.action == scaling_action::none);
        CHECK_FALSE(d.cooling_down);
        CHECK(contains(d.reason, "2 of 6 workers live (the change 1s ago is under way)"));
        // Past the cooldown and still not up: judged by the live ones, but 6 are already asked for.
        d = c.decide(l.s, l.l, 6, p, t0 + 6'000, 2);
        CHECK_FALSE(d.pending);
        CHECK(d.basis == 2);
        CHECK(d.action == scaling_action::none);
        CHECK(d.target == 6);
        CHECK(contains(d.reason, "waiting for the actuator"));
        CHECK(c.last_change() == t0);  // no repeated change
        d = c.decide(l.s, l.l, 6, p, t0 + 7'000, 6);
        CHECK(d.basis == 6);
        CHECK(d.action == scaling_action::none);
        CHECK_FALSE(contains(d.reason, "live"));
    }
    SECTION("scale-down still needs the long window, whatever is live") {
        const auto low = steady(2.0);
        for (unix_ms t = 0; t < 60'000; t += 1'000) {
            const auto d = c.decide(low.s, low.l, 6, p, t0 + t, 2);
            REQUIRE(d.action == scaling_action::none);
        }
        CHECK(c.decide(low.s, low.l, 6, p, t0 + 60'000, 2).action == scaling_action::remove);
    }
}

TEST_CASE("a backlog triggers scale-up to drain it in time", "[stats][unit]") {
    observer_params p;
    controller c;
    // 13 slots meet the target at 10/s; draining 300 jobs in 30 s needs (10 + 10) / mu slots:
    // 19.8 -> 5 workers even at the optimistic bounds (9.18/s, mu 1.07), 21.3 -> 6 at mu's
    // lower bound (0.94), which is what a scale-up is sized with.
    const auto l = steady(10.0, 300);
    const auto d = c.decide(l.s, l.l, 4, p, t0);
    CHECK(d.action == scaling_action::add);
    CHECK(d.needed_to_drain == 5);
    CHECK(d.needed == 6);
    CHECK(d.target == 6);
    CHECK(contains(d.reason, "backlog 300 jobs needs 5 workers to drain within 30s"));
}

TEST_CASE("bounds win over everything", "[stats][unit]") {
    observer_params p;
    p.min_workers = 2;
    p.max_workers = 8;
    controller c;
    const auto idle = steady(0.0);
    auto d = c.decide(idle.s, idle.l, 0, p, t0);
    CHECK(d.action == scaling_action::add);
    CHECK(d.target == 2);
    CHECK(contains(d.reason, "below min_workers"));
    // Even right after a change (cooldowns do not apply to bounds).
    d = c.decide(idle.s, idle.l, 12, p, t0 + 1);
    CHECK(d.action == scaling_action::remove);
    CHECK(d.target == 8);
    CHECK(contains(d.reason, "above max_workers"));
}

TEST_CASE("saturation: the target needs more than max_workers", "[stats][unit]") {
    observer_params p;  // max 20 workers of 4 slots
    controller c;
    const auto l = steady(200.0);  // needs 203 slots
    auto d = c.decide(l.s, l.l, 2, p, t0);
    CHECK(d.action == scaling_action::add);
    CHECK(d.target == 12);  // max_step_up 10
    CHECK(d.saturated);
    d = c.decide(l.s, l.l, 12, p, t0 + 5'000);
    CHECK(d.target == 20);
    d = c.decide(l.s, l.l, 20, p, t0 + 10'000);
    CHECK(d.action == scaling_action::none);
    CHECK(d.saturated);
    CHECK(contains(d.reason, "saturated"));
}

TEST_CASE("max_arrival_rate is a floor on the planned rate", "[stats][unit]") {
    observer_params p;
    p.max_arrival_rate = 20;
    controller c;
    const auto quiet = steady(1.0);
    auto d = c.decide(quiet.s, quiet.l, 1, p, t0);
    CHECK(d.action == scaling_action::add);
    CHECK(d.target == 6);
    CHECK(d.lambda_plan == 20.0);
    // It never scales below what 20/s needs.
    int workers = d.target;
    for (unix_ms t = 1'000; t <= 600'000; t += 1'000) {
        d = c.decide(quiet.s, quiet.l, workers, p, t0 + t);
        if (d.action != scaling_action::none) workers = d.target;
    }
    CHECK(workers == 6);
}

TEST_CASE("without any service time the controller only keeps a worker for the work", "[stats][unit]") {
    observer_params p;
    p.min_workers = 0;
    controller c;
    SECTION("work but no worker: start one") {
        const auto d = c.decide(obs(50, 10.0, 0), obs(50, 60.0, 0), 0, p, t0);
        CHECK_FALSE(d.model_ready);
        CHECK(d.action == scaling_action::add);
        CHECK(d.target == 1);
        CHECK(contains(d.reason, "no worker to measure service times"));
    }
    SECTION("workers and work: keep them") {
        const auto d = c.decide(obs(50, 10.0, 0), obs(50, 60.0, 0), 3, p, t0);
        CHECK(d.action == scaling_action::none);
        CHECK(contains(d.reason, "no service time measured yet"));
    }
    SECTION("the last service time seen is remembered") {
        c.decide(obs(50, 10.0), obs(50, 60.0), 3, p, t0);
        CHECK(c.last_service_rate() == Approx(1.0));
        const auto d = c.decide(obs(50, 10.0, 0), obs(50, 60.0, 0), 3, p, t0 + 1'000);
        CHECK(d.model_ready);
        CHECK(d.mu == Approx(1.0));
    }
}

TEST_CASE("idle with min_workers 0 scales to zero after the long window", "[stats][unit]") {
    observer_params p;
    p.min_workers = 0;
    controller c;
    const auto idle = steady(0.0);
    int workers = 3;
    for (unix_ms t = 0; t <= 200'000; t += 1'000) {
        const auto d = c.decide(idle.s, idle.l, workers, p, t0 + t);
        if (d.action != scaling_action::none) workers = d.target;
    }
    CHECK(workers == 0);
}

TEST_CASE("a clock that goes backwards is clamped", "[stats][unit]") {
    observer_params p;
    controller c;
    const auto l = steady(5.0);
    c.decide(l.s, l.l, 2, p, t0 + 10'000);
    const auto d = c.decide(l.s, l.l, 2, p, t0);
    CHECK(d.at == t0 + 10'000);
    c.reset();
    CHECK_FALSE(c.last_change());
    CHECK(c.last_service_rate() == 0.0);
}

TEST_CASE("the report carries measurements, prediction and decision as JSON", "[stats][unit]") {
    observer_params p;
    tracker t(tracker_config_for(p));
    controller c;
    // 100 jobs submitted 80 ms apart from t0 + 1 s, each waiting 50 ms and served 1 s:
    // all inside the short window (t0, t0 + 10 s] that a tick at t0 + 11 s looks at
    // (settle_ms = 1 s).
    for (int i = 0; i < 100; ++i) {
        const std::string id = "j" + std::to_string(i);
        const unix_ms sub = t0 + 1'000 + i * 80;
        t.add(job_finished{id, 1, sub, sub + 50, 900, sub + 1'050, faasd::jobs::job_state::succeeded, "w1"});
    }
    t.add(worker_heartbeat{"w1", 4, 1, t0 + 10'000, worker_state::up});
    t.add(lag_sample{t0 + 10'000, 3});
    const auto r = observe_tick(t, c, 1, p, t0 + 11'000);
    CHECK(r.short_window.arrivals == 100);
    CHECK(r.long_window.arrivals == 100);
    CHECK(r.decision.mu == Approx(1.0));
    CHECK(r.short_window.at == t0 + 10'000);
    CHECK(r.decision.at == t0 + 11'000);
    CHECK(r.decision.target == 4);  // 10/s at 1 s needs 13 slots

    const auto j = to_json(r);
    CHECK(j.at("v").as_int64() == 1);
    CHECK(j.at("at").as_int64() == t0 + 11'000);
    const auto& m = j.at("measured").as_object();
    CHECK(m.at("lambda").as_double() == Approx(10.0));
    CHECK(m.at("mu").as_double() == Approx(1.0));
    CHECK(m.at("W_s").as_double() == Approx(1.05));
    CHECK(m.at("Wq_s").as_double() == Approx(0.05));
    CHECK(m.at("queue_length").as_int64() == 2);  // lag 3 - busy 1
    CHECK(m.at("queue_source").as_string() == "lag");
    CHECK(m.at("workers").as_int64() == 1);
    CHECK(j.at("decision").at("live").as_int64() == 1);
    CHECK(j.at("decision").at("basis").as_int64() == 1);
    CHECK(j.at("decision").at("current").as_int64() == 1);
    CHECK(j.at("decision").at("action").as_string() == to_string(r.decision.action));
    CHECK(j.at("decision").at("reason").as_string() == r.decision.reason);
    CHECK(j.at("model").at("at_target").at("slots").as_int64() == r.decision.target * 4);
    CHECK(j.at("params").at("tick_ms").as_int64() == 1'000);
    CHECK(j.at("windows").at("short").at("little").at("relative_error").is_number());
    // Unknown numbers are null, never NaN or infinity in the JSON text.
    const auto text = encode(r);
    CHECK_FALSE(contains(text, "nan"));
    CHECK_FALSE(contains(text, "inf"));
    CHECK_FALSE(contains(text, "e99999"));
}
