#include <faasd/git/cache.hpp>

#include "libgit2.hpp"
#include "pool.hpp"

#include <faasd/core/id.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>

namespace faasd::git {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace detail {
void ensure_libgit2() {
    static std::once_flag once;
    std::call_once(once, [] { git_libgit2_init(); });
}
}  // namespace detail

namespace {

using detail::last_failure;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::int64_t mtime_ms(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return 0;
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        s.push_back(digits[p[i] >> 4]);
        s.push_back(digits[p[i] & 15]);
    }
    return s;
}

bool is_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

// Overwrites a small secret file before unlinking it.
void wipe_file(const fs::path& p) {
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st {};
        if (::fstat(fd, &st) == 0 && st.st_size > 0) {
            std::string zeros(static_cast<std::size_t>(st.st_size), '\0');
            [[maybe_unused]] auto n = ::write(fd, zeros.data(), zeros.size());
        }
        ::close(fd);
    }
    ::unlink(p.c_str());
}

template <class R>
using pool_fn = std::function<R(const std::atomic<bool>&)>;

struct resolved_commit {
    std::string oid;
    std::string ref;
};

// ---- libgit2 callbacks -----------------------------------------------------

/// What an ssh:// remote's host key is checked against.
struct host_trust {
    std::shared_ptr<const known_hosts> hosts;  ///< --ssh-known-hosts, may be null
    int port = 22;                             ///< the URL's port (known_hosts names [host]:port otherwise)
};

struct fetch_context {
    const std::atomic<bool>* cancel = nullptr;
    const repo_credentials* creds = nullptr;
    const host_trust* trust = nullptr;
    std::string host_key_problem;  ///< why on_certificate refused (libgit2 replaces the message)
    const std::function<void(const transfer_progress&)>* progress = nullptr;
    fs::path secret_dir;
    int credential_calls = 0;
    fs::path key_file;

    ~fetch_context() {
        if (!key_file.empty()) wipe_file(key_file);
    }
    bool cancelled() const { return cancel->load(std::memory_order_relaxed); }
};

int on_transfer(const git_indexer_progress* s, void* payload) {
    auto* ctx = static_cast<fetch_context*>(payload);
    if (ctx->progress && *ctx->progress)
        (*ctx->progress)(transfer_progress{s->total_objects, s->received_objects, s->indexed_objects,
                                           static_cast<std::uint64_t>(s->received_bytes)});
    if (ctx->cancelled()) {
        git_error_set_str(GIT_ERROR_CALLBACK, "cancelled");
        return -1;
    }
    return 0;
}

int on_sideband(const char*, int, void* payload) {
    auto* ctx = static_cast<fetch_context*>(payload);
    if (ctx->cancelled()) {
        git_error_set_str(GIT_ERROR_CALLBACK, "cancelled");
        return -1;
    }
    return 0;
}

int on_credentials(git_credential** out, const char*, const char* username_from_url, unsigned int allowed,
                   void* payload) {
    auto* ctx = static_cast<fetch_context*>(payload);
    if (ctx->cancelled()) {
        git_error_set_str(GIT_ERROR_CALLBACK, "cancelled");
        return -1;
    }
    const repo_credentials& c = *ctx->creds;
    // libgit2 asks again when the server rejected what we gave: stop there.
    if (++ctx->credential_calls > 2 || (ctx->credential_calls > 1 && !(allowed & GIT_CREDENTIAL_SSH_KEY))) {
        git_error_set_str(GIT_ERROR_NET, "authentication failed: the server rejected the job's credentials");
        return GIT_EAUTH;
    }
    std::string user = !c.username.empty()                              ? c.username
                       : (username_from_url && *username_from_url) ? username_from_url
                                                                       : "git";
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && !c.password.empty())
        return git_credential_userpass_plaintext_new(out, user.c_str(), c.password.c_str());
    if ((allowed & GIT_CREDENTIAL_SSH_KEY) && !c.ssh_private_key.empty()) {
        if (ctx->key_file.empty()) {
            auto path = ctx->secret_dir / ("key-" + random_hex(8));
            int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0) {
                git_error_set_str(GIT_ERROR_OS, "cannot write the SSH key file");
                return -1;
            }
            ctx->key_file = path;
            auto n = ::write(fd, c.ssh_private_key.data(), c.ssh_private_key.size());
            ::close(fd);
            if (n != static_cast<ssize_t>(c.ssh_private_key.size())) {
                git_error_set_str(GIT_ERROR_OS, "cannot write the SSH key file");
                return -1;
            }
        }
        return git_credential_ssh_key_new(out, user.c_str(), nullptr, ctx->key_file.c_str(),
                                          c.ssh_passphrase.empty() ? nullptr : c.ssh_passphrase.c_str());
    }
    if ((allowed & GIT_CREDENTIAL_USERNAME) && !c.ssh_private_key.empty())
        return git_credential_username_new(out, user.c_str());
    if (c.empty()) {
        git_error_set_str(GIT_ERROR_NET, "authentication required but the job has no credentials for this repository");
        return GIT_EAUTH;
    }
    git_error_set_str(GIT_ERROR_NET, "authentication failed: the job's credentials do not fit what the server accepts");
    return GIT_EAUTH;
}

