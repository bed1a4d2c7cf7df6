// JWT signature verification against keys generated in this process, and
// every attack of docs/security.md.

#include "test_keys.hpp"

#include <faasd/crypto/jwk.hpp>
#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/verifier.hpp>

#include <catch2/catch.hpp>

using namespace faasd;
using namespace faasd::crypto;
using namespace faasd::test;
using auth::jws_alg;
using auth::reject_reason;
namespace json = boost::json;
using std::chrono::seconds;

namespace {

// The issuer's JWKS: our RSA and EC keys, parsed the way the frontend will.
const jwk_set& issuer_keys() {
    static const jwk_set set = [] {
        auto doc = R"({"keys":[)" + json::serialize(rsa_key().verification_key().to_jwk()) + "," +
                   json::serialize(ec_key().verification_key().to_jwk()) + "]}";
        return jwk_set::parse(doc).value();
    }();
    return set;
}

// The same keys without a declared "alg" (some issuers omit it).
const jwk_set& issuer_keys_without_alg() {
    static const jwk_set set = [] {
        jwk_set s;
        for (const auto* k : {&rsa_key(), &ec_key()}) {
            auto jwk = k->verification_key().to_jwk();
            jwk.erase("alg");
            s.add(parse_jwk(jwk).value());
        }
        return s;
    }();
    return set;
}

struct outcome {
    bool ok;
    reject_reason why;
};

outcome verify(const std::string& token, const jwk_set& keys, const auth::token_policy& p = test_policy()) {
    reject_reason why = reject_reason::malformed;
    auto r = verify_token(token, keys, p, fixed_now, &why);
    if (!r) CHECK(r.error() == errc::unauthorized);  // never anything more telling
    return {r.has_value(), why};
}

auth::token_policy all_algs() {
    auto p = test_policy();
    p.algorithms = {jws_alg::rs256, jws_alg::ps256, jws_alg::es256};
    return p;
}

std::string flip_bit(std::string s, std::size_t byte, int bit) {
    s[byte] = static_cast<char>(s[byte] ^ (1 << bit));
    return s;
}

}  // namespace

TEST_CASE("a valid RS256 token verifies and yields its principal", "[crypto][unit]") {
    auto token = sign_jwt(rsa_key(), good_claims());
    reject_reason why = reject_reason::malformed;
    auto p = verify_token(token, issuer_keys(), test_policy(), fixed_now, &why);
    REQUIRE(p.has_value());
    CHECK(why == reject_reason::ok);
    CHECK(p->username == "alice");
    CHECK(p->subject == "6b0d2c2e-1f0a-4d1b-9a53-7d1e2c3b4a5f");
    CHECK(p->roles == std::vector<std::string>{"faas-user"});
    CHECK(p->email == std::optional<std::string>("alice@example.test"));
    CHECK(p->expires_at == fixed_now + seconds(300));
}

TEST_CASE("ES256 and PS256 verify when they are in the allow-list", "[crypto][unit]") {
    SECTION("ES256 with a P-256 key") {
        auto token = sign_jwt(ec_key(), good_claims());
        auto p = test_policy();
        p.algorithms = {jws_alg::es256};
        CHECK(verify(token, issuer_keys(), p).ok);
        // ...but not with the default policy (RS256 only).
        auto o = verify(token, issuer_keys());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::alg_not_allowed);
    }
    SECTION("PS256 with an RSA key that does not pin an alg") {
        auto token = sign_jwt(rsa_key(), good_claims(), {}, jws_alg::ps256);
        auto p = test_policy();
        p.algorithms = {jws_alg::ps256};
        CHECK(verify(token, issuer_keys_without_alg(), p).ok);
    }
    SECTION("ES256 signatures are randomised; each verifies") {
        auto a = sign_jwt(ec_key(), good_claims());
        auto b = sign_jwt(ec_key(), good_claims());
        CHECK(a != b);
        CHECK(verify(a, issuer_keys(), all_algs()).ok);
        CHECK(verify(b, issuer_keys(), all_algs()).ok);
    }
}

