// The OpenAPI document lists, for every route, exactly the statuses the route
// answers: each route is driven through the situations that produce each of
// its answers (with fakes of the ports), and the statuses seen are compared
// with the document's `responses`.

#include "fakes.hpp"

#include <faasd/frontend/openapi.hpp>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include <map>
#include <set>

using namespace faasd;
using namespace faasd::test::frontend;
namespace json = boost::json;

namespace {

using seen_map = std::map<std::string, std::set<int>, std::less<>>;

struct prober {
    harness& h;
    seen_map& seen;
    int call(std::string method, std::string target, std::string token = {}, std::string body = {},
             std::vector<std::pair<std::string, std::string>> headers = {}) {
        if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
        auto d = h.run(harness::make(std::move(method), std::move(target), std::move(body), std::move(headers)));
        seen[std::string(d.route)].insert(d.res.status);
        return d.res.status;
    }
    // What every protected route answers about its token.
    void auth(const std::string& method, const std::string& target, bool admin) {
        CHECK(call(method, target) == 401);
        CHECK(call(method, target, "forged") == 401);
        CHECK(call(method, target, "dave-token") == 403);
        if (admin) CHECK(call(method, target, "alice-token") == 403);
        CHECK(call(method, target, "keys-unavailable") == 503);
    }
};

const std::string job = R"({"repo":{"url":"https://h/r","ref":"m"}})";

}  // namespace

