#include <faasd/sandbox/runner.hpp>

#include "cgroup.hpp"
#include "process.hpp"

#include <faasd/core/id.hpp>
#include <faasd/sandbox/bwrap.hpp>
#include <faasd/sandbox/disk.hpp>
#include <faasd/sandbox/output.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>
#include <type_traits>

namespace faasd::sandbox {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

void check(int rc, const std::string& what) {
    if (rc != 0) throw std::system_error(errno, std::generic_category(), what);
}

void make_dir(const fs::path& p, mode_t mode) {
    if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) throw std::system_error(errno, std::generic_category(), "mkdir " + p.string());
    check(::chmod(p.c_str(), mode), "chmod " + p.string());
}

// Writes a file with the given mode, owned by uid (if set). Refuses to follow symlinks.
void write_private(const fs::path& p, std::string_view data, mode_t mode, std::optional<uid_t> uid) {
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + p.string());
    std::size_t off = 0;
    while (off < data.size()) {
        auto n = ::write(fd, data.data() + off, data.size() - off);
        if (n <= 0) {
            auto e = errno;
            ::close(fd);
            throw std::system_error(e, std::generic_category(), "write " + p.string());
        }
        off += static_cast<std::size_t>(n);
    }
    if (uid) ::fchown(fd, *uid, static_cast<gid_t>(*uid));
    ::fchmod(fd, mode);
    ::close(fd);
}

// Overwrites a secret file with zeros, then unlinks it.
void wipe(const fs::path& p) {
    int fd = ::open(p.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st {};
        if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            std::string zeros(static_cast<std::size_t>(std::min<off_t>(st.st_size, 1 << 20)), '\0');
            off_t left = st.st_size;
            while (left > 0) {
                auto n = ::write(fd, zeros.data(), static_cast<std::size_t>(std::min<off_t>(left, static_cast<off_t>(zeros.size()))));
                if (n <= 0) break;
                left -= n;
            }
        }
        ::close(fd);
    }
    ::unlink(p.c_str());
}

void chown_tree(const fs::path& root, uid_t uid) {
    ::lchown(root.c_str(), uid, static_cast<gid_t>(uid));
    std::error_code ec;
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
        ::lchown(it->path().c_str(), uid, static_cast<gid_t>(uid));
}

std::string sanitize(std::string_view s) {
    std::string out;
    for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_');
    if (out.empty()) out = "job";
    if (out.size() > 64) out.resize(64);
    return out;
}

// Reads a small regular file without following symlinks; nullopt if absent, empty or too big.
struct small_file {
    bool exists = false;
    bool too_big = false;
    std::string data;
};
small_file read_small(const fs::path& p, std::uint64_t cap) {
    small_file out;
    int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return out;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return out;
    }
    out.exists = true;
    if (static_cast<std::uint64_t>(st.st_size) > cap) {
        out.too_big = true;
        ::close(fd);
        return out;
    }
    out.data.resize(static_cast<std::size_t>(st.st_size));
    std::size_t off = 0;
    while (off < out.data.size()) {
        auto n = ::read(fd, out.data.data() + off, out.data.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    out.data.resize(off);
    ::close(fd);
    return out;
}

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return std::string(s);
}