// SSH host keys: libgit2 has checked ~/.ssh/known_hosts (`valid`); the
// configured file can add keys, and revoke or contradict them. TLS
// certificates are left to libgit2 and OpenSSL.
int on_certificate(git_cert* cert, int valid, const char* host, void* payload) {
    if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) return GIT_PASSTHROUGH;
    auto* ctx = static_cast<fetch_context*>(payload);
    const auto* hk = reinterpret_cast<const git_cert_hostkey*>(cert);
    std::string_view blob;
    if ((hk->type & GIT_CERT_SSH_RAW) && hk->hostkey != nullptr) blob = std::string_view(hk->hostkey, hk->hostkey_len);
    const int port = ctx->trust ? ctx->trust->port : 22;
    const std::string name = known_hosts_name(host ? host : "", port);
    const std::string key = blob.empty() ? "an unreadable key" : ssh_key_type(blob) + " " + ssh_fingerprint(blob);
    if (ctx->trust && ctx->trust->hosts && !blob.empty()) {
        switch (ctx->trust->hosts->check(host ? host : "", port, blob)) {
            case known_hosts::verdict::match: return 0;
            case known_hosts::verdict::revoked:
                ctx->host_key_problem = "the SSH host key of " + name + " (" + key + ") is revoked in --ssh-known-hosts";
                return GIT_ECERTIFICATE;
            case known_hosts::verdict::mismatch:
                ctx->host_key_problem = "the SSH host key of " + name + " (" + key +
                                        ") is not the one --ssh-known-hosts has for it: the key changed, or "
                                        "someone is in between";
                return GIT_ECERTIFICATE;
            case known_hosts::verdict::unknown: break;
        }
    }
    if (valid) return 0;
    ctx->host_key_problem = "the SSH host key of " + name + " (" + key +
                            ") is not known: add it to the worker's --ssh-known-hosts file (ssh-keyscan" +
                            (port != 22 ? " -p " + std::to_string(port) : std::string()) + " " +
                            std::string(host ? host : "") + ")";
    return GIT_ECERTIFICATE;
}

// The failure of a call that may have been refused by on_certificate: its
// reason, not libgit2's generic "invalid or unknown remote ssh hostkey".
libgit2_failure connect_failure(int rc, const fetch_context& ctx) {
    auto f = last_failure(rc);
    if (!ctx.host_key_problem.empty()) {
        f.code = GIT_ECERTIFICATE;
        f.klass = GIT_ERROR_SSH;
        f.message = ctx.host_key_problem;
    }
    return f;
}

// ---- blocking steps (pool threads only) --------------------------------------

// Fetches heads and tags into repo, prunes deleted refs, sets HEAD to the
// remote's default branch and stamps the fetch time.
std::optional<libgit2_failure> fetch_into(git_repository* repo, const fs::path& repo_dir, const std::string& url,
                                          fetch_context& ctx) {
    git_remote* raw = nullptr;
    if (int rc = git_remote_create_anonymous(&raw, repo, url.c_str()); rc < 0) return last_failure(rc);
    detail::remote_ptr remote(raw);

    git_remote_callbacks cbs = GIT_REMOTE_CALLBACKS_INIT;
    cbs.credentials = on_credentials;
    cbs.certificate_check = on_certificate;
    cbs.transfer_progress = on_transfer;
    cbs.sideband_progress = on_sideband;
    cbs.payload = &ctx;
    git_proxy_options proxy = GIT_PROXY_OPTIONS_INIT;
    proxy.type = GIT_PROXY_AUTO;

    if (int rc = git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &cbs, &proxy, nullptr); rc < 0)
        return connect_failure(rc, ctx);
    std::string head_ref;
    {
        git_buf head = GIT_BUF_INIT;
        if (git_remote_default_branch(&head, remote.get()) == 0 && head.ptr) head_ref = head.ptr;
        git_buf_dispose(&head);
        git_error_clear();
    }
    const char* specs[] = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
    git_strarray refspecs{const_cast<char**>(specs), 2};
    git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
    fo.callbacks = cbs;
    fo.proxy_opts = proxy;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    fo.update_fetchhead = 0;
    int rc = git_remote_download(remote.get(), &refspecs, &fo);
    std::optional<libgit2_failure> failure;
    if (rc < 0) failure = connect_failure(rc, ctx);
    git_remote_disconnect(remote.get());
    if (failure) return failure;
    if (rc = git_remote_update_tips(remote.get(), &cbs, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "faasd: fetch"); rc < 0)
        return last_failure(rc);
    if (git_remote_prune(remote.get(), &cbs) < 0) git_error_clear();  // best effort
    if (!head_ref.empty()) {
        git_reference* ref = nullptr;
        if (git_reference_symbolic_create(&ref, repo, "HEAD", head_ref.c_str(), 1, "faasd: remote HEAD") == 0)
            git_reference_free(ref);
        else
            git_error_clear();
    }
    std::ofstream(repo_dir / "faasd-fetched") << now_ms() << "\n";
    return std::nullopt;
}

