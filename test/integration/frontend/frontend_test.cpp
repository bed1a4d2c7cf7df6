// `faasd frontend` in-process (run_frontend) against real Kafka and real
// Keycloak tokens: submit, auth, access control, status, list, cancel, results
// (written to the topics as a worker would), WebSocket, observer routes, OpenAPI.

#include "frontend_support.hpp"

#include <faasd/frontend/app.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <cctype>

using namespace faasd;
using namespace faasd::test::frontend;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// What a worker writes when a job ends: a terminal snapshot with its result.
jobs::job_status terminal_snapshot(const jobs::job_message& m, jobs::job_state state, json::value output) {
    jobs::job_status s;
    s.id = m.id;
    s.owner = m.owner;
    s.state = state;
    s.attempt = 1;
    s.submitted_at = m.submitted_at;
    s.started_at = m.submitted_at + 1;
    s.finished_at = now_ms();
    s.updated_at = s.finished_at;
    s.worker = "itest-worker";
    s.repo = m.spec.repo;
    s.delivery = m.spec.delivery;
    jobs::job_result r;
    r.id = m.id;
    r.owner_subject = m.owner.subject;
    r.state = state;
    r.attempt = 1;
    r.worker = s.worker;
    r.exit_code = 0;
    r.output = std::move(output);
    r.stdout_text = "hello from the worker\n";
    r.times.submitted_at = s.submitted_at;
    r.times.finished_at = s.finished_at;
    s.result = std::move(r);
    return s;
}

// Built outside coroutines (GCC 12 rejects braced string-literal initialisers
// inside coroutine bodies: "array used as initializer").
const std::string forged = "forgedHDR.forgedCLM.forgedSIGq7Zx";
client::header_list raw_upgrade_headers(const std::string& token) {
    client::header_list h;
    h.emplace_back("Connection", "Upgrade");
    h.emplace_back("Upgrade", "websocket");
    h.emplace_back("Sec-WebSocket-Version", "13");
    h.emplace_back("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    h.emplace_back("Authorization", "Bearer " + token);
    return h;
}
client::header_list authorization(const std::string& value) {
    client::header_list h;
    h.emplace_back("Authorization", value);
    return h;
}
std::vector<std::string> protocols(const std::string& token = {}) {
    std::vector<std::string> p;
    p.emplace_back("faasd.v1");
    if (!token.empty()) p.push_back("faasd.bearer." + token);
    return p;
}

}  // namespace

TEST_CASE("frontend: submit publishes the job (202 after the ack), identity from the token, credentials sealed",
          "[frontend][integration]") {
    with_frontend([](frontend_env& fe) -> awaitable<void> {
        auto alice = token_of("alice");
        auto r = co_await fe.call("POST", "/v1/jobs", alice, job_body());
        auto id = id_of(r);
        CHECK(r.header("Location") == "/v1/jobs/" + id);

        // 202 came after the broker acknowledged: the job is on its topic.
        auto raw = co_await fe.find(fe.names.jobs_at_least_once, id);
        REQUIRE(raw.has_value());
        CHECK(raw->value->find("SUPER-SECRET-VALUE") == std::string::npos);
        CHECK(raw->value->find("mallory") == std::string::npos);
        auto m = jobs::decode_job_message(*raw->value);
        REQUIRE(m.has_value());
        CHECK(m->id == id);
        CHECK(m->owner.username == "alice");
        CHECK_FALSE(m->owner.subject.empty());
        CHECK(m->owner.subject != "mallory");
        CHECK(std::find(m->owner.roles.begin(), m->owner.roles.end(), "faas-admin") == m->owner.roles.end());
        CHECK(std::find(m->owner.roles.begin(), m->owner.roles.end(), "faas-user") != m->owner.roles.end());
        // Sealed for this job under the ring's key; only the ring opens it.
        CHECK(m->spec.credentials.key_id == "k1");
        CHECK(m->spec.credentials.names == std::vector<std::string>{"git"});
        auto opened = crypto::open(fe.ring, id, m->spec.credentials);
        REQUIRE(opened.has_value());
        CHECK(json::parse(*opened).at("git").as_string() == "SUPER-SECRET-VALUE");
        CHECK_FALSE(crypto::open(fe.ring, "01ARZ3NDEKTSV4RRFFQ69G5FAV", m->spec.credentials).has_value());

        // The queued snapshot is on the state topic too.
        auto st = co_await fe.find(fe.names.state, id);
        REQUIRE(st.has_value());
        auto snap = jobs::decode_job_status(*st->value);
        REQUIRE(snap.has_value());
        CHECK(snap->state == jobs::job_state::queued);

        // Status and list (read-your-writes, then the state topic).
        auto s = co_await fe.call("GET", "/v1/jobs/" + id, alice);
        REQUIRE(s.status == 200);
        CHECK(s.json().at("state").as_string() == "queued");
        auto l = co_await fe.call("GET", "/v1/jobs", alice);
        REQUIRE(l.status == 200);
        auto items = l.json().at("items").as_array();
        REQUIRE(items.size() == 1);
        CHECK(items[0].at("id").as_string() == id);

        // Another user sees nothing: 404, and an empty list.
        auto bob = token_of("bob");
        CHECK((co_await fe.call("GET", "/v1/jobs/" + id, bob)).status == 404);
        CHECK((co_await fe.call("GET", "/v1/jobs/" + id + "/result", bob)).status == 404);
        CHECK((co_await fe.call("DELETE", "/v1/jobs/" + id, bob)).status == 404);
        CHECK((co_await fe.call("GET", "/v1/jobs", bob)).json().at("items").as_array().empty());
    });
}