TEST_CASE("frontend: the OpenAPI document lists exactly the statuses each route answers", "[frontend][unit]") {
    seen_map seen;
    frontend::frontend_settings s;
    s.max_body_bytes = 2000;
    s.max_unfinished_per_user = 3;
    s.submit_rate = 1000;
    s.submit_burst = 6;
    harness h(s);
    prober p{h, seen};

    // Public routes.
    CHECK(p.call("GET", "/healthz") == 200);
    CHECK(p.call("GET", "/readyz") == 200);
    h.ready = false;
    CHECK(p.call("GET", "/readyz") == 503);
    h.ready = true;
    CHECK(p.call("GET", "/metrics") == 200);
    CHECK(p.call("GET", "/openapi.json") == 200);
    CHECK(p.call("GET", "/v1/bench/hello") == 404);
    {
        frontend::frontend_settings b;
        b.bench_hello = true;
        harness hb(b);
        prober pb{hb, seen};
        CHECK(pb.call("GET", "/v1/bench/hello") == 200);
    }

    // POST /v1/jobs.
    p.auth("POST", "/v1/jobs", false);
    CHECK(p.call("POST", "/v1/jobs", "alice-token", job) == 202);
    CHECK(p.call("POST", "/v1/jobs", "alice-token", "{}") == 400);
    CHECK(p.call("POST", "/v1/jobs", "alice-token", job, {{"Idempotency-Key", "has space"}}) == 400);
    CHECK(p.call("POST", "/v1/jobs", "alice-token", std::string(2001, ' ')) == 413);
    CHECK(p.call("POST", "/v1/jobs", "alice-token", job, {{"Content-Type", "text/plain"}}) == 415);
    CHECK(p.call("POST", "/v1/jobs", "bob-token", job) == 202);
    CHECK(p.call("POST", "/v1/jobs", "bob-token", job) == 202);
    CHECK(p.call("POST", "/v1/jobs", "bob-token", job) == 202);
    CHECK(p.call("POST", "/v1/jobs", "bob-token", job) == 429);  // unfinished jobs
    for (int i = 0; i < 6; ++i) p.call("POST", "/v1/jobs", "bob-token", job);
    CHECK(p.call("POST", "/v1/jobs", "bob-token", job) == 429);  // rate
    auto keyed = h.call("POST", "/v1/jobs", "carol-token", job, {{"Idempotency-Key", "k"}});
    REQUIRE(keyed.status == 202);
    auto keyed_id = std::string(body_of(keyed).at("id").as_string());
    h.advance(keyed_id, jobs::job_state::succeeded);
    REQUIRE(h.call("GET", "/v1/jobs/" + keyed_id + "/result", "carol-token").status == 200);
    CHECK(p.call("POST", "/v1/jobs", "carol-token", job, {{"Idempotency-Key", "k"}}) == 409);
    h.pub.fail = true;
    CHECK(p.call("POST", "/v1/jobs", "carol-token", job) == 503);
    h.pub.fail = false;

    // GET /v1/jobs.
    p.auth("GET", "/v1/jobs", false);
    CHECK(p.call("GET", "/v1/jobs", "alice-token") == 200);
    CHECK(p.call("GET", "/v1/jobs?limit=0", "alice-token") == 400);

    // GET /v1/jobs/{id}, DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/result.
    auto id = h.submit("carol-token");
    auto finished = h.submit("carol-token");
    h.advance(finished, jobs::job_state::succeeded);
    const std::string missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    p.auth("GET", "/v1/jobs/" + id, false);
    CHECK(p.call("GET", "/v1/jobs/" + id, "carol-token") == 200);
    CHECK(p.call("GET", "/v1/jobs/" + missing, "carol-token") == 404);

    p.auth("GET", "/v1/jobs/" + id + "/result", false);
    CHECK(p.call("GET", "/v1/jobs/" + id + "/result", "carol-token") == 409);
    CHECK(p.call("GET", "/v1/jobs/" + id + "/result?wait=x", "carol-token") == 400);
    CHECK(p.call("GET", "/v1/jobs/" + missing + "/result", "carol-token") == 404);
    CHECK(p.call("GET", "/v1/jobs/" + finished + "/result?keep=true", "carol-token") == 200);

    p.auth("DELETE", "/v1/jobs/" + id, false);
    CHECK(p.call("DELETE", "/v1/jobs/" + missing, "carol-token") == 404);
    CHECK(p.call("DELETE", "/v1/jobs/" + finished, "carol-token") == 409);
    h.pub.fail = true;
    CHECK(p.call("DELETE", "/v1/jobs/" + id, "carol-token") == 503);
    h.pub.fail = false;
    CHECK(p.call("DELETE", "/v1/jobs/" + id, "carol-token") == 202);

    // Observer routes.
    p.auth("GET", "/v1/observer/report", false);
    CHECK(p.call("GET", "/v1/observer/report", "alice-token") == 404);
    h.obs.latest_report = json::object{{"v", 1}};
    CHECK(p.call("GET", "/v1/observer/report", "alice-token") == 200);
    p.auth("GET", "/v1/observer/config", true);
    CHECK(p.call("GET", "/v1/observer/config", "carol-token") == 200);
    p.auth("PUT", "/v1/observer/config", true);
    CHECK(p.call("PUT", "/v1/observer/config", "carol-token", R"({"min_workers": 1})") == 200);
    CHECK(p.call("PUT", "/v1/observer/config", "carol-token", R"({"min_workers": -1})") == 400);
    CHECK(p.call("PUT", "/v1/observer/config", "carol-token", std::string(2001, ' ')) == 413);
    CHECK(p.call("PUT", "/v1/observer/config", "carol-token", "{}", {{"Content-Type", "text/plain"}}) == 415);
    h.obs.fail = true;
    CHECK(p.call("PUT", "/v1/observer/config", "carol-token", R"({"min_workers": 1})") == 503);

    // Compare with the document.
    auto doc = json::parse(frontend::openapi_document()).as_object();
    const auto& paths = doc.at("paths").as_object();
    for (const auto& r : frontend::route_table()) {
        std::string method(r.method);
        for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const auto& responses = paths.at(r.pattern).at(method).at("responses").as_object();
        std::set<int> documented;
        for (const auto& [code, _] : responses) documented.insert(std::stoi(std::string(code)));
        INFO(r.method << " " << r.pattern);
        if (r.websocket) {
            // Served by the HTTP server: 101, or the refusal of authenticate_upgrade, or 426 without an upgrade.
            CHECK(documented == std::set<int>{101, 401, 403, 426, 503});
            continue;
        }
        CHECK(seen[std::string(r.name)] == documented);
    }
}
