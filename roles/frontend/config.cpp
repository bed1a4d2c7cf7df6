// Options of `faasd frontend` and their validation.

#include "frontend/frontend.hpp"

#include <faasd/config/config.hpp>
#include <faasd/crypto/sealing.hpp>

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace faasd::roles {
namespace {

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        auto b = item.find_first_not_of(" \t");
        auto e = item.find_last_not_of(" \t");
        if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    }
    return out;
}

[[noreturn]] void bad(const std::string& option, const std::string& why) {
    throw config::config_error(option + ": " + why);
}

std::uint64_t size_of(const std::string& option, const std::string& v) {
    auto r = config::parse_size(v);
    if (!r) bad(option, "'" + v + "' is not a size (e.g. 1MiB, 512KiB, 4096)");
    return *r;
}

std::chrono::milliseconds duration_of(const std::string& option, const std::string& v) {
    auto r = config::parse_duration(v);
    if (!r) bad(option, "'" + v + "' is not a duration (e.g. 30s, 500ms, 10m)");
    return *r;
}

template <class T, class U>
T or_default(const result<T>& r, U fallback) {
    return r ? *r : T(fallback);
}

}  // namespace

void add_frontend_options(CLI::App& app, frontend_config& c) {
    auto* net = "Network";
    app.add_option("--listen", c.listen, "Address to serve HTTP and WebSocket on, host:port (0.0.0.0 in containers)")
        ->capture_default_str()->group(net);

    auto* auth = "Authentication (Keycloak / OIDC)";
    app.add_option("--oidc-issuer", c.oidc_issuer,
                   "OIDC issuer URL; must equal the tokens' iss exactly. Keys come from "
                   "<issuer>/.well-known/openid-configuration unless --oidc-jwks-file is given (required)")
        ->group(auth);
    app.add_option("--oidc-discovery-url", c.oidc_discovery_url,
                   "Where to fetch the discovery document and the keys from when the issuer's URL is not reachable "
                   "from here (an internal address of the same IdP): the document's URL or its base. The issuer "
                   "in it must still equal --oidc-issuer; a jwks_uri under the issuer is fetched under this base "
                   "too (default: the issuer)")
        ->group(auth);
    app.add_option("--oidc-audience", c.oidc_audience, "Audience (client id) the tokens must be issued for")
        ->capture_default_str()->group(auth);
    app.add_option("--oidc-accept-azp", c.oidc_accept_azp,
                   "Also accept tokens whose azp (instead of aud) is the audience (true|false)")
        ->capture_default_str()->group(auth);
    app.add_option("--oidc-jwks-file", c.oidc_jwks_file,
                   "Static JWKS file to verify tokens with, instead of discovery (faasd dev, tests)")
        ->group(auth);
    app.add_option("--allowed-algs", c.allowed_algs,
                   "Accepted token signature algorithms, comma-separated, from RS256, ES256, PS256")
        ->capture_default_str()->group(auth);
    app.add_option("--clock-leeway", c.clock_leeway, "Clock skew allowed for exp, nbf and iat")
        ->capture_default_str()->group(auth);
    app.add_option("--jwks-refresh-cooldown", c.jwks_refresh_cooldown,
                   "A token key id still unknown after a key-set fetch is not looked up again for this long "
                   "(fetches caused by unknown key ids happen at most once per second, single flight)")
        ->capture_default_str()->group(auth);
    app.add_option("--jwks-max-age", c.jwks_max_age, "Refresh the key set at least this often")
        ->capture_default_str()->group(auth);
    app.add_option("--token-cache-size", c.token_cache_size,
                   "Verified tokens cached (by SHA-256) until they expire; 0 disables the cache")
        ->capture_default_str()->group(auth);

    auto* lim = "Limits";
    app.add_option("--max-body", c.max_body, "Largest request body (413 beyond)")->capture_default_str()->group(lim);
    app.add_option("--max-sources", c.max_sources, "Most sources per job")->capture_default_str()->group(lim);
    app.add_option("--max-sinks", c.max_sinks, "Most sinks per job")->capture_default_str()->group(lim);
    app.add_option("--max-credentials", c.max_credentials, "Most credentials per job")->capture_default_str()->group(lim);
    app.add_option("--max-string", c.max_string,
                   "Longest string in a job (header and env values, entry arguments)")
        ->capture_default_str()->group(lim);
    app.add_option("--max-url", c.max_url, "Longest repository, source or sink URL")->capture_default_str()->group(lim);
    app.add_option("--max-data", c.max_data, "Largest inline `data`, serialised")->capture_default_str()->group(lim);
    app.add_option("--min-timeout", c.min_timeout, "Smallest timeout_s a job may ask for")->capture_default_str()->group(lim);
    app.add_option("--max-timeout", c.max_timeout, "Largest timeout_s a job may ask for")->capture_default_str()->group(lim);
    app.add_option("--default-timeout", c.default_timeout, "timeout_s of jobs that do not say")
        ->capture_default_str()->group(lim);
    app.add_option("--max-retries", c.max_retries, "Largest `retries` a job may ask for")->capture_default_str()->group(lim);
    app.add_option("--rate-limit", c.rate_limit, "Submissions per second per user (token bucket; 0 = unlimited)")
        ->capture_default_str()->group(lim);
    app.add_option("--rate-burst", c.rate_burst, "Burst size of the per-user submission rate limit")
        ->capture_default_str()->group(lim);
    app.add_option("--max-unfinished", c.max_unfinished, "Most queued plus running jobs per user (429 beyond)")
        ->capture_default_str()->group(lim);
    app.add_option("--repo-schemes", c.repo_schemes, "Allowed repository URL schemes, comma-separated (https, ssh, git, http)")
        ->capture_default_str()->group(lim);
    app.add_option("--allow-file-repos", c.allow_file_repos,
                   "Also allow file:// repositories and sources (tests and dev only) (true|false)")
        ->capture_default_str()->group(lim);
    app.add_option("--link-schemes", c.link_schemes, "Allowed source and sink URL schemes, comma-separated (https, http)")
        ->capture_default_str()->group(lim);
    app.add_option("--env-allow", c.env_allow,
                   "Environment variable names a job may set: names or prefixes ending in *, comma-separated")
        ->capture_default_str()->group(lim);
    app.add_option("--max-result", c.max_result,
                   "Stored result per finished job; larger results are capped (output dropped, stdout/stderr "
                   "cut to their ends); the full result stays on the results topic")
        ->capture_default_str()->group(lim);
    app.add_option("--max-wait", c.max_wait, "Longest ?wait of GET /v1/jobs/{id}/result")->capture_default_str()->group(lim);
    app.add_option("--max-list", c.max_list, "Largest ?limit of GET /v1/jobs")->capture_default_str()->group(lim);

    app.add_option("--finished-retention", c.finished_retention,
                   "Finished jobs whose result is never read are erased this long after they finished (every "
                   "replica sweeps; this bounds the job view and the state topic)")
        ->capture_default_str()->group(lim);

    auto* ws = "WebSocket";
    app.add_option("--ws-queue", c.ws_queue, "Messages queued per WebSocket before a slow client is closed (1013)")
        ->capture_default_str()->group(ws);
    app.add_option("--ws-max-subscriptions", c.ws_max_subscriptions, "Job ids one WebSocket may follow")
        ->capture_default_str()->group(ws);

    // Hidden (empty group): the benchmark ceiling.
    app.add_flag("--bench-hello", c.bench_hello, "Serve GET /v1/bench/hello (benchmark ceiling; default off)")->group("");
}

