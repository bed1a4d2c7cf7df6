// End to end: faasd frontend, worker and observer as separate processes on
// real Kafka, users from real Keycloak, a function from a real git repository
// run in the real sandbox; and `faasd dev`, the zero-setup mode, through the CLI.

#include "e2e_support.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

#include <boost/json/serialize.hpp>

#include <fstream>
#include <memory>
#include <thread>

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
using faasd::e2e::bg_process;
using faasd::e2e::http;

using faasd::e2e::string_at;
using faasd::e2e::wait_ready;
using faasd::e2e::wait_result;

TEST_CASE("jobs run end to end through frontend, worker and observer processes on real Kafka and Keycloak",
          "[e2e]") {
    faasd::test::temp_dir tmp("faasd-e2e");
    const std::string prefix = faasd::test::unique_name("e2e") + ".";
    const std::string repo =
        faasd::e2e::bare_repo_from(faasd::test::source_dir() / "examples/functions/echo-sh", tmp.path(), "echo-sh");
    const int port = faasd::e2e::free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    const std::string bin = faasd::test::faasd_binary();
    const auto env = faasd::e2e::role_environment(prefix);

    bg_process frontend("frontend", faasd::e2e::frontend_args(port), env, tmp.path());
    bg_process worker("worker",
                  {bin, "worker", "--slots", "2", "--cache-dir", (tmp.path() / "cache").string(), "--jobs-dir",
                   (tmp.path() / "jobs").string(), "--allowed-schemes", "file,https"},
                  env, tmp.path());
    bg_process observer("observer", {bin, "observer"}, env, tmp.path());
    wait_ready(base + "/readyz", {&frontend, &worker, &observer}, 120s);

    const std::string alice = faasd::e2e::keycloak_token("alice", "alice-pw");
    const std::string bob = faasd::e2e::keycloak_token("bob", "bob-pw");

    SECTION("a submitted job succeeds; its result carries the output and elapsed times, and reading it erases "
            "the job") {
        auto sub = http("POST", base + "/v1/jobs", alice,
                        R"({"repo": {"url": ")" + repo + R"(", "ref": "main"}, "data": {"hello": "world"},
                            "owner": {"subject": "mallory"}})");
        INFO(sub.body);
        REQUIRE(sub.status == 202);
        const std::string id = string_at(sub.json(), "id");
        REQUIRE(!id.empty());
        CHECK(sub.headers.find("/v1/jobs/" + id) != std::string::npos);  // Location

        // Another user cannot see it: 404, not 403.
        CHECK(http("GET", base + "/v1/jobs/" + id, bob).status == 404);

        auto res = wait_result(base, id, alice, 120s);
        INFO(res.body << "\nworker log:\n" << worker.log());
        REQUIRE(res.status == 200);
        auto v = res.json();
        CHECK(string_at(v, "state") == "succeeded");
        CHECK(json::serialize(v.at("output").at("echo")) == R"({"hello":"world"})");
        CHECK(string_at(v.at("output"), "job") == id);
        const auto& timing = v.at("timing").as_object();
        CHECK(timing.at("total_ms").to_number<double>() > 0);
        CHECK(timing.at("total_ms").to_number<double>() >= timing.at("run_ms").to_number<double>());

        // The result was read: the job is gone.
        CHECK(http("GET", base + "/v1/jobs/" + id, alice).status == 404);
        CHECK(http("GET", base + "/v1/jobs/" + id + "/result", alice).status == 404);
    }

    SECTION("a job is listed for its owner, ?keep=true keeps it, and a cancelled job reports cancelled") {
        auto sub = http("POST", base + "/v1/jobs", alice,
                        R"({"repo": {"url": ")" + repo + R"(", "ref": "main"}, "data": 7, "tags": ["e2e"]})");
        REQUIRE(sub.status == 202);
        const std::string id = string_at(sub.json(), "id");
        auto res = wait_result(base, id, alice, 120s, "&keep=true");
        REQUIRE(res.status == 200);
        CHECK(http("GET", base + "/v1/jobs/" + id, alice).status == 200);
        auto list = http("GET", base + "/v1/jobs?limit=50", alice);
        REQUIRE(list.status == 200);
        CHECK(list.body.find(id) != std::string::npos);
        CHECK(http("GET", base + "/v1/jobs?limit=50", bob).body.find(id) == std::string::npos);
        CHECK(http("DELETE", base + "/v1/jobs/" + id, bob).status == 404);
    }

    SECTION("bad tokens are refused with 401 and WWW-Authenticate") {
        auto a = http("GET", base + "/v1/jobs", "not.a.token");
        CHECK(a.status == 401);
        CHECK(a.headers.find("WWW-Authenticate") != std::string::npos);
        CHECK(http("GET", base + "/v1/jobs").status == 401);
    }

    SECTION("the observer's report is served by the frontend") {
        faasd::e2e::http_answer rep;
        bool ok = faasd::test::wait_until(
            [&] {
                rep = http("GET", base + "/v1/observer/report", alice);
                return rep.status == 200;
            },
            60s, 250ms);
        INFO(rep.body << "\nobserver log:\n" << observer.log());
        REQUIRE(ok);
        auto v = rep.json();
        REQUIRE(v.is_object());
        CHECK(v.as_object().contains("decision"));
    }

    // Graceful shutdown: every process exits 0 within its grace period.
    CHECK(observer.stop(20s) == 0);
    CHECK(worker.stop(20s) == 0);
    INFO(frontend.log());
    CHECK(frontend.stop(20s) == 0);
}

