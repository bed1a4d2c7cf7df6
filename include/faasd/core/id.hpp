#pragma once
// Job identifiers: 26-character ULIDs (Crockford base32 of a 48-bit Unix
// millisecond timestamp and 80 random bits). They sort by creation time, are
// URL-safe and case-insensitive on input (we always emit upper case).

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace faasd {

inline constexpr std::size_t job_id_length = 26;

/// Pure: encodes a timestamp and 10 random bytes as a ULID.
std::string make_job_id(std::uint64_t unix_ms, const std::array<std::uint8_t, 10>& random) noexcept;

/// Impure convenience: the current time and 80 bits from a CSPRNG-seeded generator.
std::string new_job_id();

/// True when s is a well-formed ULID in canonical (upper-case) form.
bool is_job_id(std::string_view s) noexcept;

/// The millisecond timestamp encoded in a well-formed id (0 if malformed).
std::uint64_t job_id_time_ms(std::string_view id) noexcept;

/// A random hex string of 2*bytes characters (worker ids, instance ids).
std::string random_hex(std::size_t bytes);

}  // namespace faasd
