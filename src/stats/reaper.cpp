#include <faasd/stats/reaper.hpp>

#include <faasd/jobs/merge.hpp>

#include <algorithm>

namespace faasd::stats {

job_table::job_table(reaper_config cfg) : cfg_(cfg) {}

void job_table::remember_ended(const std::string& id, entry& e, unix_ms at) {
    e.ended_at = at;
    ended_.emplace_back(at, id);
}

std::optional<job_started> job_table::add(const jobs::job_status& s, unix_ms now) {
    ++counters_.snapshots;
    if (s.id.empty()) return std::nullopt;
    const bool terminal = jobs::is_terminal(s.state);
    const unix_ms ended_at = std::max(s.finished_at, s.updated_at);
    auto it = jobs_.find(s.id);
    if (it == jobs_.end()) {
        // Queued jobs are not held (the backlog may be large); a snapshot that
        // supersedes nothing here cannot end a running job either.
        if (s.state == jobs::job_state::queued) return std::nullopt;
        if (terminal && ended_at < now - cfg_.terminal_memory_ms) return std::nullopt;
        it = jobs_.try_emplace(s.id).first;
    } else {
        const auto& e = it->second;
        const jobs::merge_key current{e.state, e.attempt, e.has_result, e.finished_at, e.updated_at, e.worker};
        if (!jobs::supersedes(jobs::key_of(s), current)) return std::nullopt;
    }
    if (s.state == jobs::job_state::queued) {
        // A retry's next attempt: the running one is over, and nothing needs remembering.
        running_.erase(s.id);
        jobs_.erase(it);
        return std::nullopt;
    }
    auto& e = it->second;
    e.state = s.state;
    e.attempt = s.attempt;
    e.has_result = s.result.has_value();
    e.finished_at = s.finished_at;
    e.updated_at = s.updated_at;
    e.worker = s.worker;
    e.ending = false;
    if (s.state == jobs::job_state::running) {
        e.running = std::make_unique<jobs::job_status>(s);
        e.running->result.reset();
        running_.insert(s.id);
        auto started = started_from_status(s);
        if (started) ++counters_.starts;
        return started;
    }
    // Terminal.
    e.running.reset();
    running_.erase(s.id);
    remember_ended(s.id, e, ended_at > 0 ? ended_at : now);
    return std::nullopt;
}

void job_table::add_result(const std::string& id, int attempt) {
    auto it = jobs_.find(id);
    if (it != jobs_.end()) it->second.ended_attempt = std::max(it->second.ended_attempt, attempt);
}

void job_table::add_heartbeat(const std::string& worker, unix_ms at) {
    if (worker.empty() || at <= 0) return;
    auto [it, fresh] = workers_.try_emplace(worker, at);
    if (!fresh) it->second = std::max(it->second, at);
}

reap_plan job_table::reap(unix_ms now) {
    reap_plan plan;
    plan.running = running_.size();
    if (cfg_.lost_after_ms <= 0) return plan;
    for (const auto& id : running_) {
        auto& e = jobs_.at(id);
        const auto& s = *e.running;
        if (e.ending) {
            ++plan.ending;
            continue;
        }
        if (e.ended_attempt >= s.attempt) continue;  // its result is in; the snapshot follows
        unix_ms last = std::max(s.updated_at, s.started_at);
        if (auto w = workers_.find(s.worker); w != workers_.end()) last = std::max(last, w->second);
        if (now - last < cfg_.lost_after_ms) continue;
        if (s.delivery == jobs::delivery_mode::at_most_once) {
            plan.lost.push_back(worker_lost_outcome(s, last, last + cfg_.lost_after_ms));
            e.ending = true;
            ++counters_.reaped;
        } else {
            ++plan.orphaned;
        }
    }
    return plan;
}

void job_table::retry(const std::string& id) {
    auto it = jobs_.find(id);
    if (it != jobs_.end()) it->second.ending = false;
}

void job_table::evict(unix_ms now) {
    const unix_ms horizon = now - cfg_.terminal_memory_ms;
    while (!ended_.empty() && (ended_.front().first < horizon || ended_.size() > cfg_.max_ended)) {
        const auto& [at, id] = ended_.front();
        auto it = jobs_.find(id);
        // Only if still the same ending (the job may have ended again since, or run again).
        if (it != jobs_.end() && jobs::is_terminal(it->second.state) && it->second.ended_at == at) jobs_.erase(it);
        ended_.pop_front();
    }
    const unix_ms silent = now - std::max(cfg_.terminal_memory_ms, 2 * cfg_.lost_after_ms);
    for (auto it = workers_.begin(); it != workers_.end();) {
        if (it->second < silent)
            it = workers_.erase(it);
        else
            ++it;
    }
}

job_table_counters job_table::counters() const noexcept {
    auto c = counters_;
    c.running = running_.size();
    c.ended = jobs_.size() - running_.size();
    return c;
}

lost_job worker_lost_outcome(const jobs::job_status& running, unix_ms last_seen, unix_ms declared_at) {
    lost_job out;
    out.last_seen = last_seen;
    const jobs::job_error error{
        "worker_lost", "the worker " + running.worker +
                           " stopped sending heartbeats while it ran this at-most-once job; its message is never "
                           "delivered again, so the job ends here"};

    auto& r = out.result;
    r.id = running.id;
    r.owner_subject = running.owner.subject;
    r.state = jobs::job_state::failed;
    r.attempt = running.attempt;
    r.worker = running.worker;
    r.error = error;
    r.times.submitted_at = running.submitted_at;
    r.times.started_at = running.started_at;
    r.times.finished_at = declared_at;
    if (running.started_at > 0 && running.submitted_at > 0)
        r.times.queue_wait_ms = std::max<std::int64_t>(running.started_at - running.submitted_at, 0);
    if (running.submitted_at > 0) r.times.total_ms = std::max<std::int64_t>(declared_at - running.submitted_at, 0);
    r.tags = running.tags;

    auto& s = out.snapshot;
    s = running;
    s.state = jobs::job_state::failed;
    s.error = error;
    s.finished_at = declared_at;
    s.updated_at = declared_at;
    s.result = r;
    return out;
}

}  // namespace faasd::stats
