#include <faasd/git/url.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace faasd::git {
namespace {

constexpr std::array known_schemes{"https", "http", "git", "ssh", "file"};

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::uint16_t default_port(std::string_view scheme) {
    if (scheme == "https") return 443;
    if (scheme == "http") return 80;
    if (scheme == "ssh") return 22;
    if (scheme == "git") return 9418;
    return 0;
}

// "/a//b/c.git/" -> "/a/b/c"
std::string normalize_path(std::string_view p) {
    std::string out;
    out.reserve(p.size() + 1);
    for (char c : p) {
        if (c == '/' && !out.empty() && out.back() == '/') continue;
        out.push_back(c);
    }
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    if (out.size() > 4 && out.ends_with(".git")) out.resize(out.size() - 4);
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
    return out;
}

bool has_control_or_space(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

void finish(repo_url& u) {
    // append(), not operator+: GCC 12 -O2 warns falsely (-Wrestrict) about the latter.
    u.normalized.clear();
    u.normalized.append(u.scheme).append("://").append(u.host);
    if (u.port != 0) u.normalized.append(":").append(std::to_string(u.port));
    u.normalized.append(normalize_path(u.path));
}

result<repo_url> parse_scp_like(std::string_view s) {
    // [user@]host:path  (no scheme, ':' before the first '/')
    auto colon = s.find(':');
    repo_url u;
    u.scheme = "ssh";
    auto hostpart = s.substr(0, colon);
    auto path = s.substr(colon + 1);
    if (auto at = hostpart.find('@'); at != std::string_view::npos) {
        u.user = std::string(hostpart.substr(0, at));
        hostpart = hostpart.substr(at + 1);
    }
    if (hostpart.empty() || path.empty() || hostpart.find_first_of("/@[]") != std::string_view::npos)
        return errc::invalid_argument;
    u.host = lower(hostpart);
    if (path.front() != '/') u.path.push_back('/');
    u.path.append(path);
    u.fetch_url = std::string(s);
    finish(u);
    return u;
}

}  // namespace

bool is_known_scheme(std::string_view scheme) noexcept {
    return std::find(known_schemes.begin(), known_schemes.end(), scheme) != known_schemes.end();
}

result<repo_url> parse_repo_url(std::string_view s) {
    if (s.empty() || s.size() > 4096 || has_control_or_space(s)) return errc::invalid_argument;
    if (s.front() == '/') {
        repo_url u;
        u.scheme = "file";
        u.path = std::string(s);
        u.fetch_url = "file://" + u.path;
        finish(u);
        return u;
    }
    auto scheme_end = s.find("://");
    if (scheme_end == std::string_view::npos) {
        auto colon = s.find(':');
        auto slash = s.find('/');
        if (colon != std::string_view::npos && colon > 0 && (slash == std::string_view::npos || colon < slash))
            return parse_scp_like(s);
        return errc::invalid_argument;
    }
    auto parsed = boost::urls::parse_uri(boost::core::string_view(s.data(), s.size()));
    if (!parsed) return errc::invalid_argument;
    const boost::urls::url_view& v = *parsed;
    repo_url u;
    u.scheme = lower(std::string_view(v.scheme().data(), v.scheme().size()));
    if (!is_known_scheme(u.scheme)) return errc::invalid_argument;
    if (v.has_password()) return errc::invalid_argument;
    if (v.has_query() || v.has_fragment()) return errc::invalid_argument;
    u.user = std::string(v.user());
    u.host = lower(std::string_view(v.encoded_host().data(), v.encoded_host().size()));
    if (v.has_port()) {
        auto ps = v.port();
        unsigned port = 0;
        auto r = std::from_chars(ps.data(), ps.data() + ps.size(), port);
        if (r.ec != std::errc{} || r.ptr != ps.data() + ps.size() || port == 0 || port > 65535)
            return errc::invalid_argument;
        u.port = port == default_port(u.scheme) ? 0 : static_cast<std::uint16_t>(port);
    }
    u.path = std::string(v.encoded_path());
    if (u.scheme == "file") {
        if (!u.host.empty() && u.host != "localhost") return errc::invalid_argument;
        u.host.clear();
        if (u.path.empty() || u.path == "/") return errc::invalid_argument;
    } else {
        if (u.host.empty()) return errc::invalid_argument;
        if (u.path.empty() || u.path == "/") return errc::invalid_argument;
    }
    if (u.scheme == "file" || u.scheme == "git" || u.scheme == "ssh") {
        // libgit2 does not percent-decode these paths; keep them as given.
        if (u.path.find('%') != std::string::npos) return errc::invalid_argument;
    }
    u.fetch_url = std::string(s);
    finish(u);
    return u;
}

std::string cache_key(const repo_url& url, std::string_view scope) {
    std::string readable;
    auto append = [&](std::string_view part) {
        for (char c : part) {
            auto uc = static_cast<unsigned char>(c);
            char out = std::isalnum(uc) ? static_cast<char>(std::tolower(uc)) : (c == '.' || c == '-') ? c : '_';
            if (out == '_' && !readable.empty() && readable.back() == '_') continue;
            readable.push_back(out);
        }
    };
    append(url.host.empty() ? url.scheme : url.host);
    append("_");
    append(normalize_path(url.path).substr(1));
    while (!readable.empty() && (readable.back() == '_' || readable.back() == '.')) readable.pop_back();
    if (readable.size() > 64) readable.erase(0, readable.size() - 64);
    while (!readable.empty() && (readable.front() == '.' || readable.front() == '_' || readable.front() == '-'))
        readable.erase(0, 1);

    std::string material = url.normalized;
    material.push_back('\0');
    material.append(scope);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(material.data(), material.size(), digest, &len, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string h;
    for (int i = 0; i < 8; ++i) {
        h.push_back(hex[digest[i] >> 4]);
        h.push_back(hex[digest[i] & 15]);
    }
    return readable.empty() ? h : readable + "-" + h;
}

scheme_policy::scheme_policy() : allowed_{"https", "ssh", "git"} {}

scheme_policy::scheme_policy(std::vector<std::string> allowed) : allowed_(std::move(allowed)) {}

scheme_policy scheme_policy::development() { return scheme_policy({"https", "ssh", "git", "http", "file"}); }

result<scheme_policy> scheme_policy::parse(std::string_view list) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= list.size()) {
        auto comma = list.find(',', pos);
        auto item = list.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        auto name = lower(item);
        if (!is_known_scheme(name)) return errc::invalid_argument;
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    if (out.empty()) return errc::invalid_argument;
    return scheme_policy(std::move(out));
}

bool scheme_policy::allows(std::string_view scheme) const noexcept {
    return std::find(allowed_.begin(), allowed_.end(), scheme) != allowed_.end();
}

std::string scheme_policy::to_string() const {
    std::string s;
    for (const auto& a : allowed_) {
        if (!s.empty()) s += ",";
        s += a;
    }
    return s;
}

}  // namespace faasd::git