TEST_CASE("faasd dev runs a job with a dev token and the CLI, with no services at all", "[e2e][dev]") {
    faasd::test::temp_dir tmp("faasd-e2e-dev");
    const int port = faasd::e2e::free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    const std::string bin = faasd::test::faasd_binary();
    const std::string state = (tmp.path() / "state").string();
    bg_process dev("dev", {bin, "dev", "--state-dir", state, "--listen", "127.0.0.1:" + std::to_string(port)}, {},
               tmp.path());
    wait_ready(base + "/readyz", {&dev}, 90s);
    const std::string log = dev.log();
    CHECK(log.find("NOT FOR PRODUCTION") != std::string::npos);
    CHECK(log.find(base) != std::string::npos);

    // A second process can produce to and consume from the embedded broker.
    std::string bootstrap;
    {
        std::ifstream in(fs::path(state) / "bootstrap");
        std::getline(in, bootstrap);
    }
    REQUIRE(!bootstrap.empty());
    CHECK(log.find(bootstrap) != std::string::npos);
    auto produced = faasd::test::run_process(
        {"kcat", "-b", bootstrap, "-P", "-t", "faasd.dead-letter", "-k", "probe"}, {}, "from another process\n");
    INFO(produced.err);
    REQUIRE(produced.exit_code == 0);
    auto consumed = faasd::test::run_process({"kcat", "-b", bootstrap, "-C", "-t", "faasd.dead-letter", "-o",
                                              "beginning", "-c", "1", "-e", "-f", "%k=%s\n"},
                                             {}, {}, 60s);
    INFO(consumed.err);
    CHECK(consumed.out == "probe=from another process\n");

    auto token = faasd::test::run_process({bin, "dev", "token", "--state-dir", state, "--user", "alice"});
    REQUIRE(token.exit_code == 0);
    std::string t = token.out.substr(0, token.out.find('\n'));
    REQUIRE(std::count(t.begin(), t.end(), '.') == 2);

    const std::string repo = "file://" + (fs::path(state) / "examples" / "echo-sh.git").string();
    auto run = faasd::test::run_process({bin, "submit", "--server", base, "--token", t, "--repo", repo, "--data",
                                         R"({"n": 42})", "--wait", "--json"},
                                        {}, {}, 120s);
    INFO(run.out << run.err << "\ndev log:\n" << dev.log());
    REQUIRE(run.exit_code == 0);
    CHECK(run.out.find("\"n\":42") != std::string::npos);

    // A token the dev IdP did not sign is refused.
    CHECK(http("GET", base + "/v1/jobs", t.substr(0, t.size() - 4) + "AAAA").status == 401);
    CHECK(dev.stop(30s) == 0);
}
