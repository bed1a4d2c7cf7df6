// The caching verifier the frontend uses.

#include "test_keys.hpp"

#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/verifier.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

using namespace faasd;
using namespace faasd::crypto;
using namespace faasd::test;
using auth::reject_reason;
using std::chrono::seconds;

namespace {

jwk_set keys_of(const signing_key& k) {
    jwk_set set;
    set.add(k.verification_key());
    return set;
}

}  // namespace

TEST_CASE("verifier: the second use of a token is a cache hit", "[crypto][unit]") {
    verifier v(test_policy());
    v.set_keys(keys_of(rsa_key()));
    auto token = sign_jwt(rsa_key(), good_claims());
    reject_reason why = reject_reason::malformed;
    auto first = v.verify(token, fixed_now, &why);
    REQUIRE(first.has_value());
    CHECK(why == reject_reason::ok);
    auto second = v.verify(token, fixed_now + seconds(1), &why);
    REQUIRE(second.has_value());
    CHECK(*second == *first);
    auto s = v.cache_stats();
    CHECK(s.misses == 1);
    CHECK(s.hits == 1);
    CHECK(s.size == 1);
}

TEST_CASE("verifier: refused tokens are not cached and always say unauthorized", "[crypto][unit]") {
    verifier v(test_policy());
    v.set_keys(keys_of(rsa_key()));
    auto bad = sign_jwt(rsa_key_2(), good_claims(), {{"kid", rsa_key().kid()}});
    for (int i = 0; i < 3; ++i) {
        reject_reason why = reject_reason::ok;
        auto r = v.verify(bad, fixed_now, &why);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::unauthorized);
        CHECK(why == reject_reason::bad_signature);
    }
    CHECK(v.cache_stats().size == 0);
    CHECK(v.cache_stats().hits == 0);

    reject_reason why = reject_reason::ok;
    CHECK(v.verify(std::string(20'000, 'a'), fixed_now, &why).error() == errc::unauthorized);
    CHECK(why == reject_reason::too_large);
}

TEST_CASE("verifier: cached tokens stop working at exp", "[crypto][unit]") {
    verifier v(test_policy());
    v.set_keys(keys_of(rsa_key()));
    auto token = sign_jwt(rsa_key(), good_claims());  // exp = fixed_now + 300
    REQUIRE(v.verify(token, fixed_now).has_value());
    CHECK(v.verify(token, fixed_now + seconds(299)).has_value());
    CHECK(v.cache_stats().hits == 1);
    // At exp the cache entry is gone; the leeway still lets the full check pass...
    CHECK(v.verify(token, fixed_now + seconds(310)).has_value());
    CHECK(v.cache_stats().expirations == 1);
    // ...and past the leeway the token is refused.
    reject_reason why = reject_reason::ok;
    CHECK_FALSE(v.verify(token, fixed_now + seconds(330), &why).has_value());
    CHECK(why == reject_reason::expired);
}

TEST_CASE("verifier: new keys empty the cache, so a withdrawn key stops working at once", "[crypto][unit]") {
    verifier v(test_policy());
    v.set_keys(keys_of(rsa_key()));
    auto token = sign_jwt(rsa_key(), good_claims());
    REQUIRE(v.verify(token, fixed_now).has_value());
    REQUIRE(v.verify(token, fixed_now).has_value());
    REQUIRE(v.cache_stats().hits == 1);

    v.set_keys(keys_of(rsa_key_2()));  // the issuer rotated rsa_key out
    reject_reason why = reject_reason::ok;
    CHECK_FALSE(v.verify(token, fixed_now, &why).has_value());
    CHECK(why == reject_reason::unknown_kid);
    CHECK(v.keys()->kids() == std::vector<std::string>{rsa_key_2().kid()});
}

TEST_CASE("verifier: LRU capacity bounds the cache", "[crypto][unit]") {
    verifier v(test_policy(), 2);
    v.set_keys(keys_of(rsa_key()));
    std::vector<std::string> tokens;
    for (int i = 0; i < 3; ++i) {
        auto c = good_claims();
        c["jti"] = "j-" + std::to_string(i);
        tokens.push_back(sign_jwt(rsa_key(), c));
        REQUIRE(v.verify(tokens.back(), fixed_now).has_value());
    }
    auto s = v.cache_stats();
    CHECK(s.size == 2);
    CHECK(s.evictions == 1);
    REQUIRE(v.verify(tokens[0], fixed_now).has_value());  // evicted: a miss
    CHECK(v.cache_stats().hits == 0);
}

TEST_CASE("verifier: concurrent use from several threads", "[crypto][unit]") {
    verifier v(test_policy(), 16);
    v.set_keys(keys_of(rsa_key()));
    std::vector<std::string> tokens;
    for (int i = 0; i < 8; ++i) {
        auto c = good_claims();
        c["jti"] = "t-" + std::to_string(i);
        tokens.push_back(sign_jwt(rsa_key(), c));
    }
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                if (!v.verify(tokens[static_cast<std::size_t>((i + t) % 8)], fixed_now)) ++failures;
                if (t == 0 && i % 10 == 0) v.set_keys(keys_of(rsa_key()));
            }
        });
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    auto s = v.cache_stats();
    CHECK(s.hits + s.misses == 200);
}

TEST_CASE("primitives: sha256, hmac and constant-time comparison", "[crypto][unit]") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256("").size() == 32);
    // RFC 4231 test case 2.
    auto mac = hmac_sha256("Jefe", "what do ya want for nothing?");
    CHECK(auth::base64_encode(mac) == "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    CHECK(random_bytes(32).size() == 32);
    CHECK(random_bytes(32) != random_bytes(32));
    CHECK(equal_constant_time("abc", "abc"));
    CHECK_FALSE(equal_constant_time("abc", "abd"));
    CHECK_FALSE(equal_constant_time("abc", "ab"));
}
