#pragma once
// Private: cgroup detection and per-job cgroups (v2 or v1 memory/pids).
// Blocking file-system calls on /sys/fs/cgroup (fast, kernel-backed).

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace faasd::sandbox::detail {

/// A job's cgroup(s). The child writes "0" to each procs fd before exec.
/// The const members only read files: a pool thread may call them while the
/// loop signals the processes (the usage watcher does).
class job_cgroup {
public:
    job_cgroup(int version, std::vector<std::filesystem::path> dirs, std::filesystem::path memory_dir,
               std::filesystem::path pids_dir, std::filesystem::path cpu_dir);
    ~job_cgroup();  ///< kills what is left and removes the directories (best effort)
    job_cgroup(const job_cgroup&) = delete;
    job_cgroup& operator=(const job_cgroup&) = delete;

    const std::vector<int>& procs_fds() const noexcept { return fds_; }
    std::uint64_t oom_kills() const;
    std::uint64_t pids_max_hits() const;
    /// CPU time of every process that ran in the cgroup (microseconds; 0 if unknown).
    std::uint64_t cpu_usec() const;
    /// cpu_usec() is meaningful (v2 cpu.stat, or a v1 cpuacct hierarchy).
    bool has_cpu_accounting() const noexcept { return !cpu_dir_.empty(); }
    std::vector<pid_t> pids() const;
    /// SIGKILL to every process (cgroup.kill on v2).
    void kill_all();
    /// Closes the procs fds and rmdirs; false while processes remain.
    bool remove();

private:
    int version_;
    std::vector<std::filesystem::path> dirs_;
    std::filesystem::path memory_dir_, pids_dir_, cpu_dir_;
    std::vector<int> fds_;
    bool removed_ = false;
};

class cgroup_manager {
public:
    /// Finds a usable hierarchy under <mount>/<parent>; nullptr when none (detail says why).
    static std::unique_ptr<cgroup_manager> detect(const std::string& parent, std::string& detail);
    /// Removes the parent directories if no job cgroup is left in them (other
    /// processes may still use them: then rmdir fails, harmlessly).
    ~cgroup_manager();

    int version() const noexcept { return version_; }
    bool memory() const noexcept { return !memory_parent_.empty(); }
    bool pids() const noexcept { return !pids_parent_.empty(); }
    bool cpu() const noexcept { return !cpu_parent_.empty(); }

    /// Creates <parent>/<name> with the limits; throws std::system_error.
    std::unique_ptr<job_cgroup> create(const std::string& name, std::uint64_t memory_bytes, std::uint32_t pids_max);

private:
    int version_ = 0;
    std::string parent_;
    std::filesystem::path memory_parent_, pids_parent_, cpu_parent_;  // equal on v2
};

/// Pids of all descendants of root (not root itself), from /proc.
std::vector<pid_t> descendants(pid_t root);

}  // namespace faasd::sandbox::detail
