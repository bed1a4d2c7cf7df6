#include <faasd/auth/token_cache.hpp>

#include <catch2/catch.hpp>

using namespace faasd::auth;
using std::chrono::seconds;
using std::chrono::sys_seconds;

namespace {

const sys_seconds t0{seconds(1'700'000'000)};

principal user(std::string name, sys_seconds exp) {
    principal p;
    p.subject = "sub-" + name;
    p.username = std::move(name);
    p.roles = {"faas-user"};
    p.expires_at = exp;
    return p;
}

}  // namespace

TEST_CASE("token cache: a miss, then a hit returning the same principal", "[auth][unit]") {
    token_cache cache(10);
    CHECK_FALSE(cache.find("k1", t0).has_value());
    auto alice = user("alice", t0 + seconds(300));
    cache.insert("k1", alice, t0);
    auto hit = cache.find("k1", t0 + seconds(1));
    REQUIRE(hit.has_value());
    CHECK(*hit == alice);
    CHECK_FALSE(cache.find("k2", t0).has_value());
    auto s = cache.stats();
    CHECK(s.hits == 1);
    CHECK(s.misses == 2);
    CHECK(s.insertions == 1);
    CHECK(s.size == 1);
}

TEST_CASE("token cache: entries expire at the token's exp", "[auth][unit]") {
    token_cache cache(10, std::chrono::hours(1));
    cache.insert("k", user("alice", t0 + seconds(60)), t0);
    CHECK(cache.find("k", t0 + seconds(59)).has_value());
    CHECK_FALSE(cache.find("k", t0 + seconds(60)).has_value());
    CHECK(cache.size() == 0);
    auto s = cache.stats();
    CHECK(s.expirations == 1);
    CHECK(s.hits == 1);
    CHECK(s.misses == 1);
}

TEST_CASE("token cache: entries also expire max_ttl after insertion", "[auth][unit]") {
    token_cache cache(10, seconds(30));
    cache.insert("k", user("alice", t0 + std::chrono::hours(10)), t0);
    CHECK(cache.find("k", t0 + seconds(29)).has_value());
    CHECK_FALSE(cache.find("k", t0 + seconds(30)).has_value());
}

TEST_CASE("token cache: already expired principals are not inserted", "[auth][unit]") {
    token_cache cache(10);
    cache.insert("k", user("alice", t0), t0);            // exp == now
    cache.insert("k2", user("bob", t0 - seconds(5)), t0);  // within a verifier's leeway, but past exp
    CHECK(cache.size() == 0);
    CHECK(cache.stats().insertions == 0);
}

TEST_CASE("token cache: the least recently used entry is evicted when full", "[auth][unit]") {
    token_cache cache(3);
    auto exp = t0 + seconds(300);
    cache.insert("a", user("a", exp), t0);
    cache.insert("b", user("b", exp), t0);
    cache.insert("c", user("c", exp), t0);
    REQUIRE(cache.find("a", t0).has_value());  // a is now the most recently used; b the least
    cache.insert("d", user("d", exp), t0);
    CHECK(cache.size() == 3);
    CHECK(cache.stats().evictions == 1);
    CHECK_FALSE(cache.find("b", t0).has_value());
    CHECK(cache.find("a", t0).has_value());
    CHECK(cache.find("c", t0).has_value());
    CHECK(cache.find("d", t0).has_value());
}

TEST_CASE("token cache: re-inserting a key replaces its entry", "[auth][unit]") {
    token_cache cache(2);
    cache.insert("a", user("old", t0 + seconds(10)), t0);
    cache.insert("a", user("new", t0 + seconds(100)), t0);
    CHECK(cache.size() == 1);
    CHECK(cache.find("a", t0 + seconds(50))->username == "new");
}

TEST_CASE("token cache: capacity 0 disables caching, clear empties", "[auth][unit]") {
    token_cache off(0);
    off.insert("a", user("a", t0 + seconds(100)), t0);
    CHECK_FALSE(off.find("a", t0).has_value());

    token_cache cache(4);
    cache.insert("a", user("a", t0 + seconds(100)), t0);
    cache.clear();
    CHECK(cache.size() == 0);
    CHECK_FALSE(cache.find("a", t0).has_value());
}
