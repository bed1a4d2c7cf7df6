// End to end on real Kafka and Keycloak: two frontend replicas serve the same
// jobs (and a restarted one loses none); the observer, reconfigured live through
// the frontend, asks for more workers under a burst of slow jobs submitted
// through the real pipeline, and for fewer once the burst is over.

#include "e2e_support.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

#include <boost/json/serialize.hpp>

using namespace std::chrono_literals;
namespace json = boost::json;
using faasd::e2e::bg_process;
using faasd::e2e::http;
using faasd::e2e::string_at;

TEST_CASE("two frontend replicas over one Kafka serve the same jobs, and a restarted replica loses none",
          "[e2e][replicas]") {
    faasd::test::temp_dir tmp("faasd-e2e-replicas");
    const std::string prefix = faasd::test::unique_name("e2e") + ".";
    const auto env = faasd::e2e::role_environment(prefix);
    const std::string repo =
        faasd::e2e::bare_repo_from(faasd::test::source_dir() / "examples/functions/echo-sh", tmp.path(), "echo-sh");
    const int port_a = faasd::e2e::free_port(), port_b = faasd::e2e::free_port();
    const std::string a = "http://127.0.0.1:" + std::to_string(port_a), b = "http://127.0.0.1:" + std::to_string(port_b);

    bg_process fa("frontend-a", faasd::e2e::frontend_args(port_a), env, tmp.path());
    auto fb = std::make_unique<bg_process>("frontend-b", faasd::e2e::frontend_args(port_b), env, tmp.path());
    faasd::e2e::wait_ready(a + "/readyz", {&fa, fb.get()}, 120s);
    faasd::e2e::wait_ready(b + "/readyz", {&fa, fb.get()}, 60s);

    const std::string alice = faasd::e2e::keycloak_token("alice", "alice-pw");
    const std::string carol = faasd::e2e::keycloak_token("carol", "carol-pw");  // faas-admin
    const std::string bob = faasd::e2e::keycloak_token("bob", "bob-pw");

    // No worker runs: the jobs stay queued, so their state is stable.
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        auto sub = http("POST", a + "/v1/jobs", alice, R"({"repo": {"url": ")" + repo + R"(", "ref": "main"}})");
        REQUIRE(sub.status == 202);
        ids.push_back(string_at(sub.json(), "id"));
        // Read-your-writes on the replica that answered the 202.
        CHECK(http("GET", a + "/v1/jobs/" + ids.back(), alice).status == 200);
    }
    // The other replica sees every job, in the right state, within a bounded time.
    for (const auto& id : ids) {
        faasd::e2e::http_answer got;
        CHECK(faasd::test::wait_until(
            [&] {
                got = http("GET", b + "/v1/jobs/" + id, alice);
                return got.status == 200;
            },
            10s, 50ms));
        CHECK(string_at(got.json(), "state") == "queued");
        // An admin reads any job; another user does not learn that it exists.
        CHECK(http("GET", b + "/v1/jobs/" + id, carol).status == 200);
        CHECK(http("GET", b + "/v1/jobs/" + id, bob).status == 404);
    }

    // Cancel through B, observe through A.
    REQUIRE(http("DELETE", b + "/v1/jobs/" + ids[0], alice).status / 100 == 2);
    CHECK(faasd::test::wait_until(
        [&] { return string_at(http("GET", a + "/v1/jobs/" + ids[0], alice).json(), "state") == "cancelled"; }, 10s,
        50ms));

    // Kill replica B hard and start it again: it rebuilds every job from Kafka.
    fb.reset();  // SIGKILL
    auto late = http("POST", a + "/v1/jobs", alice, R"({"repo": {"url": ")" + repo + R"(", "ref": "main"}})");
    REQUIRE(late.status == 202);
    ids.push_back(string_at(late.json(), "id"));
    fb = std::make_unique<bg_process>("frontend-b2", faasd::e2e::frontend_args(port_b), env, tmp.path());
    faasd::e2e::wait_ready(b + "/readyz", {&fa, fb.get()}, 60s);
    auto list = http("GET", b + "/v1/jobs?limit=50", alice);
    REQUIRE(list.status == 200);
    for (const auto& id : ids) CHECK(list.body.find(id) != std::string::npos);
    CHECK(string_at(http("GET", b + "/v1/jobs/" + ids[0], alice).json(), "state") == "cancelled");
    CHECK(string_at(http("GET", b + "/v1/jobs/" + ids[1], alice).json(), "state") == "queued");

    CHECK(fb->stop(20s) == 0);
    CHECK(fa.stop(20s) == 0);
}

