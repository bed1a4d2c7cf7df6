#include "client/client.hpp"
#include "support/support.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>

using namespace faasd;
using namespace faasd::client;
namespace json = boost::json;

TEST_CASE("cli: token cache is written 0600 and read back", "[frontend][unit]") {
    test::temp_dir dir;
    auto p = dir.path() / "cfg" / "faasd" / "token.json";
    stored_token t{"acc", "ref", 100, 200, "http://kc/realms/faas", "faas-cli", "http://kc/token"};
    REQUIRE(save_token(p, t).has_value());
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat(p.parent_path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    auto back = load_token(p);
    REQUIRE(back.has_value());
    CHECK(back->access_token == "acc");
    CHECK(back->refresh_token == "ref");
    CHECK(back->expires_at == 100);
    CHECK(back->token_endpoint == "http://kc/token");
    CHECK(load_token(dir.path() / "missing.json").error() == make_error_code(errc::not_found));
    std::ofstream(dir.path() / "bad.json") << "{";
    CHECK(load_token(dir.path() / "bad.json").error() == make_error_code(errc::bad_message));
}

TEST_CASE("cli: OAuth answers", "[frontend][unit]") {
    auto t = parse_token_response(R"({"access_token":"a","expires_in":300,"refresh_token":"r","refresh_expires_in":1800})", 1000);
    REQUIRE(t.has_value());
    CHECK(t->expires_at == 1300);
    CHECK(t->refresh_expires_at == 2800);
    CHECK_FALSE(parse_token_response(R"({"error":"invalid_grant"})", 0).has_value());
    auto [err, desc] = parse_oauth_error(R"({"error":"authorization_pending","error_description":"wait"})");
    CHECK(err == "authorization_pending");
    CHECK(desc == "wait");
    auto d = parse_device_authorization(
        R"({"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"http://kc/device","expires_in":600,"interval":5})");
    REQUIRE(d.has_value());
    CHECK(d->user_code == "ABCD-EFGH");
    CHECK(d->interval == 5);
    CHECK_FALSE(parse_device_authorization("{}").has_value());
    CHECK(form_encode({{"grant_type", "password"}, {"password", "a b&c=d/é"}}) ==
          "grant_type=password&password=a+b%26c%3Dd%2F%C3%A9");
}

TEST_CASE("cli: submit flags build a description", "[frontend][unit]") {
    test::temp_dir dir;
    std::ofstream(dir.path() / "tok") << "s3cret\n";
    submit_flags f;
    f.repo = "https://h/r.git";
    f.entry = {"python3", "main.py"};
    f.data = R"({"n": 1})";
    f.timeout_s = 30;
    f.env = {"FN_X=1"};
    f.tags = {"a"};
    f.sources = {"in=https://d/in"};
    f.credential_files = {"git=" + (dir.path() / "tok").string()};
    f.repo_credential = "git";
    std::string why;
    auto o = body_from_flags(f, why);
    REQUIRE(o.has_value());
    CHECK(o->at("repo").at("ref").as_string() == "main");
    CHECK(o->at("repo").at("credential").as_string() == "git");
    CHECK(o->at("entry").as_array().size() == 2);
    CHECK(o->at("data").at("n").as_int64() == 1);
    CHECK(o->at("env").at("FN_X").as_string() == "1");
    CHECK(o->at("sources").at("in").at("url").as_string() == "https://d/in");
    CHECK(o->at("credentials").at("git").as_string() == "s3cret");  // trailing newline dropped
    CHECK_FALSE(o->contains("retries"));

    submit_flags bad = f;
    bad.env = {"NOEQUALS"};
    CHECK_FALSE(body_from_flags(bad, why).has_value());
    CHECK(why.find("--env") != std::string::npos);
    bad = f;
    bad.data = "{";
    CHECK_FALSE(body_from_flags(bad, why).has_value());
    bad = f;
    bad.credential_files = {"x=/nonexistent/file"};
    CHECK_FALSE(body_from_flags(bad, why).has_value());
    CHECK(why.find("/nonexistent") == std::string::npos);  // no paths or secrets echoed needlessly
    CHECK_FALSE(body_from_flags(submit_flags{}, why).has_value());
}