TEST_CASE("attack: alg none", "[crypto][unit]") {
    json::object header{{"alg", "none"}, {"typ", "JWT"}, {"kid", rsa_key().kid()}};
    SECTION("classic form, empty signature") {
        auto token = assemble(header, good_claims(), "");
        auto o = verify(token, issuer_keys(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::malformed);
    }
    SECTION("with some signature bytes") {
        auto token = assemble(header, good_claims(), "x");
        auto o = verify(token, issuer_keys(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::alg_not_allowed);
    }
    SECTION("other spellings") {
        for (auto alg : {"None", "NONE", "nOnE"}) {
            header["alg"] = alg;
            auto o = verify(assemble(header, good_claims(), "x"), issuer_keys(), all_algs());
            CHECK_FALSE(o.ok);
            CHECK(o.why == reject_reason::alg_not_allowed);
        }
    }
}

TEST_CASE("attack: HS256 with the RSA public key as the HMAC secret", "[crypto][unit]") {
    const auto& pub = rsa_key().verification_key();
    auto jwk = pub.to_jwk();
    // Whatever form of the public key a confused verifier might feed to HMAC.
    std::vector<std::string> secrets = {json::serialize(jwk), std::string(jwk.at("n").as_string()),
                                        auth::base64url_decode(jwk.at("n").as_string()).value(),
                                        rsa_key().jwks_json()};
    for (auto alg : {"HS256", "HS384", "HS512"}) {
        for (const auto& secret : secrets) {
            json::object header{{"alg", alg}, {"typ", "JWT"}, {"kid", rsa_key().kid()}};
            auto input = auth::base64url_encode(json::serialize(header)) + "." +
                         auth::base64url_encode(json::serialize(good_claims()));
            auto token = input + "." + auth::base64url_encode(hmac_sha256(secret, input));
            auto o = verify(token, issuer_keys(), all_algs());
            CHECK_FALSE(o.ok);
            CHECK(o.why == reject_reason::alg_not_allowed);
        }
    }
}

TEST_CASE("attack: algorithm swapped", "[crypto][unit]") {
    SECTION("an RS256 signature presented as PS256, key pinned to RS256") {
        auto token = sign_jwt(rsa_key(), good_claims(), {{"alg", "PS256"}}, jws_alg::rs256);
        auto o = verify(token, issuer_keys(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::key_mismatch);
    }
    SECTION("an RS256 signature presented as PS256, key without a pinned alg") {
        auto token = sign_jwt(rsa_key(), good_claims(), {{"alg", "PS256"}}, jws_alg::rs256);
        auto o = verify(token, issuer_keys_without_alg(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::bad_signature);
    }
    SECTION("a PS256 signature presented as RS256") {
        auto token = sign_jwt(rsa_key(), good_claims(), {{"alg", "RS256"}}, jws_alg::ps256);
        auto o = verify(token, issuer_keys_without_alg(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::bad_signature);
    }
    SECTION("an ES256 token whose kid names the RSA key") {
        auto token = sign_jwt(ec_key(), good_claims(), {{"kid", rsa_key().kid()}});
        auto o = verify(token, issuer_keys(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::key_mismatch);
    }
    SECTION("an RS256 token whose kid names the EC key") {
        auto token = sign_jwt(rsa_key(), good_claims(), {{"kid", ec_key().kid()}});
        auto o = verify(token, issuer_keys_without_alg(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::key_mismatch);
    }
    SECTION("an ES256 signature relabelled RS256 against the EC key") {
        auto token = sign_jwt(ec_key(), good_claims(), {{"alg", "RS256"}}, jws_alg::es256);
        auto o = verify(token, issuer_keys_without_alg(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::key_mismatch);
    }
    SECTION("verify_signature refuses a key of the wrong type directly") {
        const auto& rsa = rsa_key().verification_key();
        auto r = verify_signature(rsa, jws_alg::es256, "x", std::string(64, 'a'));
        REQUIRE_FALSE(r.has_value());
        CHECK(auth::reason_of(r.error()) == reject_reason::key_mismatch);
    }
}

TEST_CASE("attack: a flipped bit anywhere breaks the signature", "[crypto][unit]") {
    for (const auto* key : {&rsa_key(), &ec_key()}) {
        auto token = sign_jwt(*key, good_claims());
        auto dot = token.rfind('.');
        auto input = token.substr(0, dot);
        auto sig = auth::base64url_decode(token.substr(dot + 1)).value();
        auto policy = all_algs();
        REQUIRE(verify(token, issuer_keys(), policy).ok);

        for (std::size_t byte : {std::size_t{0}, sig.size() / 2, sig.size() - 1}) {
            auto forged = input + "." + auth::base64url_encode(flip_bit(sig, byte, 0));
            auto o = verify(forged, issuer_keys(), policy);
            CHECK_FALSE(o.ok);
            CHECK(o.why == reject_reason::bad_signature);
        }
        // Privilege escalation in the payload, old signature kept.
        auto claims = good_claims();
        claims["realm_access"] = json::object{{"roles", json::array{"faas-user", "faas-admin"}}};
        auto forged = auth::base64url_encode(json::serialize(json::object{
                          {"alg", auth::to_string(key->default_alg())}, {"typ", "JWT"}, {"kid", key->kid()}})) +
                      "." + auth::base64url_encode(json::serialize(claims)) + "." + token.substr(dot + 1);
        auto o = verify(forged, issuer_keys(), policy);
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::bad_signature);
    }
}

TEST_CASE("attack: ES256 signatures in another shape", "[crypto][unit]") {
    auto token = sign_jwt(ec_key(), good_claims());
    auto dot = token.rfind('.');
    auto sig = auth::base64url_decode(token.substr(dot + 1)).value();
    REQUIRE(sig.size() == 64);
    for (auto bad : {sig.substr(0, 63), sig + std::string(1, '\0'), std::string(64, '\0'), sig.substr(32) + sig.substr(0, 32)}) {
        auto o = verify(token.substr(0, dot) + "." + auth::base64url_encode(bad), issuer_keys(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::bad_signature);
    }
}

TEST_CASE("attack: truncated and garbage tokens", "[crypto][unit]") {
    auto token = sign_jwt(rsa_key(), good_claims());
    for (std::size_t n = 0; n < token.size(); n += 3) {
        auto o = verify(token.substr(0, n), issuer_keys(), all_algs());
        CAPTURE(n);
        CHECK_FALSE(o.ok);
    }
    for (auto garbage : {std::string("Bearer ") + token, token + ".", token + "=", "." + token, std::string("..."),
                         std::string("\0\0\0", 3), std::string(100, '.'), random_bytes(300)}) {
        CHECK_FALSE(verify(garbage, issuer_keys(), all_algs()).ok);
    }
    auto big = sign_jwt(rsa_key(), [] {
        auto c = good_claims();
        c["padding"] = std::string(20'000, 'x');
        return c;
    }());
    auto o = verify(big, issuer_keys(), all_algs());
    CHECK_FALSE(o.ok);
    CHECK(o.why == reject_reason::too_large);
}

TEST_CASE("attack: headers that bring their own key", "[crypto][unit]") {
    // The attacker signs with their own key and points at it; the signature is valid for that key.
    const auto& attacker = rsa_key_2();
    struct row {
        std::string name;
        json::object header;
    };
    auto attacker_jwk = attacker.verification_key().to_jwk();
    std::vector<row> rows = {
        {"jku", {{"jku", "https://evil.example/jwks.json"}}},
        {"x5u", {{"x5u", "https://evil.example/cert.pem"}}},
        {"x5c", {{"x5c", json::array{"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}}}},
        {"jwk", {{"jwk", attacker_jwk}}},
        {"jwk with our kid", {{"jwk", attacker_jwk}, {"kid", rsa_key().kid()}}},
        {"crit", {{"crit", json::array{"b64"}}, {"b64", false}}},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        auto token = sign_jwt(attacker, good_claims(), r.header);
        auto o = verify(token, issuer_keys(), all_algs());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::forbidden_header);
    }
}

TEST_CASE("attack: unknown, missing and borrowed kids", "[crypto][unit]") {
    SECTION("a key the issuer never published") {
        auto o = verify(sign_jwt(rsa_key_2(), good_claims()), issuer_keys());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::unknown_kid);
    }
    SECTION("no kid at all") {
        json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
        auto input = auth::base64url_encode(json::serialize(header)) + "." +
                     auth::base64url_encode(json::serialize(good_claims()));
        auto token = input + "." + auth::base64url_encode(rsa_key().sign(input));
        auto o = verify(token, issuer_keys());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::missing_kid);
    }
    SECTION("our kid, the attacker's signature") {
        auto token = sign_jwt(rsa_key_2(), good_claims(), {{"kid", rsa_key().kid()}});
        auto o = verify(token, issuer_keys());
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::bad_signature);
    }
    SECTION("an empty key set") {
        auto o = verify(sign_jwt(rsa_key(), good_claims()), jwk_set{});
        CHECK_FALSE(o.ok);
        CHECK(o.why == reject_reason::unknown_kid);
    }
}

TEST_CASE("signed tokens with bad claims are refused with the claim's reason", "[crypto][unit]") {
    struct row {
        std::string name;
        std::function<void(json::object&)> mutate;
        reject_reason expected;
        bool accept_azp = false;
    };
    std::vector<row> rows = {
        {"expired", [](json::object& c) { c["exp"] = fixed_now_s - 31; }, reject_reason::expired},
        {"expired within leeway", [](json::object& c) { c["exp"] = fixed_now_s - 29; }, reject_reason::ok},
        {"not yet valid", [](json::object& c) { c["nbf"] = fixed_now_s + 60; }, reject_reason::not_yet_valid},
        {"iat in the future", [](json::object& c) { c["iat"] = fixed_now_s + 60; }, reject_reason::issued_in_future},
        {"wrong issuer", [](json::object& c) { c["iss"] = "http://127.0.0.1:8081/realms/faas"; },
         reject_reason::wrong_issuer},
        {"wrong audience", [](json::object& c) { c["aud"] = "account"; }, reject_reason::wrong_audience},
        {"no audience, azp fallback off",
         [](json::object& c) {
             c.erase("aud");
             c["azp"] = "faas-frontend";
         },
         reject_reason::wrong_audience},
        {"no audience, azp fallback on",
         [](json::object& c) {
             c.erase("aud");
             c["azp"] = "faas-frontend";
         },
         reject_reason::ok, true},
        {"an ID token", [](json::object& c) { c["typ"] = "ID"; }, reject_reason::wrong_type},
        {"a refresh token", [](json::object& c) { c["typ"] = "Refresh"; }, reject_reason::wrong_type},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        auto claims = good_claims();
        r.mutate(claims);
        auto policy = test_policy();
        policy.accept_azp = r.accept_azp;
        auto o = verify(sign_jwt(rsa_key(), claims), issuer_keys(), policy);
        CHECK(o.ok == (r.expected == reject_reason::ok));
        CHECK(o.why == r.expected);
    }
}

TEST_CASE("roles are extracted from a signed admin token", "[crypto][unit]") {
    auto claims = good_claims();
    claims["preferred_username"] = "carol";
    claims["realm_access"] = json::object{{"roles", json::array{"default-roles-faas", "faas-user", "faas-admin"}}};
    auto p = verify_token(sign_jwt(rsa_key(), claims), issuer_keys(), test_policy(), fixed_now);
    REQUIRE(p.has_value());
    CHECK(p->username == "carol");
    CHECK(auth::is_admin(*p));
    CHECK(auth::is_user(*p));
}
