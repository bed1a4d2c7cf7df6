#pragma once
// Keys generated in the test process (once per run) and token helpers.

#include <faasd/auth/base64.hpp>
#include <faasd/auth/jwt.hpp>
#include <faasd/crypto/signing.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <string>

namespace faasd::test {

inline const crypto::signing_key& rsa_key() {
    static const auto k = crypto::signing_key::generate(crypto::key_type::rsa);
    return k;
}
inline const crypto::signing_key& rsa_key_2() {
    static const auto k = crypto::signing_key::generate(crypto::key_type::rsa);
    return k;
}
inline const crypto::signing_key& ec_key() {
    static const auto k = crypto::signing_key::generate(crypto::key_type::ec_p256);
    return k;
}

inline constexpr std::int64_t fixed_now_s = 1'700'000'000;
inline const std::chrono::sys_seconds fixed_now{std::chrono::seconds(fixed_now_s)};
inline const std::string test_issuer = "http://127.0.0.1:8080/realms/faas";

inline auth::token_policy test_policy() {
    auth::token_policy p;
    p.issuer = test_issuer;
    return p;
}

/// Keycloak-shaped claims valid at fixed_now.
inline boost::json::object good_claims() {
    return boost::json::object{
        {"exp", fixed_now_s + 300},
        {"iat", fixed_now_s - 10},
        {"jti", "j-1"},
        {"iss", test_issuer},
        {"aud", boost::json::array{"faas-frontend", "account"}},
        {"sub", "6b0d2c2e-1f0a-4d1b-9a53-7d1e2c3b4a5f"},
        {"typ", "Bearer"},
        {"azp", "faas-cli"},
        {"realm_access", boost::json::object{{"roles", boost::json::array{"faas-user"}}}},
        {"preferred_username", "alice"},
        {"email", "alice@example.test"},
    };
}

/// A token assembled from raw header and claims JSON and raw signature bytes.
inline std::string assemble(const boost::json::object& header, const boost::json::object& claims,
                            const std::string& signature) {
    return auth::base64url_encode(boost::json::serialize(header)) + "." +
           auth::base64url_encode(boost::json::serialize(claims)) + "." + auth::base64url_encode(signature);
}

}  // namespace faasd::test
