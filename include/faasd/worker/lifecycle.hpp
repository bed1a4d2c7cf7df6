#pragma once
// The lifecycle of one job message in a worker, as a sans-io state machine
// (like boost::redis's exec_fsm). resume(input) returns the next action; a
// coroutine in the worker carries it out and resumes the machine with what
// happened. The machine never does I/O and never reads a clock: every input
// carries `now`. docs/semantics.md describes the sequences per delivery mode;
// test/unit/worker/lifecycle_test.cpp walks every one of them.
//
// The happy path of an at-least-once job:
//
//   check_cancel -> acquire_slot -> check_cancel -> count_delivery -> publish_running
//   -> [open_credentials] -> prepare_repo -> [download_sources] -> run
//   -> [upload_sinks] -> publish_result -> commit -> done
//
// at-most-once has commit_before_run instead of count_delivery (its message
// is never delivered again after the commit) and no final commit; a delivery
// past max_deliveries ends with dead_letter + publish_result (worker_lost); exactly-once replaces publish_result with
// stage_for_transaction (the result, the terminal snapshot, a retry or a
// dead-letter record go into one transaction together with the offset).
// A not_before in the future adds wait_until (holding no slot) before the
// slot (at-most-once releases the offset with commit first). A failure ends in schedule_retry + publish_result (retry),
// dead_letter + publish_result (retries exhausted) or publish_result. A job
// in the cancelled set is skipped with a cancelled result. An aborted step
// (the partition was revoked, or the worker stops) hands the job back with
// abandon: its offset stays uncommitted, so it is delivered again.

#include <faasd/jobs/model.hpp>
#include <faasd/worker/outcome.hpp>
#include <faasd/worker/result_budget.hpp>
#include <faasd/worker/retry.hpp>

#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace faasd::worker {

enum class action_type {
    check_cancel,           ///< is the job in the cancelled set? answer cancelled or ok
    wait_until,             ///< not_before is in the future: wait until action::until without a slot (a cancel interrupts)
    acquire_slot,           ///< wait for a free slot (a cancel interrupts)
    commit_before_run,      ///< at-most-once: commit past this offset, wait for the coordinator's acknowledgement
    count_delivery,         ///< how many deliveries of this attempt came before (answer input::prior_deliveries)
    publish_running,        ///< produce action::snapshot (running) to the state topic, wait for the ack
    open_credentials,       ///< decrypt the sealed credentials (just in time; wiped when the job ends)
    prepare_repo,           ///< check the repository out into a fresh workspace (answer with cache_hit)
    download_sources,       ///< download the job's sources into the workspace
    run,                    ///< run the function in the sandbox (answer with input::run)
    upload_sinks,           ///< upload the outputs matched to sinks (answer with input::outputs)
    dead_letter,            ///< produce the original message to the dead-letter topic with action::reason
    schedule_retry,         ///< produce action::retry to the jobs topic and action::snapshot (queued, if set) to state
    publish_result,         ///< produce action::result (results) and action::snapshot (terminal, if set) and wait for the acks
    stage_for_transaction,  ///< exactly-once: hand every record of the action to the next transaction with the offset
    commit,                 ///< release the offset: committed (or put in a transaction) once the watermark passes it
    abandon,                ///< hand the job back: the offset stays uncommitted and the job is delivered again;
                            ///< action::snapshot, if set, is the hand-back snapshot to post (queued, same attempt)
    done,                   ///< nothing more to do
};

const char* to_string(action_type t) noexcept;

struct action {
    action_type type = action_type::done;
    jobs::unix_ms until = 0;                   ///< wait_until
    std::string reason;                        ///< dead_letter (and stage_for_transaction with dead_letter)
    bool dead_letter = false;                  ///< stage_for_transaction: the original message goes to dead-letter
    std::optional<jobs::job_status> snapshot;  ///< running, queued (retry) or terminal snapshot
    std::optional<jobs::job_result> result;    ///< the attempt's result
    std::optional<jobs::job_message> retry;    ///< the next attempt's message
};

/// How the action that was just carried out ended.
enum class step_status {
    ok,         ///< it completed (check_cancel: the job is not cancelled)
    failed,     ///< it failed: input::fail says how
    cancelled,  ///< the job was cancelled (check_cancel: it is in the cancelled set)
    aborted,    ///< the worker gave the job up (partition revoked, shutdown): hand it back
};

/// What happened; `now` is required with every input.
struct input {
    jobs::unix_ms now = 0;
    step_status status = step_status::ok;
    std::optional<failure> fail;             ///< failed
    bool cache_hit = false;                  ///< prepare_repo, ok
    std::optional<run_report> run;           ///< run, ok (may also come with cancelled: partial output)
    std::vector<jobs::output_file> outputs;  ///< upload_sinks: the outputs with the sinks' statuses
    int prior_deliveries = 0;                ///< count_delivery: earlier deliveries that count (delivery_view)
};