// Runs a command synchronously (start-up probes only).
std::pair<int, std::string> run_probe(const detail::spawn_spec& spec) {
    auto p = detail::spawn_process(spec);
    ::close(p.stdin_fd);
    std::string out;
    std::array<char, 4096> buf;
    for (int fd : {p.stderr_fd, p.stdout_fd}) {
        ssize_t n;
        while ((n = ::read(fd, buf.data(), buf.size())) > 0) out.append(buf.data(), static_cast<std::size_t>(n));
        ::close(fd);
    }
    ::close(p.exec_status_fd);
    ::close(p.pidfd);
    int status = 0;
    ::waitpid(p.pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

// Runs blocking f() on the pool and resumes the awaiting coroutine on its own
// executor (STYLE.md section 4); f's exception is rethrown there. f always
// runs to the end, whatever the caller's cancellation state: the caller's
// cancellation is not passed on (it would end the pool coroutine before f ran,
// or after a spawn f did, with an exception), and the caller checks its own
// state afterwards.
template <class F>
asio::awaitable<std::invoke_result_t<F&>> on_pool(asio::thread_pool& pool, F f) {
    using R = std::invoke_result_t<F&>;
    auto op = asio::co_spawn(
        pool.get_executor(), [f = std::move(f)]() mutable -> asio::awaitable<R> { co_return f(); },
        asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
    co_return co_await std::move(op);
}

// What a finished function left behind (blocking; run on the pool).
struct leftovers {
    std::vector<produced_output> outputs;  // regular files directly in output/, sorted by name
    small_file result;                     // result/result.json
    disk_usage disk;                       // of the watched directories
};

leftovers collect(const fs::path& output_dir, const fs::path& result_dir, const std::vector<fs::path>& roots,
                  std::uint64_t disk_limit, std::uint64_t result_cap) {
    leftovers l;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(output_dir, ec)) {
        std::error_code ec2;
        auto s = e.symlink_status(ec2);  // never through symlinks
        if (ec2 || !fs::is_regular_file(s)) continue;
        produced_output o{e.path().filename().string(), e.path(), fs::file_size(e.path(), ec2)};
        if (ec2) continue;
        l.outputs.push_back(std::move(o));
    }
    std::sort(l.outputs.begin(), l.outputs.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    l.result = read_small(result_dir / "result.json", result_cap);
    l.disk = blocking::measure_disk(roots, {}, disk_limit);
    return l;
}

}  // namespace

// ---- workspace --------------------------------------------------------------------

workspace::workspace(const fs::path& jobs_dir, std::string_view job_id, int attempt) {
    fs::create_directories(jobs_dir);
    root_ = jobs_dir / (sanitize(job_id) + "-" + std::to_string(attempt) + "-" + random_hex(4));
    if (::mkdir(root_.c_str(), 0711) != 0) throw std::system_error(errno, std::generic_category(), "mkdir " + root_.string());
    try {
        check(::chmod(root_.c_str(), 0711), "chmod");
        make_dir(code_dir(), 0755);
        make_dir(input_dir(), 0755);
        make_dir(sources_dir(), 0755);
        make_dir(output_dir(), 0700);
        make_dir(result_dir(), 0700);
        make_dir(secrets_dir(), 0700);
        make_dir(tmp_dir(), 0700);
        make_dir(root_ / "etc", 0755);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(root_, ec);
        throw;
    }
}

workspace::~workspace() {
    if (keep_) return;
    std::error_code ec;
    fs::remove_all(root_, ec);
    if (ec) {
        // A function may leave directories without write permission: restore and retry.
        for (fs::recursive_directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec))
            if (it->is_directory(ec)) ::chmod(it->path().c_str(), 0700);
        fs::remove_all(root_, ec);
    }
}

void workspace::write_input(const boost::json::value& data) const {
    write_private(input_dir() / "input.json", boost::json::serialize(data), 0644, std::nullopt);
}

std::optional<fs::path> workspace::source_path(std::string_view name) const {
    if (!is_plain_file_name(name)) return std::nullopt;
    return sources_dir() / std::string(name);
}

// ---- config -------------------------------------------------------------------------

const char* to_string(sandbox_mode m) noexcept { return m == sandbox_mode::none ? "none" : "bwrap"; }

std::optional<sandbox_mode> parse_sandbox_mode(std::string_view s) noexcept {
    if (s == "bwrap" || s == "bubblewrap") return sandbox_mode::bubblewrap;
    if (s == "none") return sandbox_mode::none;
    return std::nullopt;
}

std::string validate(const sandbox_config& c) {
    if (auto l = validate(c.defaults); !l.empty()) return l;
    if (c.cgroups != "auto" && c.cgroups != "off") return "cgroups must be auto or off";
    if (c.cgroup_parent.empty() || c.cgroup_parent.front() == '/' || c.cgroup_parent.find("..") != std::string::npos)
        return "the cgroup parent must be a relative path without '..'";
    if (c.uid_base != 0 && (c.uid_base < 1000 || c.uid_count == 0 || c.uid_base + c.uid_count < c.uid_base))
        return "sandbox uids must be a non-empty range starting at 1000 or above (or uid base 0 to disable)";
    if (c.mode == sandbox_mode::bubblewrap && c.bwrap.empty()) return "the bwrap path is empty";
    if (c.path_env.empty()) return "the function PATH is empty";
    return {};
}

// ---- the runner ------------------------------------------------------------------

namespace {

// Shared by the run coroutine, its readers and its timers (loop thread only).
struct run_state : std::enable_shared_from_this<run_state> {
    run_state(asio::any_io_executor ex, std::uint64_t cap)
        : pidfd(ex), out(ex), err(ex), in(ex), exec_status(ex), wall(ex), grace(ex), readers_done(ex), watch_timer(ex),
          watch_done(ex), out_cap(cap), err_cap(cap) {}

    pid_t pid = -1;
    bool reaped = false;
    bool bwrap = false;
    asio::posix::stream_descriptor pidfd, out, err, in, exec_status;
    asio::steady_timer wall, grace, readers_done, watch_timer, watch_done;
    capped_output out_cap, err_cap;
    int readers_left = 2;
    bool timed_out = false, cancelled = false, output_exceeded = false, terminating = false;
    bool disk_exceeded = false;  // the watcher killed the job for its disk use
    bool cpu_exceeded = false;   // the watcher killed the job for its cgroup CPU time
    std::string disk_why;
    std::uint64_t disk_peak = 0;  // largest sample
    bool watch_stop = false, watch_finished = false;
    std::chrono::milliseconds grace_period{0};
    std::uint64_t kill_bytes = 0;
    detail::job_cgroup* cg = nullptr;

    // SIGTERM to the function (not to bwrap: it would take the sandbox down at
    // once), then SIGKILL to everything after the grace period.
    void terminate() {
        if (terminating || reaped) return;
        terminating = true;
        signal_function(SIGTERM);
        grace.expires_after(grace_period);
        grace.async_wait([w = weak_from_this()](boost::system::error_code ec) {
            if (auto s = w.lock(); s && !ec) s->kill_now();
        });
    }

    void signal_function(int sig) {
        if (reaped) return;
        if (!bwrap) ::kill(-pid, sig);
        std::vector<pid_t> targets = cg ? cg->pids() : std::vector<pid_t>{};
        auto more = detail::descendants(pid);
        targets.insert(targets.end(), more.begin(), more.end());
        for (pid_t p : targets)
            if (p != pid) ::kill(p, sig);
    }

    void kill_now() {
        if (!reaped) {
            ::kill(-pid, SIGKILL);  // bwrap (its --die-with-parent child follows) or the function's group
            for (pid_t p : detail::descendants(pid)) ::kill(p, SIGKILL);
        }
        if (cg) cg->kill_all();
    }

    void reader_done() {
        if (--readers_left == 0) readers_done.cancel();
    }

    // Stops the watcher (it finishes its scan in flight, then watch_done fires).
    void stop_watching() {
        watch_stop = true;
        watch_timer.cancel();
    }
};

// What the usage watcher of one run looks at.
struct usage_watch {
    std::vector<fs::path> roots;                 // the job's writable directories on the host
    std::uint64_t disk_limit = 0;
    std::uint64_t cpu_limit_usec = 0;            // 0: no job-wide CPU check (no cgroup accounting)
    std::shared_ptr<detail::job_cgroup> cg;      // processes and CPU time, when there is a cgroup
};

struct usage_sample {
    disk_usage disk;
    std::uint64_t cpu_usec = 0;
};

// Blocking (pool): one sample of a running job.
usage_sample sample_usage(const usage_watch& w, pid_t top) {
    usage_sample s;
    // The cgroup holds every process of the job; without one, the descendants
    // of the top process (a process that escaped them escapes this count).
    std::vector<pid_t> pids = w.cg ? w.cg->pids() : detail::descendants(top);
    if (!w.cg) pids.push_back(top);
    s.disk = blocking::measure_disk(w.roots, pids, w.disk_limit);
    if (w.cg && w.cpu_limit_usec > 0) s.cpu_usec = w.cg->cpu_usec();
    return s;
}

// Samples the job's disk use (and its cgroup CPU time) while it runs, and
// kills it when either passes its limit. Scans run on the pool; how often is
// next_disk_sample's decision. Ends when stop_watching() is called or after a kill.
asio::awaitable<void> watch_usage(std::shared_ptr<run_state> st, asio::thread_pool& pool, usage_watch w,
                                  faasd::logger lg) {
    using clock = std::chrono::steady_clock;
    try {
        std::uint64_t last_bytes = 0;
        auto last_at = clock::now();
        std::chrono::milliseconds wait = disk_sample_min * 2;
        while (!st->watch_stop) {
            st->watch_timer.expires_after(wait);
            co_await st->watch_timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (st->watch_stop) break;
            const auto t0 = clock::now();
            auto op = on_pool(pool, [w, top = st->pid] { return sample_usage(w, top); });
            usage_sample s = co_await std::move(op);
            const auto t1 = clock::now();
            if (st->watch_stop) break;  // reaped meanwhile: the final check decides
            st->disk_peak = std::max(st->disk_peak, s.disk.bytes);
            if (s.disk.over) {
                st->disk_exceeded = true;
                st->disk_why = s.disk.why;
                lg.info("sandbox.disk_limit", {{"bytes", s.disk.bytes},
                                               {"unlinked_bytes", s.disk.unlinked_bytes},
                                               {"entries", s.disk.entries},
                                               {"why", s.disk.why}});
                st->kill_now();
                break;
            }
            if (w.cpu_limit_usec > 0 && s.cpu_usec >= w.cpu_limit_usec) {
                st->cpu_exceeded = true;
                lg.info("sandbox.cpu_limit", {{"cpu_ms", static_cast<std::int64_t>(s.cpu_usec / 1000)}});
                st->kill_now();
                break;
            }
            const double dt = std::chrono::duration<double>(t1 - last_at).count();
            const double rate = s.disk.bytes > last_bytes && dt > 0 ? static_cast<double>(s.disk.bytes - last_bytes) / dt : 0;
            wait = next_disk_sample(s.disk.bytes, w.disk_limit, rate,
                                    std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0));
            last_bytes = s.disk.bytes;
            last_at = t1;
        }
    } catch (const std::exception& e) {
        lg.error("sandbox.watch_failed", {{"error", e.what()}});
    }
    st->watch_finished = true;
    st->watch_done.cancel();
}

asio::awaitable<void> read_stream(std::shared_ptr<run_state> st, asio::posix::stream_descriptor& sd, capped_output& cap) {
    std::array<char, 64 * 1024> buf;
    for (;;) {
        auto [ec, n] = co_await sd.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        if (n > 0) {
            cap.append(std::string_view(buf.data(), n));
            if (st->kill_bytes != 0 && cap.total_bytes() > st->kill_bytes && !st->output_exceeded) {
                st->output_exceeded = true;
                st->kill_now();
            }
        }
        if (ec) break;
    }
    st->reader_done();
}

asio::awaitable<void> write_stdin(std::shared_ptr<run_state> st, std::string data) {
    if (!data.empty()) co_await asio::async_write(st->in, asio::buffer(data), asio::as_tuple(asio::use_awaitable));
    boost::system::error_code ec;
    st->in.close(ec);
}

}  // namespace