TEST_CASE("cli: human output", "[frontend][unit]") {
    CHECK(format_duration(850) == "850ms");
    CHECK(format_duration(12'345) == "12.3s");
    CHECK(format_duration(245'000) == "4m05s");
    CHECK(format_duration(7'380'000) == "2h03m");
    CHECK(format_time(0) == "-");
    CHECK(format_time(1'800'000'000'000) == "2027-01-15 08:00:00");
    auto job = json::parse(R"({"id":"01J","state":"failed","attempt":2,"submitted_at":1800000000000,
        "started_at":1800000001000,"finished_at":1800000003000,"worker":"w1",
        "error":{"code":"exit_nonzero","message":"exit status 1"},"repo":{"url":"https://h/r","ref":"main"}})").as_object();
    auto text = describe_job(job);
    CHECK(text.find("01J  failed (attempt 2)") != std::string::npos);
    CHECK(text.find("waited 1.0s") != std::string::npos);
    CHECK(text.find("exit_nonzero: exit status 1") != std::string::npos);
    auto table = jobs_table(json::array{job});
    CHECK(table.find("ID") == 0);
    CHECK(table.find("https://h/r") != std::string::npos);
    CHECK(jobs_table(json::array{}).find("(no jobs)") != std::string::npos);
    auto res = json::parse(R"({"id":"01J","state":"succeeded","exit_code":0,"output":{"a":1},"stdout":"hi",
        "timing":{"queue_wait_ms":5,"prepare_ms":100,"run_ms":900,"total_ms":1005,"cache_hit":true}})").as_object();
    auto rt = describe_result(res);
    CHECK(rt.find("queue 5ms, clone 100ms (cached), run 900ms, total 1.0s") != std::string::npos);
    CHECK(rt.find("output     {\"a\":1}") != std::string::npos);
    CHECK(rt.find("--- stdout ---\nhi\n") != std::string::npos);
    CHECK(progress_line(1, "running", 2500) == "/ running 2.5s");
    CHECK(exit_status_for("succeeded") == 0);
    CHECK(exit_status_for("cancelled") == 1);
    CHECK(event_line(job).find("01J  failed  on w1  (exit_nonzero)") != std::string::npos);
}

TEST_CASE("cli: watch ends when every job finished or is gone", "[frontend][unit]") {
    using faasd::client::watch_tracker;
    SECTION("all succeeded: 0") {
        watch_tracker t({"A", "B"});
        t.on_state("A", "queued");
        t.on_state("A", "running");
        CHECK_FALSE(t.outcome());
        t.on_state("A", "succeeded");
        CHECK_FALSE(t.outcome());  // B is still open
        t.on_state("B", "succeeded");
        CHECK(t.outcome() == 0);
    }
    SECTION("one failed: 1") {
        watch_tracker t({"A", "B"});
        t.on_state("A", "succeeded");
        t.on_state("B", "cancelled");
        CHECK(t.outcome() == 1);
    }
    SECTION("an erased job ends the watch instead of blocking it forever") {
        watch_tracker t({"A"});
        t.on_state("A", "running");
        CHECK_FALSE(t.outcome());
        t.on_gone("A");  // e.g. its result was read by another client
        CHECK(t.outcome() == 3);
    }
    SECTION("seen finished, then erased: the outcome stands") {
        watch_tracker t({"A"});
        t.on_state("A", "failed");
        t.on_gone("A");
        CHECK(t.outcome() == 1);
        watch_tracker u({"A"});
        u.on_state("A", "succeeded");
        u.on_gone("A");
        CHECK(u.outcome() == 0);
    }
    SECTION("unknown at the start (404)") {
        watch_tracker t({"A", "B"});
        t.on_gone("B");
        CHECK_FALSE(t.outcome());
        t.on_state("A", "succeeded");
        CHECK(t.outcome() == 3);
    }
    SECTION("watching every job never ends by itself") {
        watch_tracker t({});
        t.on_state("A", "succeeded");
        CHECK_FALSE(t.outcome());
    }
}