TEST_CASE("frontend: bad tokens get 401 with WWW-Authenticate, users without the role 403", "[frontend][integration]") {
    with_frontend([](frontend_env& fe) -> awaitable<void> {
        auto none = co_await fe.call("POST", "/v1/jobs", std::nullopt, job_body());
        CHECK(none.status == 401);
        CHECK(none.header("WWW-Authenticate").value_or("").rfind("Bearer", 0) == 0);

        auto alice = token_of("alice");
        auto tampered = alice;
        tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
        auto bad = co_await fe.call("GET", "/v1/jobs", tampered);
        CHECK(bad.status == 401);
        CHECK(bad.header("WWW-Authenticate").value_or("").find("invalid_token") != std::string::npos);
        auto garbage = co_await fe.call("GET", "/v1/jobs", std::string("not-a-jwt"));
        CHECK(garbage.status == 401);
        CHECK(garbage.header("WWW-Authenticate").has_value());

        auto dave = token_of("dave");
        CHECK((co_await fe.call("GET", "/v1/jobs", dave)).status == 403);
        auto ds = co_await fe.call("POST", "/v1/jobs", dave, job_body());
        CHECK(ds.status == 403);
        // Nothing was published for the refused submissions.
        auto any = co_await fe.call("GET", "/v1/jobs", alice);
        CHECK(any.json().at("items").as_array().empty());

        // Public routes need no token.
        CHECK((co_await fe.call("GET", "/healthz")).status == 200);
        auto metrics = co_await fe.call("GET", "/metrics");
        CHECK(metrics.status == 200);
        CHECK(metrics.body.find("faasd_auth_failures_total") != std::string::npos);
    });
}

TEST_CASE("frontend: cancel publishes to the cancel topic and the job ends cancelled", "[frontend][integration]") {
    with_frontend([](frontend_env& fe) -> awaitable<void> {
        auto alice = token_of("alice");
        auto id = id_of(co_await fe.call("POST", "/v1/jobs", alice, job_body()));
        auto c = co_await fe.call("DELETE", "/v1/jobs/" + id, alice);
        INFO(c.body);
        REQUIRE(c.status == 202);

        auto msg = co_await fe.find(fe.names.cancel, id);
        REQUIRE(msg.has_value());
        auto v = json::parse(*msg->value).as_object();
        CHECK(v.at("v").as_int64() == 1);
        CHECK(v.at("id").as_string() == id);
        auto job = co_await job_on_topic(fe, id);
        CHECK(v.at("by").as_string() == job.owner.subject);

        auto s = co_await fe.poll("/v1/jobs/" + id, alice,
                                  [](const reply& r) { return r.status == 200 && r.json().at("state").as_string() == "cancelled"; });
        CHECK(s.json().at("state").as_string() == "cancelled");
        // The cancelled snapshot is on the state topic (other replicas see it).
        auto st = co_await fe.find(fe.names.state, id, [](const kafka::message& m) {
            auto d = m.value ? jobs::decode_job_status(*m.value) : result<jobs::job_status>(errc::bad_message);
            return d && d->state == jobs::job_state::cancelled;
        });
        CHECK(st.has_value());
    });
}

