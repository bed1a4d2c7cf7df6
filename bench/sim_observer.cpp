// bench/sim_observer: the observer core in a seeded M/M/c simulation.
//
//   sim_observer [OUT_DIR]      (default: build/bench-results/observer)
//
// Writes CSV time series for a load step (up, then down) and a sinusoidal
// load, and the model-validation table; prints the numbers quoted in
// docs/observer.md. bench/plots/plot_observer.sh turns the CSVs into the
// figures under docs/figures/. Deterministic: same binary, same output.

#include <faasd/stats/queueing.hpp>
#include <faasd/stats/report.hpp>
#include <faasd/stats/simulator.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

using namespace faasd::stats;

namespace {

sim::config base(std::uint64_t seed) {
    sim::config c;
    c.seed = seed;
    c.mean_service_s = 1.0;
    c.slots_per_worker = 4;
    c.params.slots_per_worker = 4;
    return c;
}

void write_series(const std::filesystem::path& file, const sim::result& r, int slots_per_worker) {
    std::ofstream out(file);
    out << "t_s,true_rate,lambda_short,lambda_long,mu,workers,ready_workers,slots,busy,queue,observed_queue,"
           "mean_response_s,mean_wait_s,p95_wait_s,predicted_wait_s,action,target\n";
    for (const auto& s : r.samples) {
        out << s.t_s << ',' << s.true_rate << ',' << s.lambda_short << ',' << s.lambda_long << ',' << s.mu << ','
            << s.workers << ',' << s.ready_workers << ',' << s.workers * slots_per_worker << ',' << s.busy << ','
            << s.queue_length << ',' << s.observed_queue << ',' << s.mean_response_s << ',' << s.mean_wait_s << ','
            << s.p95_wait_s << ',' << (std::isfinite(s.predicted_wait_s) ? s.predicted_wait_s : -1) << ','
            << to_string(s.action) << ',' << s.target << '\n';
    }
}

void print_changes(const sim::result& r) {
    for (const auto& ch : r.changes)
        std::printf("    t=%6.0fs %2d -> %2d  %s\n", ch.t_s, ch.from, ch.to, ch.reason.c_str());
}

double mean(const std::vector<double>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
double sd(const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size() - 1));
}

}  // namespace

