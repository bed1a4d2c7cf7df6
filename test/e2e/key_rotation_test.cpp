// Keycloak key rotation: a new active signing key added through Keycloak's
// admin API makes new tokens carry an unknown kid; the frontend refreshes its
// key set once and keeps accepting both old and new tokens (no burst of 401s).
// The test imports its own copy of the realm, so that rotating its keys cannot
// disturb other tests that use the shared realm.

#include "e2e_support.hpp"
#include "support/support.hpp"

#include <faasd/auth/jwt.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

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

}  // namespace

TEST_CASE("a Keycloak key rotation does not produce a burst of 401s", "[e2e][keycloak]") {
    const std::string kc = faasd::test::require_env("FAASD_TEST_KEYCLOAK");
    const std::string admin = token_for(kc, "master", "admin-cli", faasd::test::require_env("FAASD_TEST_KEYCLOAK_ADMIN"),
                                        faasd::test::require_env("FAASD_TEST_KEYCLOAK_ADMIN_PASSWORD"));
    // A private copy of the realm.
    const std::string realm = faasd::test::unique_name("faas-rot");
    std::ifstream in(faasd::test::source_dir() / "config/keycloak/faas-realm.json");
    std::stringstream text;
    text << in.rdbuf();
    auto rep = json::parse(text.str()).as_object();
    rep["realm"] = realm;
    rep.erase("id");
    auto created = http("POST", kc + "/admin/realms", admin, json::serialize(rep));
    INFO(created.body);
    REQUIRE(created.status == 201);
    struct drop_realm {
        std::string url, token;
        ~drop_realm() {
            try {
                http("DELETE", url, token);
            } catch (...) {
            }
        }
    } cleanup{kc + "/admin/realms/" + realm, admin};

    faasd::test::temp_dir tmp("faasd-e2e-rotation");
    const int port = faasd::e2e::free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    bg_process frontend("frontend",
                        {faasd::test::faasd_binary(), "frontend", "--listen", "127.0.0.1:" + std::to_string(port),
                         "--oidc-issuer", kc + "/realms/" + realm, "--oidc-audience",
                         faasd::test::require_env("FAASD_TEST_OIDC_AUDIENCE")},
                        faasd::e2e::role_environment(faasd::test::unique_name("e2e") + "."), tmp.path());
    faasd::e2e::wait_ready(base + "/readyz", {&frontend}, 120s);

    const std::string before = token_for(kc, realm, "faas-cli", "alice", "alice-pw");
    REQUIRE(http("GET", base + "/v1/jobs", before).status == 200);

    // Rotate: a new RSA key with a higher priority becomes the active signing key.
    auto realm_info = http("GET", kc + "/admin/realms/" + realm, admin).json();
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
    auto rotated = http("POST", kc + "/admin/realms/" + realm + "/components", admin, json::serialize(component));
    INFO(rotated.body);
    REQUIRE(rotated.status == 201);

    const std::string after = token_for(kc, realm, "faas-cli", "alice", "alice-pw");
    REQUIRE(kid_of(after) != kid_of(before));

    // Every request succeeds, with the new token and with the old one.
    int unauthorised = 0;
    for (int i = 0; i < 20; ++i) {
        unauthorised += http("GET", base + "/v1/jobs", after).status == 401;
        unauthorised += http("GET", base + "/v1/jobs", before).status == 401;
    }
    INFO(frontend.log());
    CHECK(unauthorised == 0);

    // A token signed by a key the realm never had is still refused.
    auto forged = after.substr(0, after.rfind('.') + 1) + "AAAA";
    CHECK(http("GET", base + "/v1/jobs", forged).status == 401);
    CHECK(frontend.stop(20s) == 0);
}