void frontend_config::validate() {
    if (!config::parse_endpoint(listen)) bad("--listen", "'" + listen + "' is not host:port");
    if (oidc_issuer.empty()) bad("--oidc-issuer", "is required (the Keycloak realm URL, e.g. http://127.0.0.1:8180/realms/faas)");
    if (oidc_audience.empty()) bad("--oidc-audience", "must not be empty");
    auto algs = split_list(allowed_algs);
    if (algs.empty()) bad("--allowed-algs", "name at least one of RS256, ES256, PS256");
    for (const auto& a : algs)
        if (a != "RS256" && a != "ES256" && a != "PS256")
            bad("--allowed-algs", "'" + a + "' is not allowed (RS256, ES256, PS256; never none or HS*)");
    auto leeway = duration_of("--clock-leeway", clock_leeway);
    if (leeway > std::chrono::minutes(5)) bad("--clock-leeway", "at most 5m");
    duration_of("--jwks-refresh-cooldown", jwks_refresh_cooldown);
    if (duration_of("--jwks-max-age", jwks_max_age) < std::chrono::seconds(10)) bad("--jwks-max-age", "at least 10s");
    if (size_of("--max-body", max_body) < 1024) bad("--max-body", "at least 1KiB");
    size_of("--max-data", max_data);
    if (size_of("--max-result", max_result) < 1024) bad("--max-result", "at least 1KiB");
    auto wait = duration_of("--max-wait", max_wait);
    if (wait < std::chrono::seconds(0) || wait > std::chrono::minutes(10)) bad("--max-wait", "from 0 to 10m");
    if (max_list < 1 || max_list > 10000) bad("--max-list", "from 1 to 10000");
    if (duration_of("--finished-retention", finished_retention) < std::chrono::seconds(1))
        bad("--finished-retention", "at least 1s");
    if (!oidc_discovery_url.empty() && !oidc_discovery_url.starts_with("http://") &&
        !oidc_discovery_url.starts_with("https://"))
        bad("--oidc-discovery-url", "'" + oidc_discovery_url + "' is not an http(s) URL");
    if (!oidc_discovery_url.empty() && !oidc_jwks_file.empty())
        bad("--oidc-discovery-url", "cannot be used with --oidc-jwks-file");
    if (rate_limit < 0) bad("--rate-limit", "must not be negative");
    if (rate_burst < 1) bad("--rate-burst", "at least 1");
    if (max_unfinished < 1) bad("--max-unfinished", "at least 1");
    if (ws_queue < 4) bad("--ws-queue", "at least 4");
    if (ws_max_subscriptions < 1) bad("--ws-max-subscriptions", "at least 1");
    for (const auto& s : split_list(repo_schemes))
        if (s == "file") bad("--repo-schemes", "file is enabled with --allow-file-repos, not here");
    if (auto why = jobs::check_limits(settings().job)) bad("limits", *why);
    if (!oidc_jwks_file.empty() && !std::filesystem::exists(oidc_jwks_file))
        bad("--oidc-jwks-file", "'" + oidc_jwks_file + "' does not exist");
    // Read once and removed from the environment (and from /proc/<pid>/environ).
    if (auto k = take_secret_env("FAASD_CREDENTIALS_KEYS"); credentials_keys.empty()) credentials_keys = std::move(k);
    if (credentials_keys.empty())
        throw config::config_error(
            "FAASD_CREDENTIALS_KEYS is not set: the frontend needs the credential key ring "
            "(\"kid:<base64 of 32 bytes>[,...]\", e.g. k1:$(head -c 32 /dev/urandom | base64)). It is read from the "
            "environment only, never from a flag or the config file");
    std::string why;
    if (!crypto::key_ring::parse(credentials_keys, &why))
        throw config::config_error("FAASD_CREDENTIALS_KEYS: " + (why.empty() ? std::string("not a key ring") : why) +
                                   " (expected \"kid:<base64 of 32 bytes>[,...]\")");
}

