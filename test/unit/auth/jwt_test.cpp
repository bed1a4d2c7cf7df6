// The pure token checks, table-driven with a fixed clock (no OpenSSL here:
// signatures are tested in test/unit/crypto).

#include <faasd/auth/base64.hpp>
#include <faasd/auth/jwt.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <functional>
#include <string>

using namespace faasd;
using namespace faasd::auth;
namespace json = boost::json;
using std::chrono::seconds;
using std::chrono::sys_seconds;

namespace {

constexpr std::int64_t t0 = 1'700'000'000;
const sys_seconds now{seconds(t0)};
const std::string issuer = "http://127.0.0.1:8080/realms/faas";

token_policy policy() {
    token_policy p;
    p.issuer = issuer;
    return p;
}

// Claims of a Keycloak access token for alice, issued 10 s ago, valid 5 minutes.
json::object keycloak_claims() {
    return json::parse(R"({
        "exp": 1700000290, "iat": 1699999990, "auth_time": 1699999990,
        "jti": "c0ffee", "iss": "http://127.0.0.1:8080/realms/faas",
        "aud": ["faas-frontend", "account"], "sub": "6b0d2c2e-1f0a-4d1b-9a53-7d1e2c3b4a5f",
        "typ": "Bearer", "azp": "faas-cli", "scope": "openid profile email",
        "realm_access": {"roles": ["default-roles-faas", "faas-user", "offline_access"]},
        "preferred_username": "alice", "email": "alice@example.test", "email_verified": true
    })").as_object();
}

std::string part(std::string_view json_text) { return base64url_encode(json_text); }

reject_reason reason(const boost::system::error_code& ec) { return reason_of(ec); }

}  // namespace

// ---- parse_jwt -------------------------------------------------------------

TEST_CASE("parse_jwt splits a compact JWS and decodes its parts", "[auth][unit]") {
    auto token = part(R"({"alg":"RS256","kid":"k1"})") + "." + part(R"({"sub":"x"})") + "." + base64url_encode("sig");
    auto t = parse_jwt(token);
    REQUIRE(t.has_value());
    CHECK(t->header.at("kid").as_string() == "k1");
    CHECK(t->claims.at("sub").as_string() == "x");
    CHECK(t->signature == "sig");
    CHECK(t->signing_input == token.substr(0, token.rfind('.')));
}

TEST_CASE("parse_jwt refuses malformed and oversized tokens", "[auth][unit]") {
    auto h = part(R"({"alg":"RS256","kid":"k1"})");
    auto p = part(R"({"sub":"x"})");
    auto s = base64url_encode("sig");
    struct row {
        std::string name, token;
    };
    auto r = GENERATE_COPY(values<row>({
        {"empty", ""},
        {"garbage", "not a token"},
        {"two parts", h + "." + p},
        {"unsigned (empty signature)", h + "." + p + "."},
        {"five parts (a JWE)", h + "." + p + "." + s + "." + s + "." + s},
        {"four parts", h + "." + p + "." + s + "." + s},
        {"empty header", "." + p + "." + s},
        {"empty payload", h + ".." + s},
        {"header not base64url", "eyJ!bGci." + p + "." + s},
        {"header padded", base64_encode(R"({"alg":"RS256","kid":"k1"})") + "." + p + "." + s},
        {"header not JSON", part("alg=RS256") + "." + p + "." + s},
        {"header a JSON array", part(R"(["RS256"])") + "." + p + "." + s},
        {"claims a JSON string", h + "." + part(R"("x")") + "." + s},
        {"claims with trailing garbage", h + "." + part(R"({"sub":"x"} {})") + "." + s},
        {"signature not base64url", h + "." + p + ".c2ln=="},
        {"truncated in the middle", (h + "." + p + "." + s).substr(0, h.size() + 5)},
    }));
    CAPTURE(r.name);
    auto t = parse_jwt(r.token);
    REQUIRE_FALSE(t.has_value());
    CHECK(reason(t.error()) == reject_reason::malformed);
}

