#pragma once
// Base64 (RFC 4648 section 4) and base64url (section 5) for JWTs, JWKs, sealed
// credentials and key rings. Pure; bytes travel in std::string.
//
// Decoding is strict, so that one byte string has exactly one accepted text
// (no signature malleability through alternative encodings): characters outside
// the alphabet, whitespace, a length of 4k+1 and non-zero unused trailing bits
// are all errc::invalid_argument.

#include <faasd/core/error.hpp>

#include <string>
#include <string_view>

namespace faasd::auth {

/// Standard alphabet (+/), padded with '='.
std::string base64_encode(std::string_view bytes);

/// URL-safe alphabet (-_), no padding (JWS compact serialisation).
std::string base64url_encode(std::string_view bytes);

/// Standard alphabet; the '=' padding may be present (then it must be correct) or absent.
result<std::string> base64_decode(std::string_view text);

/// URL-safe alphabet without padding ('=' is rejected, as RFC 7515 requires).
result<std::string> base64url_decode(std::string_view text);

}  // namespace faasd::auth
