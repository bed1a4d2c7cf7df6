#include "process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace faasd::sandbox::detail {
namespace {

[[noreturn]] void child_fail(int fd, child_stage stage) {
    int msg[2] = {static_cast<int>(stage), errno};
    [[maybe_unused]] auto n = ::write(fd, msg, sizeof msg);
    ::_exit(127);
}

void close_pair(int p[2]) {
    if (p[0] >= 0) ::close(p[0]);
    if (p[1] >= 0) ::close(p[1]);
}

}  // namespace

const char* to_string(child_stage s) noexcept {
    switch (s) {
        case child_stage::setpgid: return "setpgid";
        case child_stage::cgroup: return "joining the cgroup";
        case child_stage::dup: return "redirecting stdio";
        case child_stage::rlimit: return "setting resource limits";
        case child_stage::setuid: return "switching uid";
        case child_stage::chdir: return "changing directory";
        case child_stage::exec: return "exec";
    }
    return "setup";
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

std::string find_in_path(const std::string& name, const std::string& path_value) {
    if (name.find('/') != std::string::npos) return name;
    std::size_t pos = 0;
    while (pos <= path_value.size()) {
        auto colon = path_value.find(':', pos);
        auto dir = path_value.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
        if (!dir.empty()) {
            auto candidate = dir + "/" + name;
            struct stat st {};
            if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
                return candidate;
        }
        if (colon == std::string::npos) break;
        pos = colon + 1;
    }
    return {};
}

spawned_process spawn_process(const spawn_spec& spec) {
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, status[2] = {-1, -1};
    auto fail = [&](const char* what) {
        auto e = errno;
        close_pair(in);
        close_pair(out);
        close_pair(err);
        close_pair(status);
        throw std::system_error(e, std::generic_category(), what);
    };
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC) || ::pipe2(status, O_CLOEXEC))
        fail("pipe2");

    // Everything the child needs is built before fork: after it, only
    // async-signal-safe calls (the worker is multi-threaded).
    std::vector<char*> argv, envp;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid < 0) fail("fork");
    if (pid == 0) {
        int sfd = status[1];
        sigset_t all;
        sigemptyset(&all);
        ::sigprocmask(SIG_SETMASK, &all, nullptr);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
        if (::setpgid(0, 0) != 0) child_fail(sfd, child_stage::setpgid);
        for (int fd : spec.cgroup_fds)
            if (::write(fd, "0", 1) != 1) child_fail(sfd, child_stage::cgroup);
        if (::dup2(in[0], 0) < 0 || ::dup2(out[1], 1) < 0 || ::dup2(err[1], 2) < 0) child_fail(sfd, child_stage::dup);
        for (const auto& r : spec.rlimits) {
            struct rlimit rl {r.soft, r.hard};
            if (::setrlimit(r.resource, &rl) != 0) child_fail(sfd, child_stage::rlimit);
        }
        if (spec.uid) {
            gid_t g = static_cast<gid_t>(*spec.uid);
            if (::setgroups(0, nullptr) != 0 || ::setresgid(g, g, g) != 0 ||
                ::setresuid(*spec.uid, *spec.uid, *spec.uid) != 0)
                child_fail(sfd, child_stage::setuid);
        }
        // After the uid switch: a change of credentials clears the parent-death signal.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        if (spec.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(sfd, child_stage::setuid);
        if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) child_fail(sfd, child_stage::chdir);
        // Nothing but stdio crosses exec (status pipe is O_CLOEXEC too).
        ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
        ::execve(spec.exe.c_str(), argv.data(), envp.data());
        child_fail(sfd, child_stage::exec);
    }
    ::setpgid(pid, pid);  // also from the parent: no race with an early kill(-pid)
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    ::close(status[1]);
    spawned_process p;
    p.pid = pid;
    p.stdin_fd = in[1];
    p.stdout_fd = out[0];
    p.stderr_fd = err[0];
    p.exec_status_fd = status[0];
    p.pidfd = pidfd_open(pid);
    if (p.pidfd < 0) {
        auto e = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        ::close(p.stdin_fd);
        ::close(p.stdout_fd);
        ::close(p.stderr_fd);
        ::close(p.exec_status_fd);
        throw std::system_error(e, std::generic_category(), "pidfd_open (Linux 5.3+ is required)");
    }
    return p;
}

}  // namespace faasd::sandbox::detail
