// Real Keycloak (test/services/services.sh up keycloak): tokens from a password
// grant on the faas realm verify against the realm's JWKS and carry the claims
// the frontend relies on. HTTP goes through curl; the frontend has its own client.

#include "support/support.hpp"

#include <faasd/auth/base64.hpp>
#include <faasd/auth/jwt.hpp>
#include <faasd/crypto/jwk.hpp>
#include <faasd/crypto/signing.hpp>
#include <faasd/crypto/verifier.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <chrono>

using namespace faasd;
using namespace faasd::crypto;
using auth::reject_reason;
namespace json = boost::json;

namespace {

struct http_reply {
    int status = 0;
    std::string body;
};

// One HTTP request through curl; the status code comes after the last newline.
http_reply curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = test::run_process(argv, {}, {}, std::chrono::seconds(40));
    INFO("curl stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    auto nl = r.out.rfind('\n');
    REQUIRE(nl != std::string::npos);
    return {std::stoi(r.out.substr(nl + 1)), r.out.substr(0, nl)};
}

std::string issuer() { return test::require_env("FAASD_TEST_OIDC_ISSUER"); }

json::object password_grant(const std::string& user, const std::string& password,
                            const std::string& client = "faas-cli") {
    auto reply = curl({"-X", "POST", issuer() + "/protocol/openid-connect/token", "--data-urlencode",
                       "grant_type=password", "--data-urlencode", "client_id=" + client, "--data-urlencode",
                       "username=" + user, "--data-urlencode", "password=" + password, "--data-urlencode",
                       "scope=openid"});
    INFO("token endpoint answered " << reply.status << ": " << reply.body);
    REQUIRE(reply.status == 200);
    return json::parse(reply.body).as_object();
}

std::string access_token(const std::string& user, const std::string& password) {
    return std::string(password_grant(user, password).at("access_token").as_string());
}

// The realm's keys, found the way the frontend finds them: discovery, then jwks_uri.
jwk_set realm_keys() {
    auto disc = curl({issuer() + "/.well-known/openid-configuration"});
    REQUIRE(disc.status == 200);
    auto d = auth::parse_discovery(disc.body, issuer());
    REQUIRE(d.has_value());
    auto certs = curl({d->jwks_uri});
    REQUIRE(certs.status == 200);
    std::vector<std::string> skipped;
    auto set = jwk_set::parse(certs.body, &skipped);
    REQUIRE(set.has_value());
    for (const auto& s : skipped) UNSCOPED_INFO("skipped JWK: " << s);
    REQUIRE_FALSE(set->empty());
    return *set;
}

auth::token_policy realm_policy() {
    auth::token_policy p;
    p.issuer = issuer();
    p.audience = "faas-frontend";
    return p;
}

std::chrono::sys_seconds now() {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

json::object claims_of(const std::string& token) { return auth::parse_jwt(token).value().claims; }

}  // namespace

TEST_CASE("Keycloak access tokens verify against the realm's JWKS", "[auth][integration]") {
    auto keys = realm_keys();
    auto policy = realm_policy();

    SECTION("alice: a faas-user") {
        auto token = access_token("alice", "alice-pw");
        auto parsed = auth::parse_jwt(token);
        REQUIRE(parsed.has_value());
        CHECK(parsed->header.at("alg").as_string() == "RS256");
        CHECK(keys.find(std::string(parsed->header.at("kid").as_string())) != nullptr);

        reject_reason why = reject_reason::malformed;
        auto p = verify_token(token, keys, policy, now(), &why);
        INFO("reason: " << auth::to_string(why) << ", claims: " << json::serialize(parsed->claims));
        REQUIRE(p.has_value());
        CHECK(p->username == "alice");
        CHECK_FALSE(p->subject.empty());
        CHECK(p->email == std::optional<std::string>("alice@example.test"));
        CHECK(p->has_role("faas-user"));
        CHECK(auth::is_user(*p));
        CHECK_FALSE(auth::is_admin(*p));
        CHECK(p->expires_at > now());
        CHECK(p->expires_at <= now() + std::chrono::minutes(6));  // the realm's 300 s lifespan

        // The claims the policy relies on, as Keycloak writes them.
        auto& c = parsed->claims;
        CHECK(c.at("iss").as_string() == issuer());
        CHECK(c.at("typ").as_string() == "Bearer");
        CHECK(c.at("azp").as_string() == "faas-cli");
        auto& aud = c.at("aud");
        bool has_frontend = aud.is_string() ? aud.as_string() == "faas-frontend" : [&] {
            for (const auto& a : aud.as_array())
                if (a == "faas-frontend") return true;
            return false;
        }();
        CHECK(has_frontend);
    }
    SECTION("carol: an admin") {
        auto p = verify_token(access_token("carol", "carol-pw"), keys, policy, now());
        REQUIRE(p.has_value());
        CHECK(p->username == "carol");
        CHECK(auth::is_admin(*p));
        CHECK(auth::is_user(*p));
    }
    SECTION("bob: a user with his own subject") {
        auto alice = verify_token(access_token("alice", "alice-pw"), keys, policy, now());
        auto bob = verify_token(access_token("bob", "bob-pw"), keys, policy, now());
        REQUIRE(alice.has_value());
        REQUIRE(bob.has_value());
        CHECK(bob->username == "bob");
        CHECK(auth::is_user(*bob));
        CHECK_FALSE(auth::is_admin(*bob));
        CHECK(bob->subject != alice->subject);
    }
}

TEST_CASE("Keycloak tokens are refused when anything does not match", "[auth][integration]") {
    auto keys = realm_keys();
    auto token = access_token("alice", "alice-pw");
    auto check = [&](const std::string& t, const auth::token_policy& p, const jwk_set& k) {
        reject_reason why = reject_reason::ok;
        auto r = verify_token(t, k, p, now(), &why);
        CHECK_FALSE(r.has_value());
        if (!r) CHECK(r.error() == errc::unauthorized);
        return why;
    };

    SECTION("one flipped signature bit") {
        auto dot = token.rfind('.');
        auto sig = auth::base64url_decode(token.substr(dot + 1)).value();
        sig[sig.size() / 2] = static_cast<char>(sig[sig.size() / 2] ^ 0x10);
        CHECK(check(token.substr(0, dot) + "." + auth::base64url_encode(sig), realm_policy(), keys) ==
              reject_reason::bad_signature);
    }
    SECTION("another audience") {
        auto p = realm_policy();
        p.audience = "some-other-service";
        CHECK(check(token, p, keys) == reject_reason::wrong_audience);
    }
    SECTION("another issuer") {
        auto p = realm_policy();
        p.issuer = issuer() + "-other";
        CHECK(check(token, p, keys) == reject_reason::wrong_issuer);
    }
    SECTION("keys of another issuer") {
        jwk_set foreign;
        foreign.add(signing_key::generate().verification_key());
        CHECK(check(token, realm_policy(), foreign) == reject_reason::unknown_kid);
    }
    SECTION("after expiry") {
        auto exp = claims_of(token).at("exp").to_number<std::int64_t>();
        reject_reason why = reject_reason::ok;
        auto later = std::chrono::sys_seconds(std::chrono::seconds(exp + 31));
        CHECK_FALSE(verify_token(token, keys, realm_policy(), later, &why).has_value());
        CHECK(why == reject_reason::expired);
    }
    SECTION("the ID token and the refresh token of the same grant") {
        auto grant = password_grant("alice", "alice-pw");
        auto id_why = check(std::string(grant.at("id_token").as_string()), realm_policy(), keys);
        UNSCOPED_INFO("id token refused as " << auth::to_string(id_why));
        CHECK((id_why == reject_reason::wrong_audience || id_why == reject_reason::wrong_type));
        auto refresh_why = check(std::string(grant.at("refresh_token").as_string()), realm_policy(), keys);
        UNSCOPED_INFO("refresh token refused as " << auth::to_string(refresh_why));
        CHECK(refresh_why != reject_reason::ok);
    }
}

TEST_CASE("Keycloak: a user without faas-user verifies but holds no faasd role", "[auth][integration]") {
    auto keys = realm_keys();
    auto p = verify_token(access_token("dave", "dave-pw"), keys, realm_policy(), now());
    REQUIRE(p.has_value());
    CHECK(p->username == "dave");
    CHECK_FALSE(auth::is_user(*p));
}

TEST_CASE("Keycloak: a wrong password gets no token", "[auth][integration]") {
    auto reply = curl({"-X", "POST", issuer() + "/protocol/openid-connect/token", "--data-urlencode",
                       "grant_type=password", "--data-urlencode", "client_id=faas-cli", "--data-urlencode",
                       "username=alice", "--data-urlencode", "password=wrong"});
    // RFC 6749 section 5.2: invalid_grant, status 400 (Keycloak before 24 answered 401).
    CHECK((reply.status == 400 || reply.status == 401));
    CHECK(json::parse(reply.body).at("error").as_string() == "invalid_grant");
    CHECK(reply.body.find("access_token") == std::string::npos);
}

TEST_CASE("Keycloak: the caching verifier hits on the second request", "[auth][integration]") {
    verifier v(realm_policy());
    v.set_keys(realm_keys());
    auto token = access_token("bob", "bob-pw");
    REQUIRE(v.verify(token, now()).has_value());
    REQUIRE(v.verify(token, now()).has_value());
    auto s = v.cache_stats();
    CHECK(s.hits == 1);
    CHECK(s.misses == 1);
}
