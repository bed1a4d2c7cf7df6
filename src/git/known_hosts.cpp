#include <faasd/git/known_hosts.hpp>

#include <faasd/auth/base64.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>

namespace faasd::git {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        std::size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

// OpenSSH's match_pattern: '*' any run, '?' one character.
bool glob(std::string_view p, std::string_view s) {
    std::size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
    while (si < s.size()) {
        if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
            ++pi;
            ++si;
        } else if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*') ++pi;
    return pi == p.size();
}

std::string hmac_sha1(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
             data.size(), out, &len) == nullptr)
        return {};
    return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string known_hosts_name(std::string_view host, int port) {
    if (port <= 0 || port == 22) return lower(host);
    return "[" + lower(host) + "]:" + std::to_string(port);
}

known_hosts known_hosts::parse(std::string_view text) {
    known_hosts kh;
    while (!text.empty()) {
        auto nl = text.find('\n');
        auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        auto f = fields(line);
        if (f.empty() || f[0].front() == '#') continue;
        entry e;
        std::size_t at = 0;
        if (f[0].front() == '@') {
            if (f[0] == "@revoked") {
                e.revoked = true;
            } else {  // @cert-authority (host certificates are not supported), or an unknown marker
                ++kh.skipped_;
                continue;
            }
            at = 1;
        }
        // hosts, key type, base64 key [, comment]
        if (f.size() < at + 3) {
            ++kh.skipped_;
            continue;
        }
        auto key = auth::base64_decode(f[at + 2]);
        if (!key || ssh_key_type(*key) != f[at + 1]) {
            ++kh.skipped_;
            continue;
        }
        e.key = std::move(*key);
        bool ok = true;
        std::string_view hosts = f[at];
        while (ok && !hosts.empty()) {
            auto comma = hosts.find(',');
            auto one = hosts.substr(0, comma);
            hosts = comma == std::string_view::npos ? std::string_view{} : hosts.substr(comma + 1);
            if (one.empty()) continue;
            pattern p;
            if (one.front() == '!') {
                p.negated = true;
                one.remove_prefix(1);
            }
            if (one.starts_with("|1|")) {
                auto rest = one.substr(3);
                auto bar = rest.find('|');
                auto salt = bar == std::string_view::npos ? std::nullopt
                                                          : std::optional(auth::base64_decode(rest.substr(0, bar)));
                auto mac = bar == std::string_view::npos ? std::nullopt
                                                         : std::optional(auth::base64_decode(rest.substr(bar + 1)));
                if (!salt || !*salt || !mac || !*mac || (*mac)->size() != 20) {
                    ok = false;
                    break;
                }
                p.hashed = true;
                p.salt = std::move(**salt);
                p.text = std::move(**mac);
            } else {
                p.text = lower(one);
            }
            e.hosts.push_back(std::move(p));
        }
        if (!ok || e.hosts.empty()) {
            ++kh.skipped_;
            continue;
        }
        kh.entries_.push_back(std::move(e));
    }
    return kh;
}

bool known_hosts::host_matches(const entry& e, const std::string& name) const {
    bool matched = false;
    for (const auto& p : e.hosts) {
        bool hit = p.hashed ? hmac_sha1(p.salt, name) == p.text : glob(p.text, name);
        if (hit && p.negated) return false;  // a negated pattern that matches rules the line out
        if (hit) matched = true;
    }
    return matched;
}

known_hosts::verdict known_hosts::check(std::string_view host, int port, std::string_view key_blob) const {
    const auto name = known_hosts_name(host, port);
    bool host_known = false, key_known = false;
    for (const auto& e : entries_) {
        if (!host_matches(e, name)) continue;
        if (e.revoked) {
            if (e.key == key_blob) return verdict::revoked;
            continue;
        }
        host_known = true;
        if (e.key == key_blob) key_known = true;
    }
    return key_known ? verdict::match : host_known ? verdict::mismatch : verdict::unknown;
}

std::string ssh_key_type(std::string_view blob) {
    if (blob.size() < 4) return {};
    const auto* b = reinterpret_cast<const unsigned char*>(blob.data());
    std::uint32_t n = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
    if (n == 0 || n > 64 || blob.size() < 4 + std::size_t{n}) return {};
    return std::string(blob.substr(4, n));
}

std::string ssh_fingerprint(std::string_view blob) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(blob.data(), blob.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
    auto b64 = auth::base64_encode(std::string_view(reinterpret_cast<const char*>(md), len));
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    return "SHA256:" + b64;
}

}  // namespace faasd::git
