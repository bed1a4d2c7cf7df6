#pragma once
// Running a function: a job's workspace on disk, the sandbox configuration,
// and the asynchronous runner (bubblewrap or no sandbox, limits, capped
// output, cancellation). docs/functions.md is the contract for functions;
// docs/worker-internals.md describes the mechanics.

#include <faasd/core/log.hpp>
#include <faasd/sandbox/limits.hpp>
#include <faasd/sandbox/manifest.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::sandbox {

/// One attempt's private directory tree, removed on destruction:
///
///   <jobs_dir>/<job>-<attempt>-<rand>/
///     code/     the checkout (the git module writes here); read-only in the sandbox, the cwd
///     input/    input.json and sources/<name> (the worker writes here)
///     output/   files for the job's sinks (the function writes here)
///     result/   result.json (optional, the function writes here)
///     secrets/  credentials.json (0600), only during the run
///     tmp/      HOME and TMPDIR in --sandbox=none mode
///     etc/      synthetic passwd/group for the sandbox
class workspace {
public:
    /// Creates the tree (mode 0711 base, 0700 leaves). Throws std::system_error.
    workspace(const std::filesystem::path& jobs_dir, std::string_view job_id, int attempt);
    ~workspace();
    workspace(const workspace&) = delete;
    workspace& operator=(const workspace&) = delete;

    const std::filesystem::path& root() const noexcept { return root_; }
    std::filesystem::path code_dir() const { return root_ / "code"; }
    std::filesystem::path input_dir() const { return root_ / "input"; }
    std::filesystem::path sources_dir() const { return root_ / "input" / "sources"; }
    std::filesystem::path output_dir() const { return root_ / "output"; }
    std::filesystem::path result_dir() const { return root_ / "result"; }
    std::filesystem::path secrets_dir() const { return root_ / "secrets"; }
    std::filesystem::path tmp_dir() const { return root_ / "tmp"; }

    /// Writes input/input.json (the job's data). Blocking, small.
    void write_input(const boost::json::value& data) const;
    /// Path for a downloaded source: input/sources/<name>; nullopt if name is not a plain file name.
    std::optional<std::filesystem::path> source_path(std::string_view name) const;

    /// Keeps the tree on destruction (debugging).
    void keep() noexcept { keep_ = true; }

private:
    std::filesystem::path root_;
    bool keep_ = false;
};

enum class sandbox_mode {
    bubblewrap,  ///< bwrap: new namespaces, read-only system, private /tmp (default)
    none,        ///< no namespaces (platforms without them): rlimits, process group, clean env, cwd
};
const char* to_string(sandbox_mode m) noexcept;
std::optional<sandbox_mode> parse_sandbox_mode(std::string_view s) noexcept;  ///< "bwrap"|"bubblewrap"|"none"

/// Worker-wide sandbox settings (validated once at start-up).
struct sandbox_config {
    sandbox_mode mode = sandbox_mode::bubblewrap;
    std::string bwrap = "bwrap";                 ///< path or name in PATH
    bool allow_network = false;                  ///< functions whose manifest asks for network get it
    limits defaults;                             ///< per-job limits unless the request narrows them
    /// When the worker runs as root: each concurrent run gets its own uid from
    /// [uid_base, uid_base + uid_count) (RLIMIT_NPROC is per uid, and jobs cannot
    /// touch each other's files). 0 disables (functions then run as the worker's
    /// uid, or as "nobody" mapped to root inside bwrap).
    std::uint32_t uid_base = 2'000'000;
    std::uint32_t uid_count = 256;
    /// "auto": use cgroup v2 (memory.max, pids.max, cgroup.kill) or v1 (memory,
    /// pids hierarchies) when writable, else rlimits only; "off": rlimits only.
    std::string cgroups = "auto";
    std::string cgroup_parent = "faasd";         ///< relative to each hierarchy's root
    std::string path_env = "/usr/local/bin:/usr/bin:/bin";  ///< PATH of functions
    /// Host paths bound read-only (symlinks are recreated as symlinks).
    std::vector<std::string> system_paths = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
    /// Curated /etc entries bound read-only when present (resolv.conf and hosts only with network).
    std::vector<std::string> etc_paths = {"/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf",
                                          "/etc/ld.so.conf.d", "/etc/localtime", "/etc/nsswitch.conf",
                                          "/etc/ssl", "/etc/ca-certificates", "/etc/mime.types",
                                          "/etc/python3", "/etc/python3.11"};
};

