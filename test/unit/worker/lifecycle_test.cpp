// The job lifecycle state machine, step by step: every action of every
// delivery mode and every failure path (STYLE.md section 9, like
// boost::redis's test_exec_fsm).

#include <faasd/worker/lifecycle.hpp>
#include <faasd/worker/outcome_map.hpp>

#include <faasd/jobs/codec.hpp>

#include <catch2/catch.hpp>

using namespace faasd;
using namespace faasd::worker;
using jobs::delivery_mode;
using jobs::job_state;

namespace {

constexpr jobs::unix_ms t0 = 1'800'000'000'000;  // submitted_at

jobs::job_message make_job(int attempt = 1) {
    jobs::job_message m;
    m.id = "01JABCDEFGHJKMNPQRSTVWXYZ0";
    m.owner = {"sub-1", "alice", {"user"}};
    m.submitted_at = t0;
    m.attempt = attempt;
    m.idempotency_key = "idem-1";
    m.spec.repo = {"https://git.example.org/fn.git", "main", "", "gitcred"};
    m.spec.retries = 2;
    m.spec.tags = {"nightly"};
    return m;
}

lifecycle_config config() {
    lifecycle_config c;
    c.worker_id = "w-1";
    c.retry.max_retries = 5;
    c.retry.initial_backoff = std::chrono::milliseconds(1000);
    c.retry.max_backoff = std::chrono::milliseconds(60000);
    return c;
}

input ok(jobs::unix_ms now) {
    input in;
    in.now = now;
    return in;
}

input with(step_status s, jobs::unix_ms now) {
    input in;
    in.now = now;
    in.status = s;
    return in;
}

input failed(jobs::unix_ms now, failure f) {
    input in;
    in.now = now;
    in.status = step_status::failed;
    in.fail = std::move(f);
    return in;
}

input ran(jobs::unix_ms now, run_report r) {
    input in;
    in.now = now;
    in.run = std::move(r);
    return in;
}

run_report success_report() {
    run_report r;
    r.state = job_state::succeeded;
    r.exit_code = 0;
    r.output = boost::json::object{{"answer", 42}};
    r.stdout_text = "{\"answer\": 42}";
    return r;
}

run_report function_failed(job_state state, const char* code, int exit_code = 1) {
    run_report r;
    r.state = state;
    r.exit_code = exit_code;
    r.stderr_text = "boom";
    failure f;
    f.kind = failure_kind::function;
    f.code = code;
    f.message = std::string("the function failed: ") + code;
    f.state = state;
    r.fail = f;
    return r;
}

// Drives the common prefix up to (and including) the answer to publish_running.
void to_running(lifecycle& fsm, jobs::unix_ms now) {
    REQUIRE(fsm.resume(ok(now)).type == action_type::check_cancel);
    REQUIRE(fsm.resume(ok(now)).type == action_type::acquire_slot);
    REQUIRE(fsm.resume(ok(now)).type == action_type::check_cancel);
    if (fsm.mode() == delivery_mode::at_most_once) REQUIRE(fsm.resume(ok(now)).type == action_type::commit_before_run);
    else REQUIRE(fsm.resume(ok(now)).type == action_type::count_delivery);
    auto a = fsm.resume(ok(now));
    REQUIRE(a.type == action_type::publish_running);
}

input prior(int n, jobs::unix_ms now) {
    input in;
    in.now = now;
    in.prior_deliveries = n;
    return in;
}

}  // namespace

TEST_CASE("at-least-once: the happy path, action by action", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_least_once, config());

    auto a = fsm.resume(ok(t0 + 10));
    CHECK(a.type == action_type::check_cancel);
    a = fsm.resume(ok(t0 + 10));
    CHECK(a.type == action_type::acquire_slot);
    CHECK_FALSE(fsm.holds_slot());
    a = fsm.resume(ok(t0 + 100));  // the slot came free
    CHECK(a.type == action_type::check_cancel);
    CHECK(fsm.holds_slot());
    a = fsm.resume(ok(t0 + 100));
    CHECK(a.type == action_type::count_delivery);
    a = fsm.resume(ok(t0 + 100));  // no earlier delivery of attempt 1
    REQUIRE(a.type == action_type::publish_running);
    CHECK(a.snapshot->deliveries == 1);
    CHECK(fsm.deliveries() == 1);
    REQUIRE(a.snapshot);
    CHECK(a.snapshot->state == job_state::running);
    CHECK(a.snapshot->attempt == 1);
    CHECK(a.snapshot->worker == "w-1");
    CHECK(a.snapshot->started_at == t0 + 100);
    CHECK(a.snapshot->updated_at == t0 + 100);
    CHECK(a.snapshot->finished_at == 0);
    CHECK(a.snapshot->repo.credential.empty());  // never the credential's name
    CHECK(a.snapshot->repo.url == "https://git.example.org/fn.git");
    CHECK(a.snapshot->delivery == delivery_mode::at_least_once);
    CHECK(a.snapshot->idempotency_key == "idem-1");
    CHECK(!a.snapshot->result);

    a = fsm.resume(ok(t0 + 105));
    CHECK(a.type == action_type::prepare_repo);
    input prep = ok(t0 + 300);
    prep.cache_hit = true;
    a = fsm.resume(prep);
    CHECK(a.type == action_type::run);
    CHECK(fsm.run_started());
    a = fsm.resume(ran(t0 + 1300, success_report()));
    REQUIRE(a.type == action_type::publish_result);
    REQUIRE(a.result);
    REQUIRE(a.snapshot);
    CHECK_FALSE(a.retry);
    const auto& r = *a.result;
    CHECK(r.state == job_state::succeeded);
    CHECK(r.id == "01JABCDEFGHJKMNPQRSTVWXYZ0");
    CHECK(r.owner_subject == "sub-1");
    CHECK(r.worker == "w-1");
    CHECK(r.attempt == 1);
    CHECK(r.exit_code == 0);
    CHECK(r.output.at("answer") == 42);
    CHECK(r.error.empty());
    CHECK(r.tags == std::vector<std::string>{"nightly"});
    CHECK(r.times.submitted_at == t0);
    CHECK(r.times.started_at == t0 + 100);
    CHECK(r.times.queue_wait_ms == 100);
    CHECK(r.times.prepare_ms == 195);
    CHECK(r.times.clone_ms == 195);
    CHECK(r.times.sources_ms == 0);
    CHECK(r.times.run_started_at == t0 + 300);
    CHECK(r.times.run_ms == 1000);
    CHECK(r.times.upload_ms == 0);
    CHECK(r.times.finished_at == t0 + 1300);
    CHECK(r.times.total_ms == 1300);
    CHECK(r.times.cache_hit);
    CHECK(a.snapshot->state == job_state::succeeded);
    CHECK(a.snapshot->finished_at == t0 + 1300);
    REQUIRE(a.snapshot->result);
    CHECK(a.snapshot->result->state == job_state::succeeded);
    CHECK(fsm.final_state() == job_state::succeeded);

    a = fsm.resume(ok(t0 + 1310));
    CHECK(a.type == action_type::commit);
    CHECK(fsm.released());
    a = fsm.resume(ok(t0 + 1310));
    CHECK(a.type == action_type::done);
    CHECK(fsm.resume(ok(t0 + 1310)).type == action_type::done);
}

