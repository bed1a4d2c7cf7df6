// The development identity provider: key files, JWKS, minted tokens.

#include "support/support.hpp"
#include "test_keys.hpp"

#include <faasd/crypto/signing.hpp>
#include <faasd/crypto/verifier.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>

using namespace faasd;
using namespace faasd::crypto;
using namespace faasd::test;
namespace json = boost::json;
namespace fs = std::filesystem;
using std::chrono::seconds;

namespace {

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

json::object claims_of(const std::string& token) {
    auto first = token.find('.');
    auto second = token.find('.', first + 1);
    return json::parse(auth::base64url_decode(token.substr(first + 1, second - first - 1)).value()).as_object();
}

json::object header_of(const std::string& token) {
    return json::parse(auth::base64url_decode(token.substr(0, token.find('.'))).value()).as_object();
}

}  // namespace

TEST_CASE("signing keys survive a PEM round trip", "[crypto][unit]") {
    for (const auto* key : {&rsa_key(), &ec_key()}) {
        auto pem = key->to_pem();
        CHECK(pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
        auto back = signing_key::from_pem(pem);
        REQUIRE(back.has_value());
        CHECK(back->kid() == key->kid());
        CHECK(back->type() == key->type());
        // A token signed by the reloaded key verifies against the original public key.
        jwk_set set;
        set.add(key->verification_key());
        auto p = test_policy();
        p.algorithms = {key->default_alg()};
        CHECK(verify_token(sign_jwt(*back, good_claims()), set, p, fixed_now).has_value());
    }
    CHECK(signing_key::from_pem("").error() == errc::invalid_argument);
    CHECK(signing_key::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").error() ==
          errc::invalid_argument);
}

TEST_CASE("signing with an alg the key cannot produce throws", "[crypto][unit]") {
    CHECK_THROWS_AS(rsa_key().sign("x", auth::jws_alg::es256), std::invalid_argument);
    CHECK_THROWS_AS(ec_key().sign("x", auth::jws_alg::rs256), std::invalid_argument);
    CHECK(ec_key().sign("x").size() == 64);
    CHECK(rsa_key().sign("x").size() == 256);
}

TEST_CASE("the dev IdP key is created once with mode 0600 and reloaded", "[crypto][unit]") {
    temp_dir dir("faasd-devidp");
    auto state = dir.path() / "state";
    auto k1 = load_or_create_signing_key(state);
    auto file = state / "dev-idp-key.pem";
    REQUIRE(fs::exists(file));
    CHECK(mode_of(file) == 0600);
    CHECK(mode_of(state) == 0700);
    auto k2 = load_or_create_signing_key(state);
    CHECK(k2.kid() == k1.kid());
    // No temporary files are left behind.
    CHECK(std::distance(fs::directory_iterator(state), fs::directory_iterator()) == 1);

    SECTION("a key file readable by others is refused") {
        fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
        CHECK_THROWS_WITH(load_or_create_signing_key(state), Catch::Contains("chmod 600"));
    }
    SECTION("a corrupt key file is an error, not silently replaced") {
        std::ofstream(file, std::ios::trunc) << "garbage";
        CHECK_THROWS_WITH(load_or_create_signing_key(state), Catch::Contains("does not hold"));
    }
    SECTION("EC keys too") {
        auto ec = load_or_create_signing_key(dir.path() / "ec", key_type::ec_p256);
        CHECK(ec.type() == key_type::ec_p256);
        CHECK(load_or_create_signing_key(dir.path() / "ec").kid() == ec.kid());
    }
}

TEST_CASE("the dev IdP JWKS publishes only the public key", "[crypto][unit]") {
    auto doc = rsa_key().jwks_json();
    auto parsed = json::parse(doc).as_object();
    REQUIRE(parsed.at("keys").as_array().size() == 1);
    auto jwk = parsed.at("keys").as_array()[0].as_object();
    CHECK(jwk.at("kid").as_string() == rsa_key().kid());
    CHECK(jwk.at("alg").as_string() == "RS256");
    CHECK(jwk.at("use").as_string() == "sig");
    for (auto priv : {"d", "p", "q", "dp", "dq", "qi"}) CHECK_FALSE(jwk.contains(priv));
    CHECK(jwk_set::parse(doc)->find(rsa_key().kid()) != nullptr);
}

TEST_CASE("dev tokens are shaped like Keycloak's and pass the frontend's checks", "[crypto][unit]") {
    auto req = dev_user("alice", false, test_issuer, fixed_now);
    auto token = mint_access_token(rsa_key(), req);

    auto header = header_of(token);
    CHECK(header.at("alg").as_string() == "RS256");
    CHECK(header.at("typ").as_string() == "JWT");
    CHECK(header.at("kid").as_string() == rsa_key().kid());

    auto c = claims_of(token);
    CHECK(c.at("iss").as_string() == test_issuer);
    CHECK(c.at("aud").as_string() == "faas-frontend");
    CHECK(c.at("azp").as_string() == "faas-cli");
    CHECK(c.at("typ").as_string() == "Bearer");
    CHECK(c.at("preferred_username").as_string() == "alice");
    CHECK(c.at("email").as_string() == "alice@faasd.dev.invalid");
    CHECK(c.at("iat").as_int64() == fixed_now_s);
    CHECK(c.at("exp").as_int64() == fixed_now_s + 3600);
    CHECK(c.at("jti").as_string().size() == 36);
    CHECK(c.at("realm_access").at("roles").as_array() == json::array{"faas-user"});

    jwk_set set;
    set.add(rsa_key().verification_key());
    auto p = verify_token(token, set, test_policy(), fixed_now + seconds(60));
    REQUIRE(p.has_value());
    CHECK(p->username == "alice");
    CHECK(p->subject == req.subject);
    CHECK(auth::is_user(*p));
    CHECK_FALSE(auth::is_admin(*p));

    auto admin = verify_token(mint_access_token(rsa_key(), dev_user("carol", true, test_issuer, fixed_now)), set,
                              test_policy(), fixed_now);
    REQUIRE(admin.has_value());
    CHECK(auth::is_admin(*admin));

    // Expired after the lifetime (plus leeway).
    CHECK_FALSE(verify_token(token, set, test_policy(), fixed_now + seconds(3600 + 30)).has_value());
}

TEST_CASE("dev users have stable, distinct UUID subjects", "[crypto][unit]") {
    auto a1 = dev_user("alice", false, test_issuer, fixed_now);
    auto a2 = dev_user("alice", true, test_issuer, fixed_now + seconds(99));
    auto b = dev_user("bob", false, test_issuer, fixed_now);
    CHECK(a1.subject == a2.subject);
    CHECK(a1.subject != b.subject);
    REQUIRE(a1.subject.size() == 36);
    CHECK(a1.subject[14] == '5');  // version nibble
    CHECK(a1.subject[8] == '-');
    CHECK(mint_access_token(rsa_key(), a1) != mint_access_token(rsa_key(), a1));  // fresh jti
}
