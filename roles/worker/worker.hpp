#pragma once
// The worker role: `faasd worker` (docs/worker.md). Composition root: builds
// the repository cache, the sandbox runner, the credential key ring and the
// data transfer client, and runs faasd::worker::service on Kafka.
//
// `faasd dev` and the observer's local supervisor run workers in-process
// through run_worker (each with its own role_env shutdown signal).

#include "common/common.hpp"

#include <faasd/git/cache.hpp>
#include <faasd/runtime/runtime.hpp>
#include <faasd/sandbox/runner.hpp>
#include <faasd/worker/service.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace faasd::roles {

/// Every option of `faasd worker`, with its default. Durations and sizes are
/// strings ("30s", "512MiB"), checked by validate().
struct worker_config {
    // Capacity and identity.
    int slots = 2;                                   ///< --slots: jobs run at once
    int prefetch = 0;                                ///< --prefetch: messages waiting for a slot (0: max(4 x slots, 16))
    std::string worker_id;                           ///< --worker-id (default: "w-" + 12 random hex digits)
    std::string group;                               ///< --group (default: <topic prefix>workers)

    // Repositories.
    std::string cache_dir = "/var/tmp/faasd/repos";  ///< --cache-dir: bare mirrors (shared by workers of a host)
    std::string cache_max_size = "4GiB";             ///< --cache-max-size: LRU eviction above this
    std::string fetch_staleness = "60s";             ///< --fetch-staleness: branch/tag freshness bound
    std::string allowed_schemes = "https,ssh";       ///< --allowed-schemes (add http, git, file explicitly)
    int git_threads = 2;                             ///< --git-threads: libgit2 pool size
    int git_attempts = 3;                            ///< --git-attempts: network attempts per preparation
    std::string ssh_known_hosts;                     ///< --ssh-known-hosts: OpenSSH known_hosts file ("": ~/.ssh only)
    std::shared_ptr<const git::known_hosts> known_hosts;  ///< read from ssh_known_hosts by validate()

    // Sandbox and limits.
    std::string jobs_dir = "/tmp/faasd/jobs";        ///< --jobs-dir: per-attempt workspaces (tmpfs recommended)
    std::string sandbox = "bwrap";                   ///< --sandbox bwrap|none
    std::string cgroups = "auto";                    ///< --cgroups auto|off
    bool allow_network = false;                      ///< --allow-network: functions that ask for network get it
    std::string timeout_default = "60s";             ///< --timeout-default: wall clock when a job gives none
    std::string timeout_max = "1h";                  ///< --timeout-max: upper bound of a job's timeout_s
    std::string kill_grace = "2s";                   ///< --kill-grace: SIGTERM -> SIGKILL
    std::string cpu_limit = "60s";                   ///< --cpu-limit: CPU time per process
    std::string memory_limit = "512MiB";             ///< --memory-limit
    int pids_limit = 64;                             ///< --pids-limit: processes and threads
    std::string output_cap = "1MiB";                 ///< --output-cap: kept of stdout and of stderr
    std::string output_kill = "64MiB";               ///< --output-kill: a stream beyond this kills the run
    std::string disk_limit = "256MiB";               ///< --disk-limit: any file, /tmp, all outputs
    std::string result_max_size = "512KiB";          ///< --result-max-size: encoded result record (logs, output cut to fit)
    std::string snapshot_result_max_size = "64KiB";  ///< --snapshot-result-max-size: the result copy in the terminal snapshot

    // Sources and sinks.
    bool allow_private_sources = false;              ///< --allow-private-sources: loopback, private, link-local
    std::string source_max_size = "256MiB";          ///< --source-max-size: per source
    std::string transfer_timeout = "5m";             ///< --transfer-timeout: one download or upload
    int sink_attempts = 3;                           ///< --sink-attempts: tries per sink (transient failures)

    // Kafka side.
    std::string heartbeat_interval = "2s";           ///< --heartbeat-interval
    int max_retries = 3;                             ///< --max-retries: cap on a job's retries
    int max_deliveries = 3;                          ///< --max-deliveries: deliveries of one attempt that may run (0: unlimited)
    std::string retry_backoff = "1s";                ///< --retry-backoff: delay before attempt 2 (doubling, jitter)
    std::string retry_backoff_max = "60s";           ///< --retry-backoff-max
    std::string cancel_memory = "24h";               ///< --cancel-memory: how long cancelled ids are remembered
    std::size_t cancel_max_ids = 100000;             ///< --cancel-max-ids
    std::string drain_timeout;                       ///< --drain-timeout (default: shutdown grace - 8 s, at least half of it)
    std::string transaction_timeout = "10s";         ///< --transaction-timeout (exactly-once producer)

    // Operations.
    std::string health_listen;                       ///< --health-listen host:port for /healthz, /readyz, /metrics (empty: off)

    /// The credential key ring "kid:<base64>[,...]". Never an option: read from
    /// FAASD_CREDENTIALS_KEYS by validate() when empty (faasd dev sets it directly).
    std::string credentials_keys;

    /// Checks every value and fills the defaults (worker id, credentials from
    /// the environment); throws config::config_error naming the option.
    void validate();

    /// Settings for the parts (call after validate()).
    git::cache_config cache_settings() const;
    sandbox::sandbox_config sandbox_settings() const;
    worker::result_limits result_settings() const;
    worker::service_config service_settings(const kafka_config& kafka) const;
};

/// Registers every worker option on app (with help text and default).
void add_worker_options(CLI::App& app, worker_config& cfg);

/// Runs a worker until env.shutdown is requested, then drains (docs/worker.md
/// "Shutdown"). Creates missing topics when kafka.create_topics. Throws
/// config::config_error for a bad configuration and std::runtime_error when
/// the sandbox cannot start on this host.
boost::asio::awaitable<void> run_worker(worker_config cfg, kafka_config kafka, runtime::role_env& env);

}  // namespace faasd::roles
