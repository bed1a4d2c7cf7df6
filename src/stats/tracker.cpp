#include <faasd/stats/window.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <tuple>

namespace faasd::stats {
namespace json = boost::json;

namespace {

constexpr std::size_t max_lag_samples = 4096;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

double seconds(std::int64_t ms) noexcept { return static_cast<double>(ms) / 1000.0; }

// Length of [a, b) ∩ (lo, hi] in ms (0 if empty). Half-open either way: the
// measure is the same.
std::int64_t overlap(unix_ms a, unix_ms b, unix_ms lo, unix_ms hi) noexcept {
    const unix_ms s = std::max(a, lo);
    const unix_ms e = std::min(b, hi);
    return e > s ? e - s : 0;
}

// Nearest-rank percentile: puts the ceil(p n)-th smallest value of v in place
// and returns its index. Elements before `from` must already be the smallest
// and in place (a previous call with a lower p), so ascending calls each work
// on what is left: linear time overall, the sample is never fully sorted.
std::size_t select_rank(std::vector<double>& v, std::size_t from, double p) noexcept {
    const auto n = v.size();
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(n)));
    const std::size_t idx = std::clamp<std::size_t>(rank, 1, n) - 1;
    if (idx >= from)
        std::nth_element(v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(idx),
                         v.end());
    return idx;
}

distribution summarize_sample(std::vector<double>& v) {
    distribution d;
    d.count = v.size();
    if (v.empty()) return d;
    double sum = 0;
    double max = v.front();
    for (double x : v) {
        sum += x;
        max = std::max(max, x);
    }
    d.mean = sum / static_cast<double>(v.size());
    if (v.size() > 1) {
        double sq = 0;
        for (double x : v) sq += (x - d.mean) * (x - d.mean);
        d.stddev = std::sqrt(sq / static_cast<double>(v.size() - 1));
    }
    const auto i50 = select_rank(v, 0, 0.50);
    d.p50 = v[i50];
    const auto i95 = select_rank(v, i50 + 1, 0.95);
    d.p95 = v[i95];
    d.p99 = v[select_rank(v, i95 + 1, 0.99)];
    d.max = max;
    return d;
}

bool in_window(unix_ms t, unix_ms lo, unix_ms hi) noexcept { return t > lo && t <= hi; }

}  // namespace

const char* to_string(queue_source s) noexcept { return s == queue_source::lag ? "lag" : "events"; }

tracker_config tracker_config_for(const observer_params& p, unix_ms known_since) {
    tracker_config c;
    c.retention_ms = 2 * p.long_window_ms;
    c.stale_after_ms = p.stale_after_ms;
    c.pending_horizon_ms = std::max<std::int64_t>(c.pending_horizon_ms, c.retention_ms);
    c.known_since = known_since;
    return c;
}

std::size_t tracker::key_hash::operator()(const key& k) const noexcept {
    return std::hash<std::string>{}(k.id) ^ (static_cast<std::size_t>(k.attempt) * 0x9e3779b97f4a7c15ULL);
}

unix_ms tracker::record::latest() const noexcept { return std::max({submitted, started, finished}); }

tracker::tracker(tracker_config cfg) : cfg_(cfg) {}

void tracker::configure(const tracker_config& cfg) { cfg_ = cfg; }

bool tracker::is_late(unix_ms t) const noexcept { return t < horizon_; }

std::optional<ingest_result> tracker::refuse(const std::string& subject, unix_ms at) {
    ++counters_.events;
    if (subject.empty() || at <= 0) return ingest_result::invalid;
    if (is_late(at)) {
        ++counters_.late;
        return ingest_result::late;
    }
    return std::nullopt;
}

tracker::record* tracker::find_or_insert(const std::string& id, int attempt, bool& inserted) {
    auto [it, fresh] = records_.try_emplace(key{id, attempt});
    inserted = fresh;
    return &it->second;
}

ingest_result tracker::add(const event& e) {
    return std::visit([this](const auto& v) { return add(v); }, e);
}

ingest_result tracker::add(const job_submitted& e) {
    if (auto refused = refuse(e.id, e.at)) return *refused;
    bool inserted = false;
    auto* r = find_or_insert(e.id, e.attempt, inserted);
    if (r->submitted != 0) {
        ++counters_.duplicates;
        return ingest_result::duplicate;
    }
    r->submitted = e.at;
    r->not_before = std::max<unix_ms>(e.not_before, 0);
    if (inserted) enforce_cap();
    return ingest_result::added;
}

