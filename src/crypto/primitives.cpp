#include <faasd/crypto/primitives.hpp>

#include "ossl.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>

namespace faasd::crypto {

namespace detail {

const EVP_MD* sha256_md() {
    static const EVP_MD* md = [] {
        auto* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        if (m == nullptr) throw_openssl("EVP_MD_fetch(SHA256)");
        return m;
    }();
    return md;
}

const EVP_CIPHER* aes_256_gcm() {
    static const EVP_CIPHER* cipher = [] {
        auto* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
        if (c == nullptr) throw_openssl("EVP_CIPHER_fetch(AES-256-GCM)");
        return c;
    }();
    return cipher;
}

}  // namespace detail

std::string sha256(std::string_view data) {
    std::string out(SHA256_DIGEST_LENGTH, '\0');
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), detail::uc(out.data()), &len, detail::sha256_md(), nullptr) != 1)
        detail::throw_openssl("EVP_Digest");
    return out;
}

std::string sha256_hex(std::string_view data) {
    static constexpr char digits[] = "0123456789abcdef";
    auto raw = sha256(data);
    std::string out;
    out.reserve(raw.size() * 2);
    for (unsigned char c : raw) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    std::string out(EVP_MAX_MD_SIZE, '\0');
    unsigned int len = 0;
    if (HMAC(detail::sha256_md(), key.data(), static_cast<int>(key.size()), detail::cuc(data.data()), data.size(),
             detail::uc(out.data()), &len) == nullptr)
        detail::throw_openssl("HMAC");
    out.resize(len);
    return out;
}

std::string random_bytes(std::size_t n) {
    std::string out(n, '\0');
    if (n > 0 && RAND_bytes(detail::uc(out.data()), static_cast<int>(n)) != 1) detail::throw_openssl("RAND_bytes");
    return out;
}

void wipe(std::string& s) noexcept {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    s.clear();
}

bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace faasd::crypto
