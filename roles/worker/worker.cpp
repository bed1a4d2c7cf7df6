#include "worker/worker.hpp"

#include <faasd/config/config.hpp>
#include <faasd/core/id.hpp>
#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/sealing.hpp>
#include <faasd/git/url.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/admin.hpp>
#include <faasd/kafka/error.hpp>
#include <faasd/kafka/topics.hpp>
#include <faasd/http/health.hpp>
#include <faasd/metrics/registry.hpp>
#include <faasd/worker/http_transfer.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <sys/prctl.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace faasd::roles {
namespace asio = boost::asio;

namespace {

std::chrono::milliseconds duration_of(const std::string& option, const std::string& v) {
    auto d = config::parse_duration(v);
    if (!d) throw config::config_error(option + ": '" + v + "' is not a duration (e.g. 30s, 500ms, 5m)");
    return *d;
}

std::uint64_t size_of(const std::string& option, const std::string& v) {
    auto s = config::parse_size(v);
    if (!s) throw config::config_error(option + ": '" + v + "' is not a size (e.g. 512MiB, 4GiB)");
    return *s;
}

// boost::system::result has no value_or in Boost 1.81.
template <class T, class D>
T or_default(const result<T>& r, const D& d) {
    return r ? *r : T(d);
}

void check(bool ok, const std::string& what) {
    if (!ok) throw config::config_error(what);
}

}  // namespace

