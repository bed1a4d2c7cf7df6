#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/verifier.hpp>

namespace faasd::crypto {

using auth::reject_reason;

namespace {

result<auth::principal> refuse(reject_reason r, reject_reason* why) {
    if (why != nullptr) *why = r;
    return errc::unauthorized;
}

}  // namespace

result<auth::principal> verify_token(std::string_view token, const jwk_set& keys, const auth::token_policy& policy,
                                     std::chrono::sys_seconds now, reject_reason* why) {
    auto parsed = auth::parse_jwt(token, policy.max_token_bytes);
    if (!parsed) return refuse(auth::reason_of(parsed.error()), why);
    auto header = auth::check_header(parsed->header, policy);
    if (!header) return refuse(auth::reason_of(header.error()), why);
    const public_key* key = keys.find(header->kid);
    if (key == nullptr) return refuse(reject_reason::unknown_kid, why);
    if (auto ok = verify_signature(*key, header->alg, parsed->signing_input, parsed->signature); !ok)
        return refuse(auth::reason_of(ok.error()), why);
    auto p = auth::check_claims(parsed->claims, policy, now);
    if (!p) return refuse(auth::reason_of(p.error()), why);
    if (why != nullptr) *why = reject_reason::ok;
    return p;
}

verifier::verifier(auth::token_policy policy, std::size_t cache_capacity, std::chrono::seconds cache_max_ttl)
    : policy_(std::move(policy)), keys_(std::make_shared<const jwk_set>()), cache_(cache_capacity, cache_max_ttl) {}

void verifier::set_keys(jwk_set keys) {
    auto next = std::make_shared<const jwk_set>(std::move(keys));
    std::lock_guard lock(mu_);
    keys_ = std::move(next);
    cache_.clear();
}

std::shared_ptr<const jwk_set> verifier::keys() const {
    std::lock_guard lock(mu_);
    return keys_;
}

result<auth::principal> verifier::verify(std::string_view token, std::chrono::sys_seconds now, reject_reason* why) {
    // Refuse oversized input before hashing it.
    if (token.size() > policy_.max_token_bytes) return refuse(reject_reason::too_large, why);
    auto digest = sha256(token);
    std::shared_ptr<const jwk_set> keys;
    {
        std::lock_guard lock(mu_);
        if (auto hit = cache_.find(digest, now)) {
            if (why != nullptr) *why = reject_reason::ok;
            return *std::move(hit);
        }
        keys = keys_;
    }
    auto p = verify_token(token, *keys, policy_, now, why);
    if (p) {
        std::lock_guard lock(mu_);
        // Only cache if the key set did not change while we were verifying.
        if (keys == keys_) cache_.insert(std::move(digest), *p, now);
    }
    return p;
}

auth::cache_stats verifier::cache_stats() const {
    std::lock_guard lock(mu_);
    return cache_.stats();
}

}  // namespace faasd::crypto
