#pragma once
// Access-token verification for the frontend: the pure checks of faasd::auth
// plus the signature check, with a cache of verified tokens.
//
// Every failure is errc::unauthorized; the precise auth::reject_reason is
// handed back separately for logs and metrics and must not reach the client.
// On unknown_kid the frontend may refresh the JWKS (rate-limited) and retry.

#include <faasd/auth/jwt.hpp>
#include <faasd/auth/token_cache.hpp>
#include <faasd/core/error.hpp>
#include <faasd/crypto/jwk.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string_view>

namespace faasd::crypto {

/// Verifies token at now, without a cache: size, parse, header (alg from the
/// policy's allow-list, no jku/x5u/x5c/jwk/crit, kid), key lookup, key/alg fit,
/// signature, then claims. errc::unauthorized for every failure; *why (if
/// given) gets the reason, or reject_reason::ok on success.
result<auth::principal> verify_token(std::string_view token, const jwk_set& keys, const auth::token_policy& policy,
                                     std::chrono::sys_seconds now, auth::reject_reason* why = nullptr);

/// verify_token with a fixed policy, a replaceable key set and a verified-token
/// cache keyed by SHA-256(token). Thread-safe: a short mutex guards the key set
/// pointer and the cache; signatures are checked outside it.
class verifier {
public:
    explicit verifier(auth::token_policy policy, std::size_t cache_capacity = 10'000,
                      std::chrono::seconds cache_max_ttl = std::chrono::minutes(5));

    /// Installs a new key set (after a JWKS fetch) and empties the cache, so a
    /// key removed by the issuer stops validating cached tokens at once.
    void set_keys(jwk_set keys);
    std::shared_ptr<const jwk_set> keys() const;
    const auth::token_policy& policy() const noexcept { return policy_; }

    /// A cache hit costs one SHA-256; a miss runs verify_token and caches success.
    result<auth::principal> verify(std::string_view token, std::chrono::sys_seconds now,
                                   auth::reject_reason* why = nullptr);

    auth::cache_stats cache_stats() const;

private:
    const auth::token_policy policy_;
    mutable std::mutex mu_;
    std::shared_ptr<const jwk_set> keys_;
    auth::token_cache cache_;
};

}  // namespace faasd::crypto