struct function_runner::impl : std::enable_shared_from_this<impl> {
    sandbox_config cfg;
    faasd::logger log;
    sandbox_capabilities caps;
    std::string bwrap_path;
    std::unique_ptr<detail::cgroup_manager> cgroups;
    std::vector<system_path> system;
    std::vector<std::string> etc_files;
    std::vector<bool> uid_busy;
    std::vector<std::uint64_t> uid_last_used;
    std::uint64_t runs = 0;
    bool disable_userns = false;  // decided by smoke_test()
    // Blocking work off the loop: chown of a workspace, the output
    // scan, workspace removal (files); the disk samples of running jobs on a
    // thread of their own, so that a big removal cannot delay a kill (watch).
    asio::thread_pool files{2};
    asio::thread_pool watch{1};
    // Processes are started from this thread (spawn_process suspends its
    // caller until exec). It lives as long as the runner: the children's
    // parent-death signal follows the thread that started them.
    asio::thread_pool spawner{1};

    impl(sandbox_config c, faasd::logger l) : cfg(std::move(c)), log(std::move(l)) {
        if (auto problem = validate(cfg); !problem.empty()) throw std::invalid_argument(problem);
        ::signal(SIGPIPE, SIG_IGN);
        int probe_fd = detail::pidfd_open(::getpid());
        if (probe_fd < 0) throw std::runtime_error("pidfd_open is not available (Linux 5.3+ is required)");
        ::close(probe_fd);

