#pragma once
// Private: fork/exec with pipes, a new process group, rlimits, cgroup
// membership and an optional uid switch, done in the child before exec with
// async-signal-safe calls only.

#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace faasd::sandbox::detail {

struct rlimit_setting {
    int resource;
    rlim_t soft;
    rlim_t hard;
};

struct spawn_spec {
    std::string exe;                 ///< path given to execve (absolute, or relative to cwd)
    std::vector<std::string> argv;
    std::vector<std::string> env;    ///< "NAME=value": the whole environment
    std::string cwd;
    std::vector<int> cgroup_fds;     ///< the child writes "0" to each
    std::vector<rlimit_setting> rlimits;
    std::optional<uid_t> uid;        ///< switch to uid (and gid = uid), dropping supplementary groups
    bool no_new_privs = false;       ///< PR_SET_NO_NEW_PRIVS: exec never grants privileges (setuid binaries are inert)
};

/// File descriptors the parent keeps (all O_CLOEXEC).
struct spawned_process {
    pid_t pid = -1;
    int pidfd = -1;
    int stdin_fd = -1;
    int stdout_fd = -1;
    int stderr_fd = -1;
    int exec_status_fd = -1;  ///< EOF = exec succeeded; 8 bytes (stage, errno) = failed before exec
};

/// Forks and execs. Throws std::system_error if pipes, fork or pidfd_open fail.
spawned_process spawn_process(const spawn_spec& spec);

/// Child-side stages reported through exec_status_fd.
enum class child_stage : int { setpgid = 1, cgroup, dup, rlimit, setuid, chdir, exec };
const char* to_string(child_stage s) noexcept;

/// pidfd_open(2) (Linux 5.3+); -1 with errno on failure.
int pidfd_open(pid_t pid);

/// Searches dirs (a PATH value) for an executable named name; "" when absent.
std::string find_in_path(const std::string& name, const std::string& path_value);

}  // namespace faasd::sandbox::detail
