#include <faasd/frontend/limits.hpp>

#include <faasd/core/id.hpp>
#include <faasd/crypto/primitives.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

namespace faasd::frontend {

rate_limiter::rate_limiter(double rate, double burst) : rate_(rate), burst_(std::max(burst, 1.0)) {}

std::optional<std::chrono::milliseconds> rate_limiter::take(std::string_view key, unix_ms now) {
    if (rate_ <= 0) return std::nullopt;
    prune(now);
    auto it = buckets_.find(key);
    if (it == buckets_.end()) it = buckets_.emplace(std::string(key), bucket{burst_, now}).first;
    auto& b = it->second;
    if (now > b.at) {
        b.tokens = std::min(burst_, b.tokens + static_cast<double>(now - b.at) * rate_ / 1000.0);
        b.at = now;
    }
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return std::nullopt;
    }
    auto wait_ms = std::ceil((1.0 - b.tokens) * 1000.0 / rate_);
    return std::chrono::milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(wait_ms)));
}

void rate_limiter::prune(unix_ms now) {
    // A bucket idle for the time it takes to refill completely is the same as no bucket.
    auto full_after = static_cast<unix_ms>(burst_ * 1000.0 / rate_) + 1;
    if (now - last_prune_ < std::max<unix_ms>(full_after, 1000)) return;
    last_prune_ = now;
    boost::unordered::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.at > full_after; });
}

bool is_valid_idempotency_key(std::string_view key) noexcept {
    if (key.empty() || key.size() > 255) return false;
    return std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

std::string sha256(std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("EVP_Digest(sha256) failed");
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string idempotent_job_id(std::string_view subject, std::string_view key, unix_ms at,
                              std::chrono::milliseconds window) {
    auto w = std::max<std::int64_t>(window.count(), 1);
    auto bucket = at / w;
    std::string input;
    input.reserve(subject.size() + key.size() + 24);
    input.append(subject);
    input.push_back('\0');
    input.append(key);
    input.push_back('\0');
    input.append(std::to_string(bucket));
    auto digest = sha256(input);
    std::array<std::uint8_t, 10> random{};
    for (std::size_t i = 0; i < random.size(); ++i) random[i] = static_cast<std::uint8_t>(digest[i]);
    return make_job_id(static_cast<std::uint64_t>(bucket * w), random);
}

std::string random_ids::next(unix_ms now) {
    constexpr std::size_t n = 10;
    if (used_ + n > pool_.size()) {
        crypto::wipe(pool_);
        pool_ = crypto::random_bytes(n * batch_);
        used_ = 0;
    }
    std::array<std::uint8_t, n> r{};
    for (std::size_t i = 0; i < n; ++i) {
        r[i] = static_cast<std::uint8_t>(pool_[used_ + i]);
        pool_[used_ + i] = '\0';
    }
    used_ += n;
    return make_job_id(static_cast<std::uint64_t>(now), r);
}

}  // namespace faasd::frontend