TEST_CASE("credentials, sources and sinks add their steps in order", "[worker][unit]") {
    auto job = make_job();
    job.spec.credentials.ciphertext_b64 = "c2VhbGVk";
    job.spec.credentials.key_id = "k1";
    job.spec.sources["text"] = {"https://data.example.org/t.txt", {}, ""};
    job.spec.sinks["report"] = {"https://store.example.org/r.csv", "PUT", {}, ""};
    lifecycle fsm(job, delivery_mode::at_least_once, config());
    to_running(fsm, t0 + 50);
    CHECK(fsm.resume(ok(t0 + 60)).type == action_type::open_credentials);
    CHECK(fsm.resume(ok(t0 + 61)).type == action_type::prepare_repo);
    CHECK(fsm.resume(ok(t0 + 200)).type == action_type::download_sources);
    CHECK(fsm.resume(ok(t0 + 400)).type == action_type::run);
    auto rep = success_report();
    rep.outputs = {{"report.csv", 12, "report", 0}, {"extra.txt", 3, "", 0}};
    auto a = fsm.resume(ran(t0 + 900, rep));
    REQUIRE(a.type == action_type::upload_sinks);
    input up = ok(t0 + 1000);
    up.outputs = {{"report.csv", 12, "report", 201}, {"extra.txt", 3, "", 0}};
    a = fsm.resume(up);
    REQUIRE(a.type == action_type::publish_result);
    const auto& r = *a.result;
    CHECK(r.state == job_state::succeeded);
    CHECK(r.times.prepare_ms == 340);  // credentials, repository and sources
    CHECK(r.times.clone_ms == 140);    // credentials and the checkout
    CHECK(r.times.sources_ms == 200);  // the downloads
    CHECK(r.times.run_ms == 500);
    CHECK(r.times.upload_ms == 100);
    CHECK(r.times.total_ms == 1000);
    REQUIRE(r.outputs.size() == 2);
    CHECK(r.outputs[0].http_status == 201);
    CHECK(r.outputs[1].sink.empty());
    CHECK(fsm.resume(ok(t0 + 1001)).type == action_type::commit);
    CHECK(fsm.resume(ok(t0 + 1001)).type == action_type::done);
}

TEST_CASE("outputs matched to no sink are not uploaded", "[worker][unit]") {
    auto job = make_job();
    job.spec.sinks["report"] = {"https://store.example.org/r.csv", "PUT", {}, ""};
    lifecycle fsm(job, delivery_mode::at_least_once, config());
    to_running(fsm, t0);
    CHECK(fsm.resume(ok(t0)).type == action_type::prepare_repo);
    CHECK(fsm.resume(ok(t0)).type == action_type::run);
    auto rep = success_report();
    rep.outputs = {{"other.txt", 3, "", 0}};
    CHECK(fsm.resume(ran(t0 + 5, rep)).type == action_type::publish_result);
}

TEST_CASE("at-most-once commits before the run and never at the end", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
    CHECK(fsm.resume(ok(t0)).type == action_type::check_cancel);
    CHECK(fsm.resume(ok(t0)).type == action_type::acquire_slot);
    CHECK(fsm.resume(ok(t0)).type == action_type::check_cancel);
    CHECK(fsm.resume(ok(t0)).type == action_type::commit_before_run);
    CHECK_FALSE(fsm.released());
    auto a = fsm.resume(ok(t0 + 20));
    REQUIRE(a.type == action_type::publish_running);
    CHECK(fsm.released());
    CHECK(a.snapshot->started_at == t0 + 20);
    CHECK(fsm.resume(ok(t0 + 20)).type == action_type::prepare_repo);
    CHECK(fsm.resume(ok(t0 + 30)).type == action_type::run);
    a = fsm.resume(ran(t0 + 40, success_report()));
    REQUIRE(a.type == action_type::publish_result);
    CHECK(a.result->state == job_state::succeeded);
    CHECK(fsm.resume(ok(t0 + 41)).type == action_type::done);  // no commit: it happened before the run
}

TEST_CASE("at-most-once: a revoked partition before the commit hands the job back", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    REQUIRE(fsm.resume(ok(t0)).type == action_type::commit_before_run);
    CHECK(fsm.resume(with(step_status::aborted, t0)).type == action_type::abandon);
    CHECK_FALSE(fsm.run_started());
    CHECK_FALSE(fsm.released());
    CHECK(fsm.resume(ok(t0)).type == action_type::done);
}

