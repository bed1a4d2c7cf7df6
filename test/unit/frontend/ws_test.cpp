#include "fakes.hpp"

#include <catch2/catch.hpp>

using namespace faasd;
using namespace faasd::test::frontend;
namespace json = boost::json;

namespace {

// Authenticates an upgrade request as the role does before accepting it.
fe::upgrade_auth upgrade(harness& h, std::optional<std::string> authorization, std::string offered = {}) {
    std::optional<fe::upgrade_auth> out;
    asio::co_spawn(h.ioc, fe::authenticate_upgrade(*h.app, std::move(authorization), std::move(offered)),
                   [&](std::exception_ptr e, fe::upgrade_auth a) {
                       if (e) std::rethrow_exception(e);
                       out = std::move(a);
                   });
    h.ioc.restart();
    h.ioc.run_for(std::chrono::seconds(1));
    REQUIRE(out.has_value());
    return std::move(*out);
}

// Runs a WebSocket session in the harness's io_context while the test drives
// it. With a token, the upgrade carries "Authorization: Bearer <token>" and is
// authenticated first, as the role does: a refused token is answered with
// `refused` and no session runs.
struct ws_run {
    harness& h;
    fe::ws_hub hub;
    fake_ws conn;
    bool done = false;
    std::optional<http::response> refused;

    ws_run(harness& hh, std::optional<std::string> token, fe::ws_settings s = {}, std::size_t cap = 100)
        : h(hh), hub(hh.store, s), conn(hh.ioc.get_executor(), cap) {
        std::optional<fe::caller> who;
        if (token) {
            auto a = upgrade(h, "Bearer " + *token);
            if (auto* r = std::get_if<http::response>(&a)) {
                refused = std::move(*r);
                done = true;
                return;
            }
            REQUIRE(std::holds_alternative<fe::caller>(a));
            who = std::get<fe::caller>(a);
        }
        asio::co_spawn(h.ioc, fe::run_ws_session(conn, std::move(who), *h.app, hub),
                       [this](std::exception_ptr e) {
                           done = true;
                           if (e) std::rethrow_exception(e);
                       });
        pump();
    }
    // Runs every ready handler until none is left (timers that have not
    // expired stay pending): deterministic, whatever the machine's load.
    void pump() {
        for (int i = 0; i < 10000; ++i) {
            h.ioc.restart();
            if (h.ioc.poll() == 0) break;
        }
    }
    void pump_for(std::chrono::milliseconds d) {
        h.ioc.restart();
        h.ioc.run_for(d);
        pump();
    }
    bool wait_done(std::chrono::milliseconds max = std::chrono::seconds(3)) {
        auto deadline = std::chrono::steady_clock::now() + max;
        while (!done && std::chrono::steady_clock::now() < deadline) pump_for(std::chrono::milliseconds(10));
        return done;
    }
    void say(const std::string& m) {
        conn.push(m);
        pump();
    }
};

}  // namespace

TEST_CASE("ws: message parsing", "[frontend][unit]") {
    auto m = fe::parse_ws_message(R"({"type":"subscribe","ids":["A","B"]})");
    REQUIRE(m);
    CHECK(m->type == fe::ws_client_message::kind::subscribe);
    CHECK(m->ids.size() == 2);
    CHECK(fe::parse_ws_message(R"({"type":"subscribe","all":true})")->all);
    CHECK(fe::parse_ws_message(R"({"type":"auth","token":"t"})")->token == "t");
    CHECK(fe::parse_ws_message(R"({"type":"ping"})"));
    CHECK_FALSE(fe::parse_ws_message(R"({"type":"subscribe"})"));
    CHECK_FALSE(fe::parse_ws_message(R"({"type":"subscribe","ids":[1]})"));
    CHECK_FALSE(fe::parse_ws_message(R"({"type":"subscribe","all":"yes"})"));
    CHECK_FALSE(fe::parse_ws_message(R"({"type":"auth"})"));
    CHECK_FALSE(fe::parse_ws_message(R"({"type":"dance"})"));
    CHECK_FALSE(fe::parse_ws_message("[]"));
    CHECK_FALSE(fe::parse_ws_message("not json"));
    CHECK(fe::token_from_subprotocols("faasd.v1, faasd.bearer.abc.def") == "abc.def");
    CHECK_FALSE(fe::token_from_subprotocols("faasd.v1"));
    CHECK(fe::offers_ws_subprotocol("chat, faasd.v1"));
    CHECK_FALSE(fe::offers_ws_subprotocol("faasd.v2"));
}