// Looks up the requested commit (or ref) in an open mirror. nullopt commit and
// nullopt failure = not there.
struct resolve_outcome {
    std::optional<resolved_commit> commit;
    std::optional<libgit2_failure> failure;
};

resolve_outcome resolve(git_repository* repo, const std::string& ref, const std::string& commit) {
    resolve_outcome out;
    if (!commit.empty()) {
        git_oid oid;
        git_object* obj = nullptr;
        int rc = git_oid_fromstrn(&oid, commit.c_str(), commit.size());
        if (rc == 0) rc = git_object_lookup_prefix(&obj, repo, &oid, commit.size(), GIT_OBJECT_COMMIT);
        if (rc == 0) {
            char buf[GIT_OID_HEXSZ + 1];
            git_oid_tostr(buf, sizeof buf, git_object_id(obj));
            out.commit = resolved_commit{buf, ""};
            git_object_free(obj);
        } else if (rc != GIT_ENOTFOUND && rc != GIT_EAMBIGUOUS && rc != GIT_EINVALIDSPEC) {
            out.failure = last_failure(rc);
        } else {
            git_error_clear();
        }
        return out;
    }
    std::vector<std::string> candidates;
    if (ref.empty() || ref == "HEAD")
        candidates = {"HEAD"};
    else if (ref.starts_with("refs/"))
        candidates = {ref};
    else
        candidates = {"refs/heads/" + ref, "refs/tags/" + ref};
    for (const auto& name : candidates) {
        git_reference* raw = nullptr;
        int rc = git_reference_lookup(&raw, repo, name.c_str());
        if (rc < 0) {
            git_error_clear();
            continue;
        }
        detail::reference_ptr r(raw);
        git_reference* resolved_raw = nullptr;
        if (git_reference_resolve(&resolved_raw, r.get()) < 0) {
            git_error_clear();
            continue;
        }
        detail::reference_ptr resolved(resolved_raw);
        git_object* obj = nullptr;
        if (git_reference_peel(&obj, resolved.get(), GIT_OBJECT_COMMIT) < 0) {
            git_error_clear();
            continue;
        }
        char buf[GIT_OID_HEXSZ + 1];
        git_oid_tostr(buf, sizeof buf, git_object_id(obj));
        git_object_free(obj);
        out.commit = resolved_commit{buf, git_reference_name(resolved.get())};
        return out;
    }
    return out;
}

struct probe_outcome {
    bool exists = false;  // a usable mirror is there
    bool broken = false;  // a directory is there but does not open
    bool fresh = false;   // fetched within the staleness bound
    std::optional<resolved_commit> commit;
    std::optional<libgit2_failure> failure;
};

probe_outcome probe(const fs::path& mirror, const std::string& ref, const std::string& commit,
                    std::chrono::milliseconds staleness) {
    probe_outcome out;
    std::error_code ec;
    if (!fs::exists(mirror, ec)) return out;
    git_repository* raw = nullptr;
    if (git_repository_open_bare(&raw, mirror.c_str()) < 0) {
        git_error_clear();
        out.broken = true;
        return out;
    }
    detail::repository_ptr repo(raw);
    out.exists = true;
    auto fetched = mtime_ms(mirror / "faasd-fetched");
    out.fresh = fetched > 0 && now_ms() - fetched < staleness.count();
    if (commit.empty() && !out.fresh) return out;  // a ref needs a fresh mirror
    auto r = resolve(repo.get(), ref, commit);
    out.commit = std::move(r.commit);
    out.failure = std::move(r.failure);
    return out;
}

