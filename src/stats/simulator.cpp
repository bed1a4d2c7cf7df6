#include <faasd/stats/simulator.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <numbers>
#include <queue>
#include <random>

namespace faasd::stats::sim {

rate_fn constant_rate(double rate) {
    return [rate](double) { return rate; };
}

rate_fn step_rate(double before, double after, double at_s) {
    return [=](double t) { return t < at_s ? before : after; };
}

rate_fn sine_rate(double mean, double amplitude, double period_s) {
    return [=](double t) { return mean + amplitude * std::sin(2 * std::numbers::pi * t / period_s); };
}

namespace {

// Event times on the wire: an arbitrary fixed epoch plus simulated time.
constexpr unix_ms epoch_ms = 1'700'000'000'000;

unix_ms to_ms(double t_s) { return epoch_ms + static_cast<unix_ms>(std::llround(t_s * 1000.0)); }

// A random stream whose output is the same on every platform: mt19937_64 is
// specified bit for bit, and we do our own transforms.
class stream {
public:
    explicit stream(std::uint64_t seed) : g_(seed) {}
    double uniform() { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }  // [0, 1)
    double exponential(double rate) { return -std::log1p(-uniform()) / rate; }

private:
    std::mt19937_64 g_;
};

enum class ev_kind { arrival, completion, worker_ready, heartbeat, tick };

struct sim_event {
    double t;
    std::uint64_t seq;  // FIFO among equal times: determinism
    ev_kind kind;
    std::size_t arg;  // job index (completion) or worker index (worker_ready)
};
struct later {
    bool operator()(const sim_event& a, const sim_event& b) const { return a.t != b.t ? a.t > b.t : a.seq > b.seq; }
};

enum class wstate { starting, up, draining, gone };

struct worker {
    std::string name;
    wstate state = wstate::starting;
    int busy = 0;
};

struct job {
    double submitted = 0;
    double started = -1;
    double finished = -1;
    double service = 0;
    std::size_t worker = 0;
};

// An event on its way to the observer; the event itself waits in a slot of
// the inbox pool, so the heap moves only these small records.
struct delivery {
    double t;
    std::uint64_t seq;
    std::size_t slot;
};
struct later_delivery {
    bool operator()(const delivery& a, const delivery& b) const { return a.t != b.t ? a.t > b.t : a.seq > b.seq; }
};

class simulation {
public:
    explicit simulation(const config& cfg)
        : cfg_(cfg),
          arrivals_(cfg.seed * 4 + 1),
          services_(cfg.seed * 4 + 2),
          network_(cfg.seed * 4 + 3),
          tracker_(tracker_config_for(cfg.params, to_ms(0))) {}

    result run() {
        for (int i = 0; i < cfg_.initial_workers; ++i) add_worker(0, /*ready_now=*/true);
        schedule(arrivals_.exponential(cfg_.rate_max), ev_kind::arrival, 0);
        schedule(cfg_.heartbeat_period_s, ev_kind::heartbeat, 0);
        tick_s_ = static_cast<double>(cfg_.params.tick_ms) / 1000.0;
        schedule(tick_s_, ev_kind::tick, 0);

        while (!events_.empty()) {
            const auto e = events_.top();
            if (e.t > cfg_.duration_s) break;
            events_.pop();
            now_ = e.t;
            switch (e.kind) {
                case ev_kind::arrival:
                    on_arrival();
                    break;
                case ev_kind::completion:
                    on_completion(e.arg);
                    break;
                case ev_kind::worker_ready:
                    on_ready(e.arg);
                    break;
                case ev_kind::heartbeat:
                    on_heartbeat();
                    break;
                case ev_kind::tick:
                    on_tick();
                    break;
            }
        }
        finish_stats();
        res_.tracker = tracker_.counters();
        return std::move(res_);
    }

private:
    void schedule(double t, ev_kind k, std::size_t arg) { events_.push({t, seq_++, k, arg}); }

    // Sends an event to the observer, late and/or twice if so configured.
    void emit(event e, bool may_duplicate) {
        const int copies =
            may_duplicate && cfg_.duplicate_probability > 0 && network_.uniform() < cfg_.duplicate_probability ? 2 : 1;
        for (int i = 0; i < copies; ++i) {
            const double delay = cfg_.max_delivery_delay_s > 0 ? network_.uniform() * cfg_.max_delivery_delay_s : 0;
            std::size_t slot;
            if (free_slots_.empty()) {
                slot = pool_.size();
                pool_.push_back(e);
            } else {
                slot = free_slots_.back();
                free_slots_.pop_back();
                pool_[slot] = e;
            }
            inbox_.push({now_ + delay, seq_++, slot});
        }
    }

    std::string job_id(std::size_t j) const {
        char buf[32];
        std::snprintf(buf, sizeof buf, "J%09zu", j);
        return buf;
    }