TEST_CASE("at-most-once: a commit that times out ends the job failed, not run", "[worker][unit]") {
    // The offset stays released (the commit loop commits past it later), so
    // the message will not come back: the job must not stay queued.
    lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    REQUIRE(fsm.resume(ok(t0)).type == action_type::commit_before_run);
    failure f;
    f.kind = failure_kind::permanent;
    f.code = "commit_timeout";
    f.message = "at-most-once: the offset commit was not acknowledged within 60000 ms; the job did not run";
    auto a = fsm.resume(failed(t0 + 60'000, f));
    REQUIRE(a.type == action_type::publish_result);
    CHECK_FALSE(fsm.run_started());
    CHECK(fsm.released());
    CHECK(fsm.verdict() == retry_verdict::not_retryable);  // never a second message for it
    REQUIRE(a.result);
    CHECK(a.result->state == job_state::failed);
    CHECK(a.result->error.code == "commit_timeout");
    CHECK(a.result->times.started_at == 0);
    REQUIRE(a.snapshot);
    CHECK(a.snapshot->state == job_state::failed);
    CHECK(a.snapshot->error.code == "commit_timeout");
    CHECK_FALSE(a.retry);
    // No commit action: the offset was released before the wait.
    CHECK(fsm.resume(ok(t0 + 60'010)).type == action_type::done);
}

TEST_CASE("exactly-once stages the result for the transaction, then releases the offset", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::exactly_once, config());
    to_running(fsm, t0);
    CHECK(fsm.resume(ok(t0)).type == action_type::prepare_repo);
    CHECK(fsm.resume(ok(t0)).type == action_type::run);
    auto a = fsm.resume(ran(t0 + 10, success_report()));
    REQUIRE(a.type == action_type::stage_for_transaction);
    REQUIRE(a.result);
    REQUIRE(a.snapshot);
    CHECK(a.snapshot->state == job_state::succeeded);
    CHECK(a.snapshot->delivery == delivery_mode::exactly_once);
    CHECK_FALSE(a.retry);
    CHECK_FALSE(a.dead_letter);
    CHECK(fsm.resume(ok(t0 + 10)).type == action_type::commit);
    CHECK(fsm.resume(ok(t0 + 10)).type == action_type::done);
}

TEST_CASE("a job in the cancelled set is skipped with a cancelled result", "[worker][unit]") {
    for (auto mode : {delivery_mode::at_most_once, delivery_mode::at_least_once, delivery_mode::exactly_once}) {
        DYNAMIC_SECTION(jobs::to_string(mode)) {
            lifecycle fsm(make_job(), mode, config());
            CHECK(fsm.resume(ok(t0)).type == action_type::check_cancel);
            auto a = fsm.resume(with(step_status::cancelled, t0 + 5));
            CHECK(a.type == (mode == delivery_mode::exactly_once ? action_type::stage_for_transaction
                                                                  : action_type::publish_result));
            REQUIRE(a.result);
            CHECK(a.result->state == job_state::cancelled);
            CHECK(a.result->error.code == "cancelled");
            CHECK(a.result->times.started_at == 0);
            CHECK(a.snapshot->state == job_state::cancelled);
            CHECK(a.snapshot->result);
            CHECK_FALSE(fsm.run_started());
            CHECK(fsm.resume(ok(t0 + 6)).type == action_type::commit);  // not committed yet, in every mode
            CHECK(fsm.resume(ok(t0 + 6)).type == action_type::done);
        }
    }
}

TEST_CASE("a cancel that arrives while waiting for a slot skips the job", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
    fsm.resume(ok(t0));
    REQUIRE(fsm.resume(ok(t0)).type == action_type::acquire_slot);
    auto a = fsm.resume(with(step_status::cancelled, t0 + 9));
    REQUIRE(a.type == action_type::publish_result);
    CHECK(a.result->state == job_state::cancelled);
}

TEST_CASE("a cancel found right after the slot is acquired skips the job", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    REQUIRE(fsm.resume(ok(t0)).type == action_type::check_cancel);
    auto a = fsm.resume(with(step_status::cancelled, t0));
    REQUIRE(a.type == action_type::publish_result);
    CHECK(fsm.resume(ok(t0)).type == action_type::commit);  // at-most-once had not committed yet
}

TEST_CASE("cancelling a running job ends it cancelled with its partial output", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
    to_running(fsm, t0);
    fsm.resume(ok(t0));
    REQUIRE(fsm.resume(ok(t0)).type == action_type::run);
    run_report partial;
    partial.state = job_state::cancelled;
    partial.stdout_text = "half";
    input in = ran(t0 + 500, partial);
    in.status = step_status::cancelled;
    auto a = fsm.resume(in);
    REQUIRE(a.type == action_type::publish_result);
    CHECK(a.result->state == job_state::cancelled);
    CHECK(a.result->stdout_text == "half");
    CHECK(a.result->times.run_ms == 500);
    CHECK(fsm.final_state() == job_state::cancelled);
    CHECK(fsm.resume(ok(t0)).type == action_type::commit);
    CHECK(fsm.resume(ok(t0)).type == action_type::done);
}

TEST_CASE("a run that reports cancelled ends cancelled", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::exactly_once, config());
    to_running(fsm, t0);
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    run_report rep;
    rep.state = job_state::cancelled;
    auto a = fsm.resume(ran(t0 + 3, rep));
    REQUIRE(a.type == action_type::stage_for_transaction);
    CHECK(a.result->state == job_state::cancelled);
}

TEST_CASE("cancelling during preparation, download or upload ends cancelled", "[worker][unit]") {
    auto job = make_job();
    job.spec.sources["s"] = {"https://d.example.org/s", {}, ""};
    job.spec.sinks["o"] = {"https://d.example.org/o", "PUT", {}, ""};
    SECTION("prepare") {
        lifecycle fsm(job, delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::prepare_repo);
        CHECK(fsm.resume(with(step_status::cancelled, t0)).result->state == job_state::cancelled);
    }
    SECTION("download") {
        lifecycle fsm(job, delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        REQUIRE(fsm.resume(ok(t0)).type == action_type::download_sources);
        CHECK(fsm.resume(with(step_status::cancelled, t0)).result->state == job_state::cancelled);
    }
    SECTION("upload") {
        lifecycle fsm(job, delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        fsm.resume(ok(t0));
        auto rep = success_report();
        rep.outputs = {{"o", 1, "o", 0}};
        REQUIRE(fsm.resume(ok(t0)).type == action_type::run);
        REQUIRE(fsm.resume(ran(t0, rep)).type == action_type::upload_sinks);
        CHECK(fsm.resume(with(step_status::cancelled, t0)).result->state == job_state::cancelled);
    }
}

TEST_CASE("a retry waits for not_before without a slot", "[worker][unit]") {
    auto job = make_job(2);
    job.not_before = t0 + 5000;
    lifecycle fsm(job, delivery_mode::at_least_once, config());
    CHECK(fsm.resume(ok(t0 + 1000)).type == action_type::check_cancel);
    auto a = fsm.resume(ok(t0 + 1000));
    REQUIRE(a.type == action_type::wait_until);
    CHECK(a.until == t0 + 5000);
    CHECK_FALSE(fsm.holds_slot());
    CHECK(fsm.resume(ok(t0 + 5000)).type == action_type::check_cancel);  // look again after the wait
    CHECK(fsm.resume(ok(t0 + 5000)).type == action_type::acquire_slot);

    SECTION("a cancel during the wait skips the job") {
        lifecycle f2(job, delivery_mode::at_least_once, config());
        f2.resume(ok(t0));
        REQUIRE(f2.resume(ok(t0)).type == action_type::wait_until);
        auto c = f2.resume(with(step_status::cancelled, t0 + 10));
        REQUIRE(c.type == action_type::publish_result);
        CHECK(c.result->state == job_state::cancelled);
        CHECK(c.result->attempt == 2);
    }
    SECTION("shutdown during the wait hands the job back") {
        lifecycle f2(job, delivery_mode::at_least_once, config());
        f2.resume(ok(t0));
        REQUIRE(f2.resume(ok(t0)).type == action_type::wait_until);
        CHECK(f2.resume(with(step_status::aborted, t0 + 10)).type == action_type::abandon);
    }
}

TEST_CASE("at-most-once releases a held retry before waiting, and hands it back as it was", "[worker][unit]") {
    auto job = make_job(2);
    job.not_before = t0 + 5000;
    lifecycle fsm(job, delivery_mode::at_most_once, config());
    CHECK(fsm.resume(ok(t0)).type == action_type::check_cancel);
    CHECK(fsm.resume(ok(t0)).type == action_type::commit);
    CHECK(fsm.released());
    auto a = fsm.resume(ok(t0));
    REQUIRE(a.type == action_type::wait_until);
    CHECK(a.until == t0 + 5000);
    SECTION("the wait ends: the run goes on as usual") {
        CHECK(fsm.resume(ok(t0 + 5000)).type == action_type::check_cancel);
        CHECK(fsm.resume(ok(t0 + 5000)).type == action_type::acquire_slot);
        CHECK(fsm.resume(ok(t0 + 5000)).type == action_type::check_cancel);
        CHECK(fsm.resume(ok(t0 + 5000)).type == action_type::commit_before_run);
        CHECK(fsm.resume(ok(t0 + 5001)).type == action_type::publish_running);
    }
    SECTION("shutdown during the wait republishes the same attempt") {
        a = fsm.resume(with(step_status::aborted, t0 + 10));
        REQUIRE(a.type == action_type::schedule_retry);
        REQUIRE(a.retry);
        CHECK(a.retry->attempt == 2);
        CHECK(a.retry->not_before == t0 + 5000);
        CHECK_FALSE(a.snapshot);
        CHECK_FALSE(a.result);
        CHECK(fsm.resume(ok(t0 + 10)).type == action_type::done);
    }
    SECTION("a cancel during the wait: cancelled result, no second commit") {
        a = fsm.resume(with(step_status::cancelled, t0 + 10));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(fsm.resume(ok(t0 + 10)).type == action_type::done);
    }
}

TEST_CASE("an infrastructure failure with attempts left schedules a retry", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_least_once, config(), 0.5);
    to_running(fsm, t0);
    REQUIRE(fsm.resume(ok(t0)).type == action_type::prepare_repo);
    auto a = fsm.resume(failed(t0 + 2000, prepare_failure(git::git_errc::network_error, "connection refused")));
    REQUIRE(a.type == action_type::schedule_retry);
    REQUIRE(a.retry);
    CHECK(a.retry->attempt == 2);
    CHECK(a.retry->not_before == t0 + 2000 + 1000);  // initial backoff, jitter factor 1.0 at 0.5
    CHECK(a.retry->id == "01JABCDEFGHJKMNPQRSTVWXYZ0");
    CHECK(a.retry->submitted_at == t0);
    CHECK(a.retry->spec.repo.credential == "gitcred");  // the message is the job's own, credentials and all
    REQUIRE(a.snapshot);
    CHECK(a.snapshot->state == job_state::queued);
    CHECK(a.snapshot->attempt == 2);
    CHECK(a.snapshot->error.code == "network_error");
    CHECK(a.snapshot->worker.empty());
    CHECK_FALSE(a.result);
    CHECK(fsm.verdict() == retry_verdict::retry);

    a = fsm.resume(ok(t0 + 2010));
    REQUIRE(a.type == action_type::publish_result);
    REQUIRE(a.result);
    CHECK(a.result->state == job_state::failed);  // this attempt's outcome
    CHECK(a.result->attempt == 1);
    CHECK(a.result->error.code == "network_error");
    CHECK(a.result->times.prepare_ms == 2000);
    CHECK_FALSE(a.snapshot);  // no terminal snapshot: the job goes on
    CHECK_FALSE(fsm.final_state());
    CHECK(fsm.resume(ok(t0 + 2011)).type == action_type::commit);
    CHECK(fsm.resume(ok(t0 + 2011)).type == action_type::done);
}

TEST_CASE("exactly-once puts the retry, its queued snapshot and the result in one stage", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::exactly_once, config());
    to_running(fsm, t0);
    fsm.resume(ok(t0));
    auto a = fsm.resume(failed(t0 + 1, prepare_failure(git::git_errc::clone_failed, "disk full")));
    REQUIRE(a.type == action_type::stage_for_transaction);
    REQUIRE(a.retry);
    REQUIRE(a.result);
    REQUIRE(a.snapshot);
    CHECK(a.retry->attempt == 2);
    CHECK(a.snapshot->state == job_state::queued);
    CHECK(a.result->state == job_state::failed);
    CHECK_FALSE(a.dead_letter);
    CHECK(fsm.resume(ok(t0)).type == action_type::commit);
    CHECK(fsm.resume(ok(t0)).type == action_type::done);
}

TEST_CASE("after the last attempt the job is dead-lettered and ends failed", "[worker][unit]") {
    auto job = make_job(3);  // retries = 2: attempts 1..3
    SECTION("at-least-once") {
        lifecycle fsm(job, delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        auto a = fsm.resume(failed(t0 + 1, prepare_failure(git::git_errc::network_error, "timed out")));
        REQUIRE(a.type == action_type::dead_letter);
        CHECK(a.reason == "retries_exhausted: network_error: timed out");
        CHECK(fsm.verdict() == retry_verdict::exhausted);
        a = fsm.resume(ok(t0 + 2));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(a.result->state == job_state::failed);
        CHECK(a.result->error.code == "network_error");
        CHECK(a.result->error.message == "timed out (attempt 3 of 3, retries exhausted)");
        REQUIRE(a.snapshot);
        CHECK(a.snapshot->state == job_state::failed);
        CHECK(a.snapshot->attempt == 3);
        CHECK(a.snapshot->error.code == "network_error");
        CHECK(a.snapshot->result);
        CHECK(fsm.final_state() == job_state::failed);
        CHECK(fsm.resume(ok(t0)).type == action_type::commit);
        CHECK(fsm.resume(ok(t0)).type == action_type::done);
    }
    SECTION("exactly-once") {
        lifecycle fsm(job, delivery_mode::exactly_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        auto a = fsm.resume(failed(t0 + 1, prepare_failure(git::git_errc::network_error, "timed out")));
        REQUIRE(a.type == action_type::stage_for_transaction);
        CHECK(a.dead_letter);
        CHECK(a.reason == "retries_exhausted: network_error: timed out");
        CHECK(a.snapshot->state == job_state::failed);
        CHECK_FALSE(a.retry);
        CHECK(fsm.resume(ok(t0)).type == action_type::commit);
    }
    SECTION("the worker's cap on retries applies") {
        auto cfg = config();
        cfg.retry.max_retries = 0;
        lifecycle fsm(make_job(1), delivery_mode::at_least_once, cfg);
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        auto a = fsm.resume(failed(t0 + 1, prepare_failure(git::git_errc::clone_failed, "x")));
        CHECK(a.type == action_type::dead_letter);
    }
}

TEST_CASE("permanent failures are not retried and not dead-lettered", "[worker][unit]") {
    for (auto code : {git::git_errc::repo_not_found, git::git_errc::ref_not_found, git::git_errc::auth_failed,
                      git::git_errc::scheme_not_allowed, git::git_errc::invalid_url, git::git_errc::host_key_rejected}) {
        DYNAMIC_SECTION(git::to_string(code)) {
            lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
            to_running(fsm, t0);
            fsm.resume(ok(t0));
            auto a = fsm.resume(failed(t0 + 1, prepare_failure(code, "nope")));
            REQUIRE(a.type == action_type::publish_result);
            CHECK(a.result->state == job_state::failed);
            CHECK(a.result->error.code == git::to_string(code));
            CHECK(a.result->error.message == "nope");
            CHECK(a.snapshot->state == job_state::failed);
            CHECK(fsm.verdict() == retry_verdict::not_retryable);
            CHECK(fsm.resume(ok(t0)).type == action_type::commit);
        }
    }
    SECTION("an invalid manifest") {
        lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        auto a = fsm.resume(failed(t0 + 1, convention_failure("invalid_manifest", "faasd.json: unknown key")));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(a.result->error.code == "invalid_manifest");
    }
}

TEST_CASE("credentials that do not open", "[worker][unit]") {
    auto job = make_job();
    job.spec.credentials.ciphertext_b64 = "x";
    SECTION("tampered: permanent") {
        lifecycle fsm(job, delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::open_credentials);
        auto a = fsm.resume(failed(t0, credentials_failure(errc::unauthorized)));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(a.result->error.code == "credentials_invalid");
    }
    SECTION("unknown key: retried") {
        lifecycle fsm(job, delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::open_credentials);
        auto a = fsm.resume(failed(t0, credentials_failure(errc::not_found)));
        REQUIRE(a.type == action_type::schedule_retry);
        CHECK(a.snapshot->error.code == "credentials_unavailable");
    }
}

TEST_CASE("the function's own failure is retried only when the job asks", "[worker][unit]") {
    SECTION("exit_nonzero without retry_on_failure") {
        lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::prepare_repo);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::run);
        auto a = fsm.resume(ran(t0 + 7, function_failed(job_state::failed, "exit_nonzero", 3)));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(a.result->state == job_state::failed);
        CHECK(a.result->exit_code == 3);
        CHECK(a.result->stderr_text == "boom");
        CHECK(a.result->error.code == "exit_nonzero");
        CHECK(fsm.verdict() == retry_verdict::not_retryable);
    }
    SECTION("exit_nonzero with retry_on_failure") {
        auto job = make_job();
        job.spec.retry_on_failure = true;
        lifecycle fsm(job, delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::prepare_repo);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::run);
        auto a = fsm.resume(ran(t0 + 7, function_failed(job_state::failed, "exit_nonzero", 3)));
        REQUIRE(a.type == action_type::schedule_retry);
        CHECK(a.retry->attempt == 2);
        a = fsm.resume(ok(t0 + 8));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(a.result->exit_code == 3);
    }
    SECTION("a timeout ends timed_out") {
        lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::prepare_repo);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::run);
        auto a = fsm.resume(ran(t0 + 7, function_failed(job_state::timed_out, "timeout", 143)));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(a.result->state == job_state::timed_out);
        CHECK(a.snapshot->state == job_state::timed_out);
        CHECK(a.result->error.code == "timeout");
        CHECK(fsm.final_state() == job_state::timed_out);
    }
    SECTION("a limit exhausted with retry_on_failure is dead-lettered and keeps its state") {
        auto job = make_job(3);
        job.spec.retry_on_failure = true;
        lifecycle fsm(job, delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::prepare_repo);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::run);
        auto a = fsm.resume(ran(t0 + 7, function_failed(job_state::timed_out, "timeout", 143)));
        REQUIRE(a.type == action_type::dead_letter);
        a = fsm.resume(ok(t0 + 8));
        CHECK(a.result->state == job_state::timed_out);
    }
}

