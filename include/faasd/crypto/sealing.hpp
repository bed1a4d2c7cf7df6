#pragma once
// Credential sealing (docs/architecture.md "Credentials", docs/security.md).
//
// The frontend seals a job's credentials object with AES-256-GCM under the
// active key of a key ring, with a fresh random 96-bit nonce and the job id as
// associated data; only the worker opens it, just before the run. A ciphertext
// copied into another job does not open, and any change to key id, nonce,
// ciphertext or tag is detected.
//
// The key ring comes from FAASD_CREDENTIALS_KEYS:
//
//   FAASD_CREDENTIALS_KEYS="k2:<base64 of 32 bytes>,k1:<base64 of 32 bytes>"
//
// The first key seals; every key opens. Rotation: put a new key first, keep the
// old ones until no sealed job that used them can still run, then drop them.

#include <faasd/core/error.hpp>
#include <faasd/jobs/model.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::crypto {

/// AES-256-GCM keys by id. The key bytes are wiped when the ring (or a copy) is
/// destroyed, and nothing in this class prints them. Not thread-safe to modify;
/// const use from several threads is fine.
class key_ring {
public:
    static constexpr std::size_t key_bytes = 32;

    /// Parses "kid:<base64>[,kid:<base64>...]" (spaces around entries ignored;
    /// standard base64, padding optional). invalid_argument for an empty ring,
    /// an entry without ':', an empty or duplicate kid, a kid with characters
    /// other than [A-Za-z0-9._-] or longer than 64, bad base64, or a key that is
    /// not 32 bytes; *why then names the entry (never the key material).
    static result<key_ring> parse(std::string_view spec, std::string* why = nullptr);

    /// Adds a key (invalid_argument for a bad or duplicate id, or a key that is
    /// not 32 bytes). make_active puts it first, so it seals from now on.
    result<void> add(std::string_view id, std::string_view key, bool make_active = false);

    bool empty() const noexcept { return keys_.empty(); }
    std::size_t size() const noexcept { return keys_.size(); }
    bool contains(std::string_view id) const noexcept;
    /// The sealing key's id; empty for an empty ring.
    std::string active_id() const;
    /// Ids in ring order (the active one first).
    std::vector<std::string> ids() const;

private:
    struct entry {
        std::string id;
        std::array<unsigned char, key_bytes> key{};
        entry() = default;
        entry(const entry&) = default;
        entry& operator=(const entry&) = default;
        ~entry();
    };
    const entry* find(std::string_view id) const noexcept;

    std::vector<entry> keys_;  // keys_[0] seals

    friend jobs::sealed_credentials seal(const key_ring&, std::string_view, std::string_view);
    friend result<std::string> open(const key_ring&, std::string_view, const jobs::sealed_credentials&);
};

/// Encrypts plaintext (the credentials JSON object) for job_id under the active
/// key. `names` of the result is left empty for the caller to fill. Throws
/// std::logic_error for an empty ring (a configuration bug caught at start-up).
jobs::sealed_credentials seal(const key_ring& ring, std::string_view job_id, std::string_view plaintext);

/// Decrypts what seal produced for the same job_id. An empty sealed value
/// (no credentials) opens to "". Errors: not_found for a key id the ring lacks;
/// bad_message for a nonce that is not 12 bytes, or base64 or lengths that do not
/// fit; unauthorized when authentication fails (wrong job id, wrong key, or any
/// tampering). Wipe the result (crypto::wipe) once it has been used.
result<std::string> open(const key_ring& ring, std::string_view job_id, const jobs::sealed_credentials& sealed);

/// A new key ring entry "<kid>:<base64 of 32 random bytes>" for FAASD_CREDENTIALS_KEYS.
std::string generate_key(std::string_view kid = "k1");

}  // namespace faasd::crypto
