#include <faasd/jobs/codec.hpp>
#include <faasd/jobs/topics.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

using namespace faasd;
using namespace faasd::jobs;

namespace {

job_message sample_message() {
    job_message m;
    m.id = "01ARYZ6S41TSV4RRFFQ69G5FAV";
    m.owner = {"sub-1", "alice", {"faas-user"}};
    m.submitted_at = 1'700'000'000'000;
    m.attempt = 2;
    m.not_before = 1'700'000'000'500;
    m.idempotency_key = "k1";
    m.spec.repo = {"https://example.org/r.git", "main", "", "git-token"};
    m.spec.entry = {"python3", "main.py"};
    m.spec.data = boost::json::parse(R"({"x": [1, 2, 3]})");
    m.spec.sources["in"] = {"https://example.org/in.csv", {{"Accept", "text/csv"}}, "src-token"};
    m.spec.sinks["out"] = {"https://example.org/out", "POST", {}, ""};
    m.spec.credentials = {"k1", "bm9uY2U", "Y2lwaGVy", {"git-token", "src-token"}};
    m.spec.timeout_s = 30;
    m.spec.delivery = delivery_mode::exactly_once;
    m.spec.retries = 1;
    m.spec.retry_on_failure = true;
    m.spec.env = {{"MODE", "fast"}};
    m.spec.tags = {"a", "b"};
    return m;
}

}  // namespace

TEST_CASE("job messages round-trip through JSON", "[jobs][unit]") {
    auto m = sample_message();
    auto bytes = encode(m);
    auto back = decode_job_message(bytes);
    REQUIRE(back.has_value());
    CHECK(back->id == m.id);
    CHECK(back->owner == m.owner);
    CHECK(back->submitted_at == m.submitted_at);
    CHECK(back->attempt == 2);
    CHECK(back->not_before == m.not_before);
    CHECK(back->idempotency_key == "k1");
    CHECK(back->spec.repo == m.spec.repo);
    CHECK(back->spec.entry == m.spec.entry);
    CHECK(back->spec.data == m.spec.data);
    CHECK(back->spec.sources == m.spec.sources);
    CHECK(back->spec.sinks == m.spec.sinks);
    CHECK(back->spec.credentials == m.spec.credentials);
    CHECK(back->spec.timeout_s == 30);
    CHECK(back->spec.delivery == delivery_mode::exactly_once);
    CHECK(back->spec.retries == 1);
    CHECK(back->spec.retry_on_failure);
    CHECK(back->spec.env == m.spec.env);
    CHECK(back->spec.tags == m.spec.tags);
    // Re-encoding gives the same bytes: the format is canonical for a given value.
    CHECK(encode(*back) == bytes);
}

TEST_CASE("results and status snapshots round-trip", "[jobs][unit]") {
    job_result r;
    r.id = "01ARYZ6S41TSV4RRFFQ69G5FAV";
    r.owner_subject = "sub-1";
    r.state = job_state::failed;
    r.attempt = 3;
    r.worker = "w-1";
    r.exit_code = 7;
    r.output = boost::json::parse(R"({"ok": false})");
    r.stdout_text = "out";
    r.stderr_text = "err";
    r.stderr_truncated = true;
    r.outputs.push_back({"report.csv", 123, "out", 201});
    r.error = {"exit_nonzero", "the function exited with status 7"};
    r.times = {1, 2, 3, 4, 5, 6, 7, 8, 9, true};

    job_status s;
    s.id = r.id;
    s.owner = {"sub-1", "alice", {}};
    s.state = job_state::failed;
    s.attempt = 3;
    s.submitted_at = 1;
    s.finished_at = 4;
    s.updated_at = 4;
    s.worker = "w-1";
    s.error = r.error;
    s.repo = {"https://example.org/r.git", "", std::string(40, 'a'), ""};
    s.delivery = delivery_mode::at_most_once;
    s.result = r;

    auto back = decode_job_status(encode(s));
    REQUIRE(back.has_value());
    CHECK(back->state == job_state::failed);
    CHECK(back->repo == s.repo);
    CHECK(back->delivery == delivery_mode::at_most_once);
    REQUIRE(back->result.has_value());
    CHECK(back->result->exit_code == 7);
    CHECK(back->result->stderr_truncated);
    CHECK(back->result->outputs.size() == 1);
    CHECK(back->result->outputs[0].http_status == 201);
    CHECK(back->result->times.run_ms == 7);
    CHECK(back->result->times.cache_hit);
    CHECK(encode(*back) == encode(s));
}