int main(int argc, char** argv) {
    const std::filesystem::path out_dir = argc > 1 ? argv[1] : "build/bench-results/observer";
    std::filesystem::create_directories(out_dir);
    const observer_params defaults;

    std::printf("# sim_observer: mean service 1 s (exponential), 4 slots per worker, default parameters\n");
    std::printf(
        "# tick %llds, short window %llds, long window %llds, settle %llds, target P(Wq > %llds) <= %g\n\n",
        static_cast<long long>(defaults.tick_ms / 1000), static_cast<long long>(defaults.short_window_ms / 1000),
        static_cast<long long>(defaults.long_window_ms / 1000), static_cast<long long>(defaults.settle_ms / 1000),
        static_cast<long long>(defaults.target_wait_ms / 1000), defaults.epsilon);

    // 1. Steps: 5/s, 20/s from 300 s, 5/s again from 900 s.
    {
        auto c = base(1);
        c.rate = [](double t) { return t < 300 || t >= 900 ? 5.0 : 20.0; };
        c.rate_max = 20;
        c.initial_workers = 2;
        c.duration_s = 1500;
        const auto r = sim::run(c);
        write_series(out_dir / "step.csv", r, c.slots_per_worker);
        std::printf("## step 5/s -> 20/s at 300 s -> 5/s at 900 s (seed 1)\n");
        print_changes(r);
        std::printf("  jobs %zu, mean wait %.3f s, p99 wait %.3f s, P(wait > 1 s) %.4f\n\n", r.jobs.completed,
                    r.jobs.mean_wait_s, r.jobs.p99_wait_s, r.jobs.fraction_waited_over_target);
    }

    // 2. Reaction times over many seeds.
    {
        const int need_up = *slots_for_target(20, 1.0, defaults.target(), 100'000);
        std::vector<double> up, down;
        int down_before_long = 0;
        for (std::uint64_t seed = 1; seed <= 50; ++seed) {
            auto c = base(seed);
            c.rate = sim::step_rate(5, 20, 300);
            c.rate_max = 20;
            c.initial_workers = 2;
            c.duration_s = 420;
            auto r = sim::run(c);
            for (const auto& s : r.samples)
                if (s.t_s >= 300 && s.workers * c.slots_per_worker >= need_up) {
                    up.push_back(s.t_s - 300);
                    break;
                }
            c.rate = sim::step_rate(20, 5, 300);
            c.initial_workers = 6;
            c.duration_s = 480;
            r = sim::run(c);
            for (const auto& ch : r.changes)
                if (ch.t_s >= 300 && ch.to < ch.from) {
                    down.push_back(ch.t_s - 300);
                    if (ch.t_s - 300 < 60) ++down_before_long;
                    break;
                }
        }
        std::sort(up.begin(), up.end());
        std::sort(down.begin(), down.end());
        std::printf("## reaction over 50 seeds\n");
        std::printf(
            "  step up 5 -> 20/s: enough workers (%d slots) after median %.0f s, 90th pct %.0f s, max %.0f s "
            "(promise: 2 short windows + settle = 21 s); %zu/50 reached\n",
            need_up, up[up.size() / 2], up[up.size() * 9 / 10], up.back(), up.size());
        std::printf(
            "  step down 20 -> 5/s: first removal after median %.0f s, min %.0f s, max %.0f s "
            "(never before the 60 s long window: %d violations)\n\n",
            down[down.size() / 2], down.front(), down.back(), down_before_long);
    }

    // 3. Sinusoidal load: 10 + 6 sin(2 pi t / 600).
    {
        auto c = base(1);
        c.rate = sim::sine_rate(10, 6, 600);
        c.rate_max = 16;
        c.initial_workers = 4;
        c.duration_s = 3600;
        c.stats_after_s = 120;
        const auto r = sim::run(c);
        write_series(out_dir / "sine.csv", r, c.slots_per_worker);
        std::printf("## sine 10 + 6 sin(2 pi t / 600 s), 1 h (seed 1)\n");
        std::printf(
            "  %zu changes, %d direction changes (ideal: 2 per period = 12), workers %d..%d\n", r.changes.size(),
            r.direction_changes,
            std::min_element(r.samples.begin(), r.samples.end(), [](auto& a, auto& b) { return a.workers < b.workers; })
                ->workers,
            r.max_workers_seen);
        std::printf("  jobs %zu, mean wait %.3f s, p99 wait %.3f s, P(wait > 1 s) %.4f\n", r.jobs.completed,
                    r.jobs.mean_wait_s, r.jobs.p99_wait_s, r.jobs.fraction_waited_over_target);
        std::vector<double> dirs, over;
        for (std::uint64_t seed = 1; seed <= 10; ++seed) {
            c.seed = seed;
            const auto rs = sim::run(c);
            dirs.push_back(rs.direction_changes);
            over.push_back(rs.jobs.fraction_waited_over_target);
        }
        std::printf("  10 seeds: direction changes %.0f..%.0f, P(wait > 1 s) mean %.4f max %.4f\n\n",
                    *std::min_element(dirs.begin(), dirs.end()), *std::max_element(dirs.begin(), dirs.end()),
                    mean(over), *std::max_element(over.begin(), over.end()));
    }

    // 4. Steady load: changes after settling (false alarms), 10 simulated hours per rate.
    {
        std::printf("## steady load, 10 seeds x 1 h each, changes after the first 2 minutes\n");
        for (double rate : {10.0, 20.0}) {
            int changes = 0;
            for (std::uint64_t seed = 1; seed <= 10; ++seed) {
                auto c = base(seed);
                c.rate = sim::constant_rate(rate);
                c.rate_max = rate;
                c.initial_workers = rate == 10 ? 4 : 6;
                c.duration_s = 3600;
                const auto r = sim::run(c);
                for (const auto& ch : r.changes)
                    if (ch.t_s >= 120) {
                        ++changes;
                        std::printf("    seed %llu t=%6.0fs %d -> %d  %s\n", static_cast<unsigned long long>(seed),
                                    ch.t_s, ch.from, ch.to, ch.reason.c_str());
                    }
            }
            std::printf("  %4.0f/s: %d changes in 10 h\n", rate, changes);
        }
        std::printf("\n");
    }

    // 5. Model validation: fixed size, mean queue wait against Erlang C.
    {
        std::ofstream csv(out_dir / "prediction.csv");
        csv << "rho,slots,lambda,predicted_wq_s,simulated_wq_s,sd_across_seeds_s,error,observer_wq_s,observer_error,"
               "predicted_p_wait,simulated_p_wait,predicted_p_over_1s,simulated_p_over_1s,jobs\n";
        std::printf("## M/M/c model vs simulation: 8 slots (2 workers x 4), mean service 1 s, 5 seeds x 50000 s\n");
        std::printf(
            "  rho   lambda  Erlang-C Wq  simulated Wq (sd)    error   observer Wq   error   C pred/sim       "
            "P(Wq>1s) pred/sim\n");
        for (double rho : {0.5, 0.7, 0.8}) {
            const int slots = 8;
            const double lambda = rho * slots;
            std::vector<double> wq, pw, po, measured;
            std::size_t jobs = 0;
            for (std::uint64_t seed = 1; seed <= 5; ++seed) {
                auto c = base(100 + seed);
                c.autoscale = false;
                c.initial_workers = 2;
                c.rate = sim::constant_rate(lambda);
                c.rate_max = lambda;
                c.duration_s = 50'000;
                c.stats_after_s = 200;
                const auto r = sim::run(c);
                wq.push_back(r.jobs.mean_wait_s);
                // What the observer itself measured: its short-window mean waits, averaged over
                // the ticks weighted by their sample counts (event times in whole milliseconds,
                // as on the wire).
                double sum = 0, n = 0;
                for (const auto& s : r.samples)
                    if (s.t_s >= c.stats_after_s) {
                        sum += s.mean_wait_s * static_cast<double>(s.wait_samples);
                        n += static_cast<double>(s.wait_samples);
                    }
                measured.push_back(sum / n);
                pw.push_back(r.jobs.fraction_waited);
                po.push_back(r.jobs.fraction_waited_over_target);
                jobs += r.jobs.completed;
            }
            const double pred = mmc_wq(slots, lambda, 1.0);
            const double err = (mean(wq) - pred) / pred;
            const double obs_err = (mean(measured) - pred) / pred;
            std::printf(
                "  %.1f  %5.2f/s   %8.4f s   %8.4f s (%.4f)  %+6.1f%%   %8.4f s  %+6.1f%%   %.3f / %.3f    "
                "%.4f / %.4f\n",
                rho, lambda, pred, mean(wq), sd(wq), 100 * err, mean(measured), 100 * obs_err,
                erlang_c(slots, lambda, 1.0), mean(pw), p_wait_exceeds(slots, lambda, 1.0, 1.0), mean(po));
            csv << rho << ',' << slots << ',' << lambda << ',' << pred << ',' << mean(wq) << ',' << sd(wq) << ',' << err
                << ',' << mean(measured) << ',' << obs_err << ',' << erlang_c(slots, lambda, 1.0) << ',' << mean(pw)
                << ',' << p_wait_exceeds(slots, lambda, 1.0, 1.0) << ',' << mean(po) << ',' << jobs << '\n';
        }
        std::printf("\n");
    }
    // 6. The cost of one tick (the role's per-tick CPU): a tracker holding a
    //    busy cluster (100 jobs/s, 50 workers), each tick ingesting a second of
    //    events (100 submissions, 100 results, 50 heartbeats, a lag sample)
    //    and running observe_tick (evict, two summaries, decide).
    {
        std::printf("## cost of a tick: 100 jobs/s, 50 workers, default windows (10 s / 60 s)\n");
        observer_params p;
        p.max_workers = 100;
        tracker t(tracker_config_for(p));
        controller ctl;
        const unix_ms t0 = 1'700'000'000'000;
        std::uint64_t seq = 0;
        auto second = [&](unix_ms start) {
            for (int i = 0; i < 100; ++i) {
                const unix_ms sub = start + i * 10;
                const auto id = "j" + std::to_string(++seq);
                t.add(job_submitted{id, 1, sub});
                job_finished f;
                f.id = id;
                f.submitted_at = sub;
                f.started_at = sub + 50;
                f.finished_at = sub + 1050;
                f.run_ms = 1000;
                f.worker = "w" + std::to_string(i % 50);
                t.add(f);
            }
            for (int w = 0; w < 50; ++w) t.add(worker_heartbeat{"w" + std::to_string(w), 4, 2, start + 999});
            t.add(lag_sample{start + 999, 100});
        };
        for (int s = 0; s < 120; ++s) second(t0 + s * 1000);  // fill two long windows
        const int ticks = 600;
        int workers = 30;
        const auto c0 = std::chrono::steady_clock::now();
        for (int k = 0; k < ticks; ++k) {
            const unix_ms start = t0 + (120 + k) * 1000;
            second(start);
            const auto r = observe_tick(t, ctl, workers, p, start + 1000);
            workers = r.decision.target;
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
        std::printf("  %d ticks in %.3f s: %.2f ms per tick (ingest + decide), %.0f ticks/s on one core; "
                    "%zu attempts held\n\n",
                    ticks, secs, 1000 * secs / ticks, ticks / secs, t.counters().records);
    }
    std::printf("CSV written to %s\n", out_dir.string().c_str());
    return 0;
}