void add_worker_options(CLI::App& app, worker_config& c) {
    app.add_option("--slots", c.slots, "Jobs run at once by this worker (each in its own sandbox)")->capture_default_str();
    app.add_option("--prefetch", c.prefetch,
                   "Messages taken ahead of a free slot before the jobs consumer pauses (0: max(4 x slots, 16))")
        ->capture_default_str();
    app.add_option("--worker-id", c.worker_id,
                   "Identity in heartbeats, snapshots and results (default: w-<12 random hex digits>)");
    app.add_option("--group", c.group, "Consumer group of the workers (default: <topic prefix>workers)");

    app.add_option("--cache-dir", c.cache_dir, "Repository cache (bare mirrors; may be shared by the workers of a host)")
        ->capture_default_str();
    app.add_option("--cache-max-size", c.cache_max_size, "Cache size above which the least recently used mirrors go")
        ->capture_default_str();
    app.add_option("--fetch-staleness", c.fetch_staleness,
                   "A branch or tag is resolved from the cache without fetching while the mirror is younger than this")
        ->capture_default_str();
    app.add_option("--allowed-schemes", c.allowed_schemes,
                   "Repository URL schemes jobs may use (https,ssh,git,http,file; file only when listed)")
        ->capture_default_str();
    app.add_option("--git-threads", c.git_threads, "Threads for libgit2 (clones, fetches, checkouts)")->capture_default_str();
    app.add_option("--git-attempts", c.git_attempts, "Network attempts per repository preparation (backoff between)")
        ->capture_default_str();
    app.add_option("--ssh-known-hosts", c.ssh_known_hosts,
                   "OpenSSH known_hosts file of the SSH servers ssh:// repositories may be fetched from, besides "
                   "~/.ssh/known_hosts; a key it revokes or contradicts is refused (default: none)");

    app.add_option("--jobs-dir", c.jobs_dir, "Per-attempt workspaces (put it on a tmpfs: credentials are written here)")
        ->capture_default_str();
    app.add_option("--sandbox", c.sandbox, "bwrap (bubblewrap namespaces) or none (rlimits and a clean environment only)")
        ->capture_default_str();
    app.add_option("--cgroups", c.cgroups, "auto (memory and pids cgroups when writable) or off (rlimits only)")
        ->capture_default_str();
    app.add_option("--allow-network", c.allow_network,
                   "Give network access to functions whose faasd.json asks for it (true|false)")
        ->capture_default_str();
    app.add_option("--timeout-default", c.timeout_default, "Wall-clock limit of a run when the job gives none")
        ->capture_default_str();
    app.add_option("--timeout-max", c.timeout_max, "Upper bound of a job's timeout_s")->capture_default_str();
    app.add_option("--kill-grace", c.kill_grace, "Time between SIGTERM and SIGKILL when a run is stopped")
        ->capture_default_str();
    app.add_option("--cpu-limit", c.cpu_limit, "CPU time per process of a run (whole seconds)")->capture_default_str();
    app.add_option("--memory-limit", c.memory_limit, "Memory of a run (cgroup, else address space)")->capture_default_str();
    app.add_option("--pids-limit", c.pids_limit, "Processes and threads of a run")->capture_default_str();
    app.add_option("--output-cap", c.output_cap, "Kept of stdout and of stderr each (the rest is counted and dropped)")
        ->capture_default_str();
    app.add_option("--output-kill", c.output_kill, "A stream writing more than this kills the run (output_limit)")
        ->capture_default_str();
    app.add_option("--disk-limit", c.disk_limit, "Any single file, the private /tmp, and all output files together")
        ->capture_default_str();
    app.add_option("--result-max-size", c.result_max_size,
                   "Largest encoded result record: logs, then the output, are cut to fit (below the producer's "
                   "message.max.bytes)")
        ->capture_default_str();
    app.add_option("--snapshot-result-max-size", c.snapshot_result_max_size,
                   "Largest copy of the result inside the terminal state snapshot (what the frontend serves)")
        ->capture_default_str();

    app.add_option("--allow-private-sources", c.allow_private_sources,
                   "Let sources and sinks reach loopback, private and link-local addresses (true|false)")
        ->capture_default_str();
    app.add_option("--source-max-size", c.source_max_size, "Largest source download")->capture_default_str();
    app.add_option("--transfer-timeout", c.transfer_timeout, "Deadline of one source download or sink upload")
        ->capture_default_str();
    app.add_option("--sink-attempts", c.sink_attempts, "Tries per sink upload on transient failures (5xx, timeouts)")
        ->capture_default_str();

    app.add_option("--heartbeat-interval", c.heartbeat_interval, "Time between heartbeats on the heartbeats topic")
        ->capture_default_str();
    app.add_option("--max-retries", c.max_retries,
                   "Upper bound on a job's retries after infrastructure failures (and function failures with retry_on_failure)")
        ->capture_default_str();
    app.add_option("--max-deliveries", c.max_deliveries,
                   "Deliveries of one attempt that may start running; the next one (its workers were lost each "
                   "time) ends the job failed with worker_lost and dead-letters it (0: unlimited)")
        ->capture_default_str();
    app.add_option("--retry-backoff", c.retry_backoff, "Delay before the second attempt; doubles per attempt, +-25% jitter")
        ->capture_default_str();
    app.add_option("--retry-backoff-max", c.retry_backoff_max, "Cap of the retry delay")->capture_default_str();
    app.add_option("--cancel-memory", c.cancel_memory, "How long a cancelled job id is remembered (to skip it when it arrives)")
        ->capture_default_str();
    app.add_option("--cancel-max-ids", c.cancel_max_ids, "At most this many cancelled ids are remembered")
        ->capture_default_str();
    app.add_option("--drain-timeout", c.drain_timeout,
                   "On shutdown, how long running jobs may finish before they are stopped and handed back "
                   "(default: --shutdown-grace minus 8s, at least half of it)");
    app.add_option("--transaction-timeout", c.transaction_timeout,
                   "transaction.timeout.ms of the exactly-once producer (how long a dead worker's transaction blocks)")
        ->capture_default_str();

    app.add_option("--health-listen", c.health_listen,
                   "host:port serving /healthz, /readyz and /metrics (empty: no health server)");
}

