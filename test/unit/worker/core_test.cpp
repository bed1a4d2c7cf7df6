// The worker's pure pieces besides the lifecycle: the offset tracker, the
// retry policy, the cancelled set, outcome mapping and wire formats.

#include <faasd/worker/cancel_set.hpp>
#include <faasd/worker/delivery_view.hpp>
#include <faasd/worker/messages.hpp>
#include <faasd/worker/offset_tracker.hpp>
#include <faasd/worker/outcome.hpp>
#include <faasd/worker/outcome_map.hpp>
#include <faasd/worker/result_budget.hpp>
#include <faasd/worker/retry.hpp>

#include <faasd/jobs/codec.hpp>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace faasd;
using namespace faasd::worker;
using namespace std::chrono_literals;

TEST_CASE("offset tracker: the watermark is the oldest unfinished offset", "[worker][unit]") {
    offset_tracker t;
    partition_id p{"faasd.jobs.at-least-once", 3};
    CHECK_FALSE(t.watermark(p));
    CHECK(t.pending().empty());
    for (std::int64_t o : {10, 11, 12, 13}) CHECK(t.track(p, o));
    CHECK(t.watermark(p) == 10);
    CHECK(t.outstanding(p) == 4);

    // Out-of-order completions do not move the watermark past 10.
    CHECK(t.release(p, 11));
    CHECK(t.release(p, 13));
    CHECK(t.watermark(p) == 10);
    REQUIRE(t.pending().size() == 1);
    CHECK(t.pending()[0] == commit_position{p, 10});

    CHECK(t.release(p, 10));
    CHECK(t.watermark(p) == 12);
    CHECK(t.release(p, 12));
    CHECK(t.watermark(p) == 14);  // everything done: one past the highest received
    CHECK(t.outstanding() == 0);

    t.committed(p, 14);
    CHECK(t.pending().empty());
    CHECK(t.covered(p, 13));
    CHECK_FALSE(t.covered(p, 14));
    t.committed(p, 12);  // positions never move back
    CHECK(t.committed_position(p) == 14);
}

TEST_CASE("offset tracker: partitions are independent, gaps and duplicates", "[worker][unit]") {
    offset_tracker t;
    partition_id a{"t", 0}, b{"t", 1};
    t.track(a, 5);
    t.track(b, 100);
    t.track(a, 9);  // a gap (compaction, transaction markers) is fine
    CHECK_FALSE(t.track(a, 9));  // a redelivery of something seen is ignored
    CHECK_FALSE(t.track(a, 7));
    CHECK(t.release(b, 100));
    CHECK_FALSE(t.release(b, 100));
    CHECK_FALSE(t.release(a, 6));
    auto pend = t.pending();
    REQUIRE(pend.size() == 2);
    CHECK(pend[0] == commit_position{a, 5});
    CHECK(pend[1] == commit_position{b, 101});
    t.release(a, 5);
    CHECK(t.watermark(a) == 9);
    t.release(a, 9);
    CHECK(t.watermark(a) == 10);

    t.forget(a);  // revoked
    CHECK_FALSE(t.watermark(a));
    CHECK(t.partitions() == std::vector<partition_id>{b});
    t.committed(a, 50);  // a late acknowledgement for a forgotten partition is ignored
    CHECK(t.committed_position(a) == -1);
    // Reassigned later: starts over from what the group committed.
    CHECK(t.track(a, 3));
    CHECK(t.watermark(a) == 3);
}

TEST_CASE("retry policy: attempts, backoff and jitter", "[worker][unit]") {
    retry_policy p;
    p.max_retries = 3;
    p.initial_backoff = 1000ms;
    p.max_backoff = 10000ms;
    CHECK(validate(p).empty());
    jobs::job_spec s;
    s.retries = 2;
    CHECK(max_attempts(p, s) == 3);
    s.retries = 9;
    CHECK(max_attempts(p, s) == 4);  // capped by the worker
    s.retries = -1;
    CHECK(max_attempts(p, s) == 1);

    CHECK(backoff(p, 1, 0.5) == 1000ms);
    CHECK(backoff(p, 2, 0.5) == 2000ms);
    CHECK(backoff(p, 3, 0.5) == 4000ms);
    CHECK(backoff(p, 4, 0.5) == 8000ms);
    CHECK(backoff(p, 5, 0.5) == 10000ms);  // capped
    CHECK(backoff(p, 60, 0.5) == 10000ms);
    CHECK(backoff(p, 1, 0.0) == 750ms);    // jitter: [0.75, 1.25) of the base
    CHECK(backoff(p, 1, 0.999) >= 1249ms);
    CHECK(backoff(p, 5, 0.999) == 10000ms);  // never above the cap

    retry_policy bad = p;
    bad.max_backoff = 10ms;
    CHECK_FALSE(validate(bad).empty());
    bad = p;
    bad.max_retries = -1;
    CHECK_FALSE(validate(bad).empty());
}

