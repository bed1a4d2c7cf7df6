#pragma once
// JWT access tokens (RFC 7519, JWS compact form RFC 7515) as issued by Keycloak:
// parsing and every check that needs no cryptography. Pure: time is an input,
// no OpenSSL here (signatures are checked by faasd::crypto).
//
// The rules and the attack each one stops are in docs/security.md. In short:
// the accepted algorithms come from the policy, never from the token; "none",
// HMAC algorithms and headers that point at other keys (jku, x5u, x5c, jwk) or
// demand unknown processing (crit) are refused; a kid is required; iss must
// match exactly, aud must contain our audience, exp/nbf/iat are checked with a
// small leeway, and the typ claim must say "Bearer".
//
// Every failure is an error code of the auth category (reject_reason.hpp).

#include <faasd/auth/principal.hpp>
#include <faasd/auth/reject_reason.hpp>
#include <faasd/core/error.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::auth {

/// The JWS algorithms faasd can verify. HMAC and "none" are deliberately absent.
enum class jws_alg {
    rs256,  ///< RSASSA-PKCS1-v1_5 with SHA-256 (Keycloak's default)
    ps256,  ///< RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt
    es256,  ///< ECDSA on P-256 with SHA-256, signature r||s (64 bytes)
};

/// "RS256", "PS256", "ES256".
const char* to_string(jws_alg a) noexcept;
/// Exact, case-sensitive match of the JOSE names above; anything else is nullopt.
std::optional<jws_alg> parse_jws_alg(std::string_view s) noexcept;

/// What a token must satisfy. One per frontend, from its configuration.
struct token_policy {
    std::string issuer;                                 ///< exact `iss`, e.g. http://127.0.0.1:8080/realms/faas
    std::string audience = "faas-frontend";             ///< must be in `aud` (string or array)
    bool accept_azp = false;                            ///< also accept tokens whose `azp` equals audience
    std::optional<std::string> token_type = "Bearer";   ///< required `typ` claim; nullopt = not checked
    std::chrono::seconds leeway{30};                    ///< clock skew allowed for exp, nbf and iat
    std::vector<jws_alg> algorithms{jws_alg::rs256};    ///< accepted header algs
    std::size_t max_token_bytes = 16 * 1024;            ///< longer tokens are refused before any parsing
};

/// A token split into its parts. signing_input is what the signature covers.
struct jwt {
    std::string signing_input;      ///< "<header b64>.<payload b64>"
    boost::json::object header;
    boost::json::object claims;
    std::string signature;          ///< raw signature bytes
};

/// The header fields that matter once check_header has accepted them.
struct jose_header {
    jws_alg alg = jws_alg::rs256;
    std::string kid;
};

/// Splits a compact JWS and decodes its parts: too_large past max_bytes,
/// malformed for anything that is not three strict base64url parts whose first
/// two are JSON objects (an empty signature is malformed too).
result<jwt> parse_jwt(std::string_view token, std::size_t max_bytes = 16 * 1024);

/// Checks the JOSE header against the policy: alg (alg_not_allowed),
/// jku/x5u/x5c/jwk/crit (forbidden_header), kid (missing_kid).
result<jose_header> check_header(const boost::json::object& header, const token_policy& policy);

/// Checks the claims at time now and builds the principal: missing_claim
/// (exp, sub, iss), expired, not_yet_valid, issued_in_future, wrong_issuer,
/// wrong_audience, wrong_type.
result<principal> check_claims(const boost::json::object& claims, const token_policy& policy,
                               std::chrono::sys_seconds now);

/// The token of an "Authorization: Bearer <token>" header value (scheme
/// case-insensitive); nullopt for any other scheme or an empty/ill-formed token.
std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept;

/// What the frontend needs from {issuer}/.well-known/openid-configuration.
struct oidc_discovery {
    std::string issuer;
    std::string jwks_uri;
};

/// Parses a discovery document; invalid_argument unless it is a JSON object whose
/// `issuer` equals expected_issuer exactly and whose `jwks_uri` is an http(s) URL.
result<oidc_discovery> parse_discovery(std::string_view json, std::string_view expected_issuer);

}  // namespace faasd::auth
