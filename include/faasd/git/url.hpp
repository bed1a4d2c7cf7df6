#pragma once
// Repository URLs (pure): parsing, normalisation into a cache key, and the
// scheme allow-list. No libgit2 and no I/O here.

#include <faasd/core/error.hpp>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::git {

/// A parsed repository URL. Accepted forms:
///   https://host[:port]/path, http://..., git://host[:port]/path,
///   ssh://[user@]host[:port]/path, user@host:path (scp-like, becomes ssh),
///   file:///abs/path and a bare absolute path /abs/path (becomes file).
/// A password in the URL (https://user:secret@host/...) is rejected: secrets
/// come from the job's credentials, never from the URL (URLs are logged).
struct repo_url {
    std::string scheme;      ///< "https", "http", "git", "ssh" or "file" (lower case)
    std::string user;        ///< user name from the URL (ssh "git"), may be empty
    std::string host;        ///< lower case; empty for file
    std::uint16_t port = 0;  ///< 0 when absent or equal to the scheme's default
    std::string path;        ///< "/owner/repo.git" as given (for fetching)
    std::string fetch_url;   ///< what is handed to libgit2 (scp form rewritten to ssh://)
    std::string normalized;  ///< scheme://host[:port]/path without user, trailing "/" or ".git"
};

/// Parses and normalises a repository URL. errc::invalid_argument when it is
/// malformed, has an unknown scheme, or carries a password.
result<repo_url> parse_repo_url(std::string_view url);

/// A file-system-safe cache key for a normalised URL plus an optional scope
/// (e.g. a credential fingerprint): a readable prefix ("host_owner_repo", at
/// most 64 characters of [a-z0-9._-]) and 16 hex digits of SHA-256 of
/// normalized + '\0' + scope.
std::string cache_key(const repo_url& url, std::string_view scope = {});

/// Which URL schemes jobs may use.
class scheme_policy {
public:
    /// https, ssh and git. http and file must be enabled explicitly.
    scheme_policy();
    explicit scheme_policy(std::vector<std::string> allowed);
    /// Production defaults plus http and file (tests and `faasd dev`).
    static scheme_policy development();

    /// Parses "https,ssh,git" (comma separated, case-insensitive). invalid_argument
    /// for an unknown scheme or an empty list.
    static result<scheme_policy> parse(std::string_view list);

    bool allows(std::string_view scheme) const noexcept;
    const std::vector<std::string>& allowed() const noexcept { return allowed_; }
    std::string to_string() const;

private:
    std::vector<std::string> allowed_;
};

/// True for the schemes this module can fetch from.
bool is_known_scheme(std::string_view scheme) noexcept;

}  // namespace faasd::git