ingest_result tracker::add(const job_started& e) {
    if (auto refused = refuse(e.id, e.at)) return *refused;
    bool inserted = false;
    auto* r = find_or_insert(e.id, e.attempt, inserted);
    if (r->started != 0 || r->finished_seen) {
        ++counters_.duplicates;
        return ingest_result::duplicate;
    }
    r->started = e.at;
    if (inserted) enforce_cap();
    return ingest_result::added;
}

ingest_result tracker::add(const job_finished& e) {
    if (auto refused = refuse(e.id, e.finished_at)) return *refused;
    bool inserted = false;
    auto* r = find_or_insert(e.id, e.attempt, inserted);
    if (r->finished_seen) {
        ++counters_.duplicates;
        return ingest_result::duplicate;
    }
    // The result is authoritative for the times it carries.
    r->finished_seen = true;
    r->finished = e.finished_at;
    if (e.submitted_at > 0) r->submitted = e.submitted_at;
    if (e.started_at > 0) r->started = e.started_at;
    r->run_ms = std::max<std::int64_t>(e.run_ms, 0);
    if (inserted) enforce_cap();
    return ingest_result::added;
}

ingest_result tracker::add(const worker_heartbeat& e) {
    if (auto refused = refuse(e.worker, e.at)) return *refused;
    heartbeats_seen_ = true;
    auto [it, fresh] = workers_.try_emplace(e.worker, e);
    if (!fresh) {
        if (it->second.at >= e.at) {  // older or same news
            ++counters_.duplicates;
            return ingest_result::duplicate;
        }
        it->second = e;
    } else if (workers_.size() > cfg_.max_workers) {
        // Forget the worker heard from least recently (ties: smallest name).
        auto oldest = workers_.begin();
        for (auto w = workers_.begin(); w != workers_.end(); ++w)
            if (std::tie(w->second.at, w->first) < std::tie(oldest->second.at, oldest->first)) oldest = w;
        workers_.erase(oldest);
    }
    return ingest_result::added;
}

ingest_result tracker::add(const lag_sample& e) {
    ++counters_.events;
    if (e.at <= 0 || e.lag < 0) return ingest_result::invalid;
    if (is_late(e.at)) {
        ++counters_.late;
        return ingest_result::late;
    }
    // Keep sorted by time; samples almost always arrive in order.
    auto pos =
        std::upper_bound(lags_.begin(), lags_.end(), e.at, [](unix_ms t, const lag_sample& s) { return t < s.at; });
    if (pos != lags_.begin() && std::prev(pos)->at == e.at) {
        ++counters_.duplicates;
        return ingest_result::duplicate;
    }
    lags_.insert(pos, e);
    if (lags_.size() > max_lag_samples) lags_.pop_front();
    return ingest_result::added;
}

void tracker::mark_caught_up(unix_ms at) noexcept { caught_up_at_ = std::max(caught_up_at_, at); }

void tracker::enforce_cap() {
    if (records_.size() <= cfg_.max_records) return;
    // Drop the oldest tenth (by latest known time; ties by id) in one pass, so
    // the cost is amortised over many insertions.
    const std::size_t keep = cfg_.max_records - cfg_.max_records / 10;
    const std::size_t drop = records_.size() - keep;
    std::vector<std::tuple<unix_ms, const key*>> order;
    order.reserve(records_.size());
    for (const auto& [k, r] : records_) order.emplace_back(r.latest(), &k);
    auto less = [](const auto& a, const auto& b) {
        const auto& ka = *std::get<1>(a);
        const auto& kb = *std::get<1>(b);
        return std::tie(std::get<0>(a), ka.id, ka.attempt) < std::tie(std::get<0>(b), kb.id, kb.attempt);
    };
    std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(drop - 1), order.end(), less);
    std::vector<key> victims;
    victims.reserve(drop);
    for (std::size_t i = 0; i < drop; ++i) victims.push_back(*std::get<1>(order[i]));
    for (const auto& k : victims) records_.erase(k);
    counters_.overflow += drop;
}

void tracker::evict(unix_ms now) {
    const unix_ms h = now - cfg_.retention_ms;
    horizon_ = std::max(horizon_, h);
    const unix_ms pending_h = now - std::max(cfg_.pending_horizon_ms, cfg_.retention_ms);
    for (auto it = records_.begin(); it != records_.end();) {
        const auto& r = it->second;
        const bool done = r.finished_seen;
        if ((done && r.latest() < horizon_) || (!done && r.latest() < pending_h)) {
            it = records_.erase(it);
            ++counters_.evicted;
        } else {
            ++it;
        }
    }
    const unix_ms sample_h = now - std::max(cfg_.stale_after_ms, cfg_.retention_ms);
    for (auto it = workers_.begin(); it != workers_.end();) {
        if (it->second.at < sample_h)
            it = workers_.erase(it);
        else
            ++it;
    }
    // Keep the newest lag sample even when old: summarize() decides staleness.
    while (lags_.size() > 1 && lags_.front().at < sample_h) lags_.pop_front();
}