TEST_CASE("parse_jwt refuses tokens over the size limit before parsing", "[auth][unit]") {
    std::string big(20'000, 'A');
    auto t = parse_jwt(big, 16 * 1024);
    REQUIRE_FALSE(t.has_value());
    CHECK(reason(t.error()) == reject_reason::too_large);
}

// ---- check_header ----------------------------------------------------------

TEST_CASE("check_header enforces the algorithm allow-list and refuses key-bearing headers", "[auth][unit]") {
    struct row {
        std::string header;
        reject_reason expected;
    };
    auto r = GENERATE(values<row>({
        {R"({"alg":"RS256","kid":"k1","typ":"JWT"})", reject_reason::ok},
        {R"({"alg":"none","kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":"None","kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":"NONE","kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":"HS256","kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":"HS384","kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":"HS512","kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":"RS512","kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":"rs256","kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":"ES256","kid":"k1"})", reject_reason::alg_not_allowed},  // not in the default list
        {R"({"alg":"PS256","kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":["RS256"],"kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"kid":"k1"})", reject_reason::alg_not_allowed},
        {R"({"alg":"RS256","kid":"k1","jku":"https://evil.example/jwks"})", reject_reason::forbidden_header},
        {R"({"alg":"RS256","kid":"k1","x5u":"https://evil.example/cert"})", reject_reason::forbidden_header},
        {R"({"alg":"RS256","kid":"k1","x5c":["MIIB"]})", reject_reason::forbidden_header},
        {R"({"alg":"RS256","kid":"k1","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}})", reject_reason::forbidden_header},
        {R"({"alg":"RS256","kid":"k1","crit":["exp"]})", reject_reason::forbidden_header},
        {R"({"alg":"RS256"})", reject_reason::missing_kid},
        {R"({"alg":"RS256","kid":""})", reject_reason::missing_kid},
        {R"({"alg":"RS256","kid":7})", reject_reason::missing_kid},
    }));
    CAPTURE(r.header);
    auto h = check_header(json::parse(r.header).as_object(), policy());
    if (r.expected == reject_reason::ok) {
        REQUIRE(h.has_value());
        CHECK(h->alg == jws_alg::rs256);
        CHECK(h->kid == "k1");
    } else {
        REQUIRE_FALSE(h.has_value());
        CHECK(reason(h.error()) == r.expected);
    }
}

TEST_CASE("check_header accepts ES256 and PS256 only when configured", "[auth][unit]") {
    auto p = policy();
    p.algorithms = {jws_alg::es256, jws_alg::ps256};
    CHECK(check_header(json::parse(R"({"alg":"ES256","kid":"k"})").as_object(), p)->alg == jws_alg::es256);
    CHECK(check_header(json::parse(R"({"alg":"PS256","kid":"k"})").as_object(), p)->alg == jws_alg::ps256);
    auto rs = check_header(json::parse(R"({"alg":"RS256","kid":"k"})").as_object(), p);
    REQUIRE_FALSE(rs.has_value());
    CHECK(reason(rs.error()) == reject_reason::alg_not_allowed);
}

TEST_CASE("jws_alg names round-trip and nothing else parses", "[auth][unit]") {
    for (auto a : {jws_alg::rs256, jws_alg::ps256, jws_alg::es256}) CHECK(parse_jws_alg(to_string(a)) == a);
    for (auto s : {"none", "HS256", "RS384", "EdDSA", "", "RS256 "}) CHECK_FALSE(parse_jws_alg(s).has_value());
}

// ---- check_claims ----------------------------------------------------------

