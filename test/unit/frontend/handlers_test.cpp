#include "fakes.hpp"

#include <faasd/frontend/limits.hpp>
#include <faasd/frontend/problems.hpp>
#include <faasd/frontend/retention.hpp>

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

using namespace faasd;
using namespace faasd::test::frontend;
namespace json = boost::json;

namespace {

std::string type_of(const http::response& r) {
    auto v = body_of(r);
    return std::string(v.at("type").as_string());
}

std::string problem(std::string_view slug) { return "https://faasd.dev/problems/" + std::string(slug); }

constexpr const char* full_job = R"({
  "repo": {"url": "https://git.example.org/fn.git", "ref": "main", "credential": "git"},
  "data": {"n": 3},
  "credentials": {"git": "SUPER-SECRET-VALUE"},
  "owner": {"sub": "mallory", "username": "mallory", "roles": ["faas-admin"]},
  "username": "mallory",
  "tags": ["t1"]
})";

}  // namespace

TEST_CASE("frontend: health, readiness, metrics, openapi need no token", "[frontend][unit]") {
    harness h;
    auto r = h.call("GET", "/healthz");
    CHECK(r.status == 200);
    CHECK(body_of(r).at("status").as_string() == "ok");
    CHECK(h.call("GET", "/readyz").status == 200);
    h.ready = false;
    auto nr = h.call("GET", "/readyz");
    CHECK(nr.status == 503);
    CHECK(body_of(nr).at("ready").as_bool() == false);
    auto m = h.call("GET", "/metrics");
    CHECK(m.status == 200);
    CHECK(m.body == "faasd_up 1\n");
    CHECK(m.headers.get("Content-Type")->starts_with("text/plain; version=0.0.4"));
    auto o = h.call("GET", "/openapi.json");
    CHECK(o.status == 200);
    CHECK(body_of(o).at("openapi").as_string() == "3.1.0");
    CHECK(h.auth.calls == 0);
}

TEST_CASE("frontend: unknown routes and methods", "[frontend][unit]") {
    harness h;
    auto r = h.call("GET", "/v2/jobs");
    CHECK(r.status == 404);
    CHECK(type_of(r) == problem("not-found"));
    CHECK(r.headers.get("Content-Type") == "application/problem+json");
    auto m = h.call("PATCH", "/v1/jobs/X", "alice-token");
    CHECK(m.status == 405);
    CHECK(m.headers.get("Allow") == "GET, DELETE");
    CHECK(h.run(harness::make("PUT", "/v1/jobs")).route == "method_not_allowed");
    CHECK(h.run(harness::make("GET", "/nope")).route == "unmatched");
    CHECK(h.run(harness::make("GET", "/healthz")).route == "healthz");
    CHECK(h.call("GET", "/v1/jobs/").status == 404);  // empty {id}
}

TEST_CASE("frontend: authentication and roles", "[frontend][unit]") {
    harness h;
    SECTION("no token: 401 with a bare challenge") {
        auto r = h.call("GET", "/v1/jobs");
        CHECK(r.status == 401);
        CHECK(r.headers.get("WWW-Authenticate") == "Bearer realm=\"faasd\"");
        CHECK(type_of(r) == problem("unauthorized"));
        CHECK(h.auth.calls == 0);
    }
    SECTION("another scheme is no token") {
        auto r = h.call("GET", "/v1/jobs", "", "", {{"Authorization", "Basic YWxpY2U6cHc="}});
        CHECK(r.status == 401);
        CHECK(r.headers.get("WWW-Authenticate") == "Bearer realm=\"faasd\"");
    }
    SECTION("a bad token: 401 invalid_token, same body for every reason") {
        auto r = h.call("GET", "/v1/jobs", "forged");
        CHECK(r.status == 401);
        CHECK(r.headers.get("WWW-Authenticate") == "Bearer realm=\"faasd\", error=\"invalid_token\"");
        auto body = body_of(r).as_object();
        CHECK_FALSE(body.contains("detail"));
        auto r2 = h.call("GET", "/v1/jobs/X", "another-forgery");
        CHECK(r2.body == r.body);
    }
    SECTION("lowercase scheme and extra spaces are accepted") {
        CHECK(h.call("GET", "/v1/jobs", "", "", {{"Authorization", "bearer   alice-token "}}).status == 200);
    }
    SECTION("a valid token without faas-user: 403") {
        auto r = h.call("GET", "/v1/jobs", "dave-token");
        CHECK(r.status == 403);
        CHECK(type_of(r) == problem("forbidden"));
        CHECK(h.call("POST", "/v1/jobs", "dave-token", "{}").status == 403);
        CHECK(h.pub.messages.empty());
    }
    SECTION("keys unavailable: 503") {
        auto r = h.call("GET", "/v1/jobs", "keys-unavailable");
        CHECK(r.status == 503);
        CHECK(r.headers.get("Retry-After") == "1");
    }
    SECTION("admin-only routes") {
        CHECK(h.call("GET", "/v1/observer/config", "alice-token").status == 403);
        CHECK(h.call("PUT", "/v1/observer/config", "alice-token", "{}").status == 403);
        CHECK(h.call("GET", "/v1/observer/config", "carol-token").status == 200);
    }
}

