#pragma once
// The worker's shell (docs/worker.md): consumes the jobs topics in the
// workers' consumer group, runs each message's lifecycle (lifecycle.hpp) on
// the repository cache and the sandbox, publishes snapshots, results,
// retries and dead letters, commits offsets (offset_tracker.hpp) or puts them
// in Kafka transactions, listens to the cancel topic and sends heartbeats.
//
// Everything runs on one io_context thread; libgit2 and blocking librdkafka
// calls run on their own pools. Delivery semantics: docs/semantics.md.

#include <faasd/core/log.hpp>
#include <faasd/jobs/model.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/client.hpp>
#include <faasd/runtime/runtime.hpp>
#include <faasd/sandbox/limits.hpp>
#include <faasd/worker/result_budget.hpp>
#include <faasd/worker/retry.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace faasd::crypto {
class key_ring;
}
namespace faasd::git {
class repo_cache;
}
namespace faasd::sandbox {
class function_runner;
}
namespace faasd::metrics {
class registry;
}

namespace faasd::worker {

/// How a source download or sink upload ended.
struct transfer_outcome {
    bool ok = false;
    int http_status = 0;        ///< the final status, if one was received
    std::string error;          ///< the client's error name ("timeout", "bad_status", "address_forbidden", ...)
    std::string message;        ///< one sentence (never a secret)
    std::uint64_t bytes = 0;    ///< body bytes moved
};

/// Downloads the job's sources and uploads its outputs (HTTP). A port, so
/// that the worker runs (and is tested) without the HTTP client; the real one
/// applies the address policy (no private, loopback or link-local addresses
/// unless allowed, checked after DNS resolution and on every redirect) and
/// the size and time limits. Both calls are cancellable through the awaiting
/// coroutine's cancellation slot.
class transfer_port {
public:
    virtual ~transfer_port() = default;
    /// GET source.url (with its headers and "Authorization: Bearer <bearer>"
    /// when bearer is not empty) into `to`, at most `max_bytes`.
    virtual boost::asio::awaitable<transfer_outcome> download(jobs::source_spec source, std::string bearer,
                                                              std::filesystem::path to, std::uint64_t max_bytes) = 0;
    /// PUT or POST `file` to sink.url with the sink's headers, `extra_headers`
    /// (X-Faasd-Job, X-Faasd-Attempt) and the bearer credential.
    virtual boost::asio::awaitable<transfer_outcome> upload(jobs::sink_spec sink, std::string bearer,
                                                            std::filesystem::path file,
                                                            std::vector<std::pair<std::string, std::string>> extra_headers) = 0;
};

/// The worker's settings (validated by roles/worker before construction).
struct service_config {
    std::string worker_id;                       ///< heartbeats, snapshots, results, transactional.id
    int slots = 2;                               ///< jobs run at once
    std::filesystem::path jobs_dir;              ///< workspaces (created, mode 0711)
    jobs::topic_names topics = jobs::topic_names::with_prefix("faasd.");
    std::string group_id = "faasd.workers";      ///< the workers' consumer group
    kafka::client_options kafka;                 ///< brokers and extra properties (log is set by the service)
    std::chrono::milliseconds heartbeat_interval{2000};
    retry_policy retry;
    result_limits results;                       ///< result size budgets (docs/worker.md "Result size")
    sandbox::limits limits;                      ///< per-run defaults; the job's timeout_s replaces limits.timeout
    std::chrono::milliseconds max_timeout{std::chrono::hours(1)};  ///< upper bound of a job's timeout_s
    std::size_t cancel_max_ids = 100000;         ///< cancelled ids remembered
    std::chrono::milliseconds cancel_ttl{std::chrono::hours(24)};  ///< how long a cancel is remembered
    std::size_t max_held = 0;                    ///< retries held for their not_before (0: 8 x slots)
    /// Messages taken ahead of a free slot (0: max(4 x slots, 16)). The jobs
    /// consumer is paused when this many wait and resumed when half of them
    /// got a slot: librdkafka 2.0 needs about a second after a resume to
    /// deliver again, which the waiting messages cover.
    std::size_t prefetch = 0;
    std::uint64_t source_max_bytes = 256ull << 20;
    int sink_attempts = 3;                       ///< tries per sink upload (transient failures only)
    std::chrono::milliseconds sink_backoff{500}; ///< before the second try, doubling
    /// Shutdown: how long in-flight jobs may run before they are stopped and
    /// handed back (0: derived from the role's shutdown grace).
    std::chrono::milliseconds drain_timeout{0};
    /// librdkafka transaction.timeout.ms of the exactly-once producer: how long
    /// a dead worker's open transaction blocks its partitions.
    std::chrono::milliseconds transaction_timeout{10000};
    /// At-most-once: how long a job waits for the commit of its offset before
    /// it ends failed with "commit_timeout" (docs/semantics.md).
    std::chrono::milliseconds commit_timeout{60000};
    /// Deliveries of one attempt that may reach running (--max-deliveries;
    /// 0: unlimited, and the state topic is not followed). docs/semantics.md.
    int max_deliveries = 3;
    /// How long a job waits for the state view to catch up before it counts
    /// its deliveries with what the view knows.
    std::chrono::milliseconds delivery_sync_timeout{10000};
};

/// Counters since start (the /metrics source and test observations).
struct service_stats {
    std::uint64_t received = 0;       ///< messages taken from the jobs topics
    std::uint64_t started = 0;        ///< attempts that published running
    std::uint64_t succeeded = 0;
    std::uint64_t failed = 0;
    std::uint64_t timed_out = 0;
    std::uint64_t cancelled = 0;
    std::uint64_t retried = 0;        ///< retries scheduled
    std::uint64_t dead_lettered = 0;  ///< poison and exhausted messages
    std::uint64_t poison = 0;
    std::uint64_t abandoned = 0;      ///< jobs handed back (revoked partitions, shutdown)
    std::uint64_t revocations = 0;    ///< rebalances that took partitions away
    std::uint64_t commits = 0;        ///< acknowledged offset commits
    std::uint64_t transactions = 0;   ///< committed transactions
    std::uint64_t kafka_errors = 0;   ///< failed produce, commit or transaction calls
    std::uint64_t publish_errors = 0; ///< failed produce calls of job records (retried or refused)
    std::uint64_t publish_refused = 0;  ///< records Kafka refused for good (too large, invalid)
    std::uint64_t results_capped = 0;   ///< results cut to the result budget
    std::uint64_t worker_lost = 0;      ///< jobs ended failed with worker_lost (delivered too often)
    int slots = 0;
    int busy = 0;
    int held = 0;                     ///< retries waiting for their not_before
    int waiting = 0;                  ///< jobs waiting for a slot
    bool paused = false;              ///< the jobs consumer is paused (all slots busy)
};

/// Everything the service uses but does not own. Each must outlive run().
struct service_deps {
    git::repo_cache* cache = nullptr;
    sandbox::function_runner* runner = nullptr;
    const crypto::key_ring* keys = nullptr;  ///< may be null or empty: jobs with credentials fail
    transfer_port* transfer = nullptr;       ///< may be null: jobs with sources or sinks fail
    /// Where the service exports its counters (service_stats) in the
    /// faasd_worker_* families (docs/worker.md "Metrics"); may be null.
    std::shared_ptr<metrics::registry> metrics;
};

class service {
public:
    service(boost::asio::any_io_executor ex, service_config cfg, service_deps deps, faasd::logger log,
            std::shared_ptr<runtime::health> health);
    ~service();
    service(const service&) = delete;
    service& operator=(const service&) = delete;

    /// Runs until shutdown is requested, then drains gracefully: takes no new
    /// jobs, lets in-flight jobs finish within the drain timeout, stops and
    /// hands back the rest, commits, leaves the group, flushes the producers
    /// and sends a last heartbeat with state down. Throws on fatal Kafka
    /// errors (the process should restart).
    boost::asio::awaitable<void> run(std::shared_ptr<runtime::shutdown_signal> shutdown,
                                     std::chrono::milliseconds shutdown_grace);

    service_stats stats() const;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace faasd::worker
