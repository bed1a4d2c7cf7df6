#include <faasd/auth/base64.hpp>
#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/sealing.hpp>

#include "ossl.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <stdexcept>

namespace faasd::crypto {

namespace {

constexpr std::size_t nonce_bytes = 12;
constexpr std::size_t tag_bytes = 16;
constexpr std::size_t max_plaintext = std::size_t{1} << 30;  // EVP lengths are int

bool valid_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 64) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

key_ring::entry::~entry() { OPENSSL_cleanse(key.data(), key.size()); }

const key_ring::entry* key_ring::find(std::string_view id) const noexcept {
    for (const auto& e : keys_)
        if (e.id == id) return &e;
    return nullptr;
}

bool key_ring::contains(std::string_view id) const noexcept { return find(id) != nullptr; }

std::string key_ring::active_id() const { return keys_.empty() ? std::string() : keys_.front().id; }

std::vector<std::string> key_ring::ids() const {
    std::vector<std::string> out;
    for (const auto& e : keys_) out.push_back(e.id);
    return out;
}

result<void> key_ring::add(std::string_view id, std::string_view key, bool make_active) {
    if (!valid_id(id) || contains(id) || key.size() != key_bytes) return errc::invalid_argument;
    entry e;
    e.id = id;
    std::copy(key.begin(), key.end(), reinterpret_cast<char*>(e.key.data()));
    if (make_active)
        keys_.insert(keys_.begin(), std::move(e));
    else
        keys_.push_back(std::move(e));
    return {};
}

result<key_ring> key_ring::parse(std::string_view spec, std::string* why) {
    auto fail = [&](std::string text) -> result<key_ring> {
        if (why != nullptr) *why = std::move(text);
        return errc::invalid_argument;
    };
    key_ring ring;
    std::size_t index = 0;
    while (true) {
        auto comma = spec.find(',');
        auto item = trim(spec.substr(0, comma));
        ++index;
        auto where = "FAASD_CREDENTIALS_KEYS entry " + std::to_string(index);
        if (item.empty()) return fail(where + " is empty (expected kid:<base64 of 32 bytes>)");
        auto colon = item.find(':');
        if (colon == std::string_view::npos) return fail(where + " has no ':' (expected kid:<base64 of 32 bytes>)");
        auto id = trim(item.substr(0, colon));
        auto b64 = trim(item.substr(colon + 1));
        if (!valid_id(id)) return fail(where + ": key id must be 1-64 characters of A-Z a-z 0-9 . _ -");
        if (ring.contains(id)) return fail(where + ": key id " + std::string(id) + " appears twice");
        auto key = auth::base64_decode(b64);
        if (!key) return fail(where + " (" + std::string(id) + "): the key is not valid base64");
        if (key->size() != key_bytes) {
            auto n = key->size();
            wipe(*key);
            return fail(where + " (" + std::string(id) + "): the key is " + std::to_string(n) +
                        " bytes, AES-256 needs 32 (try: openssl rand -base64 32)");
        }
        (void)ring.add(id, *key);
        wipe(*key);
        if (comma == std::string_view::npos) break;
        spec.remove_prefix(comma + 1);
    }
    return ring;
}

jobs::sealed_credentials seal(const key_ring& ring, std::string_view job_id, std::string_view plaintext) {
    if (ring.empty()) throw std::logic_error("seal: the credentials key ring is empty");
    if (plaintext.size() > max_plaintext || job_id.size() > max_plaintext) throw std::length_error("seal: input too large");
    const auto& key = ring.keys_.front();
    auto nonce = random_bytes(nonce_bytes);

    detail::cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
    if (!ctx) detail::throw_openssl("EVP_CIPHER_CTX_new");
    if (EVP_EncryptInit_ex2(ctx.get(), detail::aes_256_gcm(), key.key.data(), detail::cuc(nonce.data()), nullptr) != 1)
        detail::throw_openssl("EVP_EncryptInit_ex2");
    int len = 0;
    if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, detail::cuc(job_id.data()), static_cast<int>(job_id.size())) != 1)
        detail::throw_openssl("EVP_EncryptUpdate(aad)");
    std::string out(plaintext.size() + tag_bytes, '\0');
    if (EVP_EncryptUpdate(ctx.get(), detail::uc(out.data()), &len, detail::cuc(plaintext.data()),
                          static_cast<int>(plaintext.size())) != 1)
        detail::throw_openssl("EVP_EncryptUpdate");
    int total = len;
    if (EVP_EncryptFinal_ex(ctx.get(), detail::uc(out.data()) + total, &len) != 1)
        detail::throw_openssl("EVP_EncryptFinal_ex");
    total += len;
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_bytes), out.data() + total) != 1)
        detail::throw_openssl("EVP_CTRL_GCM_GET_TAG");
    out.resize(static_cast<std::size_t>(total) + tag_bytes);

    jobs::sealed_credentials sealed;
    sealed.key_id = key.id;
    sealed.nonce_b64 = auth::base64url_encode(nonce);
    sealed.ciphertext_b64 = auth::base64url_encode(out);
    return sealed;
}

result<std::string> open(const key_ring& ring, std::string_view job_id, const jobs::sealed_credentials& sealed) {
    if (sealed.empty()) return std::string();
    const auto* key = ring.find(sealed.key_id);
    if (key == nullptr) return errc::not_found;
    auto nonce = auth::base64url_decode(sealed.nonce_b64);
    auto data = auth::base64url_decode(sealed.ciphertext_b64);
    if (!nonce || !data || nonce->size() != nonce_bytes || data->size() < tag_bytes ||
        data->size() > max_plaintext + tag_bytes || job_id.size() > max_plaintext)
        return errc::bad_message;
    auto ct_len = data->size() - tag_bytes;

    detail::cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
    if (!ctx) detail::throw_openssl("EVP_CIPHER_CTX_new");
    if (EVP_DecryptInit_ex2(ctx.get(), detail::aes_256_gcm(), key->key.data(), detail::cuc(nonce->data()), nullptr) != 1)
        detail::throw_openssl("EVP_DecryptInit_ex2");
    int len = 0;
    if (EVP_DecryptUpdate(ctx.get(), nullptr, &len, detail::cuc(job_id.data()), static_cast<int>(job_id.size())) != 1)
        detail::throw_openssl("EVP_DecryptUpdate(aad)");
    std::string plain(ct_len, '\0');
    if (EVP_DecryptUpdate(ctx.get(), detail::uc(plain.data()), &len, detail::cuc(data->data()),
                          static_cast<int>(ct_len)) != 1)
        detail::throw_openssl("EVP_DecryptUpdate");
    int total = len;
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_bytes), data->data() + ct_len) != 1)
        detail::throw_openssl("EVP_CTRL_GCM_SET_TAG");
    // Nothing decrypted is handed out unless the tag verifies.
    if (EVP_DecryptFinal_ex(ctx.get(), detail::uc(plain.data()) + total, &len) != 1) {
        ERR_clear_error();
        wipe(plain);
        return errc::unauthorized;
    }
    total += len;
    plain.resize(static_cast<std::size_t>(total));
    return plain;
}

std::string generate_key(std::string_view kid) {
    auto key = random_bytes(key_ring::key_bytes);
    auto entry = std::string(kid) + ":" + auth::base64_encode(key);
    wipe(key);
    return entry;
}

}  // namespace faasd::crypto
