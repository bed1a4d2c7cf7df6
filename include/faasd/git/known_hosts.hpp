#pragma once
// SSH host keys the worker trusts: an OpenSSH known_hosts file (sshd(8),
// "SSH_KNOWN_HOSTS FILE FORMAT"), read once at start-up and consulted by the
// repository cache when an ssh:// remote presents its host key.
//
// Supported: plain host patterns with `*` and `?` wildcards and `!` negation,
// `[host]:port` for ports other than 22, hashed names (`|1|salt|hmac`, as
// `ssh-keygen -H` writes them) and `@revoked` lines. `@cert-authority` lines
// are skipped (host certificates are not supported), as are lines that do not
// parse (counted). Keys are compared as the SSH wire-format blob the file
// carries in base64, which is what libssh2 hands over.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::git {

class known_hosts {
public:
    enum class verdict {
        match,     ///< a line for this host carries this key
        revoked,   ///< an @revoked line for this host carries this key
        mismatch,  ///< lines for this host exist, none with this key (the key changed, or someone is in between)
        unknown,   ///< no line for this host
    };

    /// Parses the file's text; never throws on bad lines (see skipped()).
    static known_hosts parse(std::string_view text);

    /// `host` as in the repository URL (a name or an address, no brackets), `port` its port,
    /// `key_blob` the raw key (SSH wire format).
    verdict check(std::string_view host, int port, std::string_view key_blob) const;

    std::size_t size() const noexcept { return entries_.size(); }
    std::size_t skipped() const noexcept { return skipped_; }

private:
    struct pattern {
        bool negated = false;
        bool hashed = false;
        std::string text;  ///< lower-case pattern, or the HMAC-SHA1 for hashed names
        std::string salt;  ///< hashed names only
    };
    struct entry {
        bool revoked = false;
        std::vector<pattern> hosts;
        std::string key;  ///< decoded blob
    };
    bool host_matches(const entry& e, const std::string& name) const;

    std::vector<entry> entries_;
    std::size_t skipped_ = 0;
};

/// The key's type as its blob names it ("ssh-ed25519", "ssh-rsa", ...), or "" if the blob is malformed.
std::string ssh_key_type(std::string_view key_blob);

/// "SHA256:<unpadded base64>", as `ssh-keygen -l` prints fingerprints.
std::string ssh_fingerprint(std::string_view key_blob);

/// The host as known_hosts writes it: "host" on port 22, "[host]:port" otherwise (lower case).
std::string known_hosts_name(std::string_view host, int port);

}  // namespace faasd::git