        caps.mode = cfg.mode;
        caps.uid_isolation = ::geteuid() == 0 && cfg.uid_base != 0 && cfg.uid_count > 0;
        if (caps.uid_isolation) {
            uid_busy.assign(cfg.uid_count, false);
            uid_last_used.assign(cfg.uid_count, 0);
        }
        std::string cg_detail = "cgroups off";
        if (cfg.cgroups == "auto") {
            cgroups = detail::cgroup_manager::detect(cfg.cgroup_parent, cg_detail);
            if (cgroups) {
                caps.cgroup_version = cgroups->version();
                caps.memory_cgroup = cgroups->memory();
                caps.pids_cgroup = cgroups->pids();
                caps.cpu_cgroup = cgroups->cpu();
            }
        }
        for (const auto& p : cfg.system_paths) {
            struct stat st {};
            if (::lstat(p.c_str(), &st) != 0) continue;
            if (S_ISLNK(st.st_mode)) {
                std::array<char, 4096> buf;
                auto n = ::readlink(p.c_str(), buf.data(), buf.size() - 1);
                if (n > 0) system.push_back({p, std::string(buf.data(), static_cast<std::size_t>(n))});
            } else if (S_ISDIR(st.st_mode)) {
                system.push_back({p, ""});
            }
        }
        for (const auto& e : cfg.etc_paths)
            if (::access(e.c_str(), F_OK) == 0) etc_files.push_back(e);

        std::ostringstream d;
        d << "mode=" << to_string(cfg.mode) << "; " << cg_detail << "; memory limit by "
          << (caps.memory_cgroup ? "cgroup" : "RLIMIT_AS") << "; process limit by "
          << (caps.pids_cgroup ? "cgroup pids.max" : caps.uid_isolation ? "RLIMIT_NPROC (per-run uid)" : "nothing")
          << (caps.pids_cgroup && caps.uid_isolation ? " and RLIMIT_NPROC (per-run uid)" : "")
          << "; CPU limit per " << (caps.cpu_cgroup ? "job (cgroup) and process" : "process")
          << "; uids " << (caps.uid_isolation ? std::to_string(cfg.uid_base) + "+" + std::to_string(cfg.uid_count) : "not isolated");
        caps.detail = d.str();

        if (cfg.mode == sandbox_mode::bubblewrap) {
            bwrap_path = detail::find_in_path(cfg.bwrap, ::getenv("PATH") ? ::getenv("PATH") : "/usr/bin:/bin");
            if (bwrap_path.empty()) throw std::runtime_error("bubblewrap (" + cfg.bwrap + ") not found; install it or use --sandbox=none");
            smoke_test();
            log.info("sandbox.ready", {{"detail", caps.detail}});
        } else {
            // Functions run with the worker's uid: without this they could read
            // /proc/<worker>/environ (the credentials key) or ptrace the worker.
            const bool shared_uid = !caps.uid_isolation;
            if (shared_uid) ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
            log.warn("sandbox.disabled",
                     {{"detail", caps.detail},
                      {"note", "functions run without namespaces: rlimits, process group, clean environment only"},
                      {"worker_dumpable", !shared_uid}});
        }
    }

    // The job's directories that the function can write on the host's disk
    // (in the sandbox, /tmp is a size-limited tmpfs of its own).
    std::vector<fs::path> watched_roots(const workspace& ws) const {
        std::vector<fs::path> roots{ws.output_dir(), ws.result_dir()};
        if (cfg.mode == sandbox_mode::none) roots.push_back(ws.tmp_dir());
        return roots;
    }

    ~impl() {
        // Let queued removals finish (the pools' destructors would drop them).
        files.join();
        watch.join();
        spawner.join();
    }

