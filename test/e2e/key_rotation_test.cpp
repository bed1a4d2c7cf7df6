// Real Keycloak through a running `faasd frontend` process. Key rotation: a
// new active signing key added through Keycloak's admin API makes new tokens
// carry an unknown kid; the frontend refreshes its key set once and keeps
// accepting both old and new tokens (no burst of 401s). Refusals: an expired
// token, a token of the same realm issued for another service, and tokens
// signed by a key the realm never had get 401 + WWW-Authenticate from the
// frontend itself, and no token ever reaches its log.
// Each test imports its own copy of the realm, so that rotating its keys (or
// adding a client) cannot disturb other tests that use the shared realm.

#include "e2e_support.hpp"
#include "support/support.hpp"

#include <faasd/auth/jwt.hpp>
#include <faasd/crypto/signing.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <fstream>
#include <sstream>

using namespace std::chrono_literals;
namespace json = boost::json;
using faasd::e2e::bg_process;
using faasd::e2e::http;

namespace {

std::string token_for(const std::string& keycloak, const std::string& realm, const std::string& client,
                      const std::string& user, const std::string& password) {
    auto r = faasd::test::run_process({"curl", "-sS", "--max-time", "60", "-d", "grant_type=password", "-d",
                                       "client_id=" + client, "-d", "username=" + user, "-d", "password=" + password,
                                       keycloak + "/realms/" + realm + "/protocol/openid-connect/token"});
    REQUIRE(r.exit_code == 0);
    auto v = json::parse(r.out);
    INFO(r.out);
    REQUIRE(v.as_object().contains("access_token"));
    return std::string(v.at("access_token").as_string());
}

std::string kid_of(const std::string& token) {
    auto t = faasd::auth::parse_jwt(token);
    REQUIRE(t.has_value());
    return faasd::e2e::string_at(json::value(t->header), "kid");
}

/// The token's header and claims re-signed with a key the realm never had:
/// under the realm's kid (a bad signature) or under the new key's own kid.
std::string resigned(const std::string& token, bool keep_kid) {
    auto t = faasd::auth::parse_jwt(token);
    REQUIRE(t.has_value());
    auto key = faasd::crypto::signing_key::generate();
    json::object header;
    if (keep_kid) header["kid"] = t->header.at("kid");
    return faasd::crypto::sign_jwt(key, t->claims, header);
}

/// A copy of config/keycloak/faas-realm.json under a fresh name (with extra
/// clients, if given), deleted again at the end of the test.
struct private_realm {
    std::string keycloak, admin, name;

    explicit private_realm(const std::string& prefix, json::array extra_clients = {}) {
        keycloak = faasd::test::require_env("FAASD_TEST_KEYCLOAK");
        admin = token_for(keycloak, "master", "admin-cli", faasd::test::require_env("FAASD_TEST_KEYCLOAK_ADMIN"),
                          faasd::test::require_env("FAASD_TEST_KEYCLOAK_ADMIN_PASSWORD"));
        name = faasd::test::unique_name(prefix);
        std::ifstream in(faasd::test::source_dir() / "config/keycloak/faas-realm.json");
        std::stringstream text;
        text << in.rdbuf();
        auto rep = json::parse(text.str()).as_object();
        rep["realm"] = name;
        rep.erase("id");
        for (auto& c : extra_clients) rep["clients"].as_array().push_back(c);
        auto created = http("POST", keycloak + "/admin/realms", admin, json::serialize(rep));
        INFO(created.body);
        REQUIRE(created.status == 201);
    }
    ~private_realm() {
        try {
            http("DELETE", keycloak + "/admin/realms/" + name, admin);
        } catch (...) {
        }
    }
    std::string issuer() const { return keycloak + "/realms/" + name; }
    std::string token(const std::string& client, const std::string& user) const {
        return token_for(keycloak, name, client, user, user + "-pw");
    }
};

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// The value of faasd_auth_failures_total{reason="<reason>"} (0 when absent).
double auth_failures(const std::string& base, const std::string& reason) {
    auto m = http("GET", base + "/metrics");
    std::istringstream in(m.body);
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("faasd_auth_failures_total{") && line.find("reason=\"" + reason + "\"") != std::string::npos)
            return std::stod(line.substr(line.rfind(' ') + 1));
    return 0;
}

}  // namespace