void worker_config::validate() {
    check(slots >= 1 && slots <= 1024, "--slots: must be between 1 and 1024");
    check(prefetch >= 0 && prefetch <= 100000, "--prefetch: must be between 0 and 100000");
    if (worker_id.empty()) worker_id = "w-" + random_hex(6);
    check(worker_id.size() <= 128 && worker_id.find_first_of(" \t\r\n\"\\") == std::string::npos,
          "--worker-id: at most 128 characters, no spaces or quotes");
    check(!cache_dir.empty(), "--cache-dir: required");
    check(!jobs_dir.empty(), "--jobs-dir: required");
    size_of("--cache-max-size", cache_max_size);
    duration_of("--fetch-staleness", fetch_staleness);
    if (auto p = git::scheme_policy::parse(allowed_schemes); !p)
        throw config::config_error("--allowed-schemes: '" + allowed_schemes + "' is not a list of https,ssh,git,http,file");
    check(git_threads >= 1 && git_threads <= 64, "--git-threads: must be between 1 and 64");
    check(git_attempts >= 1 && git_attempts <= 20, "--git-attempts: must be between 1 and 20");
    if (!ssh_known_hosts.empty()) {
        std::error_code ec;
        std::ifstream in(ssh_known_hosts, std::ios::binary);
        if (!std::filesystem::is_regular_file(ssh_known_hosts, ec) || !in)
            throw config::config_error("--ssh-known-hosts: cannot read '" + ssh_known_hosts + "'");
        std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        if (in.bad()) throw config::config_error("--ssh-known-hosts: cannot read '" + ssh_known_hosts + "'");
        auto kh = git::known_hosts::parse(text);
        if (kh.size() == 0 && kh.skipped() > 0)
            throw config::config_error("--ssh-known-hosts: '" + ssh_known_hosts + "' has no usable line (" +
                                       std::to_string(kh.skipped()) + " skipped: not hosts, key type and key)");
        known_hosts = std::make_shared<const git::known_hosts>(std::move(kh));
    }
    if (!sandbox::parse_sandbox_mode(sandbox)) throw config::config_error("--sandbox: '" + sandbox + "' is not bwrap or none");
    check(cgroups == "auto" || cgroups == "off", "--cgroups: must be auto or off");
    duration_of("--timeout-default", timeout_default);
    duration_of("--timeout-max", timeout_max);
    duration_of("--kill-grace", kill_grace);
    duration_of("--cpu-limit", cpu_limit);
    size_of("--memory-limit", memory_limit);
    check(pids_limit >= 1, "--pids-limit: must be at least 1");
    size_of("--output-cap", output_cap);
    size_of("--output-kill", output_kill);
    size_of("--disk-limit", disk_limit);
    size_of("--result-max-size", result_max_size);
    size_of("--snapshot-result-max-size", snapshot_result_max_size);
    if (auto e = worker::validate(result_settings()); !e.empty()) throw config::config_error(e);
    size_of("--source-max-size", source_max_size);
    duration_of("--transfer-timeout", transfer_timeout);
    check(sink_attempts >= 1 && sink_attempts <= 20, "--sink-attempts: must be between 1 and 20");
    auto hb = duration_of("--heartbeat-interval", heartbeat_interval);
    check(hb >= std::chrono::milliseconds(100), "--heartbeat-interval: at least 100ms");
    check(max_deliveries >= 0 && max_deliveries <= 1000, "--max-deliveries: must be between 0 and 1000");
    duration_of("--retry-backoff", retry_backoff);
    duration_of("--retry-backoff-max", retry_backoff_max);
    duration_of("--cancel-memory", cancel_memory);
    check(cancel_max_ids >= 1, "--cancel-max-ids: at least 1");
    if (!drain_timeout.empty()) duration_of("--drain-timeout", drain_timeout);
    duration_of("--transaction-timeout", transaction_timeout);
    if (!health_listen.empty() && !config::parse_endpoint(health_listen))
        throw config::config_error("--health-listen: '" + health_listen + "' is not host:port");

    if (auto e = git::validate(cache_settings()); !e.empty()) throw config::config_error(e);
    if (auto e = sandbox::validate(sandbox_settings()); !e.empty()) throw config::config_error(e);
    worker::retry_policy rp;
    rp.max_retries = max_retries;
    rp.initial_backoff = duration_of("--retry-backoff", retry_backoff);
    rp.max_backoff = duration_of("--retry-backoff-max", retry_backoff_max);
    if (auto e = worker::validate(rp); !e.empty()) throw config::config_error(e);

    // The key ring leaves the environment once read: a function run with
    // --sandbox=none under the worker's uid must not find it there or in
    // /proc/<worker>/environ (docs/security.md).
    if (auto env = take_secret_env("FAASD_CREDENTIALS_KEYS"); credentials_keys.empty()) credentials_keys = std::move(env);
    if (!credentials_keys.empty()) {
        std::string why;
        if (!crypto::key_ring::parse(credentials_keys, &why))
            throw config::config_error("FAASD_CREDENTIALS_KEYS: " + (why.empty() ? std::string("invalid key ring") : why));
    }
}

