#pragma once
// Per-user rate limiting (token buckets) and idempotency-key helpers. Pure:
// time is an input.

#include <faasd/jobs/model.hpp>

#include <boost/unordered/unordered_flat_map.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace faasd::frontend {

using jobs::unix_ms;

/// A token bucket per key: `rate` tokens per second, at most `burst` stored.
/// Buckets that have been full for a while are forgotten, so memory follows
/// the number of recently active users. rate <= 0 disables the limit.
class rate_limiter {
public:
    rate_limiter(double rate, double burst);

    /// Takes one token for key at now: nullopt when allowed, else how long to
    /// wait before a token is available (>= 1 ms).
    std::optional<std::chrono::milliseconds> take(std::string_view key, unix_ms now);

    std::size_t tracked() const noexcept { return buckets_.size(); }
    double rate() const noexcept { return rate_; }
    double burst() const noexcept { return burst_; }

private:
    struct bucket {
        double tokens;
        unix_ms at;
    };
    void prune(unix_ms now);

    double rate_;
    double burst_;
    unix_ms last_prune_ = 0;
    struct sv_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    boost::unordered_flat_map<std::string, bucket, sv_hash, std::equal_to<>> buckets_;
};

/// Idempotency-Key header values: 1 to 255 visible ASCII characters.
bool is_valid_idempotency_key(std::string_view key) noexcept;

/// The job id for (subject, key) in the time bucket that contains `at`
/// (buckets are `window` long, aligned to the Unix epoch): a ULID whose time
/// part is the bucket's start and whose 80 random bits are the first bytes of
/// SHA-256(subject NUL key NUL bucket). Every replica derives the same id, so
/// a retried submission lands on the same job even through another replica.
std::string idempotent_job_id(std::string_view subject, std::string_view key, unix_ms at,
                              std::chrono::milliseconds window);

/// SHA-256 of data, raw 32 bytes (OpenSSL).
std::string sha256(std::string_view data);

/// Fresh job ids: ULIDs whose 80 random bits come from OpenSSL's CSPRNG
/// (RAND_bytes), drawn in batches of `batch` ids; each id's bytes are cleared
/// from the pool once used, so ids cannot be predicted from earlier ones.
/// Not thread-safe (one per loop).
class random_ids {
public:
    explicit random_ids(std::size_t batch = 64) : batch_(batch == 0 ? 1 : batch) {}
    std::string next(unix_ms now);

private:
    std::size_t batch_;
    std::string pool_;
    std::size_t used_ = 0;
};

}  // namespace faasd::frontend