TEST_CASE("retry decisions by failure kind, mode and attempt", "[worker][unit]") {
    retry_policy p;
    p.max_retries = 5;
    jobs::job_message m;
    m.attempt = 1;
    m.spec.retries = 2;
    using K = failure_kind;
    using V = retry_verdict;
    const auto alo = jobs::delivery_mode::at_least_once;
    const auto amo = jobs::delivery_mode::at_most_once;
    const auto eos = jobs::delivery_mode::exactly_once;

    auto d = decide_retry(p, m, K::infrastructure, alo, true, 1000, 0.5);
    CHECK(d.verdict == V::retry);
    CHECK(d.next_attempt == 2);
    CHECK(d.not_before == 2000);
    CHECK(decide_retry(p, m, K::infrastructure, eos, true, 0, 0.5).verdict == V::retry);
    CHECK(decide_retry(p, m, K::permanent, alo, false, 0, 0.5).verdict == V::not_retryable);
    CHECK(decide_retry(p, m, K::function, alo, true, 0, 0.5).verdict == V::not_retryable);
    CHECK(decide_retry(p, m, K::infrastructure, amo, false, 0, 0.5).verdict == V::retry);
    CHECK(decide_retry(p, m, K::infrastructure, amo, true, 0, 0.5).verdict == V::not_retryable);
    m.spec.retry_on_failure = true;
    CHECK(decide_retry(p, m, K::function, alo, true, 0, 0.5).verdict == V::retry);
    CHECK(decide_retry(p, m, K::function, amo, true, 0, 0.5).verdict == V::not_retryable);
    m.attempt = 3;
    CHECK(decide_retry(p, m, K::infrastructure, alo, true, 0, 0.5).verdict == V::exhausted);
    CHECK(decide_retry(p, m, K::function, alo, true, 0, 0.5).verdict == V::exhausted);
    CHECK(decide_retry(p, m, K::permanent, alo, true, 0, 0.5).verdict == V::not_retryable);
    m.attempt = 2;
    d = decide_retry(p, m, K::infrastructure, alo, true, 0, 0.0);
    CHECK(d.next_attempt == 3);
    CHECK(d.not_before == 1500);  // 2 s * 0.75
}

TEST_CASE("sandbox outcomes map to job states and failure codes", "[worker][unit]") {
    using sandbox::run_outcome;
    struct row {
        run_outcome outcome;
        jobs::job_state state;
        const char* code;  // "" for no failure
    };
    const row rows[] = {
        {run_outcome::succeeded, jobs::job_state::succeeded, ""},
        {run_outcome::exit_nonzero, jobs::job_state::failed, "exit_nonzero"},
        {run_outcome::killed_by_signal, jobs::job_state::failed, "killed_by_signal"},
        {run_outcome::timeout, jobs::job_state::timed_out, "timeout"},
        {run_outcome::cpu_limit, jobs::job_state::failed, "cpu_limit"},
        {run_outcome::memory_limit, jobs::job_state::failed, "memory_limit"},
        {run_outcome::pids_limit, jobs::job_state::failed, "pids_limit"},
        {run_outcome::disk_limit, jobs::job_state::failed, "disk_limit"},
        {run_outcome::output_limit, jobs::job_state::failed, "output_limit"},
        {run_outcome::cancelled, jobs::job_state::cancelled, ""},
    };
    for (const auto& r : rows) {
        INFO(sandbox::to_string(r.outcome));
        sandbox::run_status st;
        st.outcome = r.outcome;
        st.message = "why";
        auto v = classify_run(st);
        CHECK(v.state == r.state);
        if (*r.code == '\0') {
            CHECK_FALSE(v.fail);
        } else {
            REQUIRE(v.fail);
            CHECK(v.fail->code == r.code);
            CHECK(v.fail->kind == failure_kind::function);
            CHECK(v.fail->state == r.state);
            CHECK(v.fail->message == "why");
        }
    }
}