git::cache_config worker_config::cache_settings() const {
    git::cache_config c;
    c.dir = cache_dir;
    c.max_bytes = or_default(config::parse_size(cache_max_size), c.max_bytes);
    c.ref_staleness = or_default(config::parse_duration(fetch_staleness), c.ref_staleness);
    if (auto p = git::scheme_policy::parse(allowed_schemes)) c.schemes = *p;
    c.threads = static_cast<std::size_t>(std::max(git_threads, 1));
    c.retry.attempts = git_attempts;
    c.ssh_known_hosts = known_hosts;
    return c;
}

sandbox::sandbox_config worker_config::sandbox_settings() const {
    sandbox::sandbox_config c;
    c.mode = sandbox::parse_sandbox_mode(sandbox).value_or(sandbox::sandbox_mode::bubblewrap);
    c.allow_network = allow_network;
    c.cgroups = cgroups;
    auto& l = c.defaults;
    l.timeout = or_default(config::parse_duration(timeout_default), l.timeout);
    l.kill_grace = or_default(config::parse_duration(kill_grace), l.kill_grace);
    l.cpu = std::chrono::duration_cast<std::chrono::seconds>(or_default(config::parse_duration(cpu_limit), l.cpu));
    l.memory_bytes = or_default(config::parse_size(memory_limit), l.memory_bytes);
    l.max_processes = static_cast<std::uint32_t>(std::max(pids_limit, 1));
    l.output_bytes = or_default(config::parse_size(output_cap), l.output_bytes);
    l.output_kill_bytes = or_default(config::parse_size(output_kill), l.output_kill_bytes);
    l.disk_bytes = or_default(config::parse_size(disk_limit), l.disk_bytes);
    return c;
}

worker::result_limits worker_config::result_settings() const {
    worker::result_limits l;
    l.result_bytes = static_cast<std::size_t>(or_default(config::parse_size(result_max_size), l.result_bytes));
    l.snapshot_bytes = static_cast<std::size_t>(or_default(config::parse_size(snapshot_result_max_size), l.snapshot_bytes));
    return l;
}

worker::service_config worker_config::service_settings(const kafka_config& kafka) const {
    worker::service_config s;
    s.worker_id = worker_id;
    s.slots = slots;
    s.prefetch = static_cast<std::size_t>(prefetch);
    s.jobs_dir = jobs_dir;
    s.topics = jobs::topic_names::with_prefix(kafka.topic_prefix);
    s.group_id = group.empty() ? kafka.topic_prefix + "workers" : group;
    s.kafka.brokers = kafka.brokers;
    s.kafka.properties = kafka::parse_properties(kafka.properties);
    s.heartbeat_interval = *config::parse_duration(heartbeat_interval);
    s.retry.max_retries = max_retries;
    s.max_deliveries = max_deliveries;
    s.retry.initial_backoff = *config::parse_duration(retry_backoff);
    s.retry.max_backoff = *config::parse_duration(retry_backoff_max);
    s.limits = sandbox_settings().defaults;
    s.results = result_settings();
    // A result record must stay below what the producer may send (records
    // above message.max.bytes are refused before they reach a broker).
    std::size_t max_message = 1'000'000;  // librdkafka's default
    if (auto it = s.kafka.properties.find("message.max.bytes"); it != s.kafka.properties.end()) {
        try {
            max_message = static_cast<std::size_t>(std::stoull(it->second));
        } catch (const std::exception&) {
            throw config::config_error("--kafka-property message.max.bytes: '" + it->second + "' is not a number");
        }
    }
    if (s.results.result_bytes + 16 * 1024 > max_message)
        throw config::config_error("--result-max-size: must be at least 16KiB below the producer's message.max.bytes (" +
                                   std::to_string(max_message) + ")");
    s.max_timeout = *config::parse_duration(timeout_max);
    s.cancel_max_ids = cancel_max_ids;
    s.cancel_ttl = *config::parse_duration(cancel_memory);
    s.source_max_bytes = *config::parse_size(source_max_size);
    s.sink_attempts = sink_attempts;
    if (!drain_timeout.empty()) s.drain_timeout = *config::parse_duration(drain_timeout);
    s.transaction_timeout = *config::parse_duration(transaction_timeout);
    return s;
}

