#pragma once
// Per-job resource limits (pure), their validation and how a run ended.

#include <faasd/jobs/model.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace faasd::sandbox {

/// Limits of one run. Defaults are the worker's defaults (docs/worker-internals.md).
struct limits {
    std::chrono::milliseconds timeout{std::chrono::seconds(60)};    ///< wall clock, then SIGTERM
    std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};  ///< SIGTERM -> SIGKILL
    std::chrono::seconds cpu{std::chrono::seconds(60)};             ///< RLIMIT_CPU of each process (whole seconds)
    std::uint64_t memory_bytes = 512ull << 20;                      ///< cgroup memory limit, else RLIMIT_AS
    std::uint32_t max_processes = 64;                               ///< processes and threads (cgroup pids.max or RLIMIT_NPROC)
    std::uint64_t output_bytes = 1ull << 20;                        ///< kept of stdout and of stderr, each
    std::uint64_t output_kill_bytes = 64ull << 20;                  ///< a stream beyond this kills the job (output_limit); 0 = never
    std::uint64_t disk_bytes = 256ull << 20;                        ///< RLIMIT_FSIZE, /tmp tmpfs size, and the job's writable directories (sampled)
    std::uint32_t open_files = 256;                                 ///< RLIMIT_NOFILE
};

/// "" when the limits are usable, else what is wrong (for config errors).
std::string validate(const limits& l);

/// How a run ended. Stable codes (job_error::code) via to_string.
enum class run_outcome {
    succeeded,         ///< exit status 0
    exit_nonzero,      ///< the function exited with a non-zero status
    killed_by_signal,  ///< a signal not explained by a limit
    timeout,           ///< the wall-clock limit passed
    cpu_limit,         ///< RLIMIT_CPU (SIGXCPU, or SIGKILL at the hard limit), or the job's cgroup CPU time
    memory_limit,      ///< the memory limit (cgroup OOM kill, or allocation failure under RLIMIT_AS)
    pids_limit,        ///< fork/clone failed at the process limit
    disk_limit,        ///< RLIMIT_FSIZE (SIGXFSZ), /tmp full, or the job's directories above disk_bytes
    output_limit,      ///< stdout or stderr went beyond output_kill_bytes
    cancelled,         ///< cancelled through the cancellation slot
};

const char* to_string(run_outcome o) noexcept;
std::optional<run_outcome> parse_run_outcome(std::string_view s) noexcept;
/// succeeded -> succeeded, timeout -> timed_out, cancelled -> cancelled, else failed.
jobs::job_state to_job_state(run_outcome o) noexcept;

/// Everything the runner observed about a finished run (input of classify).
struct exit_observation {
    bool exited = true;            ///< WIFEXITED of the top process
    int exit_code = 0;             ///< WEXITSTATUS
    int signal = 0;                ///< WTERMSIG when !exited
    bool via_bwrap = false;        ///< the top process is bwrap: an exit code 129..192 means "killed by signal code-128"
    bool timed_out = false;        ///< our wall-clock timer fired
    bool cancelled = false;        ///< cancellation was requested
    bool output_exceeded = false;  ///< a stream passed output_kill_bytes and we killed the job
    bool cpu_exceeded = false;     ///< measured CPU time reached the limit
    std::uint64_t oom_kills = 0;   ///< cgroup memory events
    std::uint64_t pids_max_hits = 0;  ///< cgroup pids events
    bool disk_exceeded = false;    ///< the job's directories went above disk_bytes (killed, or found after the run)
    std::string_view stderr_tail;  ///< for the fallback heuristics (rlimit-only mode)
    bool memory_by_cgroup = false; ///< memory limit enforced by a cgroup (oom_kills is meaningful)
    bool pids_by_cgroup = false;   ///< process limit enforced by a cgroup (pids_max_hits is meaningful)
};

struct run_status {
    run_outcome outcome = run_outcome::succeeded;
    std::optional<int> exit_code;  ///< the function's exit status, when it exited
    std::optional<int> signal;     ///< the signal that ended it, when killed
    std::string message;           ///< one sentence for job_error::message
};

/// Pure: the outcome of a run, with this precedence: cancelled; exit 0 (success
/// even if a limit was touched); output_limit; memory_limit; timeout (or
/// pids_limit if fork failures happened, a fork bomb ending at the deadline);
/// cpu_limit; disk_limit; pids_limit; then, without cgroups, stderr heuristics
/// ("MemoryError", "Cannot allocate memory", "fork: ... Resource temporarily
/// unavailable", "No space left on device"); killed_by_signal; exit_nonzero.
run_status classify(const exit_observation& o);

/// Bounds of next_disk_sample.
inline constexpr std::chrono::milliseconds disk_sample_min{10};
inline constexpr std::chrono::milliseconds disk_sample_max{100};

/// Pure: how long to wait before sampling a running job's disk use again.
/// Half the time the job needs to reach its limit at its last measured rate,
/// between disk_sample_min and disk_sample_max, so that a job passes its limit
/// by at most about (write rate x disk_sample_min) when it writes steadily and
/// (peak rate x disk_sample_max) when it bursts; but never sooner than four
/// times the last scan took, so that scans of a large tree cost at most a
/// fifth of a pool thread.
std::chrono::milliseconds next_disk_sample(std::uint64_t used, std::uint64_t limit, double bytes_per_second,
                                           std::chrono::microseconds last_scan);

}  // namespace faasd::sandbox