TEST_CASE("a Keycloak key rotation does not produce a burst of 401s", "[e2e][keycloak]") {
    private_realm realm("faas-rot");
    const std::string& kc = realm.keycloak;
    const std::string& admin = realm.admin;

    faasd::test::temp_dir tmp("faasd-e2e-rotation");
    const int port = faasd::e2e::free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    bg_process frontend("frontend",
                        {faasd::test::faasd_binary(), "frontend", "--listen", "127.0.0.1:" + std::to_string(port),
                         "--oidc-issuer", realm.issuer(), "--oidc-audience",
                         faasd::test::require_env("FAASD_TEST_OIDC_AUDIENCE")},
                        faasd::e2e::role_environment(faasd::test::unique_name("e2e") + "."), tmp.path());
    faasd::e2e::wait_ready(base + "/readyz", {&frontend}, 120s);

    const std::string before = realm.token("faas-cli", "alice");
    REQUIRE(http("GET", base + "/v1/jobs", before).status == 200);

    // Rotate: a new RSA key with a higher priority becomes the active signing key.
    auto realm_info = http("GET", kc + "/admin/realms/" + realm.name, admin).json();
    const std::string realm_id = faasd::e2e::string_at(realm_info, "id");
    REQUIRE(!realm_id.empty());
    json::object component{{"name", "rotated-rsa"},
                           {"providerId", "rsa-generated"},
                           {"providerType", "org.keycloak.keys.KeyProvider"},
                           {"parentId", realm_id},
                           {"config", json::object{{"priority", json::array{"1000"}},
                                                   {"keySize", json::array{"2048"}},
                                                   {"active", json::array{"true"}},
                                                   {"enabled", json::array{"true"}},
                                                   {"algorithm", json::array{"RS256"}}}}};
    auto rotated = http("POST", kc + "/admin/realms/" + realm.name + "/components", admin, json::serialize(component));
    INFO(rotated.body);
    REQUIRE(rotated.status == 201);

    const std::string after = realm.token("faas-cli", "alice");
    REQUIRE(kid_of(after) != kid_of(before));

    // Every request succeeds, with the new token and with the old one.
    int unauthorised = 0;
    for (int i = 0; i < 20; ++i) {
        unauthorised += http("GET", base + "/v1/jobs", after).status == 401;
        unauthorised += http("GET", base + "/v1/jobs", before).status == 401;
    }
    INFO(frontend.log());
    CHECK(unauthorised == 0);

    // A token signed by a key the realm never had is still refused, under the
    // realm's current kid and under its own (which costs at most one more fetch).
    CHECK(http("GET", base + "/v1/jobs", resigned(after, true)).status == 401);
    CHECK(http("GET", base + "/v1/jobs", resigned(after, false)).status == 401);
    CHECK(frontend.stop(20s) == 0);
}

TEST_CASE("the frontend process refuses expired, other-audience and foreign-signed Keycloak tokens with 401, and "
          "never logs a token",
          "[e2e][keycloak]") {
    // A client of the same realm for another service: its tokens do not name faas-frontend.
    json::object other{{"clientId", "other-service"},   {"enabled", true},
                       {"protocol", "openid-connect"},  {"publicClient", true},
                       {"directAccessGrantsEnabled", true}, {"standardFlowEnabled", false},
                       {"fullScopeAllowed", true}};
    private_realm realm("faas-refuse", json::array{other});

    faasd::test::temp_dir tmp("faasd-e2e-refuse");
    const int port = faasd::e2e::free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    bg_process frontend("frontend",
                        {faasd::test::faasd_binary(), "frontend", "--listen", "127.0.0.1:" + std::to_string(port),
                         "--oidc-issuer", realm.issuer(), "--oidc-audience",
                         faasd::test::require_env("FAASD_TEST_OIDC_AUDIENCE"), "--clock-leeway", "0s", "--log-level",
                         "debug"},
                        faasd::e2e::role_environment(faasd::test::unique_name("e2e") + "."), tmp.path());
    faasd::e2e::wait_ready(base + "/readyz", {&frontend}, 120s);
    std::vector<std::string> used;  // every token shown to the frontend
    auto refused = [&](const std::string& token) {
        used.push_back(token);
        auto a = http("GET", base + "/v1/jobs", token);
        INFO(a.status << " " << a.headers << a.body);
        CHECK(a.status == 401);
        CHECK(a.headers.find("WWW-Authenticate: Bearer realm=\"faasd\", error=\"invalid_token\"") != std::string::npos);
        return a.status == 401;
    };

    const std::string alice = realm.token("faas-cli", "alice");
    used.push_back(alice);
    REQUIRE(http("GET", base + "/v1/jobs", alice).status == 200);

    // A token of the same realm issued for another service.
    {
        auto t = realm.token("other-service", "alice");
        auto claims = faasd::auth::parse_jwt(t)->claims;
        INFO(json::serialize(claims));
        REQUIRE(claims.at("azp").as_string() == "other-service");
        REQUIRE(json::serialize(claims).find("faas-frontend") == std::string::npos);  // not in aud
        CHECK(refused(t));
        CHECK(auth_failures(base, "wrong_audience") >= 1);
    }
    // Tokens signed by a key the realm never had, under the realm's kid or their own.
    CHECK(refused(resigned(alice, true)));
    CHECK(auth_failures(base, "bad_signature") >= 1);
    CHECK(refused(resigned(alice, false)));
    CHECK(auth_failures(base, "unknown_kid") >= 1);
    // An expired token, accepted (and cached) while it was valid.
    {
        const std::string t = realm.token("faas-cli-short", "alice");  // 3 s access tokens
        used.push_back(t);
        auto exp = faasd::auth::parse_jwt(t)->claims.at("exp").to_number<std::int64_t>();
        CHECK(http("GET", base + "/v1/jobs", t).status == 200);
        REQUIRE(faasd::test::wait_until([&] { return unix_now() > exp; }, 10s, 50ms));
        CHECK(refused(t));
        CHECK(auth_failures(base, "expired") >= 1);
    }

    auto log = frontend.log();
    CHECK(frontend.stop(20s) == 0);
    CHECK(log.find("level=debug") != std::string::npos);  // the whole log was captured
    for (const auto& t : used) {
        INFO("a token (or its signature) is in the frontend's log");
        CHECK(log.find(t) == std::string::npos);
        CHECK(log.find(t.substr(t.rfind('.') + 1)) == std::string::npos);
    }
}