frontend::frontend_settings frontend_config::settings() const {
    frontend::frontend_settings s;
    s.max_body_bytes = or_default(config::parse_size(max_body), 1024 * 1024);
    s.max_unfinished_per_user = max_unfinished;
    s.submit_rate = rate_limit;
    s.submit_burst = rate_burst;
    s.max_list_limit = max_list;
    s.default_list_limit = std::min<std::size_t>(20, max_list);
    s.max_wait = std::chrono::duration_cast<std::chrono::seconds>(or_default(config::parse_duration(max_wait), std::chrono::seconds(60)));
    s.bench_hello = bench_hello;
    s.finished_retention = or_default(config::parse_duration(finished_retention), std::chrono::hours(72));
    auto& j = s.job;
    j.max_sources = max_sources;
    j.max_sinks = max_sinks;
    j.max_credentials = max_credentials;
    j.max_string_length = max_string;
    j.max_url_length = max_url;
    j.max_data_bytes = or_default(config::parse_size(max_data), 512 * 1024);
    j.min_timeout_s = min_timeout;
    j.max_timeout_s = max_timeout;
    j.default_timeout_s = default_timeout;
    j.max_retries = max_retries;
    j.default_retries = std::min(j.default_retries, max_retries);
    j.repo_schemes = split_list(repo_schemes);
    j.link_schemes = split_list(link_schemes);
    if (allow_file_repos) {
        j.repo_schemes.push_back("file");
        j.link_schemes.push_back("file");
    }
    j.env_allow = split_list(env_allow);
    return s;
}

}  // namespace faasd::roles