    void add_worker(double startup, bool ready_now) {
        worker w;
        char name[32];  // snprintf, not "w" + to_string: GCC 12 warns falsely (-Wrestrict) on the latter at -O2
        std::snprintf(name, sizeof name, "w%zu", workers_.size());
        w.name = name;
        workers_.push_back(w);
        const auto idx = workers_.size() - 1;
        if (ready_now || startup <= 0) {
            workers_[idx].state = wstate::up;
        } else {
            schedule(now_ + startup, ev_kind::worker_ready, idx);
        }
    }

    int provisioned() const {
        int n = 0;
        for (const auto& w : workers_)
            if (w.state == wstate::starting || w.state == wstate::up) ++n;
        return n;
    }
    int ready() const {
        int n = 0;
        for (const auto& w : workers_)
            if (w.state == wstate::up) ++n;
        return n;
    }
    int busy() const {
        int n = 0;
        for (const auto& w : workers_) n += w.busy;
        return n;
    }

    void on_arrival() {
        // Thinning: candidates at rate_max, kept with probability rate(t)/rate_max.
        const double u = arrivals_.uniform();
        const double r = std::clamp(cfg_.rate(now_), 0.0, cfg_.rate_max);
        if (u * cfg_.rate_max < r) {
            job j;
            j.submitted = now_;
            j.service = services_.exponential(1.0 / cfg_.mean_service_s);
            jobs_.push_back(j);
            const auto idx = jobs_.size() - 1;
            queue_.push_back(idx);
            emit(job_submitted{job_id(idx), 1, to_ms(now_)}, true);
            dispatch();
        }
        schedule(now_ + arrivals_.exponential(cfg_.rate_max), ev_kind::arrival, 0);
    }

    void dispatch() {
        while (!queue_.empty()) {
            std::size_t chosen = workers_.size();
            for (std::size_t i = 0; i < workers_.size(); ++i) {
                if (workers_[i].state == wstate::up && workers_[i].busy < cfg_.slots_per_worker) {
                    chosen = i;
                    break;
                }
            }
            if (chosen == workers_.size()) return;
            const auto j = queue_.front();
            queue_.pop_front();
            auto& jb = jobs_[j];
            jb.started = now_;
            jb.worker = chosen;
            ++workers_[chosen].busy;
            emit(job_started{job_id(j), 1, to_ms(now_), workers_[chosen].name}, true);
            schedule(now_ + jb.service, ev_kind::completion, j);
        }
    }

    void on_completion(std::size_t j) {
        auto& jb = jobs_[j];
        jb.finished = now_;
        auto& w = workers_[jb.worker];
        --w.busy;
        job_finished f;
        f.id = job_id(j);
        f.attempt = 1;
        f.submitted_at = to_ms(jb.submitted);
        f.started_at = to_ms(jb.started);
        f.finished_at = to_ms(now_);
        f.run_ms = f.finished_at - f.started_at;
        f.state = jobs::job_state::succeeded;
        f.worker = w.name;
        emit(f, true);
        if (w.state == wstate::draining && w.busy == 0) retire(jb.worker);
        dispatch();
    }

    void retire(std::size_t i) {
        workers_[i].state = wstate::gone;
        emit(worker_heartbeat{workers_[i].name, cfg_.slots_per_worker, 0, to_ms(now_), worker_state::down}, false);
    }

    void on_ready(std::size_t i) {
        if (workers_[i].state != wstate::starting) return;  // cancelled while starting
        workers_[i].state = wstate::up;
        dispatch();
    }

    void on_heartbeat() {
        for (const auto& w : workers_) {
            if (w.state != wstate::up && w.state != wstate::draining) continue;
            emit(worker_heartbeat{w.name, cfg_.slots_per_worker, w.busy, to_ms(now_),
                                  w.state == wstate::up ? worker_state::up : worker_state::draining},
                 false);
        }
        schedule(now_ + cfg_.heartbeat_period_s, ev_kind::heartbeat, 0);
    }

    // Applies a target: new workers start; surplus ones are cancelled while
    // starting (newest first), then drained (least busy first, newest on ties).
    void actuate(int target) {
        int have = provisioned();
        while (have < target) {
            add_worker(cfg_.worker_startup_s, false);
            ++have;
        }
        for (std::size_t i = workers_.size(); i-- > 0 && have > target;) {
            if (workers_[i].state == wstate::starting) {
                workers_[i].state = wstate::gone;
                --have;
            }
        }
        while (have > target) {
            std::size_t pick = workers_.size();
            for (std::size_t i = workers_.size(); i-- > 0;) {
                if (workers_[i].state != wstate::up) continue;
                if (pick == workers_.size() || workers_[i].busy < workers_[pick].busy) pick = i;
            }
            if (pick == workers_.size()) break;
            workers_[pick].state = wstate::draining;
            if (workers_[pick].busy == 0) retire(pick);
            --have;
        }
    }

