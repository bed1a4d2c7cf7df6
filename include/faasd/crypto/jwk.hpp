#pragma once
// Public keys from JSON Web Keys (RFC 7517/7518) and JWS signature checks.
//
// A JWK set is what the frontend fetches from the issuer's jwks_uri (the HTTP
// part belongs to the frontend): parse it with jwk_set::parse and hand it to a
// crypto::verifier. Only signature keys faasd can use are kept: RSA (2048 to
// 8192 bits) and EC P-256, `use` absent or "sig", `alg` absent or one of
// RS256/PS256/ES256 fitting the key type. Keycloak's encryption key (use "enc",
// RSA-OAEP) is skipped.

#include <faasd/auth/jwt.hpp>
#include <faasd/core/error.hpp>

#include <boost/json/object.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace faasd::crypto {

enum class key_type {
    rsa,       ///< RSA; verifies RS256 and PS256
    ec_p256,   ///< EC on P-256; verifies ES256
};

const char* to_string(key_type t) noexcept;

/// True when keys of type t can produce signatures of alg a.
bool fits(key_type t, auth::jws_alg a) noexcept;

/// An immutable public key with its JWK metadata. Cheap to copy (shared handle);
/// safe to use from several threads at once.
class public_key {
public:
    key_type type() const noexcept { return type_; }
    const std::string& kid() const noexcept { return kid_; }
    /// The JWK's `alg`, when it declared one: then only that alg may use the key.
    std::optional<auth::jws_alg> declared_alg() const noexcept { return alg_; }
    /// Modulus size for RSA, 256 for P-256.
    int bits() const noexcept { return bits_; }
    /// The public JWK (kty, kid, use "sig", alg if declared, n/e or crv/x/y).
    boost::json::object to_jwk() const;
    evp_pkey_st* native_handle() const noexcept { return pkey_.get(); }

    /// Wraps an EVP_PKEY (ownership shared); used by parse_jwk and signing_key.
    public_key(std::shared_ptr<evp_pkey_st> pkey, key_type type, std::string kid, std::optional<auth::jws_alg> alg);

private:
    std::shared_ptr<evp_pkey_st> pkey_;
    key_type type_;
    std::string kid_;
    std::optional<auth::jws_alg> alg_;
    int bits_ = 0;
};

/// Parses one JWK. invalid_argument for anything unusable: `use` other than
/// "sig", `key_ops` without "verify", missing kid, unknown kty/crv/alg, an alg
/// that does not fit the kty, RSA under 2048 or over 8192 bits or with an even
/// or tiny exponent, EC coordinates that are not 32 bytes or not on the curve.
/// When why is given it receives a short explanation.
result<public_key> parse_jwk(const boost::json::object& jwk, std::string* why = nullptr);

/// Public keys by kid. Immutable once built; safe to share between threads.
class jwk_set {
public:
    jwk_set() = default;

    /// Parses a JWKS document ({"keys": [...]}). Keys parse_jwk refuses are
    /// skipped, as are all keys sharing a kid (ambiguous); each skip is described
    /// in *skipped. invalid_argument when the text is not JSON or has no "keys" array.
    static result<jwk_set> parse(std::string_view json, std::vector<std::string>* skipped = nullptr);

    /// Adds or replaces the key with k.kid().
    void add(public_key k);

    /// The key with that kid, or nullptr.
    const public_key* find(std::string_view kid) const noexcept;
    std::size_t size() const noexcept { return keys_.size(); }
    bool empty() const noexcept { return keys_.empty(); }
    std::vector<std::string> kids() const;
    /// {"keys": [...]} with every key's public JWK.
    std::string to_json() const;

private:
    std::map<std::string, public_key, std::less<>> keys_;
};

/// Checks a JWS signature over signing_input with key, using alg, which the
/// caller took from its allow-list (check_header), never from anywhere else.
/// key_mismatch when the key type does not fit alg, or the key declared a
/// different alg; bad_signature when the signature does not verify (including
/// an ES256 signature that is not exactly 64 bytes).
result<void> verify_signature(const public_key& key, auth::jws_alg alg, std::string_view signing_input,
                              std::string_view signature);

/// RFC 7638 thumbprint of a public key: base64url(SHA-256 of the canonical JWK).
std::string jwk_thumbprint(const public_key& key);

}  // namespace faasd::crypto