TEST_CASE("ws: a subscriber sees its job's states and nothing of others", "[frontend][unit]") {
    harness h;
    auto mine = h.submit("alice-token");
    auto theirs = h.submit("bob-token");
    ws_run w(h, std::string("alice-token"));
    REQUIRE(w.conn.of_type("welcome").size() == 1);
    CHECK(w.conn.of_type("welcome")[0].at("sub").as_string() == "alice");

    w.say(R"({"type":"subscribe","ids":[")" + mine + R"(",")" + theirs + R"("]})");
    auto acks = w.conn.of_type("subscribed");
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].at("ids").as_array().size() == 2);  // unknown and foreign ids look alike
    auto jobs_seen = w.conn.of_type("job");
    REQUIRE(jobs_seen.size() == 1);  // the current state of its own job only
    CHECK(jobs_seen[0].at("job").at("id").as_string() == mine);
    CHECK(jobs_seen[0].at("job").at("state").as_string() == "queued");

    h.advance(mine, jobs::job_state::running);
    h.advance(theirs, jobs::job_state::running);
    h.advance(mine, jobs::job_state::succeeded);
    h.advance(theirs, jobs::job_state::failed);
    w.pump();
    jobs_seen = w.conn.of_type("job");
    REQUIRE(jobs_seen.size() == 3);
    CHECK(jobs_seen[1].at("job").at("state").as_string() == "running");
    CHECK(jobs_seen[2].at("job").at("state").as_string() == "succeeded");
    for (auto& j : jobs_seen) CHECK(j.at("job").at("id").as_string() == mine);

    SECTION("erasure is announced") {
        CHECK(h.call("GET", "/v1/jobs/" + mine + "/result", "alice-token").status == 200);
        w.pump();
        auto erased = w.conn.of_type("erased");
        REQUIRE(erased.size() == 1);
        CHECK(erased[0].at("id").as_string() == mine);
    }
    SECTION("unsubscribe stops events") {
        auto id2 = h.submit("alice-token");
        w.say(R"({"type":"subscribe","ids":[")" + id2 + R"("]})");
        w.say(R"({"type":"unsubscribe","ids":[")" + id2 + R"("]})");
        CHECK(w.conn.of_type("unsubscribed").size() == 1);
        auto before = w.conn.of_type("job").size();
        h.advance(id2, jobs::job_state::running);
        w.pump();
        CHECK(w.conn.of_type("job").size() == before);
    }
    w.conn.hang_up();
    CHECK(w.wait_done());
    CHECK(w.hub.sessions() == 0);
}

TEST_CASE("ws: subscribing to all own jobs", "[frontend][unit]") {
    harness h;
    ws_run w(h, std::string("alice-token"));
    w.say(R"({"type":"subscribe","all":true})");
    CHECK(w.conn.of_type("subscribed").at(0).at("all").as_bool());
    auto a = h.submit("alice-token");
    auto b = h.submit("bob-token");
    h.advance(a, jobs::job_state::running);
    h.advance(b, jobs::job_state::running);
    w.pump();
    auto seen = w.conn.of_type("job");
    REQUIRE(seen.size() == 2);
    for (auto& j : seen) CHECK(j.at("job").at("id").as_string() == a);
    // A job subscribed by id too is sent once per change, not twice.
    w.say(R"({"type":"subscribe","ids":[")" + a + R"("]})");
    auto n = w.conn.of_type("job").size();
    h.advance(a, jobs::job_state::succeeded);
    w.pump();
    CHECK(w.conn.of_type("job").size() == n + 1);
    w.conn.hang_up();
    CHECK(w.wait_done());
}

