// http::client against a real Keycloak: OIDC discovery and the JWKS, as the
// frontend fetches them. Needs FAASD_TEST_OIDC_ISSUER (test/services/services.sh up keycloak).

#include "http_support.hpp"

#include "support/support.hpp"

#include <faasd/http/client.hpp>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace faasd::test::http;
using faasd::http::client;
using faasd::http::client_config;
using faasd::http::client_errc;
using faasd::http::client_request;
using faasd::test::run_coroutine;

TEST_CASE("client fetches OIDC discovery and the JWKS from Keycloak", "[http][integration][keycloak]") {
    auto issuer = faasd::test::require_env("FAASD_TEST_OIDC_ISSUER");
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        client_config cfg;
        cfg.policy.allow_loopback = true;  // the test Keycloak runs on 127.0.0.1
        cfg.reuse_connections = true;
        client cl(ex, cfg);

        client_request discovery("GET", issuer + "/.well-known/openid-configuration");
        discovery.expect_success = true;
        discovery.headers.add("Accept", "application/json");
        auto r = co_await cl.request(discovery);
        REQUIRE(r.has_value());
        auto doc = boost::json::parse(r->body).as_object();
        CHECK(doc.at("issuer").as_string() == issuer);
        std::string jwks_uri(doc.at("jwks_uri").as_string());

        client_request jwks("GET", jwks_uri);
        jwks.expect_success = true;
        r = co_await cl.request(jwks);
        REQUIRE(r.has_value());
        auto keys = boost::json::parse(r->body).as_object().at("keys").as_array();
        CHECK_FALSE(keys.empty());
        bool has_rs256 = false;
        for (const auto& k : keys)
            if (k.as_object().contains("alg") && k.as_object().at("alg") == "RS256") has_rs256 = true;
        CHECK(has_rs256);

        // The default (public-only) policy refuses the same loopback issuer.
        client strict(ex);
        r = co_await strict.request(client_request("GET", issuer + "/.well-known/openid-configuration"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::address_forbidden));
    }, 30s);
}
