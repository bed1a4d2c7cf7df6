#include <faasd/auth/token_cache.hpp>

#include <algorithm>

namespace faasd::auth {

token_cache::token_cache(std::size_t capacity, std::chrono::seconds max_ttl) : capacity_(capacity), max_ttl_(max_ttl) {
    index_.reserve(std::min<std::size_t>(capacity, 1024));
}

std::optional<principal> token_cache::find(std::string_view key, std::chrono::sys_seconds now) {
    auto it = index_.find(key);
    if (it == index_.end()) {
        ++stats_.misses;
        return std::nullopt;
    }
    auto pos = it->second;
    if (now >= pos->expires) {
        ++stats_.expirations;
        ++stats_.misses;
        index_.erase(it);
        lru_.erase(pos);
        return std::nullopt;
    }
    lru_.splice(lru_.begin(), lru_, pos);
    ++stats_.hits;
    return pos->value;
}

void token_cache::insert(std::string key, principal p, std::chrono::sys_seconds now) {
    if (capacity_ == 0) return;
    auto expires = std::min(p.expires_at, now + max_ttl_);
    if (expires <= now) return;
    if (auto it = index_.find(key); it != index_.end()) {
        lru_.erase(it->second);
        index_.erase(it);
    }
    while (index_.size() >= capacity_) {
        index_.erase(lru_.back().key);
        lru_.pop_back();
        ++stats_.evictions;
    }
    lru_.push_front(entry{key, std::move(p), expires});
    index_.emplace(std::move(key), lru_.begin());
    ++stats_.insertions;
}

void token_cache::clear() noexcept {
    index_.clear();
    lru_.clear();
}

cache_stats token_cache::stats() const noexcept {
    auto s = stats_;
    s.size = index_.size();
    return s;
}

}  // namespace faasd::auth