TEST_CASE("frontend: a worker's terminal snapshot becomes the result, reading it erases the job",
          "[frontend][integration]") {
    with_frontend([](frontend_env& fe) -> awaitable<void> {
        auto alice = token_of("alice");
        auto id = id_of(co_await fe.call("POST", "/v1/jobs", alice, job_body()));
        auto keep_id = id_of(co_await fe.call("POST", "/v1/jobs", alice, job_body()));

        auto early = co_await fe.call("GET", "/v1/jobs/" + id + "/result", alice);
        CHECK(early.status == 409);  // not finished yet

        const std::vector<std::string> both{id, keep_id};
        for (const auto& jid : both) {
            auto m = co_await job_on_topic(fe, jid);
            auto snap = terminal_snapshot(m, jobs::job_state::succeeded, json::object{{"answer", 42}});
            co_await produce(fe, fe.names.results, jid, jobs::encode(*snap.result));
            co_await produce(fe, fe.names.state, jid, jobs::encode(snap));
        }

        auto r = co_await fe.call("GET", "/v1/jobs/" + id + "/result?wait=20", alice);
        INFO(r.body);
        REQUIRE(r.status == 200);
        auto body = r.json().as_object();
        CHECK(body.at("output").at("answer").as_int64() == 42);
        CHECK(body.at("state").as_string() == "succeeded");
        // Read once: erased (once the response was written) and tombstoned on the state topic.
        auto gone = co_await fe.poll("/v1/jobs/" + id, alice, [](const reply& x) { return x.status == 404; }, 10s);
        CHECK(gone.status == 404);
        CHECK((co_await fe.call("GET", "/v1/jobs/" + id + "/result", alice)).status == 404);
        auto tomb = co_await fe.find(fe.names.state, id, [](const kafka::message& m) { return m.tombstone(); });
        CHECK(tomb.has_value());

        // ?keep=true leaves it.
        auto k1 = co_await fe.call("GET", "/v1/jobs/" + keep_id + "/result?keep=true&wait=20", alice);
        REQUIRE(k1.status == 200);
        auto k2 = co_await fe.call("GET", "/v1/jobs/" + keep_id + "/result?keep=true", alice);
        CHECK(k2.status == 200);
        CHECK(k2.json().at("output").at("answer").as_int64() == 42);
        CHECK((co_await fe.call("GET", "/v1/jobs/" + keep_id, alice)).json().at("state").as_string() == "succeeded");
    });
}

TEST_CASE("frontend: a WebSocket subscriber gets the job's state changes", "[frontend][integration]") {
    with_frontend([](frontend_env& fe) -> awaitable<void> {
        auto alice = token_of("alice");
        client::ws_client ws;
        auto url = "ws" + fe.base.substr(4) + "/v1/ws";
        client::header_list auth_header{{"Authorization", "Bearer " + alice}};
        std::vector<std::string> protos{"faasd.v1"};
        auto connected = co_await ws.connect(url, auth_header, protos, 10s);
        REQUIRE(connected.has_value());
        CHECK(ws.subprotocol() == "faasd.v1");
        auto welcome = co_await ws.read();
        REQUIRE(welcome.has_value());
        CHECK(json::parse(*welcome).at("type").as_string() == "welcome");
        REQUIRE((co_await ws.write(R"({"type":"subscribe","all":true})")).has_value());
        auto ack = co_await ws.read();
        REQUIRE(ack.has_value());
        CHECK(json::parse(*ack).at("type").as_string() == "subscribed");

        auto id = id_of(co_await fe.call("POST", "/v1/jobs", alice, job_body()));
        // The next job event's state ("" when none comes within 15 s or the socket closed).
        auto next_state = [&]() -> awaitable<std::string> {
            auto ex = co_await asio::this_coro::executor;
            for (;;) {
                asio::steady_timer limit(ex, 15s);
                auto r = co_await (ws.read() || limit.async_wait(asio::as_tuple(asio::use_awaitable)));
                if (r.index() == 1 || !std::get<0>(r)) {
                    auto m = co_await fe.call("GET", "/metrics");
                    UNSCOPED_INFO("no job event; close code " << ws.close_code() << "; metrics:\n" << m.body);
                    co_return std::string();
                }
                auto v = json::parse(*std::get<0>(r)).as_object();
                if (v.at("type").as_string() != "job") continue;
                CHECK(v.at("job").at("id").as_string() == id);
                co_return std::string(v.at("job").at("state").as_string());
            }
        };
        auto first = co_await next_state();
        CHECK(first == "queued");

        // A worker reports running, then success: both reach the subscriber.
        auto m = co_await job_on_topic(fe, id);
        jobs::job_status running;
        running.id = id;
        running.owner = m.owner;
        running.state = jobs::job_state::running;
        running.submitted_at = m.submitted_at;
        running.started_at = now_ms();
        running.updated_at = running.started_at;
        running.worker = "itest-worker";
        running.repo = m.spec.repo;
        co_await produce(fe, fe.names.state, id, jobs::encode(running));
        auto second = co_await next_state();
        CHECK(second == "running");
        json::object ok_output{{"ok", true}};
        auto done = jobs::encode(terminal_snapshot(m, jobs::job_state::succeeded, ok_output));
        co_await produce(fe, fe.names.state, id, done);
        auto third = co_await next_state();
        CHECK(third == "succeeded");

        // A bad token on the upgrade: a plain 401, no upgrade (docs/frontend.md, "WebSocket protocol").
        client::ws_client bad;
        client::header_list bad_header{{"Authorization", "Bearer nope"}};
        int bad_status = 0;
        auto bad_connected = co_await bad.connect(url, bad_header, protos, 10s, &bad_status);
        CHECK_FALSE(bad_connected.has_value());
        CHECK(bad_status == 401);
        co_await ws.close();
    });
}