    // Starts `true` in a sandbox once, so that a host without user namespaces fails at start-up.
    // Also finds out whether this bwrap can forbid nested user namespaces
    // (--disable-userns, bwrap 0.8+); they are allowed only if it cannot.
    void smoke_test() {
        auto tmp = fs::temp_directory_path() / ("faasd-probe-" + random_hex(6));
        fs::create_directories(tmp);
        ::chmod(tmp.c_str(), 0755);
        auto probe = [&](bool no_userns) {
            disable_userns = no_userns;
            bwrap_plan plan = base_plan(tmp, tmp, tmp, tmp, "", {"true"}, false, 16 << 20);
            plan.env = {{"PATH", cfg.path_env}};
            detail::spawn_spec spec;
            spec.argv = build_bwrap_argv(plan);
            spec.exe = bwrap_path;
            spec.env = {"PATH=" + cfg.path_env};
            if (caps.uid_isolation) spec.uid = cfg.uid_base;
            return run_probe(spec);
        };
        auto [code, text] = probe(true);
        if (code != 0) std::tie(code, text) = probe(false);
        std::error_code ec;
        fs::remove_all(tmp, ec);
        if (code != 0)
            throw std::runtime_error("bubblewrap cannot create a sandbox here (" + trim(text) +
                                     "); enable user namespaces or use --sandbox=none");
        caps.userns_disabled = disable_userns;
        caps.detail += disable_userns ? "; nested user namespaces blocked"
                                      : "; nested user namespaces allowed (bwrap without --disable-userns)";
    }

    bwrap_plan base_plan(const fs::path& code, const fs::path& input, const fs::path& output, const fs::path& result,
                         const std::string& secrets, std::vector<std::string> argv, bool network, std::uint64_t tmp_bytes) {
        bwrap_plan p;
        p.bwrap = bwrap_path;
        p.system = system;
        for (const auto& e : etc_files) p.etc_files.push_back(e);
        if (network)
            for (const char* e : {"/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/gai.conf"})
                if (::access(e, F_OK) == 0) p.etc_files.push_back(e);
        p.code_dir = code.string();
        p.input_dir = input.string();
        p.output_dir = output.string();
        p.result_dir = result.string();
        p.secrets_dir = secrets;
        p.tmp_bytes = tmp_bytes;
        p.network = network;
        p.map_to_nobody = ::geteuid() == 0 && !caps.uid_isolation;
        p.disable_userns = disable_userns;
        p.argv = std::move(argv);
        return p;
    }

    // A free per-run uid, least recently used first (a killed job's processes may
    // still be exiting under the previous one). nullopt slot = no uid isolation;
    // false = cancelled while waiting.
    asio::awaitable<std::pair<bool, std::optional<std::size_t>>> acquire_uid() {
        if (!caps.uid_isolation) co_return std::pair{true, std::optional<std::size_t>{}};
        asio::steady_timer timer(co_await asio::this_coro::executor);
        for (;;) {
            std::optional<std::size_t> best;
            for (std::size_t i = 0; i < uid_busy.size(); ++i)
                if (!uid_busy[i] && (!best || uid_last_used[i] < uid_last_used[*best])) best = i;
            if (best) {
                uid_busy[*best] = true;
                uid_last_used[*best] = ++runs;
                co_return std::pair{true, best};
            }
            timer.expires_after(20ms);
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
                co_return std::pair{false, std::optional<std::size_t>{}};
        }
    }