tracker_counters tracker::counters() const noexcept {
    auto c = counters_;
    c.records = records_.size();
    c.workers = workers_.size();
    return c;
}

observation tracker::summarize(unix_ms now, std::int64_t window_ms) const {
    observation o;
    o.at = now;
    o.window_ms = window_ms;
    const unix_ms lo = std::min(now, std::max(now - std::max<std::int64_t>(window_ms, 0), cfg_.known_since));
    const std::int64_t span_ms = now - lo;
    o.span_s = seconds(span_ms);

    // Newest lag sample at or before now, unless stale; the queue's upper
    // bound adds what was submitted after it was taken.
    const lag_sample* lag = nullptr;
    {
        auto pos = std::upper_bound(lags_.begin(), lags_.end(), now,
                                    [](unix_ms t, const lag_sample& s) { return t < s.at; });
        if (pos != lags_.begin() && now - std::prev(pos)->at <= cfg_.stale_after_ms) lag = &*std::prev(pos);
    }
    std::int64_t submitted_since_lag = 0;

    std::vector<double> response, wait, service;
    double run_sum = 0;
    std::int64_t area_system = 0, area_queue = 0, area_busy = 0;

    for (const auto& [k, r] : records_) {
        // Done before the window opened: contributes to nothing below.
        if (r.finished_seen && r.finished <= lo) continue;
        const bool finished = r.finished_seen && r.finished <= now;
        const bool started = r.started != 0 && r.started <= now;
        // The attempt left the queue when it started, or when it finished without running.
        const unix_ms left_queue = r.started != 0 ? r.started : (r.finished_seen ? r.finished : 0);

        // Waiting for a slot starts when the attempt became eligible (a retry: after its backoff).
        const unix_ms eligible = r.eligible();
        if (r.submitted != 0 && in_window(r.submitted, lo, now)) ++o.arrivals;
        if (lag != nullptr && r.submitted != 0 && in_window(r.submitted, lag->at, now)) ++submitted_since_lag;
        if (r.started != 0 && in_window(r.started, lo, now)) {
            ++o.starts;
            if (r.submitted != 0) wait.push_back(seconds(std::max<std::int64_t>(r.started - eligible, 0)));
        }
        if (r.finished_seen && in_window(r.finished, lo, now)) {
            ++o.completions;
            if (r.submitted != 0) response.push_back(seconds(std::max<std::int64_t>(r.finished - r.submitted, 0)));
            if (r.started != 0) {
                service.push_back(seconds(std::max<std::int64_t>(r.finished - r.started, 0)));
                run_sum += seconds(r.run_ms);
            }
        }

        // State at `now`: queued = eligible, not yet out of the queue.
        if (r.submitted != 0 && eligible <= now && (left_queue == 0 || left_queue > now)) ++o.queued_from_events;

        // Areas for the time averages (Little's law, measured utilisation).
        const unix_ms entered = r.submitted != 0 ? r.submitted : r.started;
        if (entered != 0) {
            const unix_ms left = finished ? r.finished : now;
            area_system += overlap(entered, left, lo, now);
        }
        if (r.submitted != 0) {
            const unix_ms left = (left_queue != 0 && left_queue <= now) ? left_queue : now;
            area_queue += overlap(eligible, left, lo, now);
        }
        if (started) area_busy += overlap(r.started, finished ? r.finished : now, lo, now);
    }

    const double span = o.span_s;
    auto rate = [span](std::size_t n) { return span > 0 ? static_cast<double>(n) / span : 0.0; };
    o.arrival_rate = rate(o.arrivals);
    o.start_rate = rate(o.starts);
    o.completion_rate = rate(o.completions);
    o.mean_run_s = service.empty() ? 0.0 : run_sum / static_cast<double>(service.size());
    o.response = summarize_sample(response);
    o.wait = summarize_sample(wait);
    o.service = summarize_sample(service);
    o.service_rate = o.service.count > 0 && o.service.mean > 0 ? 1.0 / o.service.mean : 0.0;

    // Workers from their newest heartbeats (a heartbeat "from the future",
    // i.e. clock skew, still proves the worker alive).
    o.workers_known = heartbeats_seen_;
    for (const auto& [name, h] : workers_) {
        if (now - h.at > cfg_.stale_after_ms) continue;
        if (h.state == worker_state::up) {
            ++o.workers;
            o.slots += h.slots;
            o.busy += h.busy;
        } else if (h.state == worker_state::draining) {
            ++o.draining_workers;
            o.busy += h.busy;
        }
    }

    // The queue. The lag counts every uncommitted job: the running ones, and
    // (at-least-once) every job finished above an older unfinished one of its
    // partition, so lag - busy overstates the queue whenever jobs finish out of
    // order. The events are exact once they are complete (starts included),
    // and the lag stays an upper bound.
    if (lag != nullptr) {
        o.lag = lag->lag;
        o.lag_bound = lag->lag + submitted_since_lag;
        o.queue_from_lag = std::max<std::int64_t>(lag->lag - o.busy, 0);
    }
    o.events_fresh = caught_up_at_ > 0 && now - caught_up_at_ <= cfg_.stale_after_ms;
    if (o.events_fresh) {
        o.queue_length = o.lag_bound ? std::min(o.queued_from_events, *o.lag_bound) : o.queued_from_events;
        o.queue_from = queue_source::events;
    } else if (o.queue_from_lag) {
        o.queue_length = *o.queue_from_lag;
        o.queue_from = queue_source::lag;
    } else {
        o.queue_length = o.queued_from_events;
        o.queue_from = queue_source::events;
    }

    const double capacity = static_cast<double>(o.slots) * o.service_rate;
    if (o.arrival_rate <= 0)
        o.utilisation = 0;
    else if (o.service_rate <= 0)
        o.utilisation = nan;  // unknown
    else
        o.utilisation = capacity > 0 ? o.arrival_rate / capacity : inf;
    o.busy_fraction =
        o.slots > 0 && span_ms > 0 ? static_cast<double>(area_busy) / static_cast<double>(span_ms) / o.slots : nan;

    if (span_ms > 0) {
        o.l_time_average = static_cast<double>(area_system) / static_cast<double>(span_ms);
        o.lq_time_average = static_cast<double>(area_queue) / static_cast<double>(span_ms);
    }
    o.l_little = o.arrival_rate * o.response.mean;
    o.lq_little = o.arrival_rate * o.wait.mean;
    const double big = std::max(o.l_time_average, o.l_little);
    o.little_error = big > 0 ? std::abs(o.l_time_average - o.l_little) / big : 0.0;
    return o;
}