TEST_CASE("frontend: submit", "[frontend][unit]") {
    harness h;
    auto r = h.call("POST", "/v1/jobs", "alice-token", full_job, {{"Content-Type", "application/json; charset=utf-8"}});
    REQUIRE(r.status == 202);
    auto body = body_of(r).as_object();
    std::string id(body.at("id").as_string());
    CHECK(is_job_id(id));
    CHECK(body.at("state").as_string() == "queued");
    CHECK(body.at("submitted_at").as_int64() == t0_ms);
    CHECK(r.headers.get("Location") == "/v1/jobs/" + id);
    CHECK_FALSE(r.headers.get("Idempotent-Replayed"));

    REQUIRE(h.pub.messages.size() == 1);
    const auto& m = h.pub.messages[0];
    CHECK(m.id == id);
    // The owner comes from the token, whatever the body says.
    CHECK(m.owner.subject == "alice");
    CHECK(m.owner.username == "alice-name");
    CHECK(m.owner.roles == std::vector<std::string>{"faas-user"});
    CHECK(m.submitted_at == t0_ms);
    CHECK(m.attempt == 1);
    CHECK(m.spec.repo.credential == "git");
    CHECK(m.spec.data.at("n").as_int64() == 3);
    // Credentials are sealed for this job id; names stay in clear, values nowhere.
    CHECK(m.spec.credentials.key_id == "test-kid");
    CHECK(m.spec.credentials.ciphertext_b64 == "sealed-for-" + id);
    CHECK(m.spec.credentials.names == std::vector<std::string>{"git"});
    CHECK(jobs::encode(m).find("SUPER-SECRET") == std::string::npos);
    CHECK(h.sealer.last_plaintext_keys == "git,");
    // The queued snapshot went out too, and never carries the credential.
    REQUIRE(h.pub.snapshots.size() == 1);
    CHECK(h.pub.snapshots[0].state == jobs::job_state::queued);
    CHECK(h.pub.snapshots[0].repo.credential.empty());
    CHECK(jobs::encode(h.pub.snapshots[0]).find("SUPER-SECRET") == std::string::npos);

    // Read-your-writes: visible at once.
    auto g = h.call("GET", "/v1/jobs/" + id, "alice-token");
    REQUIRE(g.status == 200);
    auto job = body_of(g).as_object();
    CHECK(job.at("state").as_string() == "queued");
    CHECK(job.at("owner").at("sub").as_string() == "alice");
    CHECK(job.at("tags").as_array().size() == 1);
    CHECK(job.at("worker").is_null());
    CHECK(job.at("links").at("result").as_string() == "/v1/jobs/" + id + "/result");
    CHECK(g.body.find("SUPER-SECRET") == std::string::npos);

    SECTION("the clear credentials are wiped from the request body once sealed") {
        auto req = harness::make("POST", "/v1/jobs", full_job,
                                 {{"Authorization", "Bearer alice-token"}, {"Content-Type", "application/json"}});
        const auto size = req.body.size();
        REQUIRE(h.run(req).res.status == 202);
        CHECK(req.body.size() == size);
        CHECK(req.body.find("SUPER-SECRET") == std::string::npos);
        CHECK(std::all_of(req.body.begin(), req.body.end(), [](char ch) { return ch == '\0'; }));
    }
    SECTION("no credentials: nothing is sealed") {
        h.submit("alice-token");
        CHECK(h.sealer.calls == 1);
        CHECK(h.pub.messages.back().spec.credentials.empty());
    }
}

