#pragma once
// A small LRU cache of verified tokens, so a client that sends the same bearer
// token with every request pays for one signature check, not one per request.
//
// Keys are opaque: crypto::verifier uses the SHA-256 of the token, so the cache
// never holds a token (and stays free of OpenSSL). An entry lives until the
// token's exp or max_ttl after insertion, whichever is first; only verified
// tokens are inserted. Pure: time is an input.
//
// Thread safety: none; the owner serialises access (crypto::verifier holds a mutex).

#include <faasd/auth/principal.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace faasd::auth {

struct cache_stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;       ///< absent or expired
    std::uint64_t insertions = 0;
    std::uint64_t evictions = 0;    ///< dropped to make room (least recently used)
    std::uint64_t expirations = 0;  ///< found expired on lookup
    std::size_t size = 0;
};

class token_cache {
public:
    /// capacity 0 disables the cache (every find misses, insert does nothing).
    explicit token_cache(std::size_t capacity = 10'000, std::chrono::seconds max_ttl = std::chrono::minutes(5));

    /// The principal cached under key if its entry is still valid at now (a hit
    /// makes it the most recently used); an expired entry is removed.
    std::optional<principal> find(std::string_view key, std::chrono::sys_seconds now);

    /// Caches p under key until min(p.expires_at, now + max_ttl); nothing
    /// happens if that is not after now. Replaces an entry with the same key and
    /// evicts the least recently used one when full.
    void insert(std::string key, principal p, std::chrono::sys_seconds now);

    void clear() noexcept;
    std::size_t size() const noexcept { return index_.size(); }
    std::size_t capacity() const noexcept { return capacity_; }
    cache_stats stats() const noexcept;

private:
    struct entry {
        std::string key;
        principal value;
        std::chrono::sys_seconds expires;
    };
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using list_type = std::list<entry>;

    std::size_t capacity_;
    std::chrono::seconds max_ttl_;
    list_type lru_;  // front = most recently used
    std::unordered_map<std::string, list_type::iterator, string_hash, std::equal_to<>> index_;
    cache_stats stats_;
};

}  // namespace faasd::auth