asio::awaitable<void> run_worker(worker_config cfg, kafka_config kafka, runtime::role_env& env) {
    cfg.validate();
    kafka.validate();
    auto ex = co_await asio::this_coro::executor;
    auto log = env.log.with({{"worker", cfg.worker_id}});
    auto settings = cfg.service_settings(kafka);
    // Not dumpable: processes of the same uid (a function under
    // --sandbox=none without per-run uids) cannot ptrace the worker or read
    // its /proc/<pid>/environ or memory, where the key ring lives.
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) log.warn("worker.not_dumpable_failed", {{"errno", errno}});

    if (kafka.create_topics) {
        kafka::admin_options ao;
        ao.brokers = kafka.brokers;
        ao.properties = settings.kafka.properties;
        ao.client_id = "faasd-worker-" + cfg.worker_id + "-admin";
        ao.log = log;
        kafka::admin adm(ex, ao);
        auto r = co_await kafka::ensure_faasd_topics(adm, settings.topics, kafka.topic_partitions, kafka.topic_replication);
        co_await adm.close();
        if (!r) throw std::runtime_error("cannot create the topics: " + r.error().message());
    }

    std::optional<crypto::key_ring> keys;
    if (!cfg.credentials_keys.empty()) {
        keys = crypto::key_ring::parse(cfg.credentials_keys).value();
        crypto::wipe(cfg.credentials_keys);
    } else {
        log.warn("worker.no_credential_keys",
                 {{"detail", "FAASD_CREDENTIALS_KEYS is not set: jobs with credentials fail (credentials_unavailable)"}});
    }

    git::repo_cache cache(cfg.cache_settings(), log);
    sandbox::function_runner runner(cfg.sandbox_settings(), log);
    log.info("worker.sandbox", {{"mode", sandbox::to_string(runner.capabilities().mode)},
                                {"detail", runner.capabilities().detail}});

    worker::service_deps deps;
    deps.cache = &cache;
    deps.runner = &runner;
    deps.keys = keys ? &*keys : nullptr;
    worker::http_transfer_config tc;
    tc.allow_private = cfg.allow_private_sources;
    tc.timeout = *config::parse_duration(cfg.transfer_timeout);
    worker::http_transfer transfer(ex, tc, log);
    deps.transfer = &transfer;

    auto registry = std::make_shared<metrics::registry>();
    deps.metrics = registry;
    // A Kafka client that became unusable (a fatal error: typically the
    // transactional producer fenced after its coordinator was gone for longer
    // than the transaction timeout) ends the service, which has then stopped
    // and handed its jobs back. Start a new one with new clients, as a restart
    // of the process would: exactly-once work of the aborted transactions is
    // redone, nothing is lost. Anything else ends the role.
    auto serve_jobs = [&]() -> asio::awaitable<void> {
        kafka::backoff_policy pause{std::chrono::seconds(1), std::chrono::seconds(30)};
        for (int restarts = 0;;) {
            const auto started = std::chrono::steady_clock::now();
            try {
                worker::service svc(ex, settings, deps, log, env.health_state);
                co_await svc.run(env.shutdown, env.shutdown_grace);
                co_return;
            } catch (const kafka::exception& e) {
                if (e.err().cls != kafka::error_class::fatal || env.shutdown->requested()) throw;
                // The pause grows only while restarts come in quick succession.
                if (std::chrono::steady_clock::now() - started > std::chrono::minutes(5)) restarts = 0;
                ++restarts;
                log.error("worker.restarting", {{"error", e.what()}, {"restarts", restarts},
                                                {"in_ms", static_cast<std::int64_t>(pause.delay(restarts).count())}});
            }
            asio::steady_timer t(ex, pause.delay(restarts));
            using namespace asio::experimental::awaitable_operators;
            co_await (t.async_wait(asio::as_tuple(asio::use_awaitable)) || env.shutdown->wait());
            if (env.shutdown->requested()) co_return;  // the service has stopped already
        }
    };
    if (cfg.health_listen.empty()) {
        co_await serve_jobs();
    } else {
        using namespace asio::experimental::awaitable_operators;
        co_await (serve_jobs() && http::serve_health(env, cfg.health_listen, registry));
    }
}

}  // namespace faasd::roles