    void on_tick() {
        const unix_ms now_ms = to_ms(now_);
        while (!inbox_.empty() && inbox_.top().t <= now_) {
            const auto slot = inbox_.top().slot;
            inbox_.pop();
            tracker_.add(pool_[slot]);
            free_slots_.push_back(slot);
        }
        // Like the role's consumer: everything delivered so far has been read.
        tracker_.mark_caught_up(now_ms);
        // The role samples the consumer lag itself: waiting plus in-flight
        // (at-least-once offsets are committed after the result).
        tracker_.add(lag_sample{now_ms, static_cast<std::int64_t>(queue_.size()) + busy()});

        const int before = provisioned();
        auto rep = observe_tick(tracker_, controller_, before, cfg_.params, now_ms);
        const auto& d = rep.decision;
        if (cfg_.autoscale && d.action != scaling_action::none) {
            actuate(d.target);
            res_.changes.push_back({now_, before, d.target, d.reason});
            if (last_action_ != scaling_action::none && last_action_ != d.action) ++res_.direction_changes;
            last_action_ = d.action;
        }

        sample s;
        s.t_s = now_;
        s.true_rate = cfg_.rate(now_);
        s.lambda_short = rep.short_window.arrival_rate;
        s.lambda_long = rep.long_window.arrival_rate;
        s.mu = d.mu;
        s.workers = provisioned();
        s.ready_workers = ready();
        s.busy = busy();
        s.queue_length = static_cast<int>(queue_.size());
        s.observed_queue = rep.short_window.queue_length;
        s.mean_response_s = rep.short_window.response.mean;
        s.mean_wait_s = rep.short_window.wait.mean;
        s.wait_samples = rep.short_window.wait.count;
        s.p95_wait_s = rep.short_window.wait.p95;
        s.predicted_wait_s = d.at_current.mean_wait_s;
        s.action = cfg_.autoscale ? d.action : scaling_action::none;
        s.target = cfg_.autoscale ? d.target : before;
        res_.samples.push_back(s);
        res_.max_workers_seen = std::max(res_.max_workers_seen, s.workers);
        if (cfg_.record_reports) res_.reports.push_back(std::move(rep));

        schedule(now_ + tick_s_, ev_kind::tick, 0);
    }

    void finish_stats() {
        std::vector<double> waits;
        double sum_w = 0, sum_r = 0, sum_s = 0;
        std::size_t over = 0, waited = 0;
        const double target = static_cast<double>(cfg_.params.target_wait_ms) / 1000.0;
        for (const auto& j : jobs_) {
            if (j.submitted < cfg_.stats_after_s) continue;
            ++res_.jobs.submitted;
            if (j.finished < 0) continue;
            ++res_.jobs.completed;
            const double w = j.started - j.submitted;
            waits.push_back(w);
            sum_w += w;
            sum_r += j.finished - j.submitted;
            sum_s += j.finished - j.started;
            if (w > target) ++over;
            if (w > 0) ++waited;
        }
        const auto n = static_cast<double>(waits.size());
        res_.max_workers_seen = std::max(res_.max_workers_seen, cfg_.initial_workers);
        if (waits.empty()) return;
        res_.jobs.mean_wait_s = sum_w / n;
        res_.jobs.mean_response_s = sum_r / n;
        res_.jobs.mean_service_s = sum_s / n;
        res_.jobs.fraction_waited_over_target = static_cast<double>(over) / n;
        res_.jobs.fraction_waited = static_cast<double>(waited) / n;
        std::sort(waits.begin(), waits.end());
        auto pct = [&](double p) {
            auto rank = static_cast<std::size_t>(std::ceil(p * n));
            return waits[std::clamp<std::size_t>(rank, 1, waits.size()) - 1];
        };
        res_.jobs.p95_wait_s = pct(0.95);
        res_.jobs.p99_wait_s = pct(0.99);
    }

    const config& cfg_;
    stream arrivals_;
    stream services_;
    stream network_;
    tracker tracker_;
    controller controller_;
    std::priority_queue<sim_event, std::vector<sim_event>, later> events_;
    std::priority_queue<delivery, std::vector<delivery>, later_delivery> inbox_;
    std::vector<event> pool_;
    std::vector<std::size_t> free_slots_;
    std::uint64_t seq_ = 0;
    double now_ = 0;
    double tick_s_ = 1;
    std::vector<worker> workers_;
    std::vector<job> jobs_;
    std::deque<std::size_t> queue_;
    scaling_action last_action_ = scaling_action::none;
    result res_;
};

}  // namespace

result run(const config& cfg) { return simulation(cfg).run(); }

int final_workers(const result& r, const config& cfg) {
    return r.samples.empty() ? cfg.initial_workers : r.samples.back().workers;
}

}  // namespace faasd::stats::sim
