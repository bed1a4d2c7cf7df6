#pragma once
// Private OpenSSL helpers: owning holders for C handles and error conversion.

#include <faasd/auth/jwt.hpp>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace faasd::crypto::detail {

template <class T, void (*Free)(T*)>
struct deleter {
    void operator()(T* p) const noexcept { Free(p); }
};

using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, &EVP_PKEY_free>>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, deleter<EVP_PKEY_CTX, &EVP_PKEY_CTX_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, deleter<EVP_MD_CTX, &EVP_MD_CTX_free>>;
using cipher_ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, deleter<EVP_CIPHER_CTX, &EVP_CIPHER_CTX_free>>;
using bn_ptr = std::unique_ptr<BIGNUM, deleter<BIGNUM, &BN_free>>;
using param_bld_ptr = std::unique_ptr<OSSL_PARAM_BLD, deleter<OSSL_PARAM_BLD, &OSSL_PARAM_BLD_free>>;
using params_ptr = std::unique_ptr<OSSL_PARAM, deleter<OSSL_PARAM, &OSSL_PARAM_free>>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, deleter<ECDSA_SIG, &ECDSA_SIG_free>>;

inline unsigned char* uc(char* p) noexcept { return reinterpret_cast<unsigned char*>(p); }
inline const unsigned char* cuc(const char* p) noexcept { return reinterpret_cast<const unsigned char*>(p); }

/// SHA-256 and AES-256-GCM fetched once: OpenSSL 3's implicit fetch (EVP_sha256()
/// passed to EVP_Digest) costs a provider lookup on every call.
const EVP_MD* sha256_md();
const EVP_CIPHER* aes_256_gcm();

/// Throws std::runtime_error naming the call and OpenSSL's first queued error; clears the queue.
[[noreturn]] inline void throw_openssl(const char* what) {
    unsigned long e = ERR_get_error();
    char buf[256] = "no OpenSSL error queued";
    if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    throw std::runtime_error(std::string("OpenSSL ") + what + " failed: " + buf);
}

/// The RSA padding a JWS algorithm uses, on a context from EVP_DigestSignInit_ex or
/// EVP_DigestVerifyInit_ex with SHA-256: PKCS#1 v1.5 for RS256; PSS with MGF1-SHA-256
/// and a digest-sized salt for PS256; nothing for ES256.
inline void set_jws_padding(EVP_PKEY_CTX* pctx, auth::jws_alg alg) {
    if (alg == auth::jws_alg::ps256) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)
            throw_openssl("EVP_PKEY_CTX_set_rsa_pss");
    } else if (alg == auth::jws_alg::rs256) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) throw_openssl("EVP_PKEY_CTX_set_rsa_padding");
    }
}

/// A big-endian unsigned integer as its minimal big-endian bytes (zero -> empty).
inline std::string bn_bytes(const BIGNUM* bn) {
    std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, uc(out.data()));
    return out;
}

/// A big-endian number padded on the left to width bytes.
inline std::string bn_bytes_padded(const BIGNUM* bn, int width) {
    std::string out(static_cast<std::size_t>(width), '\0');
    if (BN_bn2binpad(bn, uc(out.data()), width) != width) throw_openssl("BN_bn2binpad");
    return out;
}

inline bn_ptr bn_from_bytes(std::string_view bytes) {
    bn_ptr bn(BN_bin2bn(cuc(bytes.data()), static_cast<int>(bytes.size()), nullptr));
    if (!bn) throw_openssl("BN_bin2bn");
    return bn;
}

}  // namespace faasd::crypto::detail
