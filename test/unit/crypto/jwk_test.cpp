#include "test_keys.hpp"

#include <faasd/crypto/jwk.hpp>

#include <catch2/catch.hpp>

using namespace faasd;
using namespace faasd::crypto;
using namespace faasd::test;
using auth::jws_alg;
namespace json = boost::json;

namespace {

// RFC 7638 section 3.1: the example RSA key and its thumbprint.
const char* rfc7638_n =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
    "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajr"
    "n1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

json::object rfc7638_key() {
    return {{"kty", "RSA"}, {"n", rfc7638_n}, {"e", "AQAB"}, {"alg", "RS256"}, {"kid", "2011-04-29"}};
}

std::string refusal(const json::object& jwk) {
    std::string why;
    auto k = parse_jwk(jwk, &why);
    CHECK_FALSE(k.has_value());
    if (!k) CHECK(k.error() == errc::invalid_argument);
    return why;
}

}  // namespace

TEST_CASE("RFC 7638 thumbprint of the RFC's example key", "[crypto][unit]") {
    auto k = parse_jwk(rfc7638_key());
    REQUIRE(k.has_value());
    CHECK(k->type() == key_type::rsa);
    CHECK(k->bits() == 2048);
    CHECK(k->declared_alg() == jws_alg::rs256);
    CHECK(jwk_thumbprint(*k) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST_CASE("generated keys: kid is the thumbprint, and the JWK round-trips", "[crypto][unit]") {
    for (const auto* key : {&rsa_key(), &ec_key()}) {
        const auto& pub = key->verification_key();
        CHECK(key->kid() == jwk_thumbprint(pub));
        CHECK(key->kid().size() == 43);
        auto back = parse_jwk(pub.to_jwk());
        REQUIRE(back.has_value());
        CHECK(back->kid() == key->kid());
        CHECK(back->type() == key->type());
        CHECK(jwk_thumbprint(*back) == key->kid());
        auto jwk = pub.to_jwk();
        CHECK(jwk.at("use").as_string() == "sig");
        CHECK_FALSE(jwk.contains("d"));  // never the private part
        CHECK_FALSE(jwk.contains("p"));
    }
    CHECK(rsa_key().kid() != rsa_key_2().kid());
}

TEST_CASE("a Keycloak-style JWKS: the signing key is kept, the encryption key skipped", "[crypto][unit]") {
    auto sig = rsa_key().verification_key().to_jwk();
    sig["x5c"] = json::array{"MIICmzCCAYMCBgGM"};  // Keycloak publishes a certificate chain too; unused
    sig["x5t"] = "abc";
    auto enc = rsa_key_2().verification_key().to_jwk();
    enc["kid"] = "enc-key";
    enc["use"] = "enc";
    enc["alg"] = "RSA-OAEP";
    auto doc = json::serialize(json::object{{"keys", json::array{sig, enc}}});
    std::vector<std::string> skipped;
    auto set = jwk_set::parse(doc, &skipped);
    REQUIRE(set.has_value());
    CHECK(set->size() == 1);
    CHECK(set->find(rsa_key().kid()) != nullptr);
    CHECK(set->find("enc-key") == nullptr);
    REQUIRE(skipped.size() == 1);
    CHECK(skipped[0].find("enc-key") != std::string::npos);
    CHECK(set->kids() == std::vector<std::string>{rsa_key().kid()});
}

TEST_CASE("unusable JWKs are refused with a reason", "[crypto][unit]") {
    auto rsa = rsa_key().verification_key().to_jwk();
    auto ec = ec_key().verification_key().to_jwk();
    auto with = [](json::object o, std::string k, json::value v) {
        o[k] = std::move(v);
        return o;
    };
    auto without = [](json::object o, std::string k) {
        o.erase(k);
        return o;
    };
    CHECK_THAT(refusal(without(rsa, "kid")), Catch::Contains("no kid"));
    CHECK_THAT(refusal(with(rsa, "use", "enc")), Catch::Contains("use"));
    CHECK_THAT(refusal(with(rsa, "key_ops", json::array{"encrypt"})), Catch::Contains("key_ops"));
    CHECK(parse_jwk(with(rsa, "key_ops", json::array{"verify"})).has_value());
    CHECK_THAT(refusal(with(rsa, "alg", "HS256")), Catch::Contains("unsupported alg"));
    CHECK_THAT(refusal(with(rsa, "alg", "ES256")), Catch::Contains("does not fit"));
    CHECK_THAT(refusal(with(ec, "alg", "RS256")), Catch::Contains("does not fit"));
    CHECK_THAT(refusal(with(rsa, "kty", "oct")), Catch::Contains("unsupported kty"));
    CHECK_THAT(refusal(with(rsa, "kty", "OKP")), Catch::Contains("unsupported kty"));
    CHECK_THAT(refusal(without(rsa, "n")), Catch::Contains("without n"));
    CHECK_THAT(refusal(with(rsa, "n", "not base64url!")), Catch::Contains("base64url"));
    CHECK_THAT(refusal(with(ec, "crv", "P-384")), Catch::Contains("P-256"));
    CHECK_THAT(refusal(with(ec, "x", json::string(auth::base64url_encode(std::string(31, 'a'))))), Catch::Contains("32-byte"));
}

TEST_CASE("weak RSA keys and points off the curve are refused", "[crypto][unit]") {
    SECTION("a 1024-bit modulus") {
        auto n = auth::base64url_decode(rfc7638_n).value().substr(0, 128);
        auto jwk = rfc7638_key();
        jwk["n"] = auth::base64url_encode(n);
        CHECK_THAT(refusal(jwk), Catch::Contains("1024 bits"));
    }
    SECTION("an even or tiny exponent") {
        auto jwk = rfc7638_key();
        jwk["e"] = auth::base64url_encode(std::string(1, '\x02'));
        CHECK_THAT(refusal(jwk), Catch::Contains("exponent"));
        jwk["e"] = auth::base64url_encode(std::string(1, '\x01'));
        CHECK_THAT(refusal(jwk), Catch::Contains("exponent"));
    }
    SECTION("an EC point that is not on P-256") {
        auto jwk = ec_key().verification_key().to_jwk();
        auto y = auth::base64url_decode(jwk.at("y").as_string()).value();
        y[31] = static_cast<char>(y[31] ^ 1);
        jwk["y"] = auth::base64url_encode(y);
        CHECK_THAT(refusal(jwk), Catch::Contains("not on P-256"));
    }
}

TEST_CASE("JWKS documents: malformed ones fail, duplicate kids are dropped", "[crypto][unit]") {
    CHECK(jwk_set::parse("not json").error() == errc::invalid_argument);
    CHECK(jwk_set::parse("[]").error() == errc::invalid_argument);
    CHECK(jwk_set::parse(R"({"keys": {}})").error() == errc::invalid_argument);
    CHECK(jwk_set::parse(R"({"keys": []})")->empty());

    auto a = rsa_key().verification_key().to_jwk();
    auto b = rsa_key_2().verification_key().to_jwk();
    b["kid"] = a.at("kid");
    auto c = ec_key().verification_key().to_jwk();
    std::vector<std::string> skipped;
    auto set = jwk_set::parse(json::serialize(json::object{{"keys", json::array{a, b, c, 42}}}), &skipped);
    REQUIRE(set.has_value());
    CHECK(set->size() == 1);
    CHECK(set->find(ec_key().kid()) != nullptr);
    CHECK(set->find(rsa_key().kid()) == nullptr);
    CHECK(skipped.size() == 2);  // the non-object and the shared kid

    auto again = jwk_set::parse(set->to_json());
    REQUIRE(again.has_value());
    CHECK(again->kids() == set->kids());
}