namespace {
json::value num(double v) {
    if (!std::isfinite(v)) return nullptr;
    return v;
}
}  // namespace

json::object to_json(const distribution& d) {
    return {{"count", d.count},  {"mean", num(d.mean)}, {"stddev", num(d.stddev)}, {"p50", num(d.p50)},
            {"p95", num(d.p95)}, {"p99", num(d.p99)},   {"max", num(d.max)}};
}

json::object to_json(const observation& o) {
    json::object j;
    j["at"] = o.at;
    j["window_ms"] = o.window_ms;
    j["span_s"] = num(o.span_s);
    j["arrivals"] = o.arrivals;
    j["starts"] = o.starts;
    j["completions"] = o.completions;
    j["arrival_rate"] = num(o.arrival_rate);
    j["start_rate"] = num(o.start_rate);
    j["completion_rate"] = num(o.completion_rate);
    j["service_rate"] = num(o.service_rate);
    j["response_s"] = to_json(o.response);
    j["wait_s"] = to_json(o.wait);
    j["service_s"] = to_json(o.service);
    j["mean_run_s"] = num(o.mean_run_s);
    j["queue_length"] = o.queue_length;
    j["queue_source"] = to_string(o.queue_from);
    j["queued_from_events"] = o.queued_from_events;
    j["lag"] = o.lag ? json::value(*o.lag) : json::value(nullptr);
    j["queue_from_lag"] = o.queue_from_lag ? json::value(*o.queue_from_lag) : json::value(nullptr);
    j["lag_bound"] = o.lag_bound ? json::value(*o.lag_bound) : json::value(nullptr);
    j["events_fresh"] = o.events_fresh;
    j["workers"] = o.workers;
    j["draining_workers"] = o.draining_workers;
    j["slots"] = o.slots;
    j["busy"] = o.busy;
    j["utilisation"] = num(o.utilisation);
    j["busy_fraction"] = num(o.busy_fraction);
    j["little"] = {{"l_time_average", num(o.l_time_average)},
                   {"l_little", num(o.l_little)},
                   {"lq_time_average", num(o.lq_time_average)},
                   {"lq_little", num(o.lq_little)},
                   {"relative_error", num(o.little_error)}};
    return j;
}

}  // namespace faasd::stats
