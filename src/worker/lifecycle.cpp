#include <faasd/worker/lifecycle.hpp>

#include <algorithm>
#include <utility>

namespace faasd::worker {

const char* to_string(action_type t) noexcept {
    switch (t) {
        case action_type::check_cancel: return "check_cancel";
        case action_type::wait_until: return "wait_until";
        case action_type::acquire_slot: return "acquire_slot";
        case action_type::commit_before_run: return "commit_before_run";
        case action_type::count_delivery: return "count_delivery";
        case action_type::publish_running: return "publish_running";
        case action_type::open_credentials: return "open_credentials";
        case action_type::prepare_repo: return "prepare_repo";
        case action_type::download_sources: return "download_sources";
        case action_type::run: return "run";
        case action_type::upload_sinks: return "upload_sinks";
        case action_type::dead_letter: return "dead_letter";
        case action_type::schedule_retry: return "schedule_retry";
        case action_type::publish_result: return "publish_result";
        case action_type::stage_for_transaction: return "stage_for_transaction";
        case action_type::commit: return "commit";
        case action_type::abandon: return "abandon";
        case action_type::done: return "done";
    }
    return "?";
}

namespace {

action make(action_type t) {
    action a;
    a.type = t;
    return a;
}

}  // namespace

lifecycle::lifecycle(jobs::job_message job, jobs::delivery_mode mode, lifecycle_config cfg, double jitter01)
    : job_(std::move(job)), mode_(mode), cfg_(std::move(cfg)), jitter_(jitter01) {
    times_.submitted_at = job_.submitted_at;
}

lifecycle lifecycle::poison(jobs::delivery_mode mode, std::string reason, lifecycle_config cfg) {
    lifecycle l;
    l.mode_ = mode;
    l.cfg_ = std::move(cfg);
    l.poison_ = true;
    l.poison_reason_ = std::move(reason);
    return l;
}

action lifecycle::end(action_type t) {
    stage_ = stage::over;
    last_ = t;
    return make(t);
}

action lifecycle::resume(const input& in) {
    const auto now = in.now;
    // Cancelled, aborted and failed steps end the attempt the same way at
    // every stage before the final sequence.
    auto interrupted = [&]() -> std::optional<action> {
        switch (in.status) {
            case step_status::ok: return std::nullopt;
            case step_status::cancelled: return finish_cancelled(now, in.run ? &*in.run : nullptr);
            case step_status::aborted: return on_interrupt(in);
            case step_status::failed:
                return finish_failure(now, in.fail ? *in.fail : worker_failure("a step failed without a reason"));
        }
        return std::nullopt;
    };

    switch (stage_) {
        case stage::start: {
            if (poison_) {
                std::deque<action> seq;
                if (mode_ == jobs::delivery_mode::exactly_once) {
                    action a = make(action_type::stage_for_transaction);
                    a.dead_letter = true;
                    a.reason = poison_reason_;
                    seq.push_back(std::move(a));
                } else {
                    action a = make(action_type::dead_letter);
                    a.reason = poison_reason_;
                    seq.push_back(std::move(a));
                }
                return begin_final(std::move(seq));
            }
            stage_ = stage::cancel_checked;
            return make(action_type::check_cancel);
        }

        case stage::cancel_checked:
            if (auto a = interrupted()) return std::move(*a);
            return next_after_cancel_check(now);

        case stage::released_for_wait: {
            stage_ = stage::waited;
            action a = make(action_type::wait_until);
            a.until = job_.not_before;
            return a;
        }

        case stage::waited:
            if (auto a = interrupted()) return std::move(*a);
            stage_ = stage::cancel_checked;  // time passed: look at the cancelled set again
            return make(action_type::check_cancel);

        case stage::slot_acquired:
            if (auto a = interrupted()) return std::move(*a);
            holds_slot_ = true;
            stage_ = stage::cancel_checked_in_slot;
            return make(action_type::check_cancel);

        case stage::cancel_checked_in_slot:
            if (auto a = interrupted()) return std::move(*a);
            return after_slot(now);

        case stage::committed_before_run: {
            // Aborted: the partition was revoked (or the worker stops) before
            // the commit: the offset is not ours, another worker gets the job.
            if (in.status == step_status::aborted) return end(action_type::abandon);
            if (in.status != step_status::ok) {
                // The commit was not acknowledged in time. The offset stays
                // released (the commit loop commits it once the coordinator
                // answers), so the message is not coming back: end the job
                // here, failed and not run, instead of leaving it queued.
                released_ = true;
                failure f = in.fail ? *in.fail : failure{};
                f.kind = failure_kind::permanent;
                f.state = jobs::job_state::failed;
                if (f.code.empty()) f.code = "commit_timeout";
                if (f.message.empty()) f.message = "the offset commit was not acknowledged in time; the job did not run";
                return finish_failure(now, std::move(f));
            }
            released_ = true;
            times_.started_at = now;
            times_.queue_wait_ms = now - times_.submitted_at;
            deliveries_ = 1;  // committed: this is the only delivery
            return publish_running(now);
        }

        case stage::deliveries_counted: {
            if (auto a = interrupted()) return std::move(*a);
            deliveries_ = std::max(in.prior_deliveries, 0) + 1;
            if (cfg_.max_deliveries > 0 && deliveries_ > cfg_.max_deliveries) {
                // Every earlier delivery of this attempt lost its worker in the
                // middle: stop feeding the job to workers.
                failure f;
                f.kind = failure_kind::infrastructure;
                f.code = "worker_lost";
                f.message = "the worker running attempt " + std::to_string(job_.attempt) + " was lost " +
                            std::to_string(deliveries_ - 1) + " times (--max-deliveries " +
                            std::to_string(cfg_.max_deliveries) + ")";
                return finish_failure(now, std::move(f), true);
            }
            return publish_running(now);
        }

        case stage::running_published:
            if (auto a = interrupted()) return std::move(*a);
            return start_preparation(now);

        case stage::credentials_opened:
            if (auto a = interrupted()) return std::move(*a);
            stage_ = stage::prepared;
            return make(action_type::prepare_repo);

        case stage::prepared:
            if (auto a = interrupted()) return std::move(*a);
            times_.cache_hit = in.cache_hit;
            times_.clone_ms = now - prepare_started_at_;
            if (!job_.spec.sources.empty()) {
                sources_started_at_ = now;
                stage_ = stage::downloaded;
                return make(action_type::download_sources);
            }
            return start_run(now);

        case stage::downloaded:
            if (auto a = interrupted()) return std::move(*a);
            return start_run(now);

        case stage::ran: {
            times_.run_ms = now - times_.run_started_at;
            if (in.run) {
                report_ = *in.run;
                outputs_ = in.run->outputs;
            }
            if (auto a = interrupted()) return std::move(*a);
            if (!report_) return finish_failure(now, worker_failure("the run ended without a report"));
            if (report_->state == jobs::job_state::cancelled) return finish_cancelled(now, &*report_);
            if (report_->state != jobs::job_state::succeeded) {
                failure f;
                if (report_->fail) {
                    f = *report_->fail;
                } else {
                    f.kind = failure_kind::function;
                    f.code = report_->state == jobs::job_state::timed_out ? "timeout" : "exit_nonzero";
                    f.message = f.code;
                }
                f.state = report_->state;
                return finish_failure(now, std::move(f));
            }
            bool upload = false;
            for (const auto& o : outputs_)
                if (!o.sink.empty() && job_.spec.sinks.count(o.sink)) upload = true;
            if (upload) {
                upload_started_at_ = now;
                stage_ = stage::uploaded;
                return make(action_type::upload_sinks);
            }
            return finish_success(now);
        }

        case stage::uploaded:
            times_.upload_ms = now - upload_started_at_;
            if (!in.outputs.empty()) outputs_ = in.outputs;
            if (auto a = interrupted()) return std::move(*a);
            return finish_success(now);

        case stage::finishing:
            if (in.status == step_status::failed && in.fail && in.fail->code == publish_refused_code)
                return on_refused(*in.fail);
            if (in.status == step_status::aborted || in.status == step_status::failed) {
                // Publishing was given up (the worker stops). Without a commit the
                // job is delivered again; at-most-once already committed it.
                if (released_) return end(action_type::done);
                return abandon(now);
            }
            return pop_final();

        case stage::over:
            return make(action_type::done);
    }
    return make(action_type::done);
}

action lifecycle::next_after_cancel_check(jobs::unix_ms now) {
    if (job_.not_before > now) {
        if (mode_ == jobs::delivery_mode::at_most_once && !released_) {
            // At-most-once: a held retry must not keep the next jobs of its
            // partition from committing before their runs, so its offset is
            // released now (a crash while it waits loses it, as at-most-once may).
            released_ = true;
            stage_ = stage::released_for_wait;
            return make(action_type::commit);
        }
        stage_ = stage::waited;
        action a = make(action_type::wait_until);
        a.until = job_.not_before;
        return a;
    }
    if (holds_slot_) return after_slot(now);
    stage_ = stage::slot_acquired;
    return make(action_type::acquire_slot);
}

action lifecycle::after_slot(jobs::unix_ms now) {
    if (mode_ == jobs::delivery_mode::at_most_once) {
        stage_ = stage::committed_before_run;
        return make(action_type::commit_before_run);
    }
    times_.started_at = now;
    times_.queue_wait_ms = now - times_.submitted_at;
    if (cfg_.max_deliveries <= 0) {
        deliveries_ = 1;
        return publish_running(now);
    }
    stage_ = stage::deliveries_counted;
    return make(action_type::count_delivery);
}

action lifecycle::publish_running(jobs::unix_ms now) {
    stage_ = stage::running_published;
    running_published_ = true;
    action a = make(action_type::publish_running);
    a.snapshot = snapshot(jobs::job_state::running, now);
    return a;
}

action lifecycle::abandon(jobs::unix_ms now) {
    action a = end(action_type::abandon);
    if (running_published_) {
        // The hand-back snapshot: the same attempt, queued again, with this
        // delivery's count, so that the next worker does not count it as lost.
        auto s = snapshot(jobs::job_state::queued, now);
        s.started_at = 0;
        s.worker.clear();
        a.snapshot = std::move(s);
    }
    return a;
}

action lifecycle::start_preparation(jobs::unix_ms now) {
    prepare_started_ = true;
    prepare_started_at_ = now;
    if (!job_.spec.credentials.empty()) {
        stage_ = stage::credentials_opened;
        return make(action_type::open_credentials);
    }
    stage_ = stage::prepared;
    return make(action_type::prepare_repo);
}

action lifecycle::start_run(jobs::unix_ms now) {
    times_.prepare_ms = now - prepare_started_at_;
    if (sources_started_at_) times_.sources_ms = now - sources_started_at_;
    times_.run_started_at = now;
    run_started_ = true;
    stage_ = stage::ran;
    return make(action_type::run);
}

action lifecycle::on_interrupt(const input& in) {
    if (!released_) return abandon(in.now);
    if (!holds_slot_) {
        // At-most-once, released while waiting for not_before: hand it back by
        // publishing the same message (same attempt) again.
        std::deque<action> seq;
        action a = make(action_type::schedule_retry);
        a.retry = job_;
        seq.push_back(std::move(a));
        return begin_final(std::move(seq));
    }
    // At-most-once, offset committed: the job will not come back, so end it here.
    failure f;
    f.kind = failure_kind::infrastructure;
    f.code = "interrupted";
    f.message = run_started_ ? "the worker stopped during the run" : "the worker stopped before the run";
    return finish_failure(in.now, std::move(f));
}

jobs::job_status lifecycle::snapshot(jobs::job_state state, jobs::unix_ms now) const {
    jobs::job_status s;
    s.id = job_.id;
    s.owner = job_.owner;
    s.state = state;
    s.attempt = job_.attempt;
    s.submitted_at = job_.submitted_at;
    s.started_at = times_.started_at;
    s.finished_at = jobs::is_terminal(state) ? now : 0;
    s.updated_at = now;
    s.worker = cfg_.worker_id;
    s.repo = job_.spec.repo;
    s.repo.credential.clear();
    s.delivery = mode_;
    s.tags = job_.spec.tags;
    s.idempotency_key = job_.idempotency_key;
    s.deliveries = deliveries_;
    return s;
}

jobs::job_result lifecycle::make_result(jobs::job_state state, jobs::unix_ms now, const jobs::job_error& error) const {
    jobs::job_result r;
    r.id = job_.id;
    r.owner_subject = job_.owner.subject;
    r.state = state;
    r.attempt = job_.attempt;
    r.worker = cfg_.worker_id;
    if (report_) {
        r.exit_code = report_->exit_code;
        r.output = report_->output;
        r.stdout_text = report_->stdout_text;
        r.stderr_text = report_->stderr_text;
        r.stdout_truncated = report_->stdout_truncated;
        r.stderr_truncated = report_->stderr_truncated;
    }
    r.outputs = outputs_;
    r.error = error;
    r.times = times_;
    r.times.finished_at = now;
    r.times.total_ms = now - times_.submitted_at;
    if (prepare_started_ && !run_started_) {
        // Ended during the preparation: the phase in progress gets the time so far.
        r.times.prepare_ms = now - prepare_started_at_;
        if (sources_started_at_) r.times.sources_ms = now - sources_started_at_;
        else r.times.clone_ms = now - prepare_started_at_;
    }
    r.tags = job_.spec.tags;
    fit_result(r, cfg_.results.result_bytes);
    return r;
}

namespace {

// The copy of a result a terminal snapshot carries (cut to the snapshot budget).
jobs::job_result snapshot_copy(const jobs::job_result& r, std::size_t max_bytes) {
    jobs::job_result c = r;
    fit_result(c, max_bytes);
    return c;
}

}  // namespace

action lifecycle::finish_success(jobs::unix_ms now) {
    final_state_ = jobs::job_state::succeeded;
    auto result = make_result(jobs::job_state::succeeded, now, {});
    auto snap = snapshot(jobs::job_state::succeeded, now);
    snap.result = snapshot_copy(result, cfg_.results.snapshot_bytes);
    std::deque<action> seq;
    action a = make(mode_ == jobs::delivery_mode::exactly_once ? action_type::stage_for_transaction
                                                               : action_type::publish_result);
    a.result = std::move(result);
    a.snapshot = std::move(snap);
    seq.push_back(std::move(a));
    return begin_final(std::move(seq));
}

action lifecycle::finish_cancelled(jobs::unix_ms now, const run_report* partial) {
    if (partial && !report_) report_ = *partial;
    final_state_ = jobs::job_state::cancelled;
    jobs::job_error err{"cancelled", "the job was cancelled"};
    auto result = make_result(jobs::job_state::cancelled, now, err);
    auto snap = snapshot(jobs::job_state::cancelled, now);
    snap.error = err;
    snap.result = snapshot_copy(result, cfg_.results.snapshot_bytes);
    std::deque<action> seq;
    action a = make(mode_ == jobs::delivery_mode::exactly_once ? action_type::stage_for_transaction
                                                               : action_type::publish_result);
    a.result = std::move(result);
    a.snapshot = std::move(snap);
    seq.push_back(std::move(a));
    return begin_final(std::move(seq));
}

action lifecycle::finish_failure(jobs::unix_ms now, failure f, bool dead_letter_now) {
    const bool eos = mode_ == jobs::delivery_mode::exactly_once;
    retry_decision d;
    if (dead_letter_now) d.verdict = retry_verdict::exhausted;
    else d = decide_retry(cfg_.retry, job_, f.kind, mode_, run_started_, now, jitter_);
    verdict_ = d.verdict;
    jobs::job_error err{f.code, f.message};
    std::deque<action> seq;

    if (d.verdict == retry_verdict::retry) {
        auto result = make_result(f.state, now, err);
        jobs::job_message next = job_;
        next.attempt = d.next_attempt;
        next.not_before = d.not_before;
        auto queued = snapshot(jobs::job_state::queued, now);
        queued.attempt = d.next_attempt;
        queued.started_at = 0;
        queued.worker.clear();
        queued.error = err;
        if (eos) {
            action a = make(action_type::stage_for_transaction);
            a.result = std::move(result);
            a.snapshot = std::move(queued);
            a.retry = std::move(next);
            seq.push_back(std::move(a));
        } else {
            action r = make(action_type::schedule_retry);
            r.retry = std::move(next);
            r.snapshot = std::move(queued);
            seq.push_back(std::move(r));
            action p = make(action_type::publish_result);
            p.result = std::move(result);
            seq.push_back(std::move(p));
        }
        return begin_final(std::move(seq));
    }

    final_state_ = f.state;
    std::string reason;
    if (dead_letter_now) {
        reason = f.code + ": " + f.message;
    } else if (d.verdict == retry_verdict::exhausted) {
        const int max = max_attempts(cfg_.retry, job_.spec);
        err.message += " (attempt " + std::to_string(job_.attempt) + " of " + std::to_string(max) +
                       ", retries exhausted)";
        reason = "retries_exhausted: " + err.code + ": " + f.message;
    }
    auto result = make_result(f.state, now, err);
    auto snap = snapshot(f.state, now);
    snap.error = err;
    snap.result = snapshot_copy(result, cfg_.results.snapshot_bytes);
    if (eos) {
        action a = make(action_type::stage_for_transaction);
        a.result = std::move(result);
        a.snapshot = std::move(snap);
        if (!reason.empty()) {
            a.dead_letter = true;
            a.reason = std::move(reason);
        }
        seq.push_back(std::move(a));
    } else {
        if (!reason.empty()) {
            action dl = make(action_type::dead_letter);
            dl.reason = std::move(reason);
            seq.push_back(std::move(dl));
        }
        action p = make(action_type::publish_result);
        p.result = std::move(result);
        p.snapshot = std::move(snap);
        seq.push_back(std::move(p));
    }
    return begin_final(std::move(seq));
}

action lifecycle::begin_final(std::deque<action> seq) {
    // Every ending releases the offset (unless at-most-once already did) and ends.
    if (!released_) seq.push_back(make(action_type::commit));
    seq.push_back(make(action_type::done));
    final_ = std::move(seq);
    stage_ = stage::finishing;
    return pop_final();
}

action lifecycle::on_refused(const failure& f) {
    ++refusals_;
    std::optional<action> refused = std::move(in_flight_);
    in_flight_.reset();
    if (!refused) return pop_final();
    const bool carries_result = refused->result || (refused->snapshot && refused->snapshot->result);
    if (refusals_ == 1 && carries_result) {
        // Cut everything to the fallback size and publish again.
        if (refused->result) fit_result(*refused->result, result_limits::fallback_bytes);
        if (refused->snapshot && refused->snapshot->result)
            fit_result(*refused->snapshot->result, result_limits::fallback_bytes);
        final_.push_front(std::move(*refused));
        return pop_final();
    }
    if (refused->type == action_type::dead_letter) return pop_final();  // nothing left to try: move on
    // The outcome cannot be published: the message goes to dead-letter instead
    // (what is left of the sequence, such as the release of the offset, follows).
    std::erase_if(final_, [](const action& a) {
        return a.type == action_type::publish_result || a.type == action_type::schedule_retry ||
               a.type == action_type::dead_letter;
    });
    action dl = make(action_type::dead_letter);
    dl.reason = "publish_refused: " + f.message;
    final_.push_front(std::move(dl));
    return pop_final();
}

action lifecycle::pop_final() {
    if (final_.empty()) return end(action_type::done);
    action a = std::move(final_.front());
    final_.pop_front();
    if (a.type == action_type::publish_result || a.type == action_type::schedule_retry ||
        a.type == action_type::dead_letter)
        in_flight_ = a;
    else
        in_flight_.reset();
    last_ = a.type;
    if (a.type == action_type::commit) released_ = true;
    if (a.type == action_type::done) stage_ = stage::over;
    return a;
}

}  // namespace faasd::worker