TEST_CASE("check_claims, table-driven with a fixed clock", "[auth][unit]") {
    using mutation = std::function<void(json::object&, token_policy&)>;
    struct row {
        std::string name;
        mutation mutate;
        reject_reason expected;
    };
    auto set = [](std::string key, json::value v) -> mutation {
        return [key, v](json::object& c, token_policy&) { c[key] = v; };
    };
    auto erase = [](std::string key) -> mutation { return [key](json::object& c, token_policy&) { c.erase(key); }; };
    auto both = [](mutation a, mutation b) -> mutation {
        return [a, b](json::object& c, token_policy& p) {
            a(c, p);
            b(c, p);
        };
    };
    auto pol = [](std::function<void(token_policy&)> f) -> mutation {
        return [f](json::object&, token_policy& p) { f(p); };
    };

    const std::vector<row> table = {
        {"a Keycloak access token", [](json::object&, token_policy&) {}, reject_reason::ok},
        // exp
        {"exp missing", erase("exp"), reject_reason::missing_claim},
        {"exp a string", set("exp", "1700000290"), reject_reason::missing_claim},
        {"exp exactly now: still within the leeway", set("exp", t0), reject_reason::ok},
        {"exp 29 s ago: within the 30 s leeway", set("exp", t0 - 29), reject_reason::ok},
        {"exp 30 s ago: expired", set("exp", t0 - 30), reject_reason::expired},
        {"exp an hour ago", set("exp", t0 - 3600), reject_reason::expired},
        {"exp now with no leeway", both(set("exp", t0), pol([](token_policy& p) { p.leeway = seconds(0); })),
         reject_reason::expired},
        {"exp fractional", set("exp", double(t0) + 100.5), reject_reason::ok},
        {"exp past the int64 range", set("exp", std::uint64_t(18'000'000'000'000'000'000ull)), reject_reason::ok},
        {"exp negative", set("exp", -1), reject_reason::expired},
        // nbf
        {"nbf in the past", set("nbf", t0 - 10), reject_reason::ok},
        {"nbf 30 s ahead: within the leeway", set("nbf", t0 + 30), reject_reason::ok},
        {"nbf 31 s ahead: not yet valid", set("nbf", t0 + 31), reject_reason::not_yet_valid},
        {"nbf not a number", set("nbf", "soon"), reject_reason::missing_claim},
        // iat
        {"iat 30 s ahead: within the leeway", set("iat", t0 + 30), reject_reason::ok},
        {"iat 31 s ahead: issued in the future", set("iat", t0 + 31), reject_reason::issued_in_future},
        {"iat absent (optional)", erase("iat"), reject_reason::ok},
        {"iat not a number", set("iat", true), reject_reason::missing_claim},
        // iss
        {"iss missing", erase("iss"), reject_reason::missing_claim},
        {"iss of another realm", set("iss", "http://127.0.0.1:8080/realms/master"), reject_reason::wrong_issuer},
        {"iss with a trailing slash", set("iss", json::string(issuer + "/")), reject_reason::wrong_issuer},
        {"iss in other case", set("iss", "HTTP://127.0.0.1:8080/realms/faas"), reject_reason::wrong_issuer},
        {"iss not a string", set("iss", json::array{issuer}), reject_reason::missing_claim},
        // sub
        {"sub missing", erase("sub"), reject_reason::missing_claim},
        {"sub empty", set("sub", ""), reject_reason::missing_claim},
        // aud and azp
        {"aud a matching string", set("aud", "faas-frontend"), reject_reason::ok},
        {"aud an array without us", set("aud", json::array{"account", "other"}), reject_reason::wrong_audience},
        {"aud another string", set("aud", "account"), reject_reason::wrong_audience},
        {"aud missing", erase("aud"), reject_reason::wrong_audience},
        {"aud of the wrong type", set("aud", 42), reject_reason::wrong_audience},
        {"aud missing, azp us, azp not accepted",
         both(erase("aud"), set("azp", "faas-frontend")), reject_reason::wrong_audience},
        {"aud missing, azp us, azp accepted",
         both(both(erase("aud"), set("azp", "faas-frontend")), pol([](token_policy& p) { p.accept_azp = true; })),
         reject_reason::ok},
        {"aud missing, azp another client, azp accepted",
         both(erase("aud"), pol([](token_policy& p) { p.accept_azp = true; })), reject_reason::wrong_audience},
        {"configured audience is the CLI client, azp accepted",
         pol([](token_policy& p) {
             p.audience = "faas-cli";
             p.accept_azp = true;
         }),
         reject_reason::ok},
        // typ
        {"typ ID (an ID token)", set("typ", "ID"), reject_reason::wrong_type},
        {"typ Refresh", set("typ", "Refresh"), reject_reason::wrong_type},
        {"typ bearer in lower case", set("typ", "bearer"), reject_reason::wrong_type},
        {"typ missing", erase("typ"), reject_reason::wrong_type},
        {"typ missing, not checked", both(erase("typ"), pol([](token_policy& p) { p.token_type.reset(); })),
         reject_reason::ok},
    };

    for (const auto& r : table) {
        CAPTURE(r.name);
        auto claims = keycloak_claims();
        auto p = policy();
        r.mutate(claims, p);
        auto got = check_claims(claims, p, now);
        if (r.expected == reject_reason::ok) {
            CHECK(got.has_value());
        } else {
            REQUIRE_FALSE(got.has_value());
            CHECK(reason(got.error()) == r.expected);
            CHECK(got.error().category() == auth_category());
        }
    }
}