TEST_CASE("preparation, credential and transfer failures are classified", "[worker][unit]") {
    using git::git_errc;
    CHECK(prepare_failure(git_errc::network_error, "m").kind == failure_kind::infrastructure);
    CHECK(prepare_failure(git_errc::clone_failed, "m").kind == failure_kind::infrastructure);
    CHECK(prepare_failure(git_errc::repo_not_found, "m").kind == failure_kind::permanent);
    CHECK(prepare_failure(git_errc::ref_not_found, "m").code == "ref_not_found");
    CHECK(prepare_failure(git_errc::auth_failed, "").message == "auth_failed");
    CHECK(convention_failure("no_entry", "x").kind == failure_kind::permanent);
    CHECK(credentials_failure(errc::not_found).kind == failure_kind::infrastructure);
    CHECK(credentials_failure(errc::unauthorized).code == "credentials_invalid");
    CHECK(credentials_failure(errc::bad_message).kind == failure_kind::permanent);
    CHECK(worker_failure("x").kind == failure_kind::infrastructure);

    CHECK(transfer_failure_kind("timeout", 0) == failure_kind::infrastructure);
    CHECK(transfer_failure_kind("connect_failed", 0) == failure_kind::infrastructure);
    CHECK(transfer_failure_kind("bad_status", 503) == failure_kind::infrastructure);
    CHECK(transfer_failure_kind("bad_status", 429) == failure_kind::infrastructure);
    CHECK(transfer_failure_kind("bad_status", 404) == failure_kind::permanent);
    CHECK(transfer_failure_kind("bad_status", 403) == failure_kind::permanent);
    CHECK(transfer_failure_kind("address_forbidden", 0) == failure_kind::permanent);
    CHECK(transfer_failure_kind("too_large", 0) == failure_kind::permanent);
    CHECK(transfer_failure_kind("tls_error", 0) == failure_kind::permanent);
}

