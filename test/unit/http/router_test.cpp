#include <faasd/http/router.hpp>
#include <faasd/http/server.hpp>
#include <faasd/http/websocket.hpp>

#include <boost/asio/awaitable.hpp>
#include <catch2/catch.hpp>

using namespace faasd::http;
namespace asio = boost::asio;

namespace {

handler ok(std::string tag) {
    return [tag](const request&, const route_params&) -> asio::awaitable<response> {
        co_return response::text(200, tag);
    };
}

router sample() {
    router r;
    r.add("GET", "/v1/jobs", ok("list"))
        .add("POST", "/v1/jobs", ok("create"), {.body_limit = 8 * 1024 * 1024})
        .add("GET", "/v1/jobs/{id}", ok("get"))
        .add("DELETE", "/v1/jobs/{id}", ok("delete"))
        .add("GET", "/v1/jobs/{id}/result", ok("result"))
        .add("POST", "/v1/jobs/stats", ok("stats"))
        .add("GET", "/", ok("root"))
        .add_websocket("/v1/ws", [](std::shared_ptr<ws_session>) -> asio::awaitable<void> { co_return; });
    return r;
}

}  // namespace

TEST_CASE("router matches literals and extracts decoded params", "[http][unit]") {
    auto r = sample();
    auto m = r.match("GET", "/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV");
    REQUIRE(m.result == router::outcome::found);
    CHECK(m.pattern == "/v1/jobs/{id}");
    CHECK(m.params["id"] == "01ARZ3NDEKTSV4RRFFQ69G5FAV");
    CHECK_FALSE(m.params.get("other"));

    m = r.match("GET", "/v1/jobs/a%20b/result");
    REQUIRE(m.result == router::outcome::found);
    CHECK(m.matched->info.pattern == "/v1/jobs/{id}/result");
    CHECK(m.params["id"] == "a b");

    CHECK(r.match("GET", "/").pattern == "/");
    CHECK(r.match("GET", "/v1/jobs").pattern == "/v1/jobs");
    // An encoded slash or NUL never splits or reaches a parameter.
    CHECK(r.match("GET", "/v1/jobs/a%2Fb").result == router::outcome::not_found);
    CHECK(r.match("GET", "/v1/jobs/a%00").result == router::outcome::not_found);
    CHECK(r.match("GET", "/v1/jobs/%zz").result == router::outcome::not_found);
    // Literal segments compare after decoding.
    CHECK(r.match("GET", "/v1/%6Aobs").pattern == "/v1/jobs");
}

TEST_CASE("router answers not found and method not allowed with Allow", "[http][unit]") {
    auto r = sample();
    CHECK(r.match("GET", "/v2/jobs").result == router::outcome::not_found);
    CHECK(r.match("GET", "/v1/jobs/").result == router::outcome::not_found);  // no trailing-slash folding
    CHECK(r.match("GET", "").result == router::outcome::not_found);
    CHECK(r.match("GET", "v1/jobs").result == router::outcome::not_found);

    auto m = r.match("PUT", "/v1/jobs/x");
    REQUIRE(m.result == router::outcome::method_not_allowed);
    CHECK(m.allow == "DELETE, GET, HEAD");
    CHECK(m.pattern == "/v1/jobs/{id}");

    m = r.match("PATCH", "/v1/jobs");
    REQUIRE(m.result == router::outcome::method_not_allowed);
    CHECK(m.allow == "GET, HEAD, POST");
}

TEST_CASE("router prefers literal segments and falls back from HEAD to GET", "[http][unit]") {
    auto r = sample();
    auto m = r.match("POST", "/v1/jobs/stats");
    REQUIRE(m.result == router::outcome::found);
    CHECK(m.pattern == "/v1/jobs/stats");
    // GET is not registered on the literal: the parameter route still serves it.
    m = r.match("GET", "/v1/jobs/stats");
    REQUIRE(m.result == router::outcome::found);
    CHECK(m.pattern == "/v1/jobs/{id}");

    m = r.match("HEAD", "/v1/jobs/x");
    REQUIRE(m.result == router::outcome::found);
    CHECK(m.matched->info.method == "GET");
    m = r.match("HEAD", "/v1/jobs/stats");  // only POST on the literal, GET on the param
    REQUIRE(m.result == router::outcome::found);
    CHECK(m.pattern == "/v1/jobs/{id}");
}