struct network_outcome {
    std::optional<libgit2_failure> failure;
    bool cancelled = false;
    bool cloned = false;
};

network_outcome clone_or_fetch(const fs::path& mirror, const fs::path& tmp_root, bool exists, const std::string& url,
                               const repo_credentials& creds, const host_trust& trust,
                               const std::function<void(const transfer_progress&)>& progress,
                               const std::atomic<bool>& cancel) {
    network_outcome out;
    fetch_context ctx;
    ctx.cancel = &cancel;
    ctx.creds = &creds;
    ctx.trust = &trust;
    ctx.progress = &progress;
    ctx.secret_dir = tmp_root;
    std::error_code ec;
    if (exists) {
        git_repository* raw = nullptr;
        if (int rc = git_repository_open_bare(&raw, mirror.c_str()); rc < 0) {
            out.failure = last_failure(rc);
            return out;
        }
        detail::repository_ptr repo(raw);
        out.failure = fetch_into(repo.get(), mirror, url, ctx);
    } else {
        fs::remove_all(mirror, ec);  // a broken leftover
        auto tmp = tmp_root / (mirror.filename().string() + "." + random_hex(6));
        git_repository_init_options io = GIT_REPOSITORY_INIT_OPTIONS_INIT;
        io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
        git_repository* raw = nullptr;
        if (int rc = git_repository_init_ext(&raw, tmp.c_str(), &io); rc < 0) {
            out.failure = last_failure(rc);
            fs::remove_all(tmp, ec);
            return out;
        }
        {
            detail::repository_ptr repo(raw);
            out.failure = fetch_into(repo.get(), tmp, url, ctx);
        }
        if (!out.failure) {
            fs::rename(tmp, mirror, ec);
            if (ec) out.failure = libgit2_failure{-1, GIT_ERROR_OS, "cannot move the new mirror into place: " + ec.message()};
            else out.cloned = true;
        }
        if (out.failure) fs::remove_all(tmp, ec);
    }
    out.cancelled = cancel.load();
    return out;
}

struct resolve_step {
    std::optional<resolved_commit> commit;
    std::optional<libgit2_failure> failure;
};

resolve_step resolve_in(const fs::path& mirror, const std::string& ref, const std::string& commit) {
    resolve_step out;
    git_repository* raw = nullptr;
    if (int rc = git_repository_open_bare(&raw, mirror.c_str()); rc < 0) {
        out.failure = last_failure(rc);
        return out;
    }
    detail::repository_ptr repo(raw);
    auto r = resolve(repo.get(), ref, commit);
    out.commit = std::move(r.commit);
    out.failure = std::move(r.failure);
    return out;
}

struct checkout_step {
    std::optional<libgit2_failure> failure;
    std::uint64_t files = 0;
};

void checkout_progress(const char*, size_t completed, size_t total, void* payload) {
    auto* files = static_cast<std::uint64_t*>(payload);
    *files = std::max<std::uint64_t>(completed, total);
}

// Writes the commit's tree into dest (no .git): a per-call repository handle with
// an empty in-memory index, so the mirror is only read.
checkout_step checkout(const fs::path& mirror, const std::string& oid_hex, const fs::path& dest) {
    checkout_step out;
    std::error_code ec;
    if (fs::exists(dest, ec) && !fs::is_empty(dest, ec)) {
        out.failure = libgit2_failure{-1, GIT_ERROR_OS, "the destination directory is not empty"};
        return out;
    }
    fs::create_directories(dest, ec);
    git_repository* raw = nullptr;
    if (int rc = git_repository_open_bare(&raw, mirror.c_str()); rc < 0) {
        out.failure = last_failure(rc);
        return out;
    }
    detail::repository_ptr repo(raw);
    git_index* idx_raw = nullptr;
    if (int rc = git_index_new(&idx_raw); rc < 0) {
        out.failure = last_failure(rc);
        return out;
    }
    detail::index_ptr idx(idx_raw);
    git_repository_set_index(repo.get(), idx.get());
    git_oid oid;
    git_commit* commit_raw = nullptr;
    if (int rc = git_oid_fromstr(&oid, oid_hex.c_str()); rc < 0 || (rc = git_commit_lookup(&commit_raw, repo.get(), &oid)) < 0) {
        out.failure = last_failure(rc);
        return out;
    }
    detail::commit_ptr commit(commit_raw);
    git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
    opts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_NO_REFRESH | GIT_CHECKOUT_DONT_UPDATE_INDEX |
                             GIT_CHECKOUT_DONT_WRITE_INDEX;
    opts.disable_filters = 1;
    opts.target_directory = dest.c_str();
    opts.progress_cb = checkout_progress;
    opts.progress_payload = &out.files;
    if (int rc = git_checkout_tree(repo.get(), reinterpret_cast<git_object*>(commit.get()), &opts); rc < 0)
        out.failure = last_failure(rc);
    return out;
}