TEST_CASE("frontend: WebSocket tokens are checked before the upgrade, and tokens never reach the log",
          "[frontend][integration]") {
    auto log = std::make_shared<std::string>();
    std::vector<std::string> secrets;
    with_frontend(
        [&](frontend_env& fe) -> awaitable<void> {
            auto alice = token_of("alice");
            auto dave = token_of("dave");
            secrets = {alice, dave, forged};
            auto url = "ws" + fe.base.substr(4) + "/v1/ws";

            // A raw upgrade request with a bad token: 401 with WWW-Authenticate, not 101.
            auto raw = co_await client::http_request("GET", fe.base + "/v1/ws", raw_upgrade_headers(forged), {}, 10s);
            REQUIRE(raw.has_value());
            CHECK(raw->status == 401);
            REQUIRE(raw->header("WWW-Authenticate").has_value());
            CHECK(raw->header("WWW-Authenticate")->find("error=\"invalid_token\"") != std::string_view::npos);
            CHECK_FALSE(raw->header("Sec-WebSocket-Accept").has_value());

            auto status_of = [&](client::header_list h, std::vector<std::string> protos) -> awaitable<int> {
                client::ws_client c;
                int status = 0;
                auto r = co_await c.connect(url, std::move(h), std::move(protos), 10s, &status);
                if (!r) co_return status;
                auto welcome = co_await c.read();
                co_await c.close();
                co_return welcome && json::parse(*welcome).at("type").as_string() == "welcome" ? 101 : -1;
            };
            // Subprotocol tokens are checked at the upgrade too.
            CHECK(co_await status_of(client::header_list(), protocols(forged)) == 401);
            CHECK(co_await status_of(client::header_list(), protocols(alice)) == 101);
            // The scheme is case-insensitive, as on every route.
            CHECK(co_await status_of(authorization("bearer " + alice), protocols()) == 101);
            // Another scheme, or a token without faas-user.
            CHECK(co_await status_of(authorization("Basic YWxpY2U6eA=="), protocols()) == 401);
            CHECK(co_await status_of(authorization("Bearer " + dave), protocols()) == 403);

            // No token at the upgrade: the first message authenticates (browsers).
            {
                client::ws_client c;
                auto r = co_await c.connect(url, client::header_list(), protocols(), 10s);
                REQUIRE(r.has_value());
                REQUIRE((co_await c.write("{\"type\":\"auth\",\"token\":\"" + alice + "\"}")).has_value());
                auto welcome = co_await c.read();
                REQUIRE(welcome.has_value());
                CHECK(json::parse(*welcome).at("type").as_string() == "welcome");
                co_await c.close();
            }
            {
                client::ws_client c;
                REQUIRE((co_await c.connect(url, client::header_list(), protocols(), 10s)).has_value());
                REQUIRE((co_await c.write("{\"type\":\"auth\",\"token\":\"" + forged + "\"}")).has_value());
                while (co_await c.read()) {
                }
                CHECK(c.close_code() == 4001);
            }
            // A plain GET without the upgrade.
            CHECK((co_await fe.call("GET", "/v1/ws", alice)).status == 426);
            // And the HTTP routes, with good and bad tokens.
            CHECK((co_await fe.call("GET", "/v1/jobs", alice)).status == 200);
            CHECK((co_await fe.call("GET", "/v1/jobs", forged)).status == 401);
        },
        {}, {}, log);
    INFO("captured " << log->size() << " bytes of log");
    CHECK(log->find("ws.opened") != std::string::npos);  // the debug log was captured
    for (const auto& t : secrets) {
        CHECK(log->find(t) == std::string::npos);
        CHECK(log->find(t.substr(t.rfind('.') + 1)) == std::string::npos);  // not even the signature
    }
}

