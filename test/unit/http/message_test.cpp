#include <faasd/http/message.hpp>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace faasd::http;

TEST_CASE("targets split into a decoded path and query", "[http][unit]") {
    std::string path;
    std::vector<std::pair<std::string, std::string>> q;
    REQUIRE(parse_target("/v1/jobs?limit=10&state=queued&x=a%20b+c&flag", path, q));
    CHECK(path == "/v1/jobs");
    REQUIRE(q.size() == 4);
    CHECK(q[0] == std::pair<std::string, std::string>{"limit", "10"});
    CHECK(q[2].second == "a b c");
    CHECK(q[3] == std::pair<std::string, std::string>{"flag", ""});
    CHECK_FALSE(parse_target("v1/jobs", path, q));
    CHECK_FALSE(parse_target("/v1/%zz", path, q));
    CHECK_FALSE(parse_target("/v1/%4", path, q));
    CHECK_FALSE(parse_target("/v1/%00", path, q));
}

TEST_CASE("problem responses follow RFC 7807", "[http][unit]") {
    auto r = response::problem(404, "job-not-found", "No such job", "", {{"id", "x"}});
    CHECK(r.status == 404);
    CHECK(r.headers.get("content-type") == "application/problem+json");
    auto v = boost::json::parse(r.body).as_object();
    CHECK(v["type"] == "https://faasd.dev/problems/job-not-found");
    CHECK(v["status"] == 404);
    CHECK(v["id"] == "x");
    CHECK_FALSE(v.contains("detail"));
}

TEST_CASE("header fields are case-insensitive and set replaces", "[http][unit]") {
    fields f;
    f.add("X-A", "1");
    f.add("x-a", "2");
    CHECK(f.get("X-a") == "1");
    f.set("X-A", "3");
    CHECK(f.items().size() == 1);
    CHECK(f.get("x-a") == "3");
    CHECK_FALSE(f.get("y").has_value());
}