TEST_CASE("results carry the split preparation times and the worker's cap, older results still decode",
          "[jobs][unit]") {
    job_result r;
    r.id = "01ARYZ6S41TSV4RRFFQ69G5FAV";
    r.state = job_state::succeeded;
    r.capped = true;
    r.times.prepare_ms = 300;
    r.times.clone_ms = 120;
    r.times.sources_ms = 180;
    auto text = encode(r);
    auto o = boost::json::parse(text).as_object();
    CHECK(o.at("result_capped") == true);
    CHECK(o.at("timing").at("clone_ms") == 120);
    CHECK(o.at("timing").at("sources_ms") == 180);
    auto back = decode_job_result(text);
    REQUIRE(back.has_value());
    CHECK(back->capped);
    CHECK(back->times.clone_ms == 120);
    CHECK(back->times.sources_ms == 180);
    CHECK(encode(*back) == text);

    // A result of an older worker: no split, no cap flag.
    auto old = decode_job_result(
        R"({"v":1,"id":"01ARYZ6S41TSV4RRFFQ69G5FAV","state":"succeeded","timing":{"prepare_ms":300,"run_ms":5}})");
    REQUIRE(old.has_value());
    CHECK_FALSE(old->capped);
    CHECK(old->times.prepare_ms == 300);
    CHECK(old->times.clone_ms == 0);
    CHECK(old->times.sources_ms == 0);
}

TEST_CASE("decoding rejects malformed and unknown-version messages", "[jobs][unit]") {
    auto good = encode(sample_message());
    CHECK(decode_job_message("not json").error() == errc::bad_message);
    CHECK(decode_job_message("[]").error() == errc::bad_message);
    CHECK(decode_job_message(R"({"id":"x"})").error() == errc::bad_message);  // no version

    auto v2 = boost::json::parse(good).as_object();
    v2["v"] = 2;
    CHECK(decode_job_message(boost::json::serialize(v2)).error() == errc::unsupported_version);

    auto bad_type = boost::json::parse(good).as_object();
    bad_type["attempt"] = "two";
    CHECK(decode_job_message(boost::json::serialize(bad_type)).error() == errc::bad_message);

    auto bad_delivery = boost::json::parse(good).as_object();
    bad_delivery["spec"].as_object()["delivery"] = "twice";
    CHECK(decode_job_message(boost::json::serialize(bad_delivery)).error() == errc::bad_message);

    auto no_repo = boost::json::parse(good).as_object();
    no_repo["spec"].as_object().erase("repo");
    CHECK(decode_job_message(boost::json::serialize(no_repo)).error() == errc::bad_message);
}

TEST_CASE("states and delivery modes have stable names", "[jobs][unit]") {
    for (auto s : {job_state::queued, job_state::running, job_state::succeeded, job_state::failed,
                   job_state::timed_out, job_state::cancelled})
        CHECK(parse_job_state(to_string(s)) == s);
    CHECK(is_terminal(job_state::timed_out));
    CHECK_FALSE(is_terminal(job_state::running));
    CHECK(parse_delivery_mode("at-least-once") == delivery_mode::at_least_once);
    CHECK_FALSE(parse_delivery_mode("at_least_once"));
}

TEST_CASE("topic names share the prefix", "[jobs][unit]") {
    auto t = topic_names::with_prefix("x.");
    CHECK(t.jobs(delivery_mode::at_most_once) == "x.jobs.at-most-once");
    CHECK(t.jobs(delivery_mode::exactly_once) == "x.jobs.exactly-once");
    CHECK(t.state == "x.state");
    CHECK(t.compacted("x.state"));
    CHECK(t.compacted("x.observer-config"));
    CHECK_FALSE(t.compacted("x.results"));
    CHECK(t.all().size() == 10);
}