TEST_CASE("ws: admins may follow any job by id", "[frontend][unit]") {
    harness h;
    auto a = h.submit("alice-token");
    ws_run w(h, std::string("carol-token"));
    w.say(R"({"type":"subscribe","ids":[")" + a + R"("]})");
    CHECK(w.conn.of_type("job").size() == 1);
    h.advance(a, jobs::job_state::running);
    w.pump();
    CHECK(w.conn.of_type("job").size() == 2);
    w.conn.hang_up();
    CHECK(w.wait_done());
}

TEST_CASE("ws: a job that reaches this replica after the subscription", "[frontend][unit]") {
    harness h;
    ws_run w(h, std::string("alice-token"));
    auto future_id = std::string("01ARZ3NDEKTSV4RRFFQ69G5FAV");
    w.say(R"({"type":"subscribe","ids":[")" + future_id + R"("]})");
    CHECK(w.conn.of_type("job").empty());
    jobs::job_status s;
    s.id = future_id;
    s.owner = {"alice", "alice-name", {"faas-user"}};
    s.submitted_at = t0_ms;
    s.repo.url = "https://h/r";
    h.store.apply(s);  // e.g. submitted through another replica
    w.pump();
    CHECK(w.conn.of_type("job").size() == 1);
    w.conn.hang_up();
    CHECK(w.wait_done());
}

TEST_CASE("ws: authentication", "[frontend][unit]") {
    harness h;
    SECTION("first message") {
        ws_run w(h, std::nullopt);
        CHECK(w.conn.sent.empty());
        w.say(R"({"type":"auth","token":"bob-token"})");
        REQUIRE(w.conn.of_type("welcome").size() == 1);
        CHECK(w.conn.of_type("welcome")[0].at("username").as_string() == "bob-name");
        w.conn.hang_up();
        CHECK(w.wait_done());
    }
    SECTION("a bad token at the upgrade is a plain 401 with WWW-Authenticate: no session") {
        ws_run w(h, std::string("forged"));
        REQUIRE(w.refused);
        CHECK(w.refused->status == 401);
        CHECK(w.refused->headers.get("WWW-Authenticate") == R"(Bearer realm="faasd", error="invalid_token")");
        CHECK_FALSE(w.conn.closed);
        CHECK(w.conn.sent.empty());
        CHECK(w.hub.sessions() == 0);
    }
    SECTION("a bad first-message token closes with 4001") {
        ws_run w(h, std::nullopt);
        w.say(R"({"type":"auth","token":"forged"})");
        CHECK(w.wait_done());
        REQUIRE(w.conn.closed);
        CHECK(w.conn.closed->first == fe::ws_close::unauthorized);
        CHECK(w.conn.sent.empty());
    }
    SECTION("a first message that is not auth closes with 4001") {
        ws_run w(h, std::nullopt);
        w.say(R"({"type":"subscribe","all":true})");
        CHECK(w.wait_done());
        CHECK(w.conn.closed->first == fe::ws_close::unauthorized);
    }
    SECTION("no auth in time closes with 4001") {
        fe::ws_settings s;
        s.auth_timeout = std::chrono::milliseconds(50);
        ws_run w(h, std::nullopt, s);
        CHECK(w.wait_done());
        CHECK(w.conn.closed->first == fe::ws_close::unauthorized);
        CHECK(w.conn.closed->second == "authentication timeout");
    }
    SECTION("no faas-user role: 403 at the upgrade, 4003 after a first message") {
        ws_run w(h, std::string("dave-token"));
        REQUIRE(w.refused);
        CHECK(w.refused->status == 403);
        ws_run w2(h, std::nullopt);
        w2.say(R"({"type":"auth","token":"dave-token"})");
        CHECK(w2.wait_done());
        CHECK(w2.conn.closed->first == fe::ws_close::forbidden);
    }
    SECTION("the default first-message deadline is short") {
        CHECK(fe::ws_settings{}.auth_timeout <= std::chrono::seconds(5));
    }
    SECTION("re-authentication may extend, not switch users") {
        ws_run w(h, std::string("alice-token"));
        h.auth.tokens["alice-token-2"] = make_caller("alice", {"faas-user"}, t0_ms / 1000 + 7200);
        w.say(R"({"type":"auth","token":"alice-token-2"})");
        REQUIRE(w.conn.of_type("welcome").size() == 2);
        CHECK(w.conn.of_type("welcome")[1].at("expires_at").as_int64() == t0_ms / 1000 + 7200);
        w.say(R"({"type":"auth","token":"bob-token"})");
        CHECK(w.wait_done());
        CHECK(w.conn.closed->first == fe::ws_close::forbidden);
    }
}

