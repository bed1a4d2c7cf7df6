#pragma once
// Token signing for the development identity provider of `faasd dev` (and for
// tests). Production tokens come from Keycloak; nothing in the frontend signs.
//
// WARNING (docs/security.md): the dev IdP mints a token for any user name it is
// asked for, admin included. It exists for a laptop; never point a production
// frontend at its JWKS.

#include <faasd/auth/jwt.hpp>
#include <faasd/core/error.hpp>
#include <faasd/crypto/jwk.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct evp_pkey_st;

namespace faasd::crypto {

/// A private signing key with its kid (the RFC 7638 thumbprint of its public
/// half). Cheap to copy; safe to use from several threads at once.
class signing_key {
public:
    /// A fresh RSA-2048 or EC P-256 key from OpenSSL's CSPRNG.
    static signing_key generate(key_type type = key_type::rsa);

    /// Loads a PEM private key (PKCS#8 or traditional): invalid_argument unless it
    /// is RSA of 2048..8192 bits or EC P-256.
    static result<signing_key> from_pem(std::string_view pem);

    /// The private key as unencrypted PKCS#8 PEM. Handle as a secret.
    std::string to_pem() const;

    key_type type() const noexcept { return type_; }
    /// RS256 for RSA keys, ES256 for EC keys.
    auth::jws_alg default_alg() const noexcept;
    const std::string& kid() const noexcept { return kid_; }
    /// The public half, declaring default_alg() (as Keycloak's JWKS does).
    const public_key& verification_key() const noexcept { return public_; }
    /// {"keys": [public JWK]}: what the dev IdP serves at its jwks_uri.
    std::string jwks_json() const;

    /// A JOSE signature of signing_input with alg (RS256/PS256 need an RSA key,
    /// ES256 an EC key: std::invalid_argument otherwise). ES256 gives r||s.
    std::string sign(std::string_view signing_input, auth::jws_alg alg) const;
    std::string sign(std::string_view signing_input) const { return sign(signing_input, default_alg()); }

private:
    signing_key(std::shared_ptr<evp_pkey_st> pkey, key_type type);

    std::shared_ptr<evp_pkey_st> pkey_;
    key_type type_;
    std::string kid_;
    public_key public_;
};

/// Builds and signs a compact JWS. The header is {"alg", "typ": "JWT", "kid"}
/// and then every member of extra_header (which may override those three:
/// tests forge headers this way); the signature always uses alg, or the key's
/// default_alg() when alg is nullopt.
std::string sign_jwt(const signing_key& key, const boost::json::object& claims,
                     const boost::json::object& extra_header = {}, std::optional<auth::jws_alg> alg = std::nullopt);

/// The claims of an access token shaped like Keycloak's.
struct access_token_request {
    std::string issuer;                        ///< `iss`
    std::string audience = "faas-frontend";    ///< `aud`
    std::string client_id = "faas-cli";        ///< `azp`
    std::string subject;                       ///< `sub`
    std::string username;                      ///< `preferred_username`
    std::string email;                         ///< `email` (omitted when empty)
    std::vector<std::string> roles;            ///< `realm_access.roles`
    std::chrono::sys_seconds issued_at{};      ///< `iat` (and `auth_time`)
    std::chrono::seconds lifetime{std::chrono::hours(1)};  ///< `exp` = iat + lifetime
};

/// Signs an access token: iss, aud, azp, sub, preferred_username, email,
/// realm_access.roles, scope, typ "Bearer", iat, exp and a random jti.
std::string mint_access_token(const signing_key& key, const access_token_request& req);

/// A dev user: sub is a stable UUID derived from the name, email is
/// <name>@faasd.dev.invalid, roles are faas-user (and faas-admin when admin).
access_token_request dev_user(std::string_view username, bool admin, std::string issuer,
                              std::chrono::sys_seconds now);

/// The dev IdP key in state_dir/dev-idp-key.pem: loaded when present, otherwise
/// generated and written with mode 0600 (state_dir is created 0700). Two
/// processes racing here end up with the same key. Throws std::runtime_error
/// for I/O failures, an unreadable key, or a key file readable by group or others.
signing_key load_or_create_signing_key(const std::filesystem::path& state_dir, key_type type = key_type::rsa);

}  // namespace faasd::crypto
