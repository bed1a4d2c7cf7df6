// End to end: faasd frontend, worker and observer as separate processes on
// real Kafka, users from real Keycloak, a function from a real git repository
// run in the real sandbox; and `faasd dev`, the zero-setup mode, through the CLI.

#include "e2e_support.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
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

        // The result was read: the job is gone (erased right after the answer was written).
        CHECK(faasd::test::wait_until([&] { return http("GET", base + "/v1/jobs/" + id, alice).status == 404; }, 10s,
                                      50ms));
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
        CHECK(http("DELETE", base + "/v1/jobs/" + id, alice).status == 409);  // already finished

        // A running job is cancelled: its worker stops the run long before the function would end.
        auto slow = http("POST", base + "/v1/jobs", alice,
                         R"({"repo": {"url": ")" + repo + R"(", "ref": "main"}, "entry": ["sleep", "120"],
                             "timeout_s": 300})");
        INFO(slow.body);
        REQUIRE(slow.status == 202);
        const std::string sid = string_at(slow.json(), "id");
        std::string state;
        REQUIRE(faasd::test::wait_until(
            [&] {
                state = string_at(http("GET", base + "/v1/jobs/" + sid, alice).json(), "state");
                return state == "running";
            },
            120s, 100ms));
        auto cancel = http("DELETE", base + "/v1/jobs/" + sid, alice);
        INFO(cancel.body);
        CHECK(cancel.status == 202);
        const auto asked = std::chrono::steady_clock::now();
        bool cancelled = faasd::test::wait_until(
            [&] {
                state = string_at(http("GET", base + "/v1/jobs/" + sid, alice).json(), "state");
                return state == "cancelled";
            },
            30s, 100ms);
        INFO("state " << state << "\nworker log:\n" << worker.log());
        REQUIRE(cancelled);
        CHECK(std::chrono::steady_clock::now() - asked < 30s);
        auto out = http("GET", base + "/v1/jobs/" + sid + "/result", alice);
        REQUIRE(out.status == 200);
        auto v = out.json();
        CHECK(string_at(v, "state") == "cancelled");
        CHECK_FALSE(string_at(v, "worker").empty());  // the worker ended it, not the frontend
        CHECK(string_at(v.at("error"), "code") == "cancelled");
        CHECK(v.at("timing").at("run_ms").to_number<double>() < 60000);
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

