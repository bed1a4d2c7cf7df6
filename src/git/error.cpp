#include <faasd/git/error.hpp>

#include <git2/errors.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace faasd::git {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "faasd.git"; }
    std::string message(int ev) const override { return to_string(static_cast<git_errc>(ev)); }
};

bool contains_any(const std::string& haystack, std::initializer_list<std::string_view> needles) {
    return std::any_of(needles.begin(), needles.end(),
                       [&](std::string_view n) { return haystack.find(n) != std::string::npos; });
}

}  // namespace

const boost::system::error_category& git_category() noexcept {
    static const category instance;
    return instance;
}

const char* to_string(git_errc e) noexcept {
    switch (e) {
        case git_errc::repo_not_found: return "repo_not_found";
        case git_errc::ref_not_found: return "ref_not_found";
        case git_errc::auth_failed: return "auth_failed";
        case git_errc::clone_failed: return "clone_failed";
        case git_errc::scheme_not_allowed: return "scheme_not_allowed";
        case git_errc::network_error: return "network_error";
        case git_errc::cancelled: return "cancelled";
        case git_errc::invalid_url: return "invalid_url";
        case git_errc::host_key_rejected: return "host_key_rejected";
    }
    return "clone_failed";
}

bool is_retryable(git_errc e) noexcept { return e == git_errc::network_error; }

git_errc classify(const libgit2_failure& f, git_stage stage, bool cancelled) noexcept {
    if (cancelled) return git_errc::cancelled;
    std::string msg = f.message;
    std::transform(msg.begin(), msg.end(), msg.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });

    switch (stage) {
        case git_stage::resolve:
            if (f.code == GIT_ENOTFOUND || f.code == GIT_EINVALIDSPEC || f.code == GIT_EAMBIGUOUS ||
                f.code == GIT_EPEEL || f.code == GIT_EUNBORNBRANCH)
                return git_errc::ref_not_found;
            return git_errc::clone_failed;
        case git_stage::checkout:
        case git_stage::local:
            return git_errc::clone_failed;
        case git_stage::fetch:
            break;
    }

    // The SSH host key check (on_certificate) refused the server before anything was sent.
    if (f.code == GIT_ECERTIFICATE && f.klass == GIT_ERROR_SSH) return git_errc::host_key_rejected;
    // Order matters: a missing repository is often reported through an
    // authentication or transport message, so look for it first.
    if (contains_any(msg, {"repository not found", "could not find repository", "not a git repository",
                           "does not appear to be a git repository", "not exported", "no such repository",
                           "status code: 404", "404 not found", "repository does not exist",
                           "failed to resolve path"}))
        return git_errc::repo_not_found;
    if (f.code == GIT_EAUTH ||
        contains_any(msg, {"authentication", "status code: 401", "status code: 403", "credentials",
                           "permission denied", "publickey", "unauthorized"}))
        return git_errc::auth_failed;
    if (f.code == GIT_ENOTFOUND && (f.klass == GIT_ERROR_REPOSITORY || f.klass == GIT_ERROR_OS))
        return git_errc::repo_not_found;
    if (f.code == GIT_ECERTIFICATE) return git_errc::clone_failed;
    if (contains_any(msg, {"failed to connect", "connection refused", "could not connect", "connection reset",
                           "connection timed out", "timed out", "failed to resolve", "could not resolve",
                           "name or service not known", "temporary failure in name resolution",
                           "network is unreachable", "no route to host", "early eof", "unexpected eof",
                           "broken pipe", "unexpected disconnect", "connection closed", "ssl error", "handshake",
                           "status code: 429", "status code: 500", "status code: 502", "status code: 503",
                           "status code: 504", "failed to send request", "failed to receive", "error reading",
                           "error sending", "socket"}))
        return git_errc::network_error;
    if (f.klass == GIT_ERROR_NET || f.klass == GIT_ERROR_SSL || f.klass == GIT_ERROR_HTTP)
        return git_errc::network_error;
    return git_errc::clone_failed;
}

std::optional<std::chrono::milliseconds> backoff_delay(const retry_policy& p, int next_attempt,
                                                       double jitter) noexcept {
    if (next_attempt < 2 || next_attempt > p.attempts) return std::nullopt;
    auto base = p.initial_backoff.count();
    for (int i = 2; i < next_attempt && base < p.max_backoff.count(); ++i) base *= 2;
    base = std::min<std::int64_t>(base, p.max_backoff.count());
    jitter = std::clamp(jitter, 0.0, 0.999);
    auto extra = static_cast<std::int64_t>(static_cast<double>(base) * 0.25 * jitter);
    return std::chrono::milliseconds(base + extra);
}

}  // namespace faasd::git