/// "" when usable, else the problem.
std::string validate(const sandbox_config& c);

/// What this host actually enforces (detected once by the runner).
struct sandbox_capabilities {
    sandbox_mode mode = sandbox_mode::bubblewrap;
    int cgroup_version = 0;        ///< 0 none, 1 or 2
    bool memory_cgroup = false;    ///< memory limit by cgroup (else RLIMIT_AS)
    bool pids_cgroup = false;      ///< process limit by cgroup
    bool cpu_cgroup = false;       ///< CPU time accounted per job by cgroup (the CPU limit is then the job's total)
    bool userns_disabled = false;  ///< bwrap --disable-userns: functions cannot create user namespaces
    bool uid_isolation = false;    ///< per-run uids (RLIMIT_NPROC per job)
    std::string detail;            ///< one line for the start-up log
};

/// One run of a function.
struct run_request {
    std::string job_id;
    int attempt = 1;
    const workspace* ws = nullptr;               ///< prepared: code checked out, inputs written
    function_command command;                    ///< from load_function
    std::string stdin_data;                      ///< the job's input JSON (also in input/input.json)
    std::string credentials_json = "{}";         ///< {"name": "secret", ...}; written 0600, wiped after
    std::map<std::string, std::string> env;      ///< the job's (allow-listed) environment
    std::optional<limits> lim;                   ///< default: the config's limits
};

/// A regular file the function left in the output directory.
struct produced_output {
    std::string name;
    std::filesystem::path path;  ///< open with O_NOFOLLOW
    std::uint64_t bytes = 0;
};

struct run_result {
    run_status status;                ///< outcome, exit code or signal, message
    std::string stdout_text;          ///< capped, with a truncation marker
    std::string stderr_text;
    bool stdout_truncated = false;
    bool stderr_truncated = false;
    std::uint64_t stdout_bytes = 0;   ///< total written by the function
    std::uint64_t stderr_bytes = 0;
    /// The function's JSON result: result/result.json if it exists and is
    /// non-empty, else stdout if all of it parses as JSON, else null.
    boost::json::value result;
    std::string result_source;        ///< "file", "stdout" or "" (none)
    std::string result_error;         ///< why result.json was rejected (invalid JSON, too large)
    std::vector<produced_output> outputs;
    bool network = false;             ///< the run had network access
    std::chrono::milliseconds wall{0};
    std::chrono::microseconds cpu{0};  ///< user + system of all reaped processes
    std::uint64_t max_rss_kb = 0;      ///< largest single process
};

/// Runs functions. Construct once per worker; run() may be called
/// concurrently from coroutines on the same single-threaded executor. Blocking
/// file-system work (chown of a workspace, the output scan, disk samples,
/// discard) runs on the runner's own thread pools; run() resumes on the
/// caller's executor.
/// Ignores SIGPIPE process-wide (writes to a dead function's stdin must not
/// kill the worker).
class function_runner {
public:
    /// Detects bwrap, cgroups and uid isolation. Throws std::runtime_error if
    /// mode is bubblewrap and bwrap cannot start a sandbox here.
    function_runner(sandbox_config cfg, faasd::logger log);
    ~function_runner();
    function_runner(const function_runner&) = delete;
    function_runner& operator=(const function_runner&) = delete;

    /// Runs the function to completion and reports how it ended; expected
    /// failures (limits, non-zero exit) are in the result. Cancellation
    /// (terminal, partial or total) sends SIGTERM to the function, SIGKILL to
    /// everything after the grace, and completes with outcome cancelled once
    /// the processes are reaped. Throws std::system_error when the process
    /// cannot be started at all (infrastructure failure).
    boost::asio::awaitable<run_result> run(run_request req);

    /// Removes a workspace on the runner's file thread pool and returns at
    /// once (deleting a big checkout or output takes a while). The runner's
    /// destructor waits for the removals still queued.
    void discard(std::unique_ptr<workspace> ws);

    const sandbox_capabilities& capabilities() const noexcept;
    const sandbox_config& config() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace faasd::sandbox
