#pragma once
// Bearer-token authentication against an OIDC issuer (Keycloak), for the
// frontend's authenticator port.
//
// oidc_keys keeps the issuer's signing keys in a crypto::verifier:
//   * from a static JWKS file (faasd dev, tests), or
//   * from discovery: <issuer>/.well-known/openid-configuration (its issuer
//     must equal ours exactly) -> jwks_uri -> JWKS; with a discovery URL the
//     document is fetched there instead (an internal address of the same
//     IdP), its issuer is still checked against ours, and a jwks_uri under
//     the issuer is fetched under the discovery URL's base as well;
//   * refreshed every max_age, and once more when a token names an unknown
//     kid (key rotation): single flight (concurrent callers share one fetch),
//     at most one fetch per min_interval (1 s; callers wait for it rather
//     than fail), and a kid still unknown after a fetch is not looked up
//     again for `cooldown` (a flood of tokens with made-up kids costs at most
//     one fetch per second, and a replayed bad kid none);
//   * a failed fetch keeps the keys already loaded (Keycloak briefly down
//     does not log anybody out).
//
// oidc_authenticator verifies with the cached keys (and the verified-token
// cache inside crypto::verifier) and maps principals to callers. Loop-thread
// only (the verifier itself is thread-safe).

#include <faasd/core/log.hpp>
#include <faasd/crypto/verifier.hpp>
#include <faasd/frontend/ports.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace faasd::frontend {

/// GETs a URL and returns the body of a 200 answer; errc::unavailable otherwise.
using fetch_fn = std::function<boost::asio::awaitable<result<std::string>>(std::string url)>;

/// Counters for metrics.
struct oidc_stats {
    std::uint64_t refreshes_ok = 0;
    std::uint64_t refreshes_failed = 0;
    std::uint64_t refreshes_skipped = 0;  ///< unknown-kid refreshes refused by the cooldown
    std::uint64_t keys = 0;               ///< keys in the current set
};

class oidc_keys {
public:
    struct options {
        std::string issuer;     ///< exact iss; discovery base unless discovery_url is set
        /// Where to fetch discovery and keys from when the issuer's public URL
        /// is not reachable from here: the discovery document's URL, or the
        /// base it sits under (".../.well-known/openid-configuration" is added).
        std::string discovery_url;
        std::string jwks_file;  ///< static keys instead of discovery (no refreshes then)
        std::chrono::milliseconds cooldown{std::chrono::seconds(30)};      ///< negative cache of unknown kids
        std::chrono::milliseconds min_interval{std::chrono::seconds(1)};   ///< between two fetches (capped at cooldown)
        std::chrono::milliseconds max_age{std::chrono::minutes(10)};
    };

    oidc_keys(boost::asio::any_io_executor ex, options opts, fetch_fn fetch, crypto::verifier& verifier,
              faasd::logger log);

    /// Loads the keys (file, or discovery + JWKS). True when a non-empty key
    /// set is installed; on failure the previous keys stay.
    boost::asio::awaitable<bool> refresh();

    /// For a token whose kid is not in the key set: joins a refresh under
    /// way, or starts one (waiting out min_interval since the last one),
    /// unless this kid was already looked up in vain less than `cooldown` ago.
    boost::asio::awaitable<void> refresh_for_unknown_kid(std::string kid);

    /// Refreshes every max_age (retrying every cooldown while no keys are
    /// loaded) until cancelled. `on_change(loaded)` is called after each attempt.
    boost::asio::awaitable<void> run(std::function<void(bool loaded)> on_change);

    bool loaded() const noexcept { return loaded_; }
    const oidc_stats& stats() const noexcept { return stats_; }

private:
    boost::asio::awaitable<bool> fetch_and_install();

    boost::asio::any_io_executor ex_;
    options opts_;
    fetch_fn fetch_;
    crypto::verifier& verifier_;
    faasd::logger log_;
    bool loaded_ = false;
    std::map<std::string, std::chrono::steady_clock::time_point> unknown_kids_;  // bounded
    bool in_flight_ = false;
    std::optional<std::chrono::steady_clock::time_point> last_attempt_;
    boost::asio::steady_timer done_;  // cancelled when a refresh finishes
    oidc_stats stats_;
};

/// The authenticator port over oidc_keys + crypto::verifier.
class oidc_authenticator : public authenticator {
public:
    /// `on_reject(reason)` is called for every refused token (metrics, logs).
    oidc_authenticator(crypto::verifier& verifier, oidc_keys& keys, const clock& clk,
                       std::function<void(std::string_view reason)> on_reject = {});

    boost::asio::awaitable<result<caller>> authenticate(std::string_view token) override;

private:
    crypto::verifier& verifier_;
    oidc_keys& keys_;
    const clock& clk_;
    std::function<void(std::string_view)> on_reject_;
};

/// The caller of a verified principal.
caller caller_from(const auth::principal& p);

/// Where oidc_keys fetches from: the discovery document's URL, and the base
/// that replaces the issuer in a jwks_uri under the issuer ("" when the
/// jwks_uri is used as it is).
struct oidc_fetch_plan {
    std::string discovery;
    std::string rebase;
};
oidc_fetch_plan plan_oidc_fetch(std::string_view issuer, std::string_view discovery_url);
/// The URL to fetch a discovery document's jwks_uri from under `plan`.
std::string jwks_fetch_url(const oidc_fetch_plan& plan, std::string_view issuer, std::string_view jwks_uri);

}  // namespace faasd::frontend
