#pragma once
// The frontend role: `faasd frontend` (docs/frontend.md). Composition root:
// builds the Kafka producer and the state-topic consumer, the OIDC key source
// and token verifier, the credential sealer and the HTTP/WebSocket server, and
// wires them to the pure handlers of faasd::frontend.
//
// `faasd dev` and tests run the role in-process through run_frontend.

#include "common/common.hpp"

#include <faasd/frontend/app.hpp>
#include <faasd/runtime/runtime.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace faasd::roles {

/// Every option of `faasd frontend`, with its default. Strings are parsed and
/// checked by validate(); settings() turns them into the handlers' settings.
struct frontend_config {
    // Network.
    std::string listen = "127.0.0.1:8080";        ///< --listen host:port (0.0.0.0 in containers)

    // Authentication.
    std::string oidc_issuer;                       ///< --oidc-issuer (exact iss; discovery base)
    std::string oidc_discovery_url;                ///< --oidc-discovery-url (fetch discovery/JWKS here; default: the issuer)
    std::string oidc_audience = "faas-frontend";   ///< --oidc-audience
    bool oidc_accept_azp = true;                   ///< --oidc-accept-azp: azp may stand in for aud
    std::string oidc_jwks_file;                    ///< --oidc-jwks-file: static JWKS instead of discovery
    std::string allowed_algs = "RS256";            ///< --allowed-algs RS256[,ES256,PS256]
    std::string clock_leeway = "30s";              ///< --clock-leeway
    std::string jwks_refresh_cooldown = "30s";     ///< --jwks-refresh-cooldown (unknown-kid refreshes)
    std::string jwks_max_age = "10m";              ///< --jwks-max-age (periodic refresh)
    std::size_t token_cache_size = 10000;          ///< --token-cache-size (0 disables)

    // Limits.
    std::string max_body = "1MiB";                 ///< --max-body
    std::size_t max_sources = 16;                  ///< --max-sources
    std::size_t max_sinks = 16;                    ///< --max-sinks
    std::size_t max_credentials = 16;              ///< --max-credentials
    std::size_t max_string = 4096;                 ///< --max-string (header/env values, entry args)
    std::size_t max_url = 2048;                    ///< --max-url
    std::string max_data = "512KiB";               ///< --max-data (inline `data`, serialised)
    int min_timeout = 1;                           ///< --min-timeout (seconds)
    int max_timeout = 3600;                        ///< --max-timeout
    int default_timeout = 60;                      ///< --default-timeout
    int max_retries = 10;                          ///< --max-retries
    double rate_limit = 20;                        ///< --rate-limit (submissions/s per user, 0 = off)
    double rate_burst = 50;                        ///< --rate-burst
    std::size_t max_unfinished = 100;              ///< --max-unfinished (queued+running per user)
    std::string repo_schemes = "https,ssh";        ///< --repo-schemes
    bool allow_file_repos = false;                 ///< --allow-file-repos (tests and dev only)
    std::string link_schemes = "https";            ///< --link-schemes (sources and sinks)
    std::string env_allow = "FN_*,LOG_LEVEL,TZ,LANG,LC_ALL";  ///< --env-allow
    std::string max_result = "16KiB";              ///< --max-result (stored result per job; larger ones are capped)
    std::string max_wait = "60s";                  ///< --max-wait (?wait bound)
    std::size_t max_list = 100;                    ///< --max-list (?limit bound)

    // Retention.
    std::string finished_retention = "72h";        ///< --finished-retention (finished jobs are erased this long after they finish)

    // WebSocket.
    std::size_t ws_queue = 256;                    ///< --ws-queue (messages per connection before 1013)
    std::size_t ws_max_subscriptions = 1000;       ///< --ws-max-subscriptions

    // Hidden: benchmark ceiling (GET /v1/bench/hello).
    bool bench_hello = false;                      ///< --bench-hello

    /// The credential key ring "kid:<base64>[,...]". Never an option: read from
    /// FAASD_CREDENTIALS_KEYS by validate() when empty (faasd dev sets it directly).
    std::string credentials_keys;

    /// Checks every value; throws config::config_error naming the option.
    void validate();
    /// The handlers' settings (call after validate()).
    frontend::frontend_settings settings() const;
};

/// Registers every frontend option on app (with help text and default).
void add_frontend_options(CLI::App& app, frontend_config& cfg);

/// Runs the frontend until env.shutdown is requested: serves HTTP and
/// WebSocket on cfg.listen, follows the state topic, and reports readiness
/// (kafka, state, keys) in env.health_state. `on_listening`, if given, is
/// called with the bound port once the server accepts connections.
boost::asio::awaitable<void> run_frontend(frontend_config cfg, runtime::role_env& env, kafka_config kafka,
                                          std::function<void(std::uint16_t)> on_listening = {});

}  // namespace faasd::roles