struct lifecycle_config {
    std::string worker_id;
    retry_policy retry;
    result_limits results;  ///< results are cut to results.result_bytes, snapshot copies to snapshot_bytes
    /// Deliveries of one attempt that may reach running (--max-deliveries):
    /// one more ends the job failed with worker_lost and dead-letters it. 0:
    /// unlimited (and count_delivery is skipped).
    int max_deliveries = 3;
};

/// The failure code a publishing step reports when Kafka refused a record for
/// good (a permanent error such as msg_size_too_large): the machine publishes
/// the result again cut to result_limits::fallback_bytes, and when that is
/// refused too, dead-letters the message instead. Never an endless retry.
inline constexpr const char* publish_refused_code = "publish_refused";

class lifecycle {
public:
    /// A decoded job message read from the jobs topic of `mode` (the topic's
    /// mode decides, whatever spec.delivery says). `jitter01` in [0, 1)
    /// spreads the retry backoff.
    lifecycle(jobs::job_message job, jobs::delivery_mode mode, lifecycle_config cfg, double jitter01 = 0.5);

    /// A message that did not decode: it goes to the dead-letter topic with
    /// `reason` and its offset is released; nothing else happens.
    static lifecycle poison(jobs::delivery_mode mode, std::string reason, lifecycle_config cfg);

    /// Feeds the outcome of the previous action (ignored on the first call,
    /// except `now`) and returns the next one. After done or abandon it keeps
    /// returning done.
    action resume(const input& in);

    const jobs::job_message& job() const noexcept { return job_; }
    jobs::delivery_mode mode() const noexcept { return mode_; }
    bool is_poison() const noexcept { return poison_; }
    /// The offset was released (at-most-once: committed before the run).
    bool released() const noexcept { return released_; }
    /// The function was started (at-most-once never retries after this).
    bool run_started() const noexcept { return run_started_; }
    /// The slot was acquired and not yet given back by the machine's view
    /// (the shell frees the slot at done or abandon).
    bool holds_slot() const noexcept { return holds_slot_; }
    /// The attempt's timing so far.
    const jobs::timing& times() const noexcept { return times_; }
    /// The final state of the job once the result is decided (nullopt before).
    std::optional<jobs::job_state> final_state() const noexcept { return final_state_; }
    /// The retry decision, once a failure was decided.
    std::optional<retry_verdict> verdict() const noexcept { return verdict_; }
    /// This delivery's number (count_delivery answered; 1 for at-most-once).
    int deliveries() const noexcept { return deliveries_; }

private:
    enum class stage {
        start,
        cancel_checked,
        released_for_wait,
        waited,
        slot_acquired,
        cancel_checked_in_slot,
        committed_before_run,
        deliveries_counted,
        running_published,
        credentials_opened,
        prepared,
        downloaded,
        ran,
        uploaded,
        finishing,
        over,
    };

    lifecycle() = default;

    action next_after_cancel_check(jobs::unix_ms now);
    action after_slot(jobs::unix_ms now);
    action start_preparation(jobs::unix_ms now);
    action start_run(jobs::unix_ms now);
    action on_interrupt(const input& in);
    // Builds the final sequence of actions and returns its first.
    action finish_success(jobs::unix_ms now);
    action finish_cancelled(jobs::unix_ms now, const run_report* partial);
    action finish_failure(jobs::unix_ms now, failure f, bool dead_letter_now = false);
    action publish_running(jobs::unix_ms now);
    action abandon(jobs::unix_ms now);
    action begin_final(std::deque<action> seq);
    action pop_final();
    action on_refused(const failure& f);

    jobs::job_status snapshot(jobs::job_state state, jobs::unix_ms now) const;
    jobs::job_result make_result(jobs::job_state state, jobs::unix_ms now, const jobs::job_error& error) const;
    action end(action_type t);

    jobs::job_message job_;
    jobs::delivery_mode mode_ = jobs::delivery_mode::at_least_once;
    lifecycle_config cfg_;
    double jitter_ = 0.5;
    bool poison_ = false;
    std::string poison_reason_;

    stage stage_ = stage::start;
    action_type last_ = action_type::done;
    bool released_ = false;
    bool run_started_ = false;
    bool holds_slot_ = false;
    bool prepare_started_ = false;
    bool running_published_ = false;
    int deliveries_ = 0;
    jobs::unix_ms prepare_started_at_ = 0;
    jobs::unix_ms sources_started_at_ = 0;  // 0: no download started
    jobs::unix_ms upload_started_at_ = 0;
    jobs::timing times_;
    std::optional<run_report> report_;
    std::vector<jobs::output_file> outputs_;
    std::optional<jobs::job_state> final_state_;
    std::optional<retry_verdict> verdict_;
    std::deque<action> final_;
    std::optional<action> in_flight_;  // the final action being carried out (for on_refused)
    int refusals_ = 0;
};

}  // namespace faasd::worker
