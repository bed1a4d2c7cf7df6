#pragma once
// Why a token was refused. The reasons are for logs and metrics only: the HTTP
// answer to the client is always the same 401 (faasd::errc::unauthorized), so a
// caller probing with forged tokens learns nothing (docs/security.md).
//
// The pure checks (parse_jwt, check_header, check_claims) return these as
// error codes of the "faasd.auth" category; crypto::verifier turns every one of
// them into errc::unauthorized and hands the reason back separately.

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace faasd::auth {

enum class reject_reason {
    ok = 0,
    malformed = 1,     ///< not three base64url parts, or header/claims not JSON objects
    too_large,         ///< longer than token_policy::max_token_bytes
    alg_not_allowed,   ///< header alg missing or not in the allow-list ("none" and HS* never are)
    forbidden_header,  ///< jku, x5u, x5c, jwk or crit in the header
    missing_kid,       ///< no (or an empty) kid in the header
    unknown_kid,       ///< no key with that kid in the key set (the JWKS may need a refresh)
    key_mismatch,      ///< the key's type or declared alg does not fit the header alg
    bad_signature,     ///< the signature does not verify
    missing_claim,     ///< exp, sub or iss absent or of the wrong JSON type
    expired,           ///< now >= exp + leeway
    not_yet_valid,     ///< now + leeway < nbf
    issued_in_future,  ///< iat > now + leeway
    wrong_issuer,      ///< iss differs from the configured issuer
    wrong_audience,    ///< aud lacks the configured audience (and azp does not stand in)
    wrong_type,        ///< the typ claim is not the configured token type ("Bearer")
};

/// A short stable name ("bad_signature") for logs and metric labels.
const char* to_string(reject_reason r) noexcept;

const boost::system::error_category& auth_category() noexcept;

inline boost::system::error_code make_error_code(reject_reason r) noexcept {
    return {static_cast<int>(r), auth_category()};
}

/// The reject_reason carried by an error code of the auth category (malformed for any other code).
reject_reason reason_of(const boost::system::error_code& ec) noexcept;

}  // namespace faasd::auth

template <>
struct boost::system::is_error_code_enum<faasd::auth::reject_reason> : std::true_type {};