TEST_CASE("frontend: observer report and config, admin only for config", "[frontend][integration]") {
    with_frontend([](frontend_env& fe) -> awaitable<void> {
        auto alice = token_of("alice");
        auto carol = token_of("carol");
        CHECK((co_await fe.call("PUT", "/v1/observer/config", alice, R"({"max_step_up": 5})")).status == 403);
        CHECK((co_await fe.call("GET", "/v1/observer/config", alice)).status == 403);
        auto bad = co_await fe.call("PUT", "/v1/observer/config", carol, R"({"max_step_up": -1})");
        CHECK(bad.status == 400);

        auto put = co_await fe.call("PUT", "/v1/observer/config", carol, R"({"max_step_up": 5})");
        INFO(put.body);
        REQUIRE(put.status == 200);
        auto pub = co_await fe.find(fe.names.observer_config, "config");
        REQUIRE(pub.has_value());
        CHECK(json::parse(*pub->value).at("max_step_up").as_int64() == 5);
        auto got = co_await fe.call("GET", "/v1/observer/config", carol);
        REQUIRE(got.status == 200);
        CHECK(got.json().at("max_step_up").as_int64() == 5);

        // The report is whatever the observer last wrote to its topic.
        CHECK((co_await fe.call("GET", "/v1/observer/report", alice)).status == 404);
        co_await produce(fe, fe.names.observer, "report", R"({"v":1,"workers":3,"decision":"hold"})");
        auto rep = co_await fe.poll("/v1/observer/report", alice, [](const reply& r) { return r.status == 200; });
        REQUIRE(rep.status == 200);
        CHECK(rep.json().at("workers").as_int64() == 3);
    });
}

TEST_CASE("frontend: every route is in the served /openapi.json", "[frontend][integration]") {
    with_frontend([](frontend_env& fe) -> awaitable<void> {
        auto r = co_await fe.call("GET", "/openapi.json");
        REQUIRE(r.status == 200);
        auto paths = r.json().at("paths").as_object();
        for (const auto& rt : faasd::frontend::route_table()) {
            if (rt.name == "benchHello") continue;  // hidden benchmark route
            std::string method(rt.method);
            std::transform(method.begin(), method.end(), method.begin(), [](unsigned char ch) { return std::tolower(ch); });
            INFO(rt.method << " " << rt.pattern);
            REQUIRE(paths.contains(rt.pattern));
            CHECK(paths.at(rt.pattern).as_object().contains(method));
        }
    });
}

TEST_CASE("frontend: the faasd frontend command validates its configuration (exit 2) and documents its options",
          "[frontend][integration]") {
    auto bin = test::faasd_binary();
    auto key = "FAASD_CREDENTIALS_KEYS=" + crypto::generate_key("k1");
    auto issuer = "--oidc-issuer=" + test::require_env("FAASD_TEST_OIDC_ISSUER");

    auto help = test::run_process({bin, "frontend", "--help"});
    CHECK(help.exit_code == 0);
    for (const char* opt : {"--listen", "--oidc-issuer", "--oidc-jwks-file", "--kafka-brokers", "--topic-prefix",
                            "--max-body", "--shutdown-grace", "--create-topics"})
        CHECK(help.out.find(opt) != std::string::npos);

    auto ok = test::run_process({bin, "--check-config", "frontend", issuer}, {key});
    INFO(ok.err);
    CHECK(ok.exit_code == 0);
    CHECK(test::run_process({bin, "--check-config", "frontend"}, {key}).exit_code == 2);           // no issuer
    CHECK(test::run_process({bin, "--check-config", "frontend", issuer}).exit_code == 2);          // no key ring
    CHECK(test::run_process({bin, "--check-config", "frontend", issuer}, {"FAASD_CREDENTIALS_KEYS=k1:x"}).exit_code == 2);
    CHECK(test::run_process({bin, "--check-config", "frontend", issuer, "--listen", "nope"}, {key}).exit_code == 2);
    CHECK(test::run_process({bin, "--check-config", "frontend", issuer, "--kafka-brokers", ""}, {key}).exit_code == 2);
}