TEST_CASE("the CLI runs the job lifecycle against real Kafka, Keycloak and a worker: submit, status, watch, list, "
          "result, cancel",
          "[e2e][cli]") {
    faasd::test::temp_dir tmp("faasd-e2e-cli");
    const std::string prefix = faasd::test::unique_name("e2e-cli") + ".";
    const std::string repo =
        faasd::e2e::bare_repo_from(faasd::test::source_dir() / "examples/functions/echo-sh", tmp.path(), "echo-sh");
    const int port = faasd::e2e::free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    const std::string bin = faasd::test::faasd_binary();
    const auto env = faasd::e2e::role_environment(prefix);
    bg_process frontend("frontend", faasd::e2e::frontend_args(port), env, tmp.path());
    wait_ready(base + "/readyz", {&frontend}, 120s);

    // The CLI as a user runs it: the token from FAASD_TOKEN, its own config directory.
    const std::vector<std::string> cli_env = {"FAASD_TOKEN=" + faasd::e2e::keycloak_token("alice", "alice-pw"),
                                              "XDG_CONFIG_HOME=" + (tmp.path() / "config").string()};
    auto cli = [&](std::vector<std::string> args, std::chrono::seconds timeout = 60s) {
        std::vector<std::string> argv{bin};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), {"--server", base});
        return faasd::test::run_process(argv, cli_env, {}, timeout);
    };
    auto json_of = [](const faasd::test::process_result& r) {
        INFO("stdout: " << r.out << "\nstderr: " << r.err);
        return json::parse(r.out);
    };

    // 1. Submit while no worker runs: the job waits, queued.
    auto sub = cli({"submit", "--repo", repo, "--ref", "main", "--data", R"({"n": 5})", "--tag", "cli", "--json"});
    INFO(sub.err);
    REQUIRE(sub.exit_code == 0);
    const std::string id = string_at(json_of(sub), "id");
    REQUIRE(!id.empty());
    auto st = cli({"status", id, "--json"});
    REQUIRE(st.exit_code == 0);
    CHECK(string_at(json_of(st), "state") == "queued");
    auto human = cli({"status", id});
    CHECK(human.exit_code == 0);
    CHECK(human.out.find("queued") != std::string::npos);

    // 2. watch ID follows it live: queued now, then running and succeeded once a worker starts; then exits 0.
    bg_process watch("watch", {bin, "watch", id, "--server", base}, cli_env, tmp.path());
    REQUIRE(faasd::test::wait_until([&] { return watch.log().find("queued") != std::string::npos; }, 30s, 50ms));
    bg_process worker("worker",
                      {bin, "worker", "--slots", "2", "--cache-dir", (tmp.path() / "cache").string(), "--jobs-dir",
                       (tmp.path() / "jobs").string(), "--allowed-schemes", "file,https"},
                      env, tmp.path());
    bool watch_ended = faasd::test::wait_until([&] { return !watch.running(); }, 120s, 100ms);
    const std::string seen = watch.log();
    INFO("watch output:\n" << seen << "\nworker log:\n" << worker.log());
    REQUIRE(watch_ended);
    CHECK(watch.stop(1s) == 0);
    auto q = seen.find("queued"), r = seen.find("running"), s = seen.find("succeeded");
    CHECK(q != std::string::npos);
    CHECK(r != std::string::npos);
    CHECK(s != std::string::npos);
    CHECK(q < r);
    CHECK(r < s);

    // 3. list: the caller's jobs, also by state.
    auto all = cli({"list", "--json"});
    REQUIRE(all.exit_code == 0);
    CHECK(all.out.find(id) != std::string::npos);
    auto done = cli({"list", "--state", "succeeded", "--json"});
    REQUIRE(done.exit_code == 0);
    CHECK(done.out.find(id) != std::string::npos);
    CHECK(cli({"list", "--state", "queued", "--json"}).out.find(id) == std::string::npos);
    auto table = cli({"list"});
    CHECK(table.exit_code == 0);
    CHECK(table.out.find(id) != std::string::npos);

    // 4. result: --keep keeps it; a plain read prints it and erases the job.
    auto kept = cli({"result", id, "--keep", "--json"});
    REQUIRE(kept.exit_code == 0);
    CHECK(json::serialize(json_of(kept).at("output").at("echo")) == R"({"n":5})");
    auto read = cli({"result", id});
    CHECK(read.exit_code == 0);
    CHECK(read.out.find("succeeded") != std::string::npos);
    CHECK(faasd::test::wait_until([&] { return cli({"status", id}).exit_code == 3; }, 10s, 100ms));
    // watch of an erased job ends at once (it used to wait forever).
    auto gone = cli({"watch", id}, 30s);
    INFO(gone.err);
    CHECK(gone.exit_code == 3);

    // 5. cancel: a running job ends cancelled, stopped by its worker.
    auto slow = cli({"submit", "--repo", repo, "--ref", "main", "--entry", "sleep", "--entry", "120", "--timeout",
                     "300", "--json"});
    REQUIRE(slow.exit_code == 0);
    const std::string sid = string_at(json_of(slow), "id");
    REQUIRE(faasd::test::wait_until(
        [&] { return string_at(json_of(cli({"status", sid, "--json"})), "state") == "running"; }, 120s, 200ms));
    auto cancel = cli({"cancel", sid});
    INFO(cancel.err);
    CHECK(cancel.exit_code == 0);
    CHECK(cancel.out.find("cancel requested") != std::string::npos);
    CHECK(faasd::test::wait_until(
        [&] { return string_at(json_of(cli({"status", sid, "--json"})), "state") == "cancelled"; }, 30s, 200ms));
    auto res = cli({"result", sid, "--json"});
    CHECK(res.exit_code == 1);  // the job did not succeed
    auto rv = json_of(res);
    CHECK(string_at(rv, "state") == "cancelled");
    CHECK_FALSE(string_at(rv, "worker").empty());
    CHECK(string_at(rv.at("error"), "code") == "cancelled");
    CHECK(rv.at("timing").at("run_ms").to_number<double>() < 60000);
    CHECK(cli({"cancel", sid}).exit_code != 0);  // nothing left to cancel

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