std::uint64_t dir_bytes(const fs::path& p) {
    std::uint64_t total = 0;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(p, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
        std::error_code ec2;
        if (it->is_regular_file(ec2)) total += it->file_size(ec2);
    }
    return total;
}

// An flock'ed lock file; closing the descriptor releases the lock.
class lock_file {
public:
    lock_file() = default;
    ~lock_file() { reset(); }
    lock_file(lock_file&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    lock_file& operator=(lock_file&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    bool open(const fs::path& p) {
        reset();
        fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        return fd_ >= 0;
    }
    int fd() const { return fd_; }

private:
    int fd_ = -1;
};

}  // namespace

// ---- pure planner ---------------------------------------------------------------

std::vector<std::string> plan_eviction(std::vector<mirror_entry> entries, std::uint64_t max_bytes) {
    std::uint64_t total = 0;
    for (const auto& e : entries) total += e.bytes;
    std::stable_sort(entries.begin(), entries.end(),
                     [](const mirror_entry& a, const mirror_entry& b) { return a.last_used_ms < b.last_used_ms; });
    std::vector<std::string> out;
    for (const auto& e : entries) {
        if (total <= max_bytes) break;
        if (e.in_use) continue;
        out.push_back(e.key);
        total -= e.bytes;
    }
    return out;
}

std::string validate(const cache_config& c) {
    if (c.dir.empty()) return "the repository cache directory is empty";
    if (c.max_bytes < (1u << 20)) return "the repository cache size must be at least 1 MiB";
    if (c.ref_staleness.count() < 0) return "the ref staleness must not be negative";
    if (c.threads < 1 || c.threads > 64) return "the git thread pool needs 1 to 64 threads";
    if (c.retry.attempts < 1 || c.retry.attempts > 20) return "git retry attempts must be between 1 and 20";
    if (c.retry.initial_backoff.count() < 0 || c.retry.max_backoff < c.retry.initial_backoff)
        return "git retry backoff must satisfy 0 <= initial <= max";
    if (c.schemes.allowed().empty()) return "no repository URL scheme is allowed";
    return {};
}

// ---- the cache ------------------------------------------------------------------

struct repo_cache::impl : std::enable_shared_from_this<impl> {
    cache_config cfg;
    faasd::logger log;
    fs::path mirrors, locks, tmp;
    std::string salt;
    asio::thread_pool pool;

    std::atomic<std::uint64_t> prepares{0}, hits{0}, clones{0}, fetches{0}, failures{0}, evictions{0};

    impl(cache_config c, faasd::logger l)
        : cfg(std::move(c)), log(std::move(l)), pool(std::max<std::size_t>(1, cfg.threads)) {
        detail::ensure_libgit2();
        mirrors = cfg.dir / "mirrors";
        locks = cfg.dir / "locks";
        tmp = cfg.dir / "tmp";
        fs::create_directories(mirrors);
        fs::create_directories(locks);
        fs::create_directories(tmp);
        fs::permissions(tmp, fs::perms::owner_all, fs::perm_options::replace);
        salt = load_salt();
        clean_tmp();
    }