TEST_CASE("ws: the upgrade is authenticated before it is accepted", "[frontend][unit]") {
    harness h;
    auto subject = [](const fe::upgrade_auth& a) {
        auto* c = std::get_if<fe::caller>(&a);
        return c ? c->subject() : std::string("-");
    };
    auto status = [](const fe::upgrade_auth& a) {
        auto* r = std::get_if<http::response>(&a);
        return r ? r->status : 0;
    };
    // The Bearer scheme is case-insensitive, as on every HTTP route.
    CHECK(subject(upgrade(h, std::string("Bearer alice-token"))) == "alice");
    CHECK(subject(upgrade(h, std::string("bearer alice-token"))) == "alice");
    CHECK(subject(upgrade(h, std::string("BEARER  alice-token "))) == "alice");
    // A token offered as a subprotocol, for browsers.
    CHECK(subject(upgrade(h, std::nullopt, "faasd.v1, faasd.bearer.bob-token")) == "bob");
    // Refusals are plain HTTP answers.
    auto bad_header = upgrade(h, std::string("Bearer forged"));
    REQUIRE(status(bad_header) == 401);
    CHECK(std::get<http::response>(bad_header).headers.get("WWW-Authenticate") ==
          R"(Bearer realm="faasd", error="invalid_token")");
    auto bad_proto = upgrade(h, std::nullopt, "faasd.v1, faasd.bearer.forged");
    REQUIRE(status(bad_proto) == 401);
    CHECK(std::get<http::response>(bad_proto).headers.get("WWW-Authenticate"));
    auto other_scheme = upgrade(h, std::string("Basic YWxpY2U6cHc="));
    REQUIRE(status(other_scheme) == 401);
    CHECK(std::get<http::response>(other_scheme).headers.get("WWW-Authenticate") == R"(Bearer realm="faasd")");
    CHECK(status(upgrade(h, std::string("Bearer dave-token"))) == 403);
    CHECK(status(upgrade(h, std::string("Bearer keys-unavailable"))) == 503);
    // The header wins over a subprotocol token.
    CHECK(status(upgrade(h, std::string("Bearer forged"), "faasd.bearer.alice-token")) == 401);
    // No token at all: the session may authenticate with its first message.
    CHECK(std::holds_alternative<std::monostate>(upgrade(h, std::nullopt, "faasd.v1")));
    CHECK(std::holds_alternative<std::monostate>(upgrade(h, std::nullopt)));
}

