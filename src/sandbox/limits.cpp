#include <faasd/sandbox/limits.hpp>

#include <algorithm>
#include <csignal>
#include <cstring>

namespace faasd::sandbox {
namespace {

bool contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

std::string signal_name(int sig) {
    const char* d = ::sigabbrev_np(sig);
    return d ? std::string("SIG") + d : "signal " + std::to_string(sig);
}

}  // namespace

std::string validate(const limits& l) {
    using namespace std::chrono_literals;
    if (l.timeout < 100ms || l.timeout > 24h) return "timeout must be between 100ms and 24h";
    if (l.kill_grace < 0ms || l.kill_grace > 5min) return "kill grace must be between 0 and 5m";
    if (l.cpu < 1s || l.cpu > 24h) return "cpu limit must be between 1s and 24h";
    if (l.memory_bytes < (16ull << 20)) return "memory limit must be at least 16 MiB";
    if (l.max_processes < 1 || l.max_processes > 100000) return "process limit must be between 1 and 100000";
    if (l.output_bytes < 1024 || l.output_bytes > (1ull << 30)) return "output cap must be between 1 KiB and 1 GiB";
    if (l.output_kill_bytes != 0 && l.output_kill_bytes < l.output_bytes)
        return "output kill threshold must be 0 (never) or at least the output cap";
    if (l.disk_bytes < (1ull << 20)) return "disk limit must be at least 1 MiB";
    if (l.open_files < 16 || l.open_files > (1u << 20)) return "open files limit must be between 16 and 1048576";
    return {};
}

const char* to_string(run_outcome o) noexcept {
    switch (o) {
        case run_outcome::succeeded: return "succeeded";
        case run_outcome::exit_nonzero: return "exit_nonzero";
        case run_outcome::killed_by_signal: return "killed_by_signal";
        case run_outcome::timeout: return "timeout";
        case run_outcome::cpu_limit: return "cpu_limit";
        case run_outcome::memory_limit: return "memory_limit";
        case run_outcome::pids_limit: return "pids_limit";
        case run_outcome::disk_limit: return "disk_limit";
        case run_outcome::output_limit: return "output_limit";
        case run_outcome::cancelled: return "cancelled";
    }
    return "exit_nonzero";
}

std::optional<run_outcome> parse_run_outcome(std::string_view s) noexcept {
    for (auto o : {run_outcome::succeeded, run_outcome::exit_nonzero, run_outcome::killed_by_signal,
                   run_outcome::timeout, run_outcome::cpu_limit, run_outcome::memory_limit, run_outcome::pids_limit,
                   run_outcome::disk_limit, run_outcome::output_limit, run_outcome::cancelled})
        if (s == to_string(o)) return o;
    return std::nullopt;
}

jobs::job_state to_job_state(run_outcome o) noexcept {
    switch (o) {
        case run_outcome::succeeded: return jobs::job_state::succeeded;
        case run_outcome::timeout: return jobs::job_state::timed_out;
        case run_outcome::cancelled: return jobs::job_state::cancelled;
        default: return jobs::job_state::failed;
    }
}

run_status classify(const exit_observation& o) {
    run_status s;
    // The function's own view: bwrap reports a child killed by signal n as exit 128+n.
    bool exited = o.exited;
    int code = o.exit_code;
    int sig = o.signal;
    if (o.via_bwrap && exited && code > 128 && code <= 128 + 64) {
        exited = false;
        sig = code - 128;
    }
    if (exited) s.exit_code = code;
    else s.signal = sig;

    auto set = [&](run_outcome out, std::string msg) {
        s.outcome = out;
        s.message = std::move(msg);
        return s;
    };
    const auto& t = o.stderr_tail;
    // Without a pids cgroup there is no counter: recognise failed forks by their messages.
    const bool fork_failures =
        o.pids_max_hits > 0 ||
        (!o.pids_by_cgroup && (contains(t, "fork: retry: Resource temporarily unavailable") ||
                               contains(t, "fork: Resource temporarily unavailable") || contains(t, "can't fork") ||
                               contains(t, "BlockingIOError: [Errno 11]")));
    if (o.cancelled) return set(run_outcome::cancelled, "the job was cancelled");
    if (exited && code == 0 && !o.timed_out && !o.output_exceeded && !o.disk_exceeded)
        return set(run_outcome::succeeded, "");
    if (o.output_exceeded) return set(run_outcome::output_limit, "the function wrote more output than allowed and was killed");
    if (o.oom_kills > 0) return set(run_outcome::memory_limit, "the function exceeded its memory limit and was killed");
    if (o.timed_out) {
        if (fork_failures)
            return set(run_outcome::pids_limit, "the function hit its process limit (fork bomb?) and ran until the deadline");
        return set(run_outcome::timeout, "the function did not finish within its time limit");
    }
    if (!exited && sig == SIGXCPU) return set(run_outcome::cpu_limit, "the function used up its CPU time limit");
    if (o.cpu_exceeded && !exited && sig == SIGKILL)
        return set(run_outcome::cpu_limit, "the function used up its CPU time limit");
    if ((!exited && sig == SIGXFSZ) || o.disk_exceeded)
        return set(run_outcome::disk_limit, "the function wrote more data than its disk limit allows");
    if (fork_failures) return set(run_outcome::pids_limit, "the function hit its process limit");
    if (!o.memory_by_cgroup && (contains(t, "MemoryError") || contains(t, "Cannot allocate memory") ||
                                contains(t, "std::bad_alloc") || contains(t, "out of memory")))
        return set(run_outcome::memory_limit, "the function could not allocate memory within its limit");
    if (contains(t, "No space left on device") || contains(t, "File too large"))
        return set(run_outcome::disk_limit, "the function ran out of disk space");
    if (!exited) return set(run_outcome::killed_by_signal, "the function was killed by " + signal_name(sig));
    return set(run_outcome::exit_nonzero, "the function exited with status " + std::to_string(code));
}

std::chrono::milliseconds next_disk_sample(std::uint64_t used, std::uint64_t limit, double bytes_per_second,
                                           std::chrono::microseconds last_scan) {
    using namespace std::chrono;
    milliseconds next = disk_sample_max;
    if (used >= limit) {
        next = disk_sample_min;
    } else if (bytes_per_second > 0) {
        const double to_limit_ms = static_cast<double>(limit - used) / bytes_per_second * 1000.0;
        const double half = std::clamp(to_limit_ms / 2, static_cast<double>(disk_sample_min.count()),
                                       static_cast<double>(disk_sample_max.count()));
        next = milliseconds(static_cast<milliseconds::rep>(half));
    }
    return std::max(next, duration_cast<milliseconds>(last_scan * 4));
}

}  // namespace faasd::sandbox