TEST_CASE("frontend: submit refusals", "[frontend][unit]") {
    frontend::frontend_settings s;
    s.max_body_bytes = 2000;
    harness h(s);
    SECTION("invalid description: 400 with every issue") {
        auto r = h.call("POST", "/v1/jobs", "alice-token", R"({"repo": {"url": "ftp://x/y", "ref": "main"}, "timeout_s": 0})");
        REQUIRE(r.status == 400);
        auto b = body_of(r).as_object();
        CHECK(b.at("type").as_string() == problem("invalid-job"));
        CHECK(b.at("errors").as_array().size() == 2);
        CHECK(b.at("errors").as_array()[0].at("pointer").as_string() == "/repo/url");
        CHECK(h.pub.messages.empty());
    }
    SECTION("not JSON") {
        auto r = h.call("POST", "/v1/jobs", "alice-token", "{");
        CHECK(r.status == 400);
        CHECK(type_of(r) == problem("invalid-job"));
    }
    SECTION("too large: 413") {
        auto r = h.call("POST", "/v1/jobs", "alice-token", std::string(2001, ' '));
        CHECK(r.status == 413);
        CHECK(type_of(r) == problem("payload-too-large"));
    }
    SECTION("not JSON content: 415") {
        auto r = h.call("POST", "/v1/jobs", "alice-token", "{}", {{"Content-Type", "application/x-www-form-urlencoded"}});
        CHECK(r.status == 415);
        CHECK(h.call("POST", "/v1/jobs", "alice-token", R"({"repo":{"url":"https://h/r","ref":"m"}})",
                     {{"Content-Type", "application/vnd.faasd+json"}})
                  .status == 202);
    }
    SECTION("Kafka down: 503 and nothing visible") {
        h.pub.fail = true;
        auto r = h.call("POST", "/v1/jobs", "alice-token", R"({"repo":{"url":"https://h/r","ref":"m"}})");
        CHECK(r.status == 503);
        CHECK(r.headers.get("Retry-After") == "1");
        CHECK(h.store.view().size() == 0);
        CHECK(h.app->pending_per_user().empty());
    }
    SECTION("string limits: env values and entry arguments") {
        frontend::frontend_settings small;
        small.job.max_string_length = 8;
        harness t(small);
        auto submit = [&](const std::string& body) { return t.call("POST", "/v1/jobs", "alice-token", body); };
        auto pointer = [](const http::response& r) {
            return std::string(body_of(r).at("errors").as_array().at(0).at("pointer").as_string());
        };
        const std::string repo = R"("repo":{"url":"https://h/r","ref":"m"})";
        CHECK(submit("{" + repo + R"(,"env":{"FN_A":"12345678"}})").status == 202);
        auto env = submit("{" + repo + R"(,"env":{"FN_A":"123456789"}})");
        REQUIRE(env.status == 400);
        CHECK(pointer(env) == "/env/FN_A");
        CHECK(submit("{" + repo + R"(,"entry":["run","12345678"]})").status == 202);
        auto arg = submit("{" + repo + R"(,"entry":["run","123456789"]})");
        REQUIRE(arg.status == 400);
        CHECK(pointer(arg) == "/entry/1");
        auto cmd = submit("{" + repo + R"(,"entry":["123456789"]})");
        REQUIRE(cmd.status == 400);
        CHECK(pointer(cmd) == "/entry/0");
    }
    SECTION("sealing unavailable: 503") {
        h.sealer.fail = true;
        CHECK(h.call("POST", "/v1/jobs", "alice-token", full_job).status == 503);
        CHECK(h.pub.messages.empty());
    }
}

TEST_CASE("frontend: per-user rate limit", "[frontend][unit]") {
    frontend::frontend_settings s;
    s.submit_rate = 2;
    s.submit_burst = 3;
    harness h(s);
    for (int i = 0; i < 3; ++i) h.submit("alice-token");
    auto r = h.call("POST", "/v1/jobs", "alice-token", R"({"repo":{"url":"https://h/r","ref":"m"}})");
    CHECK(r.status == 429);
    CHECK(type_of(r) == problem("rate-limited"));
    CHECK(r.headers.get("Retry-After") == "1");
    // Other users have their own bucket.
    h.submit("bob-token");
    // Tokens come back with time.
    h.clk.t += 500;
    h.submit("alice-token");
    CHECK(h.call("POST", "/v1/jobs", "alice-token", R"({"repo":{"url":"https://h/r","ref":"m"}})").status == 429);
}

TEST_CASE("frontend: unfinished-jobs limit", "[frontend][unit]") {
    frontend::frontend_settings s;
    s.max_unfinished_per_user = 2;
    harness h(s);
    auto a = h.submit("alice-token");
    h.submit("alice-token");
    auto r = h.call("POST", "/v1/jobs", "alice-token", R"({"repo":{"url":"https://h/r","ref":"m"}})");
    CHECK(r.status == 429);
    CHECK(type_of(r) == problem("too-many-unfinished-jobs"));
    CHECK(r.headers.get("Retry-After") == "5");
    h.advance(a, jobs::job_state::succeeded);
    h.submit("alice-token");
    h.submit("bob-token");
}

TEST_CASE("frontend: idempotency keys", "[frontend][unit]") {
    harness h;
    auto submit = [&](const std::string& token, const std::string& key) {
        return h.call("POST", "/v1/jobs", token, R"({"repo":{"url":"https://h/r","ref":"m"}})", {{"Idempotency-Key", key}});
    };
    auto first = submit("alice-token", "key-1");
    REQUIRE(first.status == 202);
    auto id = std::string(body_of(first).at("id").as_string());
    CHECK(id == frontend::idempotent_job_id("alice", "key-1", t0_ms, std::chrono::hours(24)));

    h.clk.t += 3'600'000;  // an hour later, even after the job started
    h.advance(id, jobs::job_state::running);
    auto again = submit("alice-token", "key-1");
    CHECK(again.status == 202);
    CHECK(body_of(again).at("id").as_string() == id);
    CHECK(body_of(again).at("state").as_string() == "running");
    CHECK(again.headers.get("Idempotent-Replayed") == "true");
    CHECK(h.pub.messages.size() == 1);

    SECTION("another user with the same key gets another job") {
        auto b = submit("bob-token", "key-1");
        CHECK(body_of(b).at("id").as_string() != id);
        CHECK(h.pub.messages.size() == 2);
    }
    SECTION("after 24 hours the key makes a new job") {
        h.clk.t = t0_ms + 24 * 3'600'000 + 1;
        auto later = submit("alice-token", "key-1");
        CHECK(body_of(later).at("id").as_string() != id);
        CHECK_FALSE(later.headers.get("Idempotent-Replayed"));
    }
    SECTION("replays are not rate limited") {
        frontend::frontend_settings s;
        s.submit_rate = 1;
        s.submit_burst = 1;
        harness h2(s);
        auto a = h2.call("POST", "/v1/jobs", "alice-token", R"({"repo":{"url":"https://h/r","ref":"m"}})", {{"Idempotency-Key", "k"}});
        auto b = h2.call("POST", "/v1/jobs", "alice-token", R"({"repo":{"url":"https://h/r","ref":"m"}})", {{"Idempotency-Key", "k"}});
        CHECK(a.status == 202);
        CHECK(b.status == 202);
    }
    SECTION("malformed keys") {
        CHECK(submit("alice-token", std::string(256, 'k')).status == 400);
        CHECK(submit("alice-token", "has space").status == 400);
    }
    SECTION("after the job was erased, its key answers 409 idempotency-key-consumed and runs nothing") {
        h.advance(id, jobs::job_state::succeeded);
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result", "alice-token").status == 200);
        CHECK(h.call("GET", "/v1/jobs/" + id, "alice-token").status == 404);
        // A marker, not a tombstone: the key is still within its window.
        REQUIRE(h.pub.markers.size() == 1);
        CHECK(h.pub.markers[0].id == id);
        CHECK(h.pub.markers[0].owner == "alice");
        CHECK(h.pub.markers[0].idempotency_key == "key-1");
        CHECK(h.pub.markers[0].submitted_at == t0_ms);
        h.clk.t += 1000;
        auto repeat = submit("alice-token", "key-1");
        CHECK(repeat.status == 409);
        CHECK(type_of(repeat) == problem("idempotency-key-consumed"));
        CHECK(body_of(repeat).at("id").as_string() == id);
        CHECK(body_of(repeat).at("state").as_string() == "erased");
        CHECK(h.pub.messages.size() == 1);  // no second run under the same id
        CHECK(h.call("GET", "/v1/jobs/" + id, "alice-token").status == 404);
        // Still so from the next bucket, while the window lasts.
        h.clk.t = t0_ms + 24 * 3'600'000 - 1;
        CHECK(submit("alice-token", "key-1").status == 409);
        // Other users' keys are theirs.
        CHECK(submit("bob-token", "key-1").status == 202);
        // Once the window has passed, the key makes a new job under a new id.
        h.clk.t = t0_ms + 24 * 3'600'000;
        auto later = submit("alice-token", "key-1");
        CHECK(later.status == 202);
        CHECK(body_of(later).at("id").as_string() != id);
    }
    SECTION("a late snapshot of the erased job does not bring it back") {
        auto snap = *h.store.view().get(id);
        h.advance(id, jobs::job_state::succeeded);
        REQUIRE(h.call("GET", "/v1/jobs/" + id + "/result", "alice-token").status == 200);
        snap.state = jobs::job_state::running;
        snap.updated_at = h.clk.t + 10;
        CHECK(h.store.apply(snap) == jobs::apply_outcome::ignored);
        CHECK(h.call("GET", "/v1/jobs/" + id, "alice-token").status == 404);
        CHECK(submit("alice-token", "key-1").status == 409);
    }
    SECTION("a job without a key leaves a tombstone") {
        auto plain = h.submit("alice-token");
        h.advance(plain, jobs::job_state::succeeded);
        REQUIRE(h.call("GET", "/v1/jobs/" + plain + "/result", "alice-token").status == 200);
        CHECK(h.pub.erased == std::vector<std::string>{plain});
        CHECK(h.pub.markers.empty());
        CHECK(h.store.marker(plain) == nullptr);
    }
}

TEST_CASE("frontend: erased markers on the state topic", "[frontend][unit]") {
    frontend::erased_marker m{"01ARZ3NDEKTSV4RRFFQ69G5FAV", "alice", "key-1", t0_ms, t0_ms + 5};
    auto text = frontend::encode_marker(m);
    CHECK(frontend::decode_marker(text) == m);
    CHECK_FALSE(jobs::decode_job_status(text).has_value());  // never mistaken for a snapshot
    jobs::job_status s;
    s.id = m.id;
    s.owner.subject = "alice";
    s.submitted_at = t0_ms;
    CHECK_FALSE(frontend::decode_marker(jobs::encode(s)).has_value());
    CHECK_FALSE(frontend::decode_marker("{\"erased\":false}").has_value());
    CHECK_FALSE(frontend::decode_marker("not json").has_value());

    const auto day = std::chrono::hours(24);
    CHECK_FALSE(frontend::marker_for(s, t0_ms + 1, day));  // no key: a tombstone
    s.idempotency_key = "key-1";
    auto made = frontend::marker_for(s, t0_ms + 1, day);
    REQUIRE(made);
    CHECK(made->erased_at == t0_ms + 1);
    CHECK_FALSE(frontend::marker_for(s, t0_ms + 24 * 3'600'000, day));  // the window has passed
    CHECK_FALSE(frontend::marker_expired(m, t0_ms + 24 * 3'600'000 - 1, day));
    CHECK(frontend::marker_expired(m, t0_ms + 24 * 3'600'000, day));

    // A marker read from the topic erases the job and is remembered; a tombstone drops it.
    harness h;
    auto id = h.submit("alice-token");
    frontend::erased_marker read{id, "alice", "k", t0_ms, t0_ms};
    h.store.erase(id, read);
    CHECK_FALSE(h.store.view().contains(id));
    REQUIRE(h.store.marker(id));
    CHECK(*h.store.marker(id) == read);
    CHECK(h.store.markers_memory_bytes() > 0);
    h.store.erase(id);
    CHECK(h.store.marker(id) == nullptr);
}

TEST_CASE("frontend: the retention sweep erases finished jobs and expired markers", "[frontend][unit]") {
    frontend::frontend_settings s;
    s.finished_retention = std::chrono::hours(72);
    harness h(s);
    auto sweep = [&](jobs::unix_ms now) {
        std::optional<frontend::sweep_result> out;
        asio::co_spawn(h.ioc, frontend::sweep_once(*h.app, now, 2, 3), [&](std::exception_ptr e, frontend::sweep_result r) {
            if (e) std::rethrow_exception(e);
            out = r;
        });
        h.ioc.restart();
        h.ioc.run_for(std::chrono::seconds(2));
        REQUIRE(out);
        return *out;
    };
    const jobs::unix_ms hour = 3'600'000;
    auto running = h.submit("alice-token");
    auto done = h.submit("alice-token");
    auto keyed = h.call("POST", "/v1/jobs", "bob-token", R"({"repo":{"url":"https://h/r","ref":"m"}})",
                        {{"Idempotency-Key", "k"}});
    auto keyed_id = std::string(body_of(keyed).at("id").as_string());
    std::vector<std::string> many;
    for (int i = 0; i < 7; ++i) many.push_back(h.submit("carol-token"));
    h.advance(running, jobs::job_state::running);
    h.advance(done, jobs::job_state::succeeded);
    h.advance(keyed_id, jobs::job_state::failed);
    for (auto& id : many) h.advance(id, jobs::job_state::cancelled);
    const auto finished = h.clk.t + 5;

    SECTION("nothing is erased before the retention has passed") {
        auto r = sweep(finished + 72 * hour - 1);
        CHECK(r.erased == 0);
        CHECK(r.scanned == 10);
        CHECK(h.pub.erased.empty());
        CHECK(h.store.view().size() == 10);
    }
    SECTION("finished jobs go after the retention; unfinished ones stay; a second sweep does nothing") {
        auto r = sweep(finished + 72 * hour);
        CHECK(r.erased == 9);
        CHECK(r.failed == 0);
        CHECK(h.store.view().size() == 1);
        CHECK(h.store.view().contains(running));
        CHECK(h.pub.markers.empty());  // the key's window (24 h) is long gone: tombstones
        auto second = sweep(finished + 73 * hour);
        CHECK(second.erased == 0);
        CHECK(h.pub.erased.size() == 9);
        // Owners whose lists are empty are forgotten.
        CHECK(h.store.owners() == std::set<std::string, std::less<>>{"alice"});
    }
    SECTION("with a retention shorter than the key's window, a keyed job leaves a marker, tombstoned later") {
        frontend::frontend_settings quick;
        quick.finished_retention = std::chrono::hours(1);
        harness q(quick);
        auto k = q.call("POST", "/v1/jobs", "bob-token", R"({"repo":{"url":"https://h/r","ref":"m"}})",
                        {{"Idempotency-Key", "k"}});
        auto kid = std::string(body_of(k).at("id").as_string());
        q.advance(kid, jobs::job_state::succeeded);
        auto run = [&](jobs::unix_ms now) {
            std::optional<frontend::sweep_result> out;
            asio::co_spawn(q.ioc, frontend::sweep_once(*q.app, now), [&](std::exception_ptr e, frontend::sweep_result r) {
                if (e) std::rethrow_exception(e);
                out = r;
            });
            q.ioc.restart();
            q.ioc.run_for(std::chrono::seconds(2));
            REQUIRE(out);
            return *out;
        };
        CHECK(run(t0_ms + 2 * hour).erased == 1);
        REQUIRE(q.pub.markers.size() == 1);
        CHECK(q.store.marker(kid));
        q.clk.t = t0_ms + 3 * hour;
        CHECK(q.call("POST", "/v1/jobs", "bob-token", R"({"repo":{"url":"https://h/r","ref":"m"}})",
                     {{"Idempotency-Key", "k"}})
                  .status == 409);
        auto later = run(t0_ms + 24 * hour);
        CHECK(later.markers_tombstoned == 1);
        CHECK(q.store.marker(kid) == nullptr);
        CHECK(q.pub.erased == std::vector<std::string>{kid, kid});
    }
    SECTION("Kafka down: nothing is erased, the next sweep retries") {
        h.pub.fail = true;
        auto r = sweep(finished + 72 * hour);
        CHECK(r.erased == 0);
        CHECK(r.failed == 9);
        CHECK(h.store.view().size() == 10);
        h.pub.fail = false;
        CHECK(sweep(finished + 72 * hour).erased == 9);
    }
}

TEST_CASE("frontend: concurrent submissions with one key publish once", "[frontend][unit]") {
    harness h;
    h.pub.delay = std::chrono::milliseconds(50);
    std::vector<frontend::dispatch_result> results;
    auto req = harness::make("POST", "/v1/jobs", R"({"repo":{"url":"https://h/r","ref":"m"}})",
                             {{"Authorization", "Bearer alice-token"}, {"Idempotency-Key", "same"}});
    for (int i = 0; i < 3; ++i)
        asio::co_spawn(h.ioc, h.app->handle(req), [&](std::exception_ptr, frontend::dispatch_result r) { results.push_back(std::move(r)); });
    h.ioc.restart();
    h.ioc.run_for(std::chrono::seconds(3));
    REQUIRE(results.size() == 3);
    CHECK(h.pub.messages.size() == 1);
    std::set<std::string> ids;
    int replayed = 0;
    for (auto& r : results) {
        CHECK(r.res.status == 202);
        ids.insert(std::string(body_of(r.res).at("id").as_string()));
        if (r.res.headers.get("Idempotent-Replayed")) ++replayed;
    }
    CHECK(ids.size() == 1);
    CHECK(replayed == 2);
}

TEST_CASE("frontend: get a job", "[frontend][unit]") {
    harness h;
    auto id = h.submit("alice-token");
    CHECK(h.call("GET", "/v1/jobs/" + id, "alice-token").status == 200);
    SECTION("another user's job is 404, exactly like a missing one") {
        auto other = h.call("GET", "/v1/jobs/" + id, "bob-token");
        auto missing = h.call("GET", "/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", "bob-token");
        CHECK(other.status == 404);
        CHECK(other.body == missing.body);
    }
    SECTION("admins see every job") {
        auto r = h.call("GET", "/v1/jobs/" + id, "carol-token");
        CHECK(r.status == 200);
        CHECK(body_of(r).at("owner").at("sub").as_string() == "alice");
    }
    SECTION("state changes show up") {
        h.advance(id, jobs::job_state::running);
        auto r = body_of(h.call("GET", "/v1/jobs/" + id, "alice-token"));
        CHECK(r.at("state").as_string() == "running");
        CHECK(r.at("worker").as_string() == "worker-1");
        CHECK(r.at("started_at").is_int64());
        h.advance(id, jobs::job_state::failed);
        r = body_of(h.call("GET", "/v1/jobs/" + id, "alice-token"));
        CHECK(r.at("state").as_string() == "failed");
        CHECK(r.at("finished_at").is_int64());
    }
}

TEST_CASE("frontend: list own jobs", "[frontend][unit]") {
    harness h;
    std::vector<std::string> mine;
    for (int i = 0; i < 7; ++i) {
        h.clk.t += 10;
        mine.push_back(h.submit("alice-token"));
    }
    h.submit("bob-token");
    h.advance(mine[1], jobs::job_state::succeeded);

    auto page = body_of(h.call("GET", "/v1/jobs?limit=3", "alice-token")).as_object();
    auto items = page.at("items").as_array();
    REQUIRE(items.size() == 3);
    CHECK(items[0].at("id").as_string() == mine[6]);  // newest first
    CHECK(items[2].at("id").as_string() == mine[4]);
    std::vector<std::string> all;
    std::string cursor(page.at("next_cursor").as_string());
    for (auto& i : items) all.emplace_back(i.at("id").as_string());
    while (!cursor.empty()) {
        auto p = body_of(h.call("GET", "/v1/jobs?limit=3&cursor=" + cursor, "alice-token")).as_object();
        for (auto& i : p.at("items").as_array()) all.emplace_back(i.at("id").as_string());
        cursor = p.at("next_cursor").is_null() ? "" : std::string(p.at("next_cursor").as_string());
    }
    CHECK(all.size() == 7);
    CHECK(all.back() == mine[0]);

    auto done = body_of(h.call("GET", "/v1/jobs?state=succeeded", "alice-token")).as_object();
    REQUIRE(done.at("items").as_array().size() == 1);
    CHECK(done.at("items").as_array()[0].at("id").as_string() == mine[1]);
    CHECK(done.at("next_cursor").is_null());
    CHECK(body_of(h.call("GET", "/v1/jobs", "bob-token")).at("items").as_array().size() == 1);
    CHECK(body_of(h.call("GET", "/v1/jobs", "carol-token")).at("items").as_array().empty());

    CHECK(h.call("GET", "/v1/jobs?state=done", "alice-token").status == 400);
    CHECK(h.call("GET", "/v1/jobs?limit=0", "alice-token").status == 400);
    CHECK(h.call("GET", "/v1/jobs?limit=101", "alice-token").status == 400);
    CHECK(h.call("GET", "/v1/jobs?limit=x", "alice-token").status == 400);
    CHECK(h.call("GET", "/v1/jobs?cursor=%21%21", "alice-token").status == 400);
    CHECK(h.call("GET", "/v1/jobs?limit=100", "alice-token").status == 200);
}

TEST_CASE("frontend: results", "[frontend][unit]") {
    harness h;
    auto id = h.submit("alice-token");
    SECTION("not finished: 409 with the state") {
        auto r = h.call("GET", "/v1/jobs/" + id + "/result", "alice-token");
        CHECK(r.status == 409);
        CHECK(type_of(r) == problem("not-finished"));
        CHECK(body_of(r).at("state").as_string() == "queued");
    }
    SECTION("finished: the result with its times, then the job is erased") {
        h.advance(id, jobs::job_state::succeeded, R"({"answer": 42})");
        auto r = h.call("GET", "/v1/jobs/" + id + "/result", "alice-token");
        REQUIRE(r.status == 200);
        auto b = body_of(r).as_object();
        CHECK(b.at("state").as_string() == "succeeded");
        CHECK(b.at("output").at("answer").as_int64() == 42);
        CHECK(b.at("exit_code").as_int64() == 0);
        CHECK(b.at("stdout").as_string() == "out\n");
        const auto& t = b.at("timing").as_object();
        CHECK(t.at("queue_wait_ms").as_int64() == 1);
        CHECK(t.at("prepare_ms").as_int64() == 2);
        CHECK(t.at("run_ms").as_int64() == 3);
        CHECK(t.at("total_ms").as_int64() == 6);
        CHECK(h.pub.erased == std::vector<std::string>{id});
        CHECK(h.call("GET", "/v1/jobs/" + id, "alice-token").status == 404);
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result", "alice-token").status == 404);
    }
    SECTION("keep=true leaves it") {
        h.advance(id, jobs::job_state::failed);
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result?keep=true", "alice-token").status == 200);
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result?keep=1", "alice-token").status == 200);
        CHECK(h.pub.erased.empty());
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result?keep=false", "alice-token").status == 200);
        CHECK(h.pub.erased.size() == 1);
    }
    SECTION("bad parameters") {
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result?keep=maybe", "alice-token").status == 400);
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result?wait=61", "alice-token").status == 400);
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result?wait=-1", "alice-token").status == 400);
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result?wait=1.5", "alice-token").status == 400);
    }
    SECTION("another user's result is 404 and is not erased") {
        h.advance(id, jobs::job_state::succeeded);
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result", "bob-token").status == 404);
        CHECK(h.pub.erased.empty());
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result?keep=true", "carol-token").status == 200);
    }
    SECTION("erasure failing still returns the result and keeps the job") {
        h.advance(id, jobs::job_state::succeeded);
        h.pub.fail = true;
        CHECK(h.call("GET", "/v1/jobs/" + id + "/result", "alice-token").status == 200);
        CHECK(h.store.view().contains(id));
    }
    SECTION("the job is erased only after the result was written: a failed write loses nothing") {
        h.advance(id, jobs::job_state::succeeded, R"({"answer": 42})");
        auto lost = h.call_unwritten("GET", "/v1/jobs/" + id + "/result", "alice-token");
        CHECK(lost.status == 200);
        CHECK(h.pub.erased.empty());
        CHECK(h.store.view().contains(id));
        // The client asks again and gets its result; now it is erased.
        auto r = h.call("GET", "/v1/jobs/" + id + "/result", "alice-token");
        REQUIRE(r.status == 200);
        CHECK(body_of(r).at("output").at("answer").as_int64() == 42);
        CHECK(h.pub.erased == std::vector<std::string>{id});
        CHECK_FALSE(h.store.view().contains(id));
    }
    SECTION("the handler itself never erases: that is the written response's hook") {
        h.advance(id, jobs::job_state::succeeded);
        auto d = h.run(harness::make("GET", "/v1/jobs/" + id + "/result", {}, {{"Authorization", "Bearer alice-token"}}),
                       false);
        CHECK(h.pub.erased.empty());
        auto keep = h.run(harness::make("GET", "/v1/jobs/" + id + "/result?keep=true", {},
                                        {{"Authorization", "Bearer alice-token"}}),
                          false);
        CHECK(d.res.status == 200);
        CHECK(keep.res.status == 200);
    }
    SECTION("long-poll: answers when the job finishes") {
        asio::steady_timer t(h.ioc, std::chrono::milliseconds(100));
        t.async_wait([&](boost::system::error_code) { h.advance(id, jobs::job_state::running); });
        asio::steady_timer t2(h.ioc, std::chrono::milliseconds(200));
        t2.async_wait([&](boost::system::error_code) { h.advance(id, jobs::job_state::succeeded); });
        auto start = std::chrono::steady_clock::now();
        auto r = h.call("GET", "/v1/jobs/" + id + "/result?wait=5", "alice-token");
        auto took = std::chrono::steady_clock::now() - start;
        CHECK(r.status == 200);
        CHECK(took >= std::chrono::milliseconds(150));
        CHECK(took < std::chrono::seconds(4));
    }
    SECTION("long-poll: 409 when the wait runs out") {
        auto r = h.call("GET", "/v1/jobs/" + id + "/result?wait=1", "alice-token");
        CHECK(r.status == 409);
    }
    SECTION("a job cancelled while queued has a synthesised result") {
        h.clk.t += 100;
        REQUIRE(h.call("DELETE", "/v1/jobs/" + id, "alice-token").status == 202);
        auto r = h.call("GET", "/v1/jobs/" + id + "/result", "alice-token");
        REQUIRE(r.status == 200);
        auto b = body_of(r).as_object();
        CHECK(b.at("state").as_string() == "cancelled");
        CHECK(b.at("timing").at("total_ms").as_int64() == 100);
        CHECK(b.at("error").at("code").as_string() == "cancelled");
    }
}

TEST_CASE("frontend: cancel", "[frontend][unit]") {
    harness h;
    auto id = h.submit("alice-token");
    SECTION("a queued job is cancelled at once") {
        h.clk.t += 50;
        auto r = h.call("DELETE", "/v1/jobs/" + id, "alice-token");
        REQUIRE(r.status == 202);
        CHECK(body_of(r).at("state").as_string() == "cancelled");
        REQUIRE(h.pub.cancels.size() == 1);
        CHECK(h.pub.cancels[0].id == id);
        CHECK(h.pub.cancels[0].by == "alice");
        CHECK(h.pub.cancels[0].at == t0_ms + 50);
        CHECK(h.pub.snapshots.back().state == jobs::job_state::cancelled);
        CHECK(h.store.view().state_of(id) == jobs::job_state::cancelled);
        auto again = h.call("DELETE", "/v1/jobs/" + id, "alice-token");
        CHECK(again.status == 409);
        CHECK(type_of(again) == problem("already-finished"));
    }
    SECTION("a running job gets a cancel request only") {
        h.advance(id, jobs::job_state::running);
        auto snaps = h.pub.snapshots.size();
        auto r = h.call("DELETE", "/v1/jobs/" + id, "alice-token");
        REQUIRE(r.status == 202);
        CHECK(body_of(r).at("state").as_string() == "running");
        CHECK(body_of(r).at("cancel_requested").as_bool());
        CHECK(h.pub.cancels.size() == 1);
        CHECK(h.pub.snapshots.size() == snaps);
    }
    SECTION("others cannot, admins can") {
        CHECK(h.call("DELETE", "/v1/jobs/" + id, "bob-token").status == 404);
        CHECK(h.pub.cancels.empty());
        CHECK(h.call("DELETE", "/v1/jobs/" + id, "carol-token").status == 202);
        CHECK(h.pub.cancels.at(0).by == "carol");
    }
    SECTION("Kafka down: 503, state unchanged") {
        h.pub.fail = true;
        CHECK(h.call("DELETE", "/v1/jobs/" + id, "alice-token").status == 503);
        CHECK(h.store.view().state_of(id) == jobs::job_state::queued);
    }
}

TEST_CASE("frontend: observer report and config", "[frontend][unit]") {
    harness h;
    auto none = h.call("GET", "/v1/observer/report", "alice-token");
    CHECK(none.status == 404);
    CHECK(type_of(none) == problem("no-report"));
    h.obs.latest_report = json::parse(R"({"workers": 3})");
    auto r = h.call("GET", "/v1/observer/report", "bob-token");
    CHECK(r.status == 200);
    CHECK(body_of(r).at("workers").as_int64() == 3);
    CHECK(h.call("GET", "/v1/observer/report", "dave-token").status == 403);

    auto cfg = h.call("GET", "/v1/observer/config", "carol-token");
    CHECK(cfg.status == 200);
    CHECK(body_of(cfg).is_object());

    auto bad = h.call("PUT", "/v1/observer/config", "carol-token", R"({"min_workers": "many"})");
    CHECK(bad.status == 400);
    CHECK(type_of(bad) == problem("invalid-config"));
    CHECK(h.call("PUT", "/v1/observer/config", "carol-token", "[").status == 400);
    CHECK(h.obs.published.empty());

    auto ok = h.call("PUT", "/v1/observer/config", "carol-token", R"({"min_workers": 2})");
    CHECK(ok.status == 200);
    REQUIRE(h.obs.published.size() == 1);
    CHECK(body_of(h.call("GET", "/v1/observer/config", "carol-token")).at("min_workers").as_int64() == 2);
    h.obs.fail = true;
    CHECK(h.call("PUT", "/v1/observer/config", "carol-token", R"({"min_workers": 2})").status == 503);
}

TEST_CASE("frontend: the websocket route is the server's, and the bench route", "[frontend][unit]") {
    harness h;
    // GET /v1/ws is upgraded (or answered 426) by the HTTP server; it has no handler here.
    CHECK(h.call("GET", "/v1/ws", "alice-token").status == 404);
    for (const auto& r : frontend::route_table()) CHECK((r.fn == nullptr) == r.websocket);
    CHECK(h.call("GET", "/v1/bench/hello").status == 404);
    frontend::frontend_settings s;
    s.bench_hello = true;
    harness b(s);
    auto hello = b.call("GET", "/v1/bench/hello");
    CHECK(hello.status == 200);
    CHECK(hello.body == "hello\n");
}

TEST_CASE("frontend: problem types are unique and documented", "[frontend][unit]") {
    std::set<std::string_view> slugs;
    for (const auto& p : frontend::all_problem_types()) {
        CHECK(slugs.insert(p.slug).second);
        CHECK(p.status >= 400);
        auto r = frontend::make_problem(p, "d");
        auto b = body_of(r).as_object();
        CHECK(b.at("status").as_int64() == p.status);
        CHECK(b.at("title").as_string() == p.title);
    }
    // 5xx bodies say nothing more than the title.
    auto r = frontend::problem_from_error(errc::internal);
    CHECK(r.status == 500);
    CHECK_FALSE(body_of(r).as_object().contains("detail"));
}
