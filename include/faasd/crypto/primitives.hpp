#pragma once
// Small OpenSSL-backed building blocks: hashes, MACs, randomness, wiping.
// Bytes travel in std::string. OpenSSL failures (which mean a broken process,
// not bad input) throw std::runtime_error.

#include <string>
#include <string_view>

namespace faasd::crypto {

/// SHA-256 of data: 32 raw bytes.
std::string sha256(std::string_view data);

/// Lower-case hex of SHA-256(data) (64 characters).
std::string sha256_hex(std::string_view data);

/// HMAC-SHA-256(key, data): 32 raw bytes. (Not used to verify tokens: faasd never accepts HS* algorithms.)
std::string hmac_sha256(std::string_view key, std::string_view data);

/// n bytes from OpenSSL's CSPRNG.
std::string random_bytes(std::size_t n);

/// Overwrites the bytes of s (OPENSSL_cleanse, which the compiler cannot elide) and empties it.
void wipe(std::string& s) noexcept;

/// Constant-time comparison of two byte strings (false when the lengths differ).
bool equal_constant_time(std::string_view a, std::string_view b) noexcept;

}  // namespace faasd::crypto