    // A per-cache random salt for credential fingerprints (keys of private mirrors).
    std::string load_salt() {
        auto path = cfg.dir / "salt";
        for (int i = 0; i < 2; ++i) {
            std::ifstream in(path, std::ios::binary);
            std::string s((std::istreambuf_iterator<char>(in)), {});
            if (s.size() == 32) return s;
            unsigned char buf[32];
            if (RAND_bytes(buf, sizeof buf) != 1) throw std::runtime_error("RAND_bytes failed");
            auto t = cfg.dir / ("salt." + random_hex(6));
            int fd = ::open(t.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create " + t.string());
            [[maybe_unused]] auto n = ::write(fd, buf, sizeof buf);
            ::close(fd);
            // link() fails if another process won the race: then we read theirs.
            if (::link(t.c_str(), path.c_str()) != 0 && errno != EEXIST) {
                ::unlink(t.c_str());
                throw std::system_error(errno, std::generic_category(), "cannot create " + path.string());
            }
            ::unlink(t.c_str());
        }
        throw std::runtime_error("cannot read " + path.string());
    }

    // Removes leftovers of crashed clones (older than a day: other processes may be cloning).
    void clean_tmp() {
        std::error_code ec;
        auto limit = now_ms() - 24 * 3600 * 1000LL;
        for (auto& e : fs::directory_iterator(tmp, ec))
            if (mtime_ms(e.path()) < limit) fs::remove_all(e.path(), ec);
    }

    std::string scope_for(const repo_credentials& c) const {
        if (c.empty()) return {};
        std::string m = salt;
        for (const auto* part : {&c.username, &c.password, &c.ssh_private_key}) {
            m.push_back('\0');
            m.append(*part);
        }
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_Digest(m.data(), m.size(), d, &len, EVP_sha256(), nullptr);
        OPENSSL_cleanse(m.data(), m.size());
        return "cred:" + hex(d, 16);
    }

    // Waits (polling, cancellable) for an flock on the key's lock file.
    asio::awaitable<std::optional<prepare_error>> acquire(lock_file& lf, const fs::path& path, int op) {
        if (lf.fd() < 0 && !lf.open(path))
            co_return prepare_error{git_errc::clone_failed, "cannot open the cache lock file: " + std::string(std::strerror(errno))};
        auto deadline = std::chrono::steady_clock::now() + cfg.lock_timeout;
        auto delay = 2ms;
        asio::steady_timer timer(co_await asio::this_coro::executor);
        for (;;) {
            if (::flock(lf.fd(), op | LOCK_NB) == 0) co_return std::nullopt;
            if (errno != EWOULDBLOCK && errno != EINTR)
                co_return prepare_error{git_errc::clone_failed, "cannot lock the cache entry: " + std::string(std::strerror(errno))};
            if (std::chrono::steady_clock::now() >= deadline)
                co_return prepare_error{git_errc::clone_failed, "timed out waiting for another job to finish fetching this repository"};
            timer.expires_after(delay);
            auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec == asio::error::operation_aborted ||
                (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
                co_return prepare_error{git_errc::cancelled, "cancelled while waiting for the repository lock"};
            delay = std::min(delay * 2, 100ms);
        }
    }

    asio::awaitable<prepare_result> prepare(prepare_request req) {
        co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
        co_await asio::this_coro::throw_if_cancelled(false);
        ++prepares;
        auto started = std::chrono::steady_clock::now();
        auto fail = [&](git_errc code, std::string message) -> prepare_result {
            ++failures;
            log.warn("git.prepare_failed", {{"code", to_string(code)}, {"reason", message}});
            return prepare_error{code, std::move(message)};
        };

        auto parsed = parse_repo_url(req.url);
        if (!parsed) co_return fail(git_errc::invalid_url, "the repository URL is malformed or carries a password");
        const repo_url& url = *parsed;
        if (!cfg.schemes.allows(url.scheme))
            co_return fail(git_errc::scheme_not_allowed, "repository URL scheme '" + url.scheme +
                                                             "' is not allowed (allowed: " + cfg.schemes.to_string() + ")");
        if (!req.commit.empty() && (req.commit.size() < 7 || req.commit.size() > GIT_OID_HEXSZ || !is_hex(req.commit)))
            co_return fail(git_errc::ref_not_found, "'" + req.commit + "' is not a commit id (7 to 40 hex digits)");
        if (req.destination.empty()) co_return fail(git_errc::clone_failed, "no destination directory");

        const std::string key = cache_key(url, scope_for(req.credentials));
        const fs::path mirror = mirrors / (key + ".git");
        const fs::path lock_path = locks / (key + ".lock");
        const std::string what = req.commit.empty() ? (req.ref.empty() ? std::string("HEAD") : req.ref) : req.commit;
        auto lg = log.with({{"repo", url.normalized}, {"want", what}});

        lock_file lf;
        auto shared = co_await acquire(lf, lock_path, LOCK_SH);
        if (shared) co_return fail(shared->code, shared->message);
        ::futimens(lf.fd(), nullptr);  // last use, for LRU

        const std::string ref = req.ref;
        const std::string commit = req.commit;
        const auto staleness = cfg.ref_staleness;
        // Note: no temporaries with destructors inside co_await expressions
        // (GCC 12 coroutine bugs): pool functions are named locals, passed by reference.
        pool_fn<probe_outcome> probe_fn = [mirror, ref, commit, staleness](const std::atomic<bool>&) {
            return probe(mirror, ref, commit, staleness);
        };

        // 1. Shared lock: the mirror may already have what we need.
        probe_outcome pr = co_await detail::async_on_pool<probe_outcome>(pool, probe_fn, asio::use_awaitable);
        prepared_checkout pc;
        if (pr.commit) {
            pc.cache_hit = true;
            co_return co_await finish_checkout(req, mirror, *pr.commit, pc, started, lg);
        }

        // 2. Exclusive lock: look again (another job may have fetched), then fetch.
        ::flock(lf.fd(), LOCK_UN);
        auto exclusive = co_await acquire(lf, lock_path, LOCK_EX);
        if (exclusive) co_return fail(exclusive->code, exclusive->message);
        pr = co_await detail::async_on_pool<probe_outcome>(pool, probe_fn, asio::use_awaitable);
        if (pr.commit && (!commit.empty() || pr.fresh)) {
            pc.cache_hit = true;
            co_return co_await finish_checkout(req, mirror, *pr.commit, pc, started, lg);
        }

        const bool exists = pr.exists;
        pool_fn<network_outcome> net_fn = [mirror, tmp_root = tmp, exists, fetch_url = url.fetch_url,
                                           creds = req.credentials,
                                           trust = host_trust{cfg.ssh_known_hosts, url.port ? url.port : 22},
                                           progress = req.on_progress](const std::atomic<bool>& cancel) {
            return clone_or_fetch(mirror, tmp_root, exists, fetch_url, creds, trust, progress, cancel);
        };
        for (int attempt = 1;; ++attempt) {
            pc.attempts = attempt;
            if (exists) ++fetches;
            lg.info(exists ? "git.fetch" : "git.clone", {{"attempt", attempt}});
            network_outcome net = co_await detail::async_on_pool<network_outcome>(pool, net_fn, asio::use_awaitable);
            bool cancelled = net.cancelled ||
                             (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none;
            if (!net.failure) {
                if (net.cloned) {
                    ++clones;
                    pc.cloned = true;
                } else {
                    pc.fetched = true;
                }
                break;
            }
            auto code = classify(*net.failure, git_stage::fetch, cancelled);
            if (code == git_errc::cancelled) co_return fail(code, "cancelled while fetching the repository");
            auto delay = is_retryable(code) ? backoff_delay(cfg.retry, attempt + 1, jitter()) : std::nullopt;
            if (!delay) co_return fail(code, describe(code, url, *net.failure));
            lg.warn("git.retry", {{"attempt", attempt}, {"delay_ms", delay->count()}, {"reason", net.failure->message}});
            asio::steady_timer timer(co_await asio::this_coro::executor, *delay);
            auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec == asio::error::operation_aborted ||
                (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
                co_return fail(git_errc::cancelled, "cancelled while waiting to retry the fetch");
        }

        pool_fn<resolve_step> resolve_fn = [mirror, ref, commit](const std::atomic<bool>&) { return resolve_in(mirror, ref, commit); };
        resolve_step rs = co_await detail::async_on_pool<resolve_step>(pool, resolve_fn, asio::use_awaitable);
        if (rs.failure) co_return fail(classify(*rs.failure, git_stage::resolve, false), "cannot resolve '" + what + "': " + rs.failure->message);
        if (!rs.commit)
            co_return fail(git_errc::ref_not_found, (commit.empty() ? "ref '" + what + "' does not exist in "
                                                                    : "commit " + what + " is not on any branch or tag of ") +
                                                        url.normalized);
        prepare_result result = co_await finish_checkout(req, mirror, *rs.commit, pc, started, lg);
        lf.reset();
        if (result) schedule_eviction(key);
        co_return result;
    }

    // Checks the resolved commit out into req.destination and completes the result.
    asio::awaitable<prepare_result> finish_checkout(const prepare_request& req, const fs::path& mirror,
                                                    const resolved_commit& rc, prepared_checkout& pc,
                                                    std::chrono::steady_clock::time_point started, const faasd::logger& lg) {
        pool_fn<checkout_step> fn = [mirror, oid = rc.oid, dest = req.destination](const std::atomic<bool>&) {
            return checkout(mirror, oid, dest);
        };
        checkout_step step = co_await detail::async_on_pool<checkout_step>(pool, fn, asio::use_awaitable);
        if (step.failure) {
            std::error_code ec;
            fs::remove_all(req.destination, ec);
            ++failures;
            std::string message = "checkout failed: " + step.failure->message;
            lg.warn("git.prepare_failed", {{"code", "clone_failed"}, {"reason", message}});
            co_return prepare_error{git_errc::clone_failed, std::move(message)};
        }
        pc.commit = rc.oid;
        pc.ref = rc.ref;
        pc.files = step.files;
        if (pc.cache_hit) ++hits;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        lg.info("git.prepared", {{"commit", pc.commit}, {"cache_hit", pc.cache_hit}, {"cloned", pc.cloned},
                                 {"fetched", pc.fetched}, {"files", pc.files}, {"ms", ms.count()}});
        co_return pc;
    }

    static double jitter() {
        thread_local std::minstd_rand rng{std::random_device{}()};
        return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    }

    static std::string describe(git_errc code, const repo_url& url, const libgit2_failure& f) {
        switch (code) {
            case git_errc::repo_not_found: return "repository " + url.normalized + " not found: " + f.message;
            case git_errc::auth_failed: return "authentication to " + url.normalized + " failed: " + f.message;
            case git_errc::network_error: return "network error reaching " + url.normalized + ": " + f.message;
            default: return "cannot fetch " + url.normalized + ": " + f.message;
        }
    }

    void schedule_eviction(const std::string& just_used) {
        std::weak_ptr<impl> weak = weak_from_this();
        asio::post(pool, [weak, just_used] {
            if (auto self = weak.lock()) self->evict_now(just_used);
        });
    }

    // Blocking (pool thread): LRU eviction down to max_bytes.
    std::size_t evict_now(const std::string& keep) {
        std::vector<mirror_entry> entries;
        std::error_code ec;
        for (auto& e : fs::directory_iterator(mirrors, ec)) {
            auto name = e.path().filename().string();
            if (!name.ends_with(".git")) continue;
            mirror_entry m;
            m.key = name.substr(0, name.size() - 4);
            m.bytes = dir_bytes(e.path());
            m.last_used_ms = mtime_ms(locks / (m.key + ".lock"));
            if (m.last_used_ms == 0) m.last_used_ms = mtime_ms(e.path());
            m.in_use = m.key == keep;
            entries.push_back(std::move(m));
        }
        std::size_t removed = 0;
        for (const auto& key : plan_eviction(std::move(entries), cfg.max_bytes)) {
            lock_file lf;
            if (!lf.open(locks / (key + ".lock")) || ::flock(lf.fd(), LOCK_EX | LOCK_NB) != 0) continue;
            auto victim = mirrors / (key + ".git");
            auto doomed = tmp / ("evict-" + key + "." + random_hex(4));
            fs::rename(victim, doomed, ec);
            if (ec) continue;
            lf.reset();
            fs::remove_all(doomed, ec);
            ++evictions;
            ++removed;
            log.info("git.evicted", {{"key", key}});
        }
        return removed;
    }
};

repo_cache::repo_cache(cache_config cfg, faasd::logger log) {
    if (auto problem = validate(cfg); !problem.empty()) throw std::invalid_argument(problem);
    impl_ = std::make_shared<impl>(std::move(cfg), std::move(log));
}

repo_cache::~repo_cache() {
    // Let libgit2 work in flight finish here, so that the pool is never joined
    // from one of its own threads.
    impl_->pool.join();
}

asio::awaitable<prepare_result> repo_cache::prepare(prepare_request req) {
    // A coroutine of its own, so that enabling total cancellation inside does not
    // change the caller's cancellation filter.
    auto self = impl_;  // outlives the inner coroutine
    auto ex = co_await asio::this_coro::executor;
    auto op = self->prepare(std::move(req));
    prepare_result r = co_await asio::co_spawn(ex, std::move(op), asio::use_awaitable);
    co_return r;
}

asio::awaitable<std::size_t> repo_cache::evict() {
    auto self = impl_;
    impl* p = self.get();
    pool_fn<std::size_t> fn = [p](const std::atomic<bool>&) { return p->evict_now({}); };
    std::size_t n = co_await detail::async_on_pool<std::size_t>(self->pool, fn, asio::use_awaitable);
    co_return n;
}

std::uint64_t repo_cache::disk_usage() const { return dir_bytes(impl_->mirrors); }

cache_stats repo_cache::stats() const {
    cache_stats s;
    s.prepares = impl_->prepares;
    s.hits = impl_->hits;
    s.clones = impl_->clones;
    s.fetches = impl_->fetches;
    s.failures = impl_->failures;
    s.evictions = impl_->evictions;
    return s;
}

const cache_config& repo_cache::config() const noexcept { return impl_->cfg; }

}  // namespace faasd::git