TEST_CASE("router is introspectable and rejects bad or duplicate patterns", "[http][unit]") {
    auto r = sample();
    auto routes = r.routes();
    REQUIRE(routes.size() == 8);
    CHECK(routes[1].method == "POST");
    CHECK(routes[1].pattern == "/v1/jobs");
    CHECK(routes[1].options.body_limit == 8u * 1024 * 1024);
    CHECK(routes[7].kind == route_kind::websocket);
    CHECK(routes[7].method == "GET");
    CHECK(routes[7].pattern == "/v1/ws");

    CHECK_THROWS_AS(r.add("GET", "/v1/jobs/{other}", ok("x")), std::invalid_argument);  // same shape
    CHECK_NOTHROW(r.add("PUT", "/v1/jobs/{other}", ok("x")));
    CHECK_THROWS_AS(r.add("GET", "no-slash", ok("x")), std::invalid_argument);
    CHECK_THROWS_AS(r.add("GET", "/a//b", ok("x")), std::invalid_argument);
    CHECK_THROWS_AS(r.add("GET", "/a/{}", ok("x")), std::invalid_argument);
    CHECK_THROWS_AS(r.add("GET", "/a/x{id}", ok("x")), std::invalid_argument);
    CHECK_THROWS_AS(r.add("GET", "/a/{id}/{id}", ok("x")), std::invalid_argument);
    CHECK_THROWS_AS(r.add("get", "/lower", ok("x")), std::invalid_argument);
    CHECK_THROWS_AS(r.add("GET", "/none", handler{}), std::invalid_argument);
}

TEST_CASE("subprotocol headers are split and only tokens are safe to echo", "[http][unit]") {
    auto items = split_subprotocols(" faasd.v1 ,bearer.eyJhbGciOi,, x ");
    REQUIRE(items.size() == 3);
    CHECK(items[0] == "faasd.v1");
    CHECK(items[1] == "bearer.eyJhbGciOi");
    CHECK(items[2] == "x");
    CHECK(is_safe_subprotocol("faasd.v1"));
    CHECK_FALSE(is_safe_subprotocol(""));
    CHECK_FALSE(is_safe_subprotocol("a b"));
    CHECK_FALSE(is_safe_subprotocol("a\r\nSet-Cookie: x"));
    CHECK_FALSE(is_safe_subprotocol("a/b"));
    CHECK_FALSE(is_safe_subprotocol(std::string(65, 'a')));
}

TEST_CASE("listen addresses and request ids are validated", "[http][unit]") {
    auto a = parse_listen_address("127.0.0.1:8080");
    REQUIRE(a.has_value());
    CHECK(a->first == "127.0.0.1");
    CHECK(a->second == 8080);
    a = parse_listen_address("[::1]:0");
    REQUIRE(a.has_value());
    CHECK(a->first == "::1");
    a = parse_listen_address(":9090");
    REQUIRE(a.has_value());
    CHECK(a->first == "0.0.0.0");
    CHECK_FALSE(parse_listen_address("localhost:80").has_value());  // an address, not a name
    CHECK_FALSE(parse_listen_address("127.0.0.1").has_value());
    CHECK_FALSE(parse_listen_address("127.0.0.1:65536").has_value());
    CHECK_FALSE(parse_listen_address("::1:80").has_value());
    CHECK_FALSE(parse_listen_address("[::1]80").has_value());

    CHECK(is_acceptable_request_id("abc-123_x.y"));
    CHECK_FALSE(is_acceptable_request_id(""));
    CHECK_FALSE(is_acceptable_request_id("a b"));
    CHECK_FALSE(is_acceptable_request_id("x\r\ny"));
    CHECK_FALSE(is_acceptable_request_id(std::string(65, 'a')));
}
