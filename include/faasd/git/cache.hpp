#pragma once
// Repository preparation: a cache of bare mirrors and a fresh checkout per job.
//
//   <dir>/mirrors/<key>.git   bare mirror (refs/heads/*, refs/tags/*, HEAD)
//   <dir>/locks/<key>.lock    flock: shared to read a mirror, exclusive to fetch,
//                             clone or evict it (works across processes); its
//                             mtime is the mirror's last use (LRU)
//   <dir>/tmp/                clones in progress (renamed into mirrors/ when done)
//
// A requested commit already in the mirror is checked out with no network I/O.
// A branch or tag is resolved from the mirror while the mirror's last fetch is
// younger than `ref_staleness`; otherwise (or when the ref is missing) the
// mirror is fetched first. All libgit2 calls run on the cache's own thread
// pool; the awaiting coroutine resumes on its own executor.

#include <faasd/core/log.hpp>
#include <faasd/git/error.hpp>
#include <faasd/git/known_hosts.hpp>
#include <faasd/git/url.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace faasd::git {

/// Credentials for a private repository, from the job. Never logged.
struct repo_credentials {
    std::string username;         ///< HTTPS user (default "git" when only a token is given); SSH user
    std::string password;         ///< HTTPS password or token
    std::string ssh_private_key;  ///< PEM/OpenSSH private key text
    std::string ssh_public_key;   ///< optional
    std::string ssh_passphrase;   ///< optional
    bool empty() const noexcept { return password.empty() && ssh_private_key.empty() && username.empty(); }
};

/// Progress of a download, reported on a pool thread.
struct transfer_progress {
    unsigned total_objects = 0;
    unsigned received_objects = 0;
    unsigned indexed_objects = 0;
    std::uint64_t received_bytes = 0;
};

struct cache_config {
    std::filesystem::path dir;                                  ///< created if missing
    std::uint64_t max_bytes = 4ull << 30;                       ///< LRU eviction above this total
    std::chrono::milliseconds ref_staleness{std::chrono::seconds(60)};  ///< branch/tag freshness bound
    scheme_policy schemes;                                      ///< allowed URL schemes
    retry_policy retry;                                         ///< for network_error
    std::size_t threads = 2;                                    ///< libgit2 thread pool size
    std::chrono::milliseconds lock_timeout{std::chrono::minutes(10)};  ///< waiting for another job's fetch
    /// SSH host keys trusted besides libgit2's own check of ~/.ssh/known_hosts (null: only that).
    /// A key this file revokes or contradicts is refused even if ~/.ssh/known_hosts has it.
    std::shared_ptr<const known_hosts> ssh_known_hosts;
};

/// Validates a cache_config: returns a problem description, or "" when valid.
std::string validate(const cache_config& c);

struct prepare_request {
    std::string url;
    std::string ref;     ///< branch or tag ("main", "refs/tags/v1"); empty with commit = HEAD
    std::string commit;  ///< full or abbreviated (>= 7) hex commit id; wins over ref
    repo_credentials credentials;
    std::filesystem::path destination;  ///< must not exist or be empty; receives the tree only (no .git)
    /// Optional observer, called on a pool thread during downloads.
    std::function<void(const transfer_progress&)> on_progress;
};

struct prepared_checkout {
    std::string commit;        ///< resolved 40-hex commit id
    std::string ref;           ///< full ref name that resolved ("refs/heads/main"), empty for commits
    bool cache_hit = false;    ///< no network I/O was needed
    bool cloned = false;       ///< the mirror was created by this call
    bool fetched = false;      ///< the mirror was fetched by this call
    int attempts = 0;          ///< network attempts made (0 on a cache hit)
    std::uint64_t files = 0;   ///< files written into destination
};

using prepare_result = boost::system::result<prepared_checkout, prepare_error>;

/// Counters since construction (all processes sharing the dir keep their own).
struct cache_stats {
    std::uint64_t prepares = 0;
    std::uint64_t hits = 0;       ///< prepared without network I/O
    std::uint64_t clones = 0;     ///< mirrors created
    std::uint64_t fetches = 0;    ///< network fetches into existing mirrors (attempts)
    std::uint64_t failures = 0;
    std::uint64_t evictions = 0;
};

/// One mirror as seen by the eviction planner.
struct mirror_entry {
    std::string key;
    std::uint64_t bytes = 0;
    std::int64_t last_used_ms = 0;
    bool in_use = false;  ///< locked by a job right now, or just used by the caller
};

/// Pure LRU: the keys to evict (oldest first) so that the total fits max_bytes,
/// never an entry in use. May leave the total above max_bytes when everything
/// left is in use.
std::vector<std::string> plan_eviction(std::vector<mirror_entry> entries, std::uint64_t max_bytes);

/// The repository cache. Thread-safe: prepare() may run concurrently from any
/// number of coroutines (and processes sharing `dir`). Destruction waits for
/// libgit2 work in flight.
class repo_cache {
public:
    repo_cache(cache_config cfg, faasd::logger log);
    ~repo_cache();
    repo_cache(const repo_cache&) = delete;
    repo_cache& operator=(const repo_cache&) = delete;

    /// Prepares a checkout of the request's commit (or ref) in req.destination.
    /// Expected failures are values (prepare_error with a stable code);
    /// network_error is returned only after the retry policy is exhausted.
    /// Cancellation (terminal, partial or total, from the awaiting coroutine's
    /// slot) aborts a download in progress and yields git_errc::cancelled; a
    /// partially written destination is removed.
    boost::asio::awaitable<prepare_result> prepare(prepare_request req);

    /// Runs LRU eviction now (on the pool); returns the number of mirrors removed.
    boost::asio::awaitable<std::size_t> evict();

    /// Total bytes of all mirrors (walks the directory; blocking, for tests and benches).
    std::uint64_t disk_usage() const;

    cache_stats stats() const;
    const cache_config& config() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace faasd::git