TEST_CASE("the observer, reconfigured live through the frontend, scales up under a burst and down after it",
          "[e2e][observer]") {
    faasd::test::temp_dir tmp("faasd-e2e-observer");
    const std::string prefix = faasd::test::unique_name("e2e") + ".";
    const auto env = faasd::e2e::role_environment(prefix);
    const std::string repo =
        faasd::e2e::bare_repo_from(faasd::test::source_dir() / "examples/functions/echo-sh", tmp.path(), "echo-sh");
    const int port = faasd::e2e::free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    const std::string bin = faasd::test::faasd_binary();

    bg_process frontend("frontend", faasd::e2e::frontend_args(port), env, tmp.path());
    bg_process worker("worker",
                      {bin, "worker", "--slots", "1", "--cache-dir", (tmp.path() / "cache").string(), "--jobs-dir",
                       (tmp.path() / "jobs").string(), "--allowed-schemes", "file"},
                      env, tmp.path());
    bg_process observer("observer", {bin, "observer", "--slots-per-worker", "1", "--min-workers", "1"}, env,
                        tmp.path());
    faasd::e2e::wait_ready(base + "/readyz", {&frontend, &worker, &observer}, 120s);
    const std::string alice = faasd::e2e::keycloak_token("alice", "alice-pw");
    const std::string carol = faasd::e2e::keycloak_token("carol", "carol-pw");

    // Live parameters: short windows so that the test takes seconds, not minutes.
    constexpr int short_window_ms = 4000, settle_ms = 200, tick_ms = 500;
    auto params = [&](int max_workers) {
        return R"({"v":1,"tick_ms":500,"short_window_ms":4000,"long_window_ms":8000,"settle_ms":200,)"
               R"("stale_after_ms":5000,"slots_per_worker":1,"min_workers":1,"max_workers":)" +
               std::to_string(max_workers) +
               R"(,"target_wait_ms":500,"epsilon":0.05,"drain_time_ms":5000,"up_cooldown_ms":0,)"
               R"("down_cooldown_ms":1000,"up_confidence_z":0,"down_confidence_z":0})";
    };
    CHECK(http("PUT", base + "/v1/observer/config", alice, params(6)).status == 403);  // not an admin
    auto put = http("PUT", base + "/v1/observer/config", carol, params(6));
    INFO(put.body);
    REQUIRE(put.status / 100 == 2);

    // The observer applies them without a restart: its reports say so.
    json::value report;
    auto report_where = [&](const std::function<bool(const json::value&)>& pred, std::chrono::milliseconds timeout) {
        return faasd::test::wait_until(
            [&] {
                auto r = http("GET", base + "/v1/observer/report", alice);
                if (r.status != 200) return false;
                report = r.json();
                return pred(report);
            },
            timeout, 250ms);
    };
    auto max_workers_is = [](int n) {
        return [n](const json::value& r) {
            return r.is_object() && r.as_object().contains("params") &&
                   r.at("params").at("max_workers").to_number<double>() == n;
        };
    };
    bool applied = report_where(max_workers_is(6), 30s);
    INFO(json::serialize(report) << "\nobserver log:\n" << observer.log());
    REQUIRE(applied);
    CHECK(report.at("params").at("short_window_ms").to_number<double>() == short_window_ms);

    // A burst of slow jobs for one worker with one slot (no actuator: the worker count stays 1).
    auto burst = [&](int n) {
        std::vector<std::string> ids;
        for (int i = 0; i < n; ++i) {
            auto sub = http("POST", base + "/v1/jobs", alice,
                            R"({"repo": {"url": ")" + repo + R"(", "ref": "main"}, "entry": ["sh", "-c", "sleep 1"]})");
            REQUIRE(sub.status == 202);
            ids.push_back(string_at(sub.json(), "id"));
        }
        return ids;
    };
    auto number = [](const json::value& r, const char* a, const char* b) { return r.at(a).at(b).to_number<double>(); };
    // The promise (docs/observer.md, Stability): enough workers within two short windows + settle
    // of a load step; the report reaches the frontend within a tick, and it is polled every 250 ms.
    const auto promised = std::chrono::milliseconds(2 * short_window_ms + settle_ms + 2 * tick_ms + 750);
    const auto step = std::chrono::steady_clock::now();
    const auto ids = burst(12);
    // The reported queue rises: the jobs wait for the one slot.
    bool queued = report_where([&](const json::value& r) { return number(r, "measured", "queue_length") >= 5; },
                               promised);
    INFO(json::serialize(report));
    CHECK(queued);
    bool added = report_where(
        [](const json::value& r) {
            const auto& d = r.at("decision");
            return string_at(d, "action") == "add" && d.at("target").to_number<double>() > 1;
        },
        promised);
    const auto took = std::chrono::steady_clock::now() - step;
    INFO(json::serialize(report));
    REQUIRE(added);
    CHECK(took <= promised);
    const auto first_target = report.at("target").to_number<double>();
    // The model wants more than two workers for this burst (the drain alone: 11 jobs in 5 s).
    bool sized = report_where([](const json::value& r) { return r.at("target").to_number<double>() > 2; }, 5s);
    INFO(json::serialize(report) << " first add to " << first_target);
    CHECK(sized);
    const auto unbounded_target = report.at("target").to_number<double>();
    // Live workers are reported next to the target: the decision is about the one that exists.
    CHECK(number(report, "decision", "live") == 1);
    CHECK(number(report, "measured", "workers") == 1);

    // Every job finishes on the one worker; nothing is lost.
    for (const auto& id : ids) {
        auto res = faasd::e2e::wait_result(base, id, alice, 120s);
        CHECK(res.status == 200);
        CHECK(string_at(res.json(), "state") == "succeeded");
    }
    // With the burst over, the observer proposes fewer workers. (The remove decision itself is in
    // one report only and may come while the last jobs finish, before this poll starts: look at
    // the target.)
    bool removed = report_where(
        [&](const json::value& r) { return r.at("target").to_number<double>() < unbounded_target; }, 60s);
    INFO(json::serialize(report));
    CHECK(removed);

    // A live config change changes the decision: with max_workers 2 the same kind of burst gets 2
    // workers at most, where it got more than 2 before, and the report says it is saturated.
    put = http("PUT", base + "/v1/observer/config", carol, params(2));
    REQUIRE(put.status / 100 == 2);
    REQUIRE(report_where(max_workers_is(2), 30s));
    const auto step2 = std::chrono::steady_clock::now();
    burst(8);
    bool capped = report_where(
        [](const json::value& r) {
            return r.at("decision").at("saturated").as_bool() && r.at("target").to_number<double>() == 2;
        },
        promised);
    INFO(json::serialize(report));
    CHECK(capped);
    CHECK(std::chrono::steady_clock::now() - step2 <= promised);
    CHECK(unbounded_target > 2);
    CHECK(string_at(report.at("decision"), "reason").find("max_workers (2)") != std::string::npos);
    // ... and it stays capped while the burst lasts.
    const bool exceeded = report_where([](const json::value& r) { return r.at("target").to_number<double>() > 2; },
                                       3s);
    CHECK_FALSE(exceeded);

    CHECK(observer.stop(20s) == 0);
    CHECK(worker.stop(20s) == 0);
    CHECK(frontend.stop(20s) == 0);
}