    asio::awaitable<run_result> run(run_request req) {
        co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
        co_await asio::this_coro::throw_if_cancelled(false);
        if (!req.ws) throw std::invalid_argument("run_request without a workspace");
        const workspace& ws = *req.ws;
        const limits lim = req.lim.value_or(cfg.defaults);
        if (auto problem = validate(lim); !problem.empty()) throw std::invalid_argument(problem);
        const bool sandboxed = cfg.mode == sandbox_mode::bubblewrap;
        const bool network = req.command.wants_network && cfg.allow_network;
        auto ex = co_await asio::this_coro::executor;
        auto lg = log.with({{"job", req.job_id}, {"attempt", req.attempt}, {"sandbox", to_string(cfg.mode)}});
        auto started = std::chrono::steady_clock::now();

        auto [got_uid, slot] = co_await acquire_uid();
        if (!got_uid) {
            exit_observation obs;
            obs.cancelled = true;
            run_result cancelled;
            cancelled.status = classify(obs);
            co_return cancelled;
        }
        std::optional<uid_t> uid;
        if (slot) uid = static_cast<uid_t>(cfg.uid_base + *slot);
        const fs::path creds_file = ws.secrets_dir() / "credentials.json";
        std::shared_ptr<detail::job_cgroup> cg;  // shared with the usage watcher's scans
        // Undo everything, whatever happens below.
        struct cleanup_t {
            impl* self;
            std::optional<std::size_t> slot;
            fs::path creds;
            ~cleanup_t() {
                wipe(creds);
                if (slot) self->uid_busy[*slot] = false;
            }
        } cleanup{this, slot, creds_file};

        // The workspace as the function sees it.
        write_private(creds_file, req.credentials_json.empty() ? "{}" : req.credentials_json, 0600, uid);
        const std::string run_uid = uid ? std::to_string(*uid) : std::to_string(::geteuid());
        if (sandboxed) {
            const std::string inner = ::geteuid() == 0 && !uid ? "65534" : run_uid;
            write_private(ws.root() / "etc" / "passwd", "faasd:x:" + inner + ":" + inner + ":faasd:/tmp:/bin/sh\n", 0644, std::nullopt);
            write_private(ws.root() / "etc" / "group", "faasd:x:" + inner + ":\n", 0644, std::nullopt);
        }
        if (uid) {
            // The whole checkout: a big repository takes a while.
            auto op = on_pool(files, [root = ws.root(), u = *uid] { chown_tree(root, u); });
            co_await std::move(op);
        }

        if (cgroups) {
            // The +3 leaves room for bwrap's own processes.
            cg = cgroups->create("job-" + sanitize(req.job_id) + "-" + random_hex(4), lim.memory_bytes,
                                 lim.max_processes + 3);
        }

        // Environment: defaults < manifest < job < faasd's own variables.
        std::map<std::string, std::string> env{{"PATH", cfg.path_env}, {"LANG", "C.UTF-8"}};
        for (const auto& [k, v] : req.command.env)
            if (is_valid_env_name(k)) env[k] = v;
        for (const auto& [k, v] : req.env)
            if (is_valid_env_name(k) && k != "PATH") env[k] = v;
        const fs::path in_dir = sandboxed ? fs::path(sandbox_input_dir) : ws.input_dir();
        const fs::path out_dir = sandboxed ? fs::path(sandbox_output_dir) : ws.output_dir();
        const fs::path res_dir = sandboxed ? fs::path(sandbox_result_dir) : ws.result_dir();
        const fs::path sec_dir = sandboxed ? fs::path(sandbox_secrets_dir) : ws.secrets_dir();
        const std::string home = sandboxed ? "/tmp" : ws.tmp_dir().string();
        env["HOME"] = home;
        env["TMPDIR"] = home;
        env["FAASD_JOB_ID"] = req.job_id;
        env["FAASD_ATTEMPT"] = std::to_string(req.attempt);
        env["FAASD_INPUT_DIR"] = in_dir.string();
        env["FAASD_INPUT_FILE"] = (in_dir / "input.json").string();
        env["FAASD_SOURCES_DIR"] = (in_dir / "sources").string();
        env["FAASD_OUTPUT_DIR"] = out_dir.string();
        env["FAASD_RESULT_FILE"] = (res_dir / "result.json").string();
        env["FAASD_CREDENTIALS_FILE"] = (sec_dir / "credentials.json").string();
        env["FAASD_SANDBOX"] = to_string(cfg.mode);

        detail::spawn_spec spec;
        const rlim_t cpu = static_cast<rlim_t>(lim.cpu.count());
        spec.rlimits = {{RLIMIT_CPU, cpu, cpu + 1},
                        {RLIMIT_FSIZE, lim.disk_bytes, lim.disk_bytes},
                        {RLIMIT_NOFILE, lim.open_files, lim.open_files},
                        {RLIMIT_CORE, 0, 0}};
        if (!caps.memory_cgroup) spec.rlimits.push_back({RLIMIT_AS, lim.memory_bytes, lim.memory_bytes});
        if (uid) {
            // With a pids cgroup RLIMIT_NPROC is only a backstop, so that the cgroup
            // (which counts what hit it) is the limit that fires.
            rlim_t nproc = (lim.max_processes + 3u) * (caps.pids_cgroup ? 2u : 1u);
            spec.rlimits.push_back({RLIMIT_NPROC, nproc, nproc});
        }
        spec.uid = uid;
        if (cg) spec.cgroup_fds = cg->procs_fds();
        std::optional<std::string> not_found;
        if (sandboxed) {
            auto plan = base_plan(ws.code_dir(), ws.input_dir(), ws.output_dir(), ws.result_dir(), ws.secrets_dir().string(),
                                  req.command.argv, network, lim.disk_bytes);
            plan.passwd_file = (ws.root() / "etc" / "passwd").string();
            plan.group_file = (ws.root() / "etc" / "group").string();
            plan.env = env;
            spec.argv = build_bwrap_argv(plan);
            spec.exe = bwrap_path;
            spec.env = {"PATH=" + cfg.path_env};
        } else {
            spec.argv = req.command.argv;
            const auto& a0 = req.command.argv.front();
            spec.exe = a0.find('/') != std::string::npos ? a0 : detail::find_in_path(a0, cfg.path_env);
            if (spec.exe.empty()) not_found = a0;
            for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);
            spec.cwd = ws.code_dir().string();
            spec.no_new_privs = true;  // bwrap sets it for the function itself (and may need to be setuid)
        }

