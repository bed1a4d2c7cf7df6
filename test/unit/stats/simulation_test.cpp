// The observer core in the loop of a seeded discrete-event M/M/c simulation
// (faasd::stats::sim): the real tracker and controller decide, the simulator
// starts and drains workers. Promises checked (docs/observer.md, "Stability"):
//   - after a load step up, enough workers within two short windows;
//   - after a step down, no removal before a whole long window has passed;
//   - steady load: no change at all once settled;
//   - sinusoidal load: tracks it, with a bounded number of direction changes;
//   - the simulator agrees with Erlang C (otherwise nothing above means much).

#include <faasd/stats/queueing.hpp>
#include <faasd/stats/simulator.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>

using namespace faasd::stats;

namespace {

// Mean service 1 s, 4 slots per worker, default parameters (short window
// 10 s, long window 60 s, P(Wq > 1 s) <= 0.05).
sim::config base(std::uint64_t seed) {
    sim::config c;
    c.seed = seed;
    c.mean_service_s = 1.0;
    c.slots_per_worker = 4;
    c.params.slots_per_worker = 4;
    return c;
}

// Slots the target needs at a true rate (mu = 1).
int slots_needed(double lambda, const observer_params& p) {
    return *slots_for_target(lambda, 1.0, p.target(), 100'000);
}

}  // namespace

TEST_CASE("simulation: a load step up is met within two short windows", "[stats][unit]") {
    for (std::uint64_t seed : {1, 2, 3, 4})
        for (bool messy : {false, true}) {
            auto c = base(seed);
            const double step_at = 300;
            c.rate = sim::step_rate(5, 20, step_at);
            c.rate_max = 20;
            c.initial_workers = 2;
            c.duration_s = step_at + 240;
            if (messy) {  // events late by up to 2 s, 30% delivered twice; windows settle for 2 s
                c.max_delivery_delay_s = 2;
                c.duplicate_probability = 0.3;
                c.params.settle_ms = 2'000;
            }
            const auto r = sim::run(c);
            INFO("seed " << seed << ", delay " << c.max_delivery_delay_s);

            const int need = slots_needed(20, c.params);
            REQUIRE(need == 23);
            // The promise (docs/observer.md): two short windows plus settle_ms (plus worker start-up, 0 here).
            const double promise =
                step_at + static_cast<double>(2 * c.params.short_window_ms + c.params.settle_ms) / 1000.0;
            double reached = -1;
            for (const auto& s : r.samples)
                if (s.t_s >= step_at && s.workers * c.slots_per_worker >= need) {
                    reached = s.t_s;
                    break;
                }
            INFO("enough workers at t = " << reached);
            CHECK(reached >= step_at);
            CHECK(reached <= promise);

            // Before the step: settled at 5/s, no change in the last four minutes.
            for (const auto& ch : r.changes) CHECK((ch.t_s < 60 || ch.t_s >= step_at));
            // After reaching the size: no scale-down at all (the load did not drop).
            for (const auto& ch : r.changes)
                if (ch.t_s >= step_at) CHECK(ch.to > ch.from);
            // And the queue is gone a minute after the step: mean true queue over the
            // last three minutes below 5 jobs (at 24 slots the model says Lq = 2.1).
            double q = 0;
            int n = 0;
            for (const auto& s : r.samples)
                if (s.t_s >= step_at + 60) q += s.queue_length, ++n;
            CHECK(q / n < 5.0);
            if (messy) CHECK(r.tracker.duplicates > 1000);
            // Duplicates are not counted twice: a 30% inflated rate would ask for 8 workers.
            CHECK(r.max_workers_seen <= 7);
        }
}

TEST_CASE("simulation: after a step down, workers go only after the long window", "[stats][unit]") {
    for (std::uint64_t seed : {1, 2, 3, 4}) {
        auto c = base(seed);
        const double step_at = 300;
        c.rate = sim::step_rate(20, 5, step_at);
        c.rate_max = 20;
        c.initial_workers = 6;
        c.duration_s = step_at + 240;
        const auto r = sim::run(c);
        INFO("seed " << seed);

        const double long_s = static_cast<double>(c.params.long_window_ms) / 1000.0;
        double first_removal = -1;
        for (const auto& ch : r.changes) {
            if (ch.t_s < step_at) continue;
            CHECK(ch.to < ch.from);  // only removals after the step
            if (first_removal < 0) first_removal = ch.t_s;
        }
        INFO("first removal at t = " << first_removal);
        CHECK(first_removal >= step_at + long_s);
        // The short window forgets the old rate after 10 s; the long window of
        // evidence follows: removal starts within 70 s (+ a tick).
        CHECK(first_removal <= step_at + long_s + 11);
        // Settled at what 5/s needs: 7 slots at the point estimate (2 workers),
        // 3 workers at the upper confidence bound.
        const int final = sim::final_workers(r, c);
        CHECK(final * c.slots_per_worker >= slots_needed(5, c.params));
        CHECK(final <= 3);
    }
}

TEST_CASE("simulation: steady load makes no change once settled", "[stats][unit]") {
    for (std::uint64_t seed : {1, 2, 3}) {
        auto c = base(seed);
        c.rate = sim::constant_rate(10);
        c.rate_max = 10;
        c.initial_workers = 4;
        c.duration_s = 1800;  // 30 long windows
        c.stats_after_s = 120;
        const auto r = sim::run(c);
        INFO("seed " << seed);
        std::size_t late_changes = 0;
        for (const auto& ch : r.changes)
            if (ch.t_s >= 120) ++late_changes;
        CHECK(late_changes == 0);
        const int final = sim::final_workers(r, c);
        CHECK(final * c.slots_per_worker >= slots_needed(10, c.params));  // 13 slots
        // The service target holds: P(Wq > 1 s) <= 0.05.
        CHECK(r.jobs.fraction_waited_over_target <= c.params.epsilon);
        CHECK(r.jobs.completed > 15'000);
    }
}

TEST_CASE("simulation: a sinusoidal load is tracked without flapping", "[stats][unit]") {
    for (std::uint64_t seed : {1, 2, 3}) {
        auto c = base(seed);
        const double period = 600;  // 10 long windows
        c.rate = sim::sine_rate(10, 6, period);
        c.rate_max = 16;
        c.initial_workers = 4;
        c.duration_s = 5 * period;
        c.stats_after_s = 120;
        const auto r = sim::run(c);
        INFO("seed " << seed << ": " << r.changes.size() << " changes, " << r.direction_changes
                     << " direction changes");

        // Ideal tracking turns twice a period (up on the rise, down on the fall).
        CHECK(r.direction_changes <= 2 * 5 + 2);
        CHECK(r.direction_changes >= 2 * 5 - 2);  // it does track: it turns with the load

        // Capacity follows the rate: below the rate itself (rho > 1) for at most
        // 5% of the ticks (the scale-up deadband lags a rising load by a few
        // seconds), and sized for the crest vs the trough.
        int short_ticks = 0;
        double crest = 0, trough = 0;
        int n_crest = 0, n_trough = 0;
        for (const auto& s : r.samples) {
            if (s.t_s < 120) continue;
            if (s.workers * c.slots_per_worker < s.true_rate) ++short_ticks;
            const double phase = std::sin(2 * std::numbers::pi * s.t_s / period);
            if (phase > 0.9) crest += s.workers, ++n_crest;
            if (phase < -0.9) trough += s.workers, ++n_trough;
        }
        CHECK(short_ticks <= static_cast<int>(r.samples.size() / 20));
        crest /= n_crest;
        trough /= n_trough;
        INFO("mean workers at the crest " << crest << ", at the trough " << trough);
        CHECK(crest * c.slots_per_worker >= slots_needed(15, c.params));  // 16/s at the top
        CHECK(trough <= 3.5);  // 4/s at the bottom needs 7 slots (2 workers), 3 at the upper bounds
        CHECK(r.jobs.fraction_waited_over_target <= c.params.epsilon);
    }
}

TEST_CASE("simulation agrees with Erlang C at fixed size", "[stats][unit]") {
    // 8 slots, mean service 1 s, rho = 0.7: lambda = 5.6/s, Wq = C / (8 - 5.6).
    auto c = base(11);
    c.autoscale = false;
    c.initial_workers = 2;
    c.rate = sim::constant_rate(5.6);
    c.rate_max = 5.6;
    c.duration_s = 6'000;
    c.stats_after_s = 100;
    const auto r = sim::run(c);
    const double predicted = mmc_wq(8, 5.6, 1.0);
    INFO("simulated " << r.jobs.mean_wait_s << " s, Erlang C " << predicted << " s");
    CHECK(r.jobs.completed > 30'000);
    CHECK(r.jobs.mean_service_s == Approx(1.0).epsilon(0.03));
    CHECK(r.jobs.mean_wait_s == Approx(predicted).epsilon(0.20));
    CHECK(r.changes.empty());
    // The observer's own measurement (long window, ms resolution) sees the same system.
    const auto& last = r.samples.back();
    CHECK(last.mu == Approx(1.0).epsilon(0.15));
    CHECK(last.lambda_long == Approx(5.6).epsilon(0.15));
}

TEST_CASE("simulation is deterministic in its seed", "[stats][unit]") {
    auto c = base(7);
    c.rate = sim::sine_rate(10, 6, 300);
    c.rate_max = 16;
    c.duration_s = 600;
    c.max_delivery_delay_s = 1;
    c.duplicate_probability = 0.1;
    const auto a = sim::run(c);
    const auto b = sim::run(c);
    REQUIRE(a.samples.size() == b.samples.size());
    for (std::size_t i = 0; i < a.samples.size(); ++i) {
        CHECK(a.samples[i].workers == b.samples[i].workers);
        CHECK(a.samples[i].queue_length == b.samples[i].queue_length);
        CHECK(a.samples[i].lambda_short == b.samples[i].lambda_short);
    }
    CHECK(a.jobs.mean_wait_s == b.jobs.mean_wait_s);
    c.seed = 8;
    const auto other = sim::run(c);
    CHECK(other.jobs.submitted != a.jobs.submitted);
}