TEST_CASE("ws: nothing is fanned out before the replica caught up, then the current states", "[frontend][unit]") {
    harness h;
    auto mine = h.submit("alice-token");
    ws_run w(h, std::string("alice-token"));
    w.say(R"({"type":"subscribe","all":true})");
    w.say(R"({"type":"subscribe","ids":[")" + mine + R"("]})");
    auto before = w.conn.of_type("job").size();
    CHECK(before == 1);  // the current state of the subscribed id

    w.hub.set_live(false);  // e.g. a replica whose sessions connected while it replays the state topic
    for (int i = 0; i < 20; ++i) h.submit("alice-token");  // replayed records
    h.advance(mine, jobs::job_state::running);
    h.advance(mine, jobs::job_state::succeeded);
    w.pump();
    CHECK(w.conn.of_type("job").size() == before);
    CHECK_FALSE(w.conn.closed);

    w.hub.set_live(true);  // caught up: one event per followed id, its state now
    w.pump();
    auto seen = w.conn.of_type("job");
    REQUIRE(seen.size() == before + 1);
    CHECK(seen.back().at("job").at("id").as_string() == mine);
    CHECK(seen.back().at("job").at("state").as_string() == "succeeded");
    // Live again: changes flow.
    h.submit("alice-token");
    w.pump();
    CHECK(w.conn.of_type("job").size() == before + 2);
    w.conn.hang_up();
    CHECK(w.wait_done());
}

TEST_CASE("ws: the session closes when the token expires", "[frontend][unit]") {
    harness h;
    h.auth.tokens["short"] = make_caller("alice", {"faas-user"}, t0_ms / 1000 + 1);
    h.clk.t = t0_ms + 900;  // 100 ms left
    ws_run w(h, std::string("short"));
    CHECK(w.conn.of_type("welcome").size() == 1);
    auto start = std::chrono::steady_clock::now();
    CHECK(w.wait_done());
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(50));
    REQUIRE(w.conn.closed);
    CHECK(w.conn.closed->first == fe::ws_close::token_expired);
    SECTION("an already expired token closes at once") {
        h.clk.t = t0_ms + 2000;
        ws_run w2(h, std::string("short"));
        CHECK(w2.wait_done());
        CHECK(w2.conn.closed->first == fe::ws_close::token_expired);
    }
}

TEST_CASE("ws: slow clients are closed, not buffered forever", "[frontend][unit]") {
    harness h;
    ws_run w(h, std::string("alice-token"), {}, 5);  // room for 5 unread messages
    w.say(R"({"type":"subscribe","all":true})");
    std::vector<std::string> ids;
    for (int i = 0; i < 10; ++i) ids.push_back(h.submit("alice-token"));
    w.pump();
    CHECK(w.wait_done());
    REQUIRE(w.conn.closed);
    CHECK(w.conn.closed->first == fe::ws_close::slow_consumer);
    CHECK(w.hub.slow_closes() == 1);
    CHECK(w.conn.sent.size() == 5);
    CHECK(w.hub.sessions() == 0);
}

TEST_CASE("ws: malformed messages get errors, then a close", "[frontend][unit]") {
    harness h;
    fe::ws_settings s;
    s.max_bad_messages = 3;
    ws_run w(h, std::string("alice-token"), s);
    w.say("nonsense");
    CHECK(w.conn.of_type("error").size() == 1);
    w.say(R"({"type":"ping"})");
    CHECK(w.conn.of_type("pong").size() == 1);
    w.say("{}");
    w.say("[]");
    CHECK(w.wait_done());
    CHECK(w.conn.closed->first == fe::ws_close::bad_message);
}

TEST_CASE("ws: subscription limit", "[frontend][unit]") {
    harness h;
    fe::ws_settings s;
    s.max_subscriptions = 2;
    ws_run w(h, std::string("alice-token"), s);
    w.say(R"({"type":"subscribe","ids":["A","B","C"]})");
    CHECK(w.conn.of_type("subscribed").at(0).at("ids").as_array().size() == 2);
    auto errs = w.conn.of_type("error");
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].at("code").as_string() == "too-many-subscriptions");
    CHECK(errs[0].at("id").as_string() == "C");
    w.hub.close_all("bye");
    CHECK(w.wait_done());
    CHECK(w.conn.closed->first == fe::ws_close::going_away);
}
