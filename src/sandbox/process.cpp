#include "process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
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

// Sanitizers do not follow a CLONE_VM child onto its own stack (ASan even
// turns vfork into fork): sanitized builds fork.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAASD_SPAWN_WITH_FORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define FAASD_SPAWN_WITH_FORK 1
#endif
#endif
#ifndef FAASD_SPAWN_WITH_FORK
#define FAASD_SPAWN_WITH_FORK 0
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

namespace {

// What the child needs, built before it exists: after fork or clone it may
// only make async-signal-safe calls (the worker is multi-threaded), and with
// CLONE_VM it shares the parent's memory, so it must not allocate or touch
// anything but its own stack.
struct child_ctx {
    const spawn_spec* spec;
    char* const* argv;
    char* const* envp;
    int in0, out1, err1, status1;
    pid_t parent;
};

// The child's side of spawn_process: never returns. All signals are blocked
// on entry (by the parent) until the dispositions are back to default, so no
// handler of the worker ever runs in the child. The uid switch uses raw
// system calls: glibc's setresuid would, in a CLONE_VM child, signal the
// worker's other threads to change their uids too (its setxid broadcast).
[[noreturn]] void child_exec(const child_ctx& c) {
    const spawn_spec& spec = *c.spec;
    const int sfd = c.status1;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::setpgid(0, 0) != 0) child_fail(sfd, child_stage::setpgid);
    for (int fd : spec.cgroup_fds)
        if (::write(fd, "0", 1) != 1) child_fail(sfd, child_stage::cgroup);
    if (::dup2(c.in0, 0) < 0 || ::dup2(c.out1, 1) < 0 || ::dup2(c.err1, 2) < 0) child_fail(sfd, child_stage::dup);
    for (const auto& r : spec.rlimits) {
        struct rlimit rl {r.soft, r.hard};
        if (::setrlimit(r.resource, &rl) != 0) child_fail(sfd, child_stage::rlimit);
    }
    if (spec.uid) {
        const auto u = static_cast<unsigned long>(*spec.uid);
        if (::syscall(SYS_setgroups, 0L, nullptr) != 0 || ::syscall(SYS_setresgid, u, u, u) != 0 ||
            ::syscall(SYS_setresuid, u, u, u) != 0)
            child_fail(sfd, child_stage::setuid);
    }
    // After the uid switch: a change of credentials clears the parent-death signal.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != c.parent) ::_exit(127);
    if (spec.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(sfd, child_stage::setuid);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) child_fail(sfd, child_stage::chdir);
    // Nothing but stdio crosses exec (status pipe is O_CLOEXEC too).
    ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    ::execve(spec.exe.c_str(), c.argv, c.envp);
    child_fail(sfd, child_stage::exec);
}

#if !FAASD_SPAWN_WITH_FORK
int child_entry(void* arg) { child_exec(*static_cast<const child_ctx*>(arg)); }

// clone(CLONE_VM | CLONE_VFORK) on a stack of its own, like posix_spawn: the
// kernel copies no page tables (fork's cost grows with the worker's resident
// set) and the parent is suspended until the child execs or exits. The pidfd
// comes from the same call (CLONE_PIDFD). Returns the pid, or -1 with errno.
pid_t vfork_exec(const child_ctx& c, int& pidfd) {
    constexpr std::size_t stack_size = 64 * 1024;
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    void* mem = ::mmap(nullptr, stack_size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED) return -1;
    ::mprotect(mem, page, PROT_NONE);  // guard page below the stack
    char* top = static_cast<char*>(mem) + page + stack_size;
    pid_t pid = ::clone(child_entry, top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, const_cast<child_ctx*>(&c), &pidfd);
    const int e = errno;
    ::munmap(mem, stack_size + page);
    errno = e;
    return pid;
}
#endif

}  // namespace

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

    std::vector<char*> argv, envp;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const child_ctx ctx{&spec, argv.data(), envp.data(), in[0], out[1], err[1], status[1], ::getpid()};

    // No signal may reach the child before it resets the dispositions.
    sigset_t all, saved;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved);
    int pidfd = -1;
#if FAASD_SPAWN_WITH_FORK
    pid_t pid = ::fork();
    if (pid == 0) child_exec(ctx);
#else
    pid_t pid = vfork_exec(ctx, pidfd);
#endif
    const int spawn_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    errno = spawn_errno;
    if (pid < 0) fail(FAASD_SPAWN_WITH_FORK ? "fork" : "clone");
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
    p.pidfd = pidfd >= 0 ? pidfd : pidfd_open(pid);
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