TEST_CASE("a sink that fails after the run", "[worker][unit]") {
    auto job = make_job();
    job.spec.sinks["o"] = {"https://d.example.org/o", "PUT", {}, ""};
    auto rep = success_report();
    rep.outputs = {{"o", 1, "o", 0}};
    failure f;
    f.kind = failure_kind::infrastructure;
    f.code = "sink_failed";
    f.message = "sink o: 503 after 3 tries";
    SECTION("at-least-once retries the attempt") {
        lifecycle fsm(job, delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        fsm.resume(ok(t0));
        REQUIRE(fsm.resume(ran(t0, rep)).type == action_type::upload_sinks);
        input in = failed(t0 + 100, f);
        in.outputs = {{"o", 1, "o", 503}};
        auto a = fsm.resume(in);
        REQUIRE(a.type == action_type::schedule_retry);
        a = fsm.resume(ok(t0 + 101));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(a.result->outputs.at(0).http_status == 503);
        CHECK(a.result->times.upload_ms == 100);
    }
    SECTION("at-most-once never runs the function again") {
        lifecycle fsm(job, delivery_mode::at_most_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        fsm.resume(ok(t0));
        REQUIRE(fsm.resume(ran(t0, rep)).type == action_type::upload_sinks);
        auto a = fsm.resume(failed(t0 + 100, f));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(a.result->state == job_state::failed);
        CHECK(a.result->error.code == "sink_failed");
        CHECK(fsm.verdict() == retry_verdict::not_retryable);
        CHECK(fsm.resume(ok(t0)).type == action_type::done);
    }
}

TEST_CASE("at-most-once retries failures before the run (the function never ran)", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
    to_running(fsm, t0);
    REQUIRE(fsm.resume(ok(t0)).type == action_type::prepare_repo);
    auto a = fsm.resume(failed(t0, prepare_failure(git::git_errc::network_error, "reset")));
    REQUIRE(a.type == action_type::schedule_retry);
    CHECK(fsm.resume(ok(t0)).type == action_type::publish_result);
    CHECK(fsm.resume(ok(t0)).type == action_type::done);  // already committed
}

TEST_CASE("an aborted step hands the job back (revoked partition, shutdown)", "[worker][unit]") {
    for (auto mode : {delivery_mode::at_least_once, delivery_mode::exactly_once}) {
        DYNAMIC_SECTION(jobs::to_string(mode)) {
            lifecycle fsm(make_job(), mode, config());
            to_running(fsm, t0);
            fsm.resume(ok(t0));
            REQUIRE(fsm.resume(ok(t0)).type == action_type::run);
            auto a = fsm.resume(with(step_status::aborted, t0 + 7));
            REQUIRE(a.type == action_type::abandon);
            // The hand-back snapshot: same attempt, queued, this delivery's count.
            REQUIRE(a.snapshot);
            CHECK(a.snapshot->state == job_state::queued);
            CHECK(a.snapshot->attempt == 1);
            CHECK(a.snapshot->deliveries == 1);
            CHECK(a.snapshot->worker.empty());
            CHECK(a.snapshot->updated_at == t0 + 7);
            CHECK_FALSE(a.snapshot->result);
            CHECK_FALSE(fsm.released());
            CHECK(fsm.resume(ok(t0)).type == action_type::done);
        }
    }
    SECTION("while waiting for a slot") {
        lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
        fsm.resume(ok(t0));
        REQUIRE(fsm.resume(ok(t0)).type == action_type::acquire_slot);
        auto a = fsm.resume(with(step_status::aborted, t0));
        CHECK(a.type == action_type::abandon);
        CHECK_FALSE(a.snapshot);  // it never ran: nothing to hand back on the state topic
    }
    SECTION("while publishing the result (at-least-once: it runs again elsewhere)") {
        lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        fsm.resume(ok(t0));
        REQUIRE(fsm.resume(ran(t0, success_report())).type == action_type::publish_result);
        CHECK(fsm.resume(with(step_status::aborted, t0)).type == action_type::abandon);
    }
}

TEST_CASE("at-most-once: a stop after the commit ends the job, it cannot come back", "[worker][unit]") {
    SECTION("during the run: failed, interrupted, never retried") {
        lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        REQUIRE(fsm.resume(ok(t0)).type == action_type::run);
        auto a = fsm.resume(with(step_status::aborted, t0 + 9));
        REQUIRE(a.type == action_type::publish_result);
        CHECK(a.result->state == job_state::failed);
        CHECK(a.result->error.code == "interrupted");
        CHECK(a.snapshot->state == job_state::failed);
        CHECK(fsm.resume(ok(t0)).type == action_type::done);
    }
    SECTION("before the run: retried") {
        lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
        to_running(fsm, t0);
        REQUIRE(fsm.resume(ok(t0)).type == action_type::prepare_repo);
        auto a = fsm.resume(with(step_status::aborted, t0 + 9));
        REQUIRE(a.type == action_type::schedule_retry);
        CHECK(a.snapshot->error.code == "interrupted");
    }
    SECTION("while publishing the result: done (already committed)") {
        lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
        to_running(fsm, t0);
        fsm.resume(ok(t0));
        fsm.resume(ok(t0));
        REQUIRE(fsm.resume(ran(t0, success_report())).type == action_type::publish_result);
        CHECK(fsm.resume(with(step_status::aborted, t0)).type == action_type::done);
    }
}

TEST_CASE("the sandbox failing to start is an infrastructure failure", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
    to_running(fsm, t0);
    fsm.resume(ok(t0));
    REQUIRE(fsm.resume(ok(t0)).type == action_type::run);
    auto a = fsm.resume(failed(t0 + 1, worker_failure("bwrap: cannot start")));
    REQUIRE(a.type == action_type::schedule_retry);
    CHECK(a.snapshot->error.code == "worker_error");
}

TEST_CASE("poison messages go to dead-letter and release their offset", "[worker][unit]") {
    SECTION("at-least-once") {
        auto fsm = lifecycle::poison(delivery_mode::at_least_once, "bad_message: not JSON", config());
        CHECK(fsm.is_poison());
        auto a = fsm.resume(ok(t0));
        REQUIRE(a.type == action_type::dead_letter);
        CHECK(a.reason == "bad_message: not JSON");
        CHECK_FALSE(a.result);
        CHECK(fsm.resume(ok(t0)).type == action_type::commit);
        CHECK(fsm.resume(ok(t0)).type == action_type::done);
    }
    SECTION("at-most-once") {
        auto fsm = lifecycle::poison(delivery_mode::at_most_once, "unsupported_version", config());
        CHECK(fsm.resume(ok(t0)).type == action_type::dead_letter);
        CHECK(fsm.resume(ok(t0)).type == action_type::commit);
        CHECK(fsm.resume(ok(t0)).type == action_type::done);
    }
    SECTION("exactly-once: in the transaction with the offset") {
        auto fsm = lifecycle::poison(delivery_mode::exactly_once, "bad_message: x", config());
        auto a = fsm.resume(ok(t0));
        REQUIRE(a.type == action_type::stage_for_transaction);
        CHECK(a.dead_letter);
        CHECK_FALSE(a.result);
        CHECK_FALSE(a.snapshot);
        CHECK(fsm.resume(ok(t0)).type == action_type::commit);
        CHECK(fsm.resume(ok(t0)).type == action_type::done);
    }
}

TEST_CASE("a large result is cut to the result budget, the snapshot carries a smaller copy", "[worker][unit]") {
    auto cfg = config();
    cfg.results.result_bytes = 64 * 1024;
    cfg.results.snapshot_bytes = 8 * 1024;
    lifecycle fsm(make_job(), delivery_mode::at_least_once, cfg);
    to_running(fsm, t0 + 10);
    REQUIRE(fsm.resume(ok(t0 + 20)).type == action_type::prepare_repo);
    REQUIRE(fsm.resume(ok(t0 + 30)).type == action_type::run);
    auto rep = success_report();
    rep.stdout_text = std::string(1 << 20, 'o');
    rep.stderr_text = std::string(1 << 20, 'e');
    boost::json::array big;
    for (int i = 0; i < 20000; ++i) big.push_back(i);
    rep.output = boost::json::object{{"numbers", big}};
    auto a = fsm.resume(ran(t0 + 40, rep));
    REQUIRE(a.type == action_type::publish_result);
    REQUIRE(a.result);
    CHECK(encoded_size(*a.result) <= cfg.results.result_bytes);
    CHECK(a.result->capped);
    CHECK(a.result->stdout_truncated);
    CHECK(a.result->stderr_truncated);
    CHECK(a.result->state == job_state::succeeded);
    CHECK(a.result->stdout_text.find("[faasd: cut to fit the result size limit:") != std::string::npos);
    REQUIRE(a.snapshot);
    REQUIRE(a.snapshot->result);
    CHECK(encoded_size(*a.snapshot->result) <= cfg.results.snapshot_bytes);
    CHECK(a.snapshot->result->capped);
    CHECK(jobs::encode(*a.snapshot).size() <= cfg.results.snapshot_bytes + 2048);
}

TEST_CASE("a refused result is published again cut to the fallback size, then dead-lettered", "[worker][unit]") {
    auto job_failed_publish = [](jobs::unix_ms now) {
        failure f;
        f.kind = failure_kind::permanent;
        f.code = publish_refused_code;
        f.message = "Kafka refused the record: MSG_SIZE_TOO_LARGE";
        return failed(now, f);
    };
    lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
    to_running(fsm, t0 + 10);
    REQUIRE(fsm.resume(ok(t0 + 20)).type == action_type::prepare_repo);
    REQUIRE(fsm.resume(ok(t0 + 30)).type == action_type::run);
    auto rep = success_report();
    rep.stdout_text = std::string(100'000, 'o');
    auto a = fsm.resume(ran(t0 + 40, rep));
    REQUIRE(a.type == action_type::publish_result);
    CHECK_FALSE(a.result->capped);

    // First refusal: the same outcome again, cut to the fallback size.
    a = fsm.resume(job_failed_publish(t0 + 50));
    REQUIRE(a.type == action_type::publish_result);
    REQUIRE(a.result);
    CHECK(a.result->capped);
    CHECK(encoded_size(*a.result) <= result_limits::fallback_bytes);
    CHECK(a.result->state == job_state::succeeded);
    REQUIRE(a.snapshot);
    REQUIRE(a.snapshot->result);
    CHECK(encoded_size(*a.snapshot->result) <= result_limits::fallback_bytes);

    // Second refusal: the message goes to dead-letter, the offset is released.
    a = fsm.resume(job_failed_publish(t0 + 60));
    REQUIRE(a.type == action_type::dead_letter);
    CHECK(a.reason.rfind("publish_refused: ", 0) == 0);
    CHECK(fsm.resume(ok(t0 + 70)).type == action_type::commit);
    CHECK(fsm.resume(ok(t0 + 70)).type == action_type::done);
}

TEST_CASE("a refused dead letter is skipped: the sequence always ends", "[worker][unit]") {
    failure f;
    f.kind = failure_kind::permanent;
    f.code = publish_refused_code;
    auto fsm = lifecycle::poison(delivery_mode::at_least_once, "bad_message: not JSON", config());
    REQUIRE(fsm.resume(ok(t0)).type == action_type::dead_letter);
    CHECK(fsm.resume(failed(t0, f)).type == action_type::commit);
    CHECK(fsm.resume(ok(t0)).type == action_type::done);
}

TEST_CASE("a failed download reports the clone and the download time so far", "[worker][unit]") {
    auto job = make_job();
    job.spec.sources["text"] = {"https://data.example.org/t.txt", {}, ""};
    lifecycle fsm(job, delivery_mode::at_least_once, config());
    to_running(fsm, t0 + 50);  // preparation starts at t0 + 50
    REQUIRE(fsm.resume(ok(t0 + 50)).type == action_type::prepare_repo);
    REQUIRE(fsm.resume(ok(t0 + 150)).type == action_type::download_sources);
    failure f;
    f.kind = failure_kind::permanent;
    f.code = "source_failed";
    auto a = fsm.resume(failed(t0 + 450, f));
    REQUIRE(a.type == action_type::publish_result);
    CHECK(a.result->times.clone_ms == 100);
    CHECK(a.result->times.sources_ms == 300);
    CHECK(a.result->times.prepare_ms == 400);
    CHECK(a.result->times.run_ms == 0);
}

TEST_CASE("deliveries: a redelivery after a lost worker counts, past the maximum it ends worker_lost", "[worker][unit]") {
    for (auto mode : {delivery_mode::at_least_once, delivery_mode::exactly_once}) {
        DYNAMIC_SECTION(jobs::to_string(mode)) {
            auto cfg = config();
            cfg.max_deliveries = 3;
            SECTION("the third delivery runs") {
                lifecycle fsm(make_job(), mode, cfg);
                fsm.resume(ok(t0));
                fsm.resume(ok(t0));
                fsm.resume(ok(t0));
                REQUIRE(fsm.resume(ok(t0)).type == action_type::count_delivery);
                auto a = fsm.resume(prior(2, t0 + 5));
                REQUIRE(a.type == action_type::publish_running);
                CHECK(a.snapshot->deliveries == 3);
                CHECK(fsm.deliveries() == 3);
            }
            SECTION("the fourth is dead-lettered and ends failed, without running") {
                lifecycle fsm(make_job(), mode, cfg);
                fsm.resume(ok(t0));
                fsm.resume(ok(t0));
                fsm.resume(ok(t0));
                REQUIRE(fsm.resume(ok(t0)).type == action_type::count_delivery);
                auto a = fsm.resume(prior(3, t0 + 5));
                CHECK_FALSE(fsm.run_started());
                CHECK(fsm.final_state() == job_state::failed);
                CHECK(fsm.verdict() == retry_verdict::exhausted);
                if (mode == delivery_mode::exactly_once) {
                    REQUIRE(a.type == action_type::stage_for_transaction);
                    CHECK(a.dead_letter);
                    CHECK(a.reason.rfind("worker_lost: ", 0) == 0);
                } else {
                    REQUIRE(a.type == action_type::dead_letter);
                    CHECK(a.reason.rfind("worker_lost: ", 0) == 0);
                    a = fsm.resume(ok(t0 + 6));
                    REQUIRE(a.type == action_type::publish_result);
                }
                REQUIRE(a.result);
                CHECK(a.result->state == job_state::failed);
                CHECK(a.result->error.code == "worker_lost");
                CHECK(a.result->error.message.find("lost 3 times") != std::string::npos);
                REQUIRE(a.snapshot);
                CHECK(a.snapshot->state == job_state::failed);
                CHECK(a.snapshot->error.code == "worker_lost");
                CHECK(fsm.resume(ok(t0 + 7)).type == action_type::commit);
                CHECK(fsm.resume(ok(t0 + 7)).type == action_type::done);
            }
        }
    }
}

TEST_CASE("deliveries: at-most-once and --max-deliveries 0 do not count", "[worker][unit]") {
    {
        lifecycle fsm(make_job(), delivery_mode::at_most_once, config());
        to_running(fsm, t0);  // commit_before_run, then publish_running: no count_delivery
        CHECK(fsm.deliveries() == 1);
    }
    auto cfg = config();
    cfg.max_deliveries = 0;
    lifecycle fsm(make_job(), delivery_mode::at_least_once, cfg);
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    auto a = fsm.resume(ok(t0));
    REQUIRE(a.type == action_type::publish_running);
    CHECK(a.snapshot->deliveries == 1);
}

TEST_CASE("deliveries: a cancel or an abort while counting", "[worker][unit]") {
    lifecycle fsm(make_job(), delivery_mode::at_least_once, config());
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    fsm.resume(ok(t0));
    REQUIRE(fsm.resume(ok(t0)).type == action_type::count_delivery);
    SECTION("cancelled") { CHECK(fsm.resume(with(step_status::cancelled, t0)).result->state == job_state::cancelled); }
    SECTION("aborted") {
        auto a = fsm.resume(with(step_status::aborted, t0));
        CHECK(a.type == action_type::abandon);
        CHECK_FALSE(a.snapshot);
    }
}