TEST_CASE("the cancelled set is bounded in size and time", "[worker][unit]") {
    cancel_set s(3, 10s);
    const jobs::unix_ms now = 1'000'000;
    s.add("a", now, now);
    s.add("b", now + 1, now);
    CHECK(s.contains("a", now));
    CHECK_FALSE(s.contains("c", now));
    CHECK(s.contains("a", now + 9'999));
    CHECK_FALSE(s.contains("a", now + 10'000));  // expired
    s.add("c", now + 2, now);
    s.add("d", now + 3, now);  // over capacity: the oldest goes
    CHECK(s.size() == 3);
    CHECK_FALSE(s.contains("a", now));
    CHECK(s.contains("d", now));
    s.add("old", now - 20'000, now);  // already expired: not added
    CHECK_FALSE(s.contains("old", now));
    s.add("b", now + 5, now);  // a repeated cancel refreshes the entry
    s.expire(now + 10'002);
    CHECK(s.contains("b", now + 10'002));
    CHECK_FALSE(s.contains("c", now + 10'002));
    CHECK(s.size() == 2);  // b and d (d at now+3 expires at now+10'003)
    s.expire(now + 20'000);
    CHECK(s.size() == 0);
    for (int i = 0; i < 1000; ++i) s.add("x" + std::to_string(i % 7), now + i, now);
    CHECK(s.size() == 3);
}

TEST_CASE("heartbeats and cancel requests on the wire", "[worker][unit]") {
    heartbeat h{"w-1", 4, 2, 1234, worker_state::draining};
    auto text = encode(h);
    CHECK(text == R"({"v":1,"worker":"w-1","slots":4,"busy":2,"at":1234,"state":"draining"})");
    auto back = decode_heartbeat(text);
    REQUIRE(back.has_value());
    CHECK(*back == h);
    CHECK(decode_heartbeat(R"({"v":2,"worker":"w"})").error() == errc::unsupported_version);
    CHECK(decode_heartbeat("nope").error() == errc::bad_message);
    CHECK(decode_heartbeat(R"({"v":1,"worker":"w","slots":1,"busy":0,"at":1,"state":"gone"})").error() ==
          errc::bad_message);

    cancel_request c{"01JABC", "sub-9", 77};
    auto cr = decode_cancel(std::string_view("01JABC"), encode(c), 5);
    REQUIRE(cr.has_value());
    CHECK(*cr == c);
    auto keyed = decode_cancel(std::string_view("01JKEY"), R"({"v":1})", 5);
    REQUIRE(keyed.has_value());
    CHECK(keyed->id == "01JKEY");
    CHECK(keyed->at == 5);
    CHECK(decode_cancel(std::nullopt, R"({"v":1})", 5).error() == errc::bad_message);
    CHECK(decode_cancel(std::nullopt, R"({"v":3,"id":"x"})", 5).error() == errc::unsupported_version);

    auto hdr = dead_letter_headers("bad_message: x", "faasd.jobs.at-least-once", 2, 41, "w-1", 0);
    REQUIRE(hdr.size() == 5);
    CHECK(hdr[0] == std::pair<std::string, std::string>{"faasd-reason", "bad_message: x"});
    CHECK(hdr[3].second == "41");
    CHECK(dead_letter_headers("r", "t", 0, 0, "w", 3).back() == std::pair<std::string, std::string>{"faasd-attempt", "3"});
}

namespace {

jobs::job_result sample_result() {
    jobs::job_result r;
    r.id = "01JABCDEFGHJKMNPQRSTVWXYZ0";
    r.owner_subject = "sub-1";
    r.state = jobs::job_state::succeeded;
    r.worker = "w-1";
    r.exit_code = 0;
    r.output = boost::json::object{{"answer", 42}};
    r.stdout_text = "hello\n";
    return r;
}

}  // namespace

TEST_CASE("result budget: a result that fits is left alone", "[worker][unit]") {
    auto r = sample_result();
    const auto before = jobs::encode(r);
    CHECK_FALSE(fit_result(r, 4096));
    CHECK(jobs::encode(r) == before);
    CHECK_FALSE(r.capped);
}

TEST_CASE("result budget: logs are cut first, the output is kept when it fits", "[worker][unit]") {
    auto r = sample_result();
    r.stdout_text = std::string(300'000, 'o');
    r.stderr_text = std::string(10, 'e');
    REQUIRE(fit_result(r, 64 * 1024));
    CHECK(encoded_size(r) <= 64 * 1024);
    CHECK(r.capped);
    CHECK(r.stdout_truncated);
    CHECK_FALSE(r.stderr_truncated);  // stderr was small: stdout got its share
    CHECK(r.stderr_text == std::string(10, 'e'));
    CHECK(r.output.at("answer") == 42);
    CHECK(r.stdout_text.size() > 50'000);  // most of the budget went to stdout
    CHECK(r.stdout_text.find("[faasd: cut to fit the result size limit: ") != std::string::npos);
    CHECK(r.stdout_text.find("of 300000 bytes dropped]") != std::string::npos);
    auto back = jobs::decode_job_result(jobs::encode(r));
    REQUIRE(back.has_value());
    CHECK(back->capped);
}

TEST_CASE("result budget: an output too large for the budget is dropped with a marker", "[worker][unit]") {
    auto r = sample_result();
    r.output = boost::json::string(std::string(200'000, 'x'));
    r.stderr_text = "some log\n";
    REQUIRE(fit_result(r, 64 * 1024));
    CHECK(encoded_size(r) <= 64 * 1024);
    CHECK(r.output.is_null());
    CHECK(r.stderr_text.find("the output (200002 bytes of JSON) was dropped") != std::string::npos);
    CHECK(r.stderr_text.find("some log") == 0);
    CHECK(r.state == jobs::job_state::succeeded);
}

TEST_CASE("result budget: escapes and UTF-8 are measured as encoded", "[worker][unit]") {
    auto r = sample_result();
    // Control characters take 6 bytes each once escaped; a 3-byte UTF-8 sequence must not be split.
    std::string s;
    for (int i = 0; i < 50'000; ++i) s += (i % 2) ? std::string("\x01") : std::string("\xe2\x82\xac");
    r.stdout_text = s;
    r.stderr_text = s;
    REQUIRE(fit_result(r, 20'000));
    const auto text = jobs::encode(r);
    CHECK(text.size() <= 20'000);
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);  // still valid JSON (and valid UTF-8: boost::json checks)
    CHECK_FALSE(ec);
    auto back = jobs::decode_job_result(text);
    REQUIRE(back.has_value());
    auto kept = back->stdout_text.substr(0, back->stdout_text.find("\n[faasd:"));
    for (std::size_t i = 0; i + 1 < kept.size(); ++i)
        if (static_cast<unsigned char>(kept[i]) == 0xe2) CHECK(i + 2 < kept.size());
}

TEST_CASE("result budget: limits are validated", "[worker][unit]") {
    CHECK(validate(result_limits{}).empty());
    CHECK_FALSE(validate(result_limits{1024, 1024}).empty());
    CHECK_FALSE(validate(result_limits{64 * 1024, 128 * 1024}).empty());
}

namespace {

jobs::job_status snap(const std::string& id, jobs::job_state st, int attempt, int deliveries, const std::string& worker) {
    jobs::job_status s;
    s.id = id;
    s.state = st;
    s.attempt = attempt;
    s.deliveries = deliveries;
    s.worker = worker;
    return s;
}

}  // namespace

TEST_CASE("delivery view: a running snapshot of a lost worker counts, a hand-back does not", "[worker][unit]") {
    using jobs::job_state;
    delivery_view v;
    CHECK(v.prior_deliveries("j1", 1, "w-me") == 0);  // unknown: a first delivery
    v.apply(snap("j1", job_state::queued, 1, 0, ""));   // the frontend's queued snapshot
    CHECK(v.prior_deliveries("j1", 1, "w-me") == 0);
    CHECK(v.size() == 0);
    v.apply(snap("j1", job_state::running, 1, 1, "w-a"));
    CHECK(v.prior_deliveries("j1", 1, "w-me") == 1);  // w-a died with it
    CHECK(v.prior_deliveries("j1", 2, "w-me") == 0);  // another attempt: a fresh count
    v.apply(snap("j1", job_state::running, 1, 2, "w-b"));
    CHECK(v.prior_deliveries("j1", 1, "w-me") == 2);
    // w-b handed it back gracefully: its delivery does not count.
    v.apply(snap("j1", job_state::queued, 1, 2, ""));
    CHECK(v.prior_deliveries("j1", 1, "w-me") == 1);
    // Our own running snapshot: counted unless this process handed it back.
    v.apply(snap("j1", job_state::running, 1, 2, "w-me"));
    CHECK(v.prior_deliveries("j1", 1, "w-me") == 2);
    v.handed_back("j1", 1);
    CHECK(v.prior_deliveries("j1", 1, "w-me") == 1);
    // A snapshot without a count (an older worker) counts as one delivery.
    v.apply(snap("j2", job_state::running, 3, 0, "w-old"));
    CHECK(v.prior_deliveries("j2", 3, "w-me") == 1);
    // Terminal snapshots, a retry's queued snapshot and tombstones drop the job.
    v.apply(snap("j1", job_state::succeeded, 1, 0, "w-me"));
    CHECK(v.prior_deliveries("j1", 1, "w-me") == 0);
    v.apply(snap("j2", job_state::queued, 4, 0, ""));
    CHECK(v.prior_deliveries("j2", 3, "w-me") == 0);
    v.apply(snap("j3", job_state::running, 1, 1, "w-a"));
    v.erase("j3");
    CHECK(v.prior_deliveries("j3", 1, "w-me") == 0);
    CHECK(v.size() == 0);
}

TEST_CASE("delivery view: bounded, the oldest job goes first", "[worker][unit]") {
    delivery_view v(3);
    for (int i = 0; i < 5; ++i) v.apply(snap("j" + std::to_string(i), jobs::job_state::running, 1, 1, "w"));
    CHECK(v.size() == 3);
    CHECK(v.prior_deliveries("j0", 1, "x") == 0);
    CHECK(v.prior_deliveries("j1", 1, "x") == 0);
    CHECK(v.prior_deliveries("j4", 1, "x") == 1);
    // An update does not make a job younger, but it keeps its place.
    v.apply(snap("j2", jobs::job_state::running, 1, 2, "w"));
    v.apply(snap("j5", jobs::job_state::running, 1, 1, "w"));
    CHECK(v.prior_deliveries("j2", 1, "x") == 0);
    CHECK(v.size() == 3);
}