TEST_CASE("check_claims builds the principal from Keycloak's claims", "[auth][unit]") {
    auto p = check_claims(keycloak_claims(), policy(), now);
    REQUIRE(p.has_value());
    CHECK(p->subject == "6b0d2c2e-1f0a-4d1b-9a53-7d1e2c3b4a5f");
    CHECK(p->username == "alice");
    CHECK(p->email == std::optional<std::string>("alice@example.test"));
    CHECK(p->roles == std::vector<std::string>{"default-roles-faas", "faas-user", "offline_access"});
    CHECK(p->expires_at == sys_seconds(seconds(1'700'000'290)));
    CHECK(is_user(*p));
    CHECK_FALSE(is_admin(*p));
    auto id = to_identity(*p);
    CHECK(id.subject == p->subject);
    CHECK(id.username == "alice");
    CHECK(id.roles == p->roles);
}

TEST_CASE("roles come only from realm_access.roles, and odd shapes give no roles", "[auth][unit]") {
    auto roles_of = [](std::function<void(json::object&)> f) {
        auto c = keycloak_claims();
        f(c);
        return check_claims(c, policy(), now).value().roles;
    };
    CHECK(roles_of([](json::object& c) { c["realm_access"] = json::parse(R"({"roles":["faas-admin"]})"); }) ==
          std::vector<std::string>{"faas-admin"});
    CHECK(roles_of([](json::object& c) { c.erase("realm_access"); }).empty());
    CHECK(roles_of([](json::object& c) { c["realm_access"] = "faas-admin"; }).empty());
    CHECK(roles_of([](json::object& c) { c["realm_access"] = json::parse(R"({"roles":"faas-admin"})"); }).empty());
    CHECK(roles_of([](json::object& c) { c["realm_access"] = json::parse(R"({"roles":[1,"faas-user",null]})"); }) ==
          std::vector<std::string>{"faas-user"});
    // A top-level "roles" claim or client roles do not count.
    CHECK(roles_of([](json::object& c) {
              c.erase("realm_access");
              c["roles"] = json::array{"faas-admin"};
              c["resource_access"] = json::parse(R"({"faas-cli":{"roles":["faas-admin"]}})");
          }).empty());
}

TEST_CASE("username falls back to sub, email is optional", "[auth][unit]") {
    auto c = keycloak_claims();
    c.erase("preferred_username");
    c.erase("email");
    auto p = check_claims(c, policy(), now);
    REQUIRE(p.has_value());
    CHECK(p->username == p->subject);
    CHECK_FALSE(p->email.has_value());
}

TEST_CASE("role predicates", "[auth][unit]") {
    principal p;
    CHECK_FALSE(is_user(p));
    CHECK_FALSE(is_admin(p));
    p.roles = {"default-roles-faas"};
    CHECK_FALSE(is_user(p));
    p.roles = {"faas-user"};
    CHECK(is_user(p));
    CHECK_FALSE(is_admin(p));
    p.roles = {"faas-admin"};
    CHECK(is_user(p));
    CHECK(is_admin(p));
    p.roles = {"FAAS-ADMIN", "faas-admins"};
    CHECK_FALSE(is_admin(p));
}

// ---- Authorization header and discovery ------------------------------------

TEST_CASE("bearer_token extracts the token of an Authorization header", "[auth][unit]") {
    CHECK(bearer_token("Bearer abc.def.ghi") == std::optional<std::string_view>("abc.def.ghi"));
    CHECK(bearer_token("bearer abc") == std::optional<std::string_view>("abc"));
    CHECK(bearer_token("BEARER   abc  ") == std::optional<std::string_view>("abc"));
    CHECK(bearer_token("Bearer abc==") == std::optional<std::string_view>("abc=="));
    CHECK_FALSE(bearer_token("").has_value());
    CHECK_FALSE(bearer_token("Bearer").has_value());
    CHECK_FALSE(bearer_token("Bearer ").has_value());
    CHECK_FALSE(bearer_token("Bearerabc").has_value());
    CHECK_FALSE(bearer_token("Basic YWxpY2U6cHc=").has_value());
    CHECK_FALSE(bearer_token("Bearer a b").has_value());
    CHECK_FALSE(bearer_token("Bearer a=b").has_value());
    CHECK_FALSE(bearer_token("Bearer =abc").has_value());
    CHECK_FALSE(bearer_token("Bearer abc\r\nX-Injected: 1").has_value());
}

TEST_CASE("parse_discovery checks the issuer and returns jwks_uri", "[auth][unit]") {
    auto doc = R"({"issuer":"http://127.0.0.1:8080/realms/faas",
                   "jwks_uri":"http://127.0.0.1:8080/realms/faas/protocol/openid-connect/certs"})";
    auto d = parse_discovery(doc, issuer);
    REQUIRE(d.has_value());
    CHECK(d->jwks_uri == "http://127.0.0.1:8080/realms/faas/protocol/openid-connect/certs");
    CHECK(parse_discovery(doc, issuer + "/").error() == errc::invalid_argument);
    CHECK_FALSE(parse_discovery(R"({"issuer":"http://127.0.0.1:8080/realms/faas"})", issuer).has_value());
    CHECK_FALSE(
        parse_discovery(R"({"issuer":"http://127.0.0.1:8080/realms/faas","jwks_uri":"file:///etc/passwd"})", issuer)
            .has_value());
    CHECK_FALSE(parse_discovery("not json", issuer).has_value());
}

TEST_CASE("reject reasons have stable names and their own category", "[auth][unit]") {
    CHECK(std::string(to_string(reject_reason::bad_signature)) == "bad_signature");
    CHECK(std::string(to_string(reject_reason::alg_not_allowed)) == "alg_not_allowed");
    boost::system::error_code ec = reject_reason::expired;
    CHECK(ec.message() == "expired");
    CHECK(std::string(ec.category().name()) == "faasd.auth");
    CHECK(reason_of(ec) == reject_reason::expired);
    CHECK(reason_of(make_error_code(errc::unauthorized)) == reject_reason::malformed);
    CHECK(reason_of({}) == reject_reason::ok);
}