TEST_CASE("frontend: static signing keys from --oidc-jwks-file (as faasd dev uses)", "[frontend][integration]") {
    test::temp_dir dir("fe-jwks");
    auto file = (dir.path() / "jwks.json").string();
    auto fetched = test::run_process(
        {"curl", "-fsS", "--max-time", "30", "-o", file, test::require_env("FAASD_TEST_OIDC_JWKS_URL")});
    INFO(fetched.err);
    REQUIRE(fetched.exit_code == 0);
    with_frontend(
        [](frontend_env& fe) -> awaitable<void> {
            auto alice = token_of("alice");
            auto ok = co_await fe.call("GET", "/v1/jobs", alice);
            CHECK(ok.status == 200);
            auto tampered = alice;
            tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
            CHECK((co_await fe.call("GET", "/v1/jobs", tampered)).status == 401);
            auto ready = co_await fe.call("GET", "/readyz");
            CHECK(ready.json().at("components").at("keys").at("ready").as_bool());
        },
        [&](roles::frontend_config& cfg) { cfg.oidc_jwks_file = file; });
}

TEST_CASE("frontend: with Kafka unreachable it serves /healthz, is not ready, and stops cleanly on shutdown",
          "[frontend][integration]") {
    // A port nobody listens on: bound, then released.
    std::uint16_t dead_port = 0;
    {
        asio::io_context io;
        asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        dead_port = a.local_endpoint().port();
    }
    test::run_coroutine(
        [&]() -> awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            roles::frontend_config cfg;
            cfg.listen = "127.0.0.1:0";
            cfg.oidc_issuer = test::require_env("FAASD_TEST_OIDC_ISSUER");
            cfg.credentials_keys = crypto::generate_key("k1");
            roles::kafka_config kc;
            kc.brokers = "127.0.0.1:" + std::to_string(dead_port);
            kc.topic_prefix = test::unique_name("fe-down") + ".";
            faasd::runtime::role_env env{faasd::logger::null(), std::make_shared<faasd::runtime::health>(),
                                         std::make_shared<faasd::runtime::shutdown_signal>(ex), 5s};
            std::uint16_t port = 0;
            bool stopped = false;
            std::exception_ptr error;
            asio::co_spawn(ex, roles::run_frontend(cfg, env, kc, [&](std::uint16_t p) { port = p; }),
                           [&](std::exception_ptr e) {
                               error = e;
                               stopped = true;
                           });
            auto sleep = [&](std::chrono::milliseconds d) -> awaitable<void> {
                asio::steady_timer t(ex, d);
                co_await t.async_wait(asio::use_awaitable);
            };
            for (int i = 0; i < 500 && port == 0 && !stopped; ++i) co_await sleep(20ms);
            REQUIRE(port != 0);
            frontend_env fe;
            fe.base = "http://127.0.0.1:" + std::to_string(port);
            CHECK((co_await fe.call("GET", "/healthz")).status == 200);
            co_await sleep(1500ms);  // a few failed attempts to reach Kafka
            auto ready = co_await fe.call("GET", "/readyz");
            CHECK(ready.status == 503);
            auto components = ready.json().at("components").as_object();
            CHECK_FALSE(components.at("kafka").at("ready").as_bool());
            CHECK_FALSE(components.at("topics").at("ready").as_bool());
            env.shutdown->request();
            for (int i = 0; i < 1000 && !stopped; ++i) co_await sleep(20ms);  // 20 s at most
            CHECK(stopped);
            if (error) std::rethrow_exception(error);
        },
        std::chrono::minutes(1));
}