        if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) {
            // Cancelled while the workspace was being prepared: nothing was started.
            exit_observation obs;
            obs.cancelled = true;
            run_result cancelled;
            cancelled.status = classify(obs);
            co_return cancelled;
        }

        auto st = std::make_shared<run_state>(ex, lim.output_bytes);
        st->bwrap = sandboxed;
        st->grace_period = lim.kill_grace;
        st->kill_bytes = lim.output_kill_bytes;
        st->cg = cg.get();

        run_result res;
        res.network = network;
        if (not_found) {
            res.status.outcome = run_outcome::exit_nonzero;
            res.status.exit_code = 127;
            res.status.message = "command not found: " + *not_found;
            res.stderr_text = "faasd: " + *not_found + ": command not found\n";
            co_return res;
        }

        // Started from the spawner thread: the caller is suspended until the
        // child execs, and joining a v1 cgroup alone takes ~10 ms here.
        const auto spawned_at = std::chrono::steady_clock::now();
        auto spawn_op = on_pool(spawner, [&spec] { return detail::spawn_process(spec); });
        auto proc = co_await std::move(spawn_op);
        const auto spawn_returned = std::chrono::steady_clock::now();
        st->pid = proc.pid;
        st->pidfd.assign(proc.pidfd);
        st->in.assign(proc.stdin_fd);
        st->out.assign(proc.stdout_fd);
        st->err.assign(proc.stderr_fd);
        st->exec_status.assign(proc.exec_status_fd);
        // If anything below throws, the processes must not outlive the run.
        struct reap_guard {
            run_state* st;
            ~reap_guard() {
                st->stop_watching();
                if (st->reaped) return;
                st->kill_now();
                ::waitpid(st->pid, nullptr, 0);  // exceptional path: SIGKILLed, returns at once
                st->reaped = true;
            }
        } reap_on_throw{st.get()};
        st->readers_done.expires_at(std::chrono::steady_clock::time_point::max());
        st->watch_done.expires_at(std::chrono::steady_clock::time_point::max());
        auto log_error = [lg](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                lg.error("sandbox.io_failed", {{"error", x.what()}});
            }
        };
        asio::co_spawn(ex, read_stream(st, st->out, st->out_cap), log_error);
        asio::co_spawn(ex, read_stream(st, st->err, st->err_cap), log_error);
        asio::co_spawn(ex, write_stdin(st, std::move(req.stdin_data)), log_error);
        {
            usage_watch w;
            w.roots = watched_roots(ws);
            w.disk_limit = lim.disk_bytes;
            w.cg = cg;
            if (cg && cg->has_cpu_accounting())
                w.cpu_limit_usec = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(lim.cpu).count());
            asio::co_spawn(ex, watch_usage(st, watch, std::move(w), lg), log_error);
        }

        // Did the child get as far as exec?
        std::array<int, 2> child_error{0, 0};
        auto [sec, sn] = co_await asio::async_read(st->exec_status, asio::buffer(child_error),
                                                   asio::as_tuple(asio::use_awaitable));
        st->exec_status.close(sec);
        std::optional<std::string> exec_failure;
        if (sn == sizeof child_error)
            exec_failure = std::string(detail::to_string(static_cast<detail::child_stage>(child_error[0]))) + ": " +
                           std::strerror(child_error[1]);

        st->wall.expires_after(lim.timeout);
        st->wall.async_wait([w = std::weak_ptr<run_state>(st)](boost::system::error_code ec) {
            if (auto s = w.lock(); s && !ec) {
                s->timed_out = true;
                s->terminate();
            }
        });

        // A cancellation that arrived while the process was being started (or
        // while its exec status was read) was not seen by any wait: act on it.
        if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) {
            lg.info("sandbox.cancel_requested");
            st->cancelled = true;
            st->terminate();
        }
        // Wait for the top process; a cancellation request terminates it and we keep waiting.
        for (;;) {
            auto [ec] = co_await st->pidfd.async_wait(asio::posix::descriptor_base::wait_read,
                                                      asio::as_tuple(asio::use_awaitable));
            if (!ec) break;
            if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) {
                if (!st->cancelled) lg.info("sandbox.cancel_requested");
                st->cancelled = true;
                st->terminate();
                co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
            } else if (ec != asio::error::operation_aborted) {
                throw boost::system::system_error(ec, "waiting for the function");
            }
        }
        const auto exited_at = std::chrono::steady_clock::now();
        // The watcher finishes its scan in flight before the pid is reaped (it may signal it).
        st->stop_watching();
        if (!st->watch_finished) co_await st->watch_done.async_wait(asio::as_tuple(asio::use_awaitable));
        int wstatus = 0;
        struct rusage ru {};
        while (::wait4(st->pid, &wstatus, WNOHANG, &ru) == -1 && errno == EINTR) {
        }
        // Leftovers (--sandbox=none background processes, or anything that escaped the group).
        ::kill(-st->pid, SIGKILL);
        st->reaped = true;
        if (cg) cg->kill_all();
        st->wall.cancel();
        st->grace.cancel();

        // Drain what is left in the pipes; a process that escaped everything cannot hold us.
        if (st->readers_left > 0) {
            st->readers_done.expires_after(2s);
            co_await st->readers_done.async_wait(asio::as_tuple(asio::use_awaitable));
            if (st->readers_left > 0) {
                boost::system::error_code ignored;
                st->out.close(ignored);
                st->err.close(ignored);
                lg.warn("sandbox.pipes_held_open");
            }
        }
        {
            boost::system::error_code ignored;
            st->in.close(ignored);
        }

        res.wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        res.cpu = std::chrono::seconds(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                  std::chrono::microseconds(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
        res.max_rss_kb = static_cast<std::uint64_t>(ru.ru_maxrss);
        // bwrap does not reap its pid 1, so rusage misses the function: the cgroup knows better.
        if (cg) res.cpu = std::max(res.cpu, std::chrono::microseconds(cg->cpu_usec()));
        res.stdout_text = st->out_cap.text();
        res.stderr_text = st->err_cap.text();
        res.stdout_truncated = st->out_cap.truncated();
        res.stderr_truncated = st->err_cap.truncated();
        res.stdout_bytes = st->out_cap.total_bytes();
        res.stderr_bytes = st->err_cap.total_bytes();
        if (exec_failure) res.stderr_text += "faasd: cannot start the function: " + *exec_failure + "\n";

        // What the function left: output files, result.json, and the disk it
        // used all told (it may have finished between two samples).
        auto collect_op = on_pool(files, [out = ws.output_dir(), resdir = ws.result_dir(), roots = watched_roots(ws),
                                          disk = lim.disk_bytes, cap = lim.output_bytes] {
            return collect(out, resdir, roots, disk, cap);
        });
        auto left = co_await std::move(collect_op);
        res.outputs = std::move(left.outputs);
        auto& result_file = left.result;
        if (left.disk.over && !st->disk_exceeded) {
            st->disk_exceeded = true;
            st->disk_why = left.disk.why;
        }
        st->disk_peak = std::max(st->disk_peak, left.disk.bytes);

        exit_observation obs;
        obs.exited = WIFEXITED(wstatus);
        obs.exit_code = obs.exited ? WEXITSTATUS(wstatus) : 0;
        obs.signal = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
        obs.via_bwrap = sandboxed;
        obs.timed_out = st->timed_out;
        obs.cancelled = st->cancelled;
        obs.output_exceeded = st->output_exceeded;
        obs.cpu_exceeded = st->cpu_exceeded || res.cpu >= std::chrono::duration_cast<std::chrono::microseconds>(lim.cpu);
        obs.oom_kills = cg ? cg->oom_kills() : 0;
        obs.pids_max_hits = cg ? cg->pids_max_hits() : 0;
        obs.disk_exceeded = st->disk_exceeded;
        auto tail = std::string_view(st->err_cap.kept());
        if (tail.size() > 4096) tail = tail.substr(tail.size() - 4096);
        obs.stderr_tail = tail;
        obs.memory_by_cgroup = caps.memory_cgroup;
        obs.pids_by_cgroup = caps.pids_cgroup;
        res.status = classify(obs);
        if (res.status.outcome == run_outcome::disk_limit && !st->disk_why.empty())
            res.status.message += " (" + st->disk_why + ")";
        if (exec_failure && !sandboxed && res.status.outcome == run_outcome::exit_nonzero)
            res.status.message = "cannot start the function: " + *exec_failure;
        else if (exec_failure && sandboxed)
            throw std::runtime_error("cannot start bwrap: " + *exec_failure);

        // The result: result.json wins over stdout.
        if (result_file.too_big) {
            res.result_error = "result.json is larger than " + std::to_string(lim.output_bytes) + " bytes";
        } else if (result_file.exists && !trim(result_file.data).empty()) {
            boost::system::error_code jec;
            auto v = boost::json::parse(result_file.data, jec);
            if (jec) res.result_error = "result.json is not valid JSON: " + jec.message();
            else {
                res.result = std::move(v);
                res.result_source = "file";
            }
        }
        if (res.result_source.empty() && !res.stdout_truncated) {
            auto text = trim(st->out_cap.kept());
            if (!text.empty()) {
                boost::system::error_code jec;
                auto v = boost::json::parse(text, jec);
                if (!jec) {
                    res.result = std::move(v);
                    res.result_source = "stdout";
                }
            }
        }

        // Remove the cgroup once its processes are gone (they were killed above).
        if (cg) {
            asio::steady_timer t(ex);
            bool removed = cg->remove();
            auto delay = 1ms;  // the pid namespace is usually gone within a few milliseconds
            for (int i = 0; i < 60 && !removed; ++i, delay = std::min(delay * 2, 20ms)) {
                cg->kill_all();
                t.expires_after(delay);
                co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
                removed = cg->remove();
            }
            if (!removed) lg.warn("sandbox.cgroup_busy");
        }

        lg.info("sandbox.finished",
                {{"outcome", to_string(res.status.outcome)},
                 {"exit", res.status.exit_code ? *res.status.exit_code : -1},
                 {"signal", res.status.signal ? *res.status.signal : 0},
                 {"ms", res.wall.count()},
                 {"cpu_ms", static_cast<std::int64_t>(res.cpu.count() / 1000)},
                 {"stdout_bytes", res.stdout_bytes},
                 {"stderr_bytes", res.stderr_bytes},
                 {"outputs", res.outputs.size()},
                 {"disk_bytes", st->disk_peak},
                 {"network", network},
                 {"setup_ms", std::chrono::duration<double, std::milli>(spawned_at - started).count()},
                 {"spawn_ms", std::chrono::duration<double, std::milli>(spawn_returned - spawned_at).count()},
                 {"cleanup_ms", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - exited_at).count()}});
        co_return res;
    }
};

function_runner::function_runner(sandbox_config cfg, faasd::logger log)
    : impl_(std::make_shared<impl>(std::move(cfg), std::move(log))) {}

function_runner::~function_runner() = default;

asio::awaitable<run_result> function_runner::run(run_request req) {
    auto self = impl_;
    auto ex = co_await asio::this_coro::executor;
    auto op = self->run(std::move(req));  // no temporaries inside co_await (GCC 12)
    run_result r = co_await asio::co_spawn(ex, std::move(op), asio::use_awaitable);
    co_return r;
}

void function_runner::discard(std::unique_ptr<workspace> ws) {
    if (!ws) return;
    asio::post(impl_->files, [w = std::shared_ptr<workspace>(std::move(ws))]() mutable { w.reset(); });
}

const sandbox_capabilities& function_runner::capabilities() const noexcept { return impl_->caps; }
const sandbox_config& function_runner::config() const noexcept { return impl_->cfg; }

}  // namespace faasd::sandbox
