#include "support/support.hpp"

#include <faasd/core/id.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace faasd::test {

std::string require_env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0')
        throw std::runtime_error(std::string(name) +
                                 " is not set: start the services with test/services/services.sh up all "
                                 "and source .state/services/services.env (scripts/test.sh does both)");
    return v;
}

std::string unique_name(const std::string& prefix) { return prefix + "-" + random_hex(6); }

temp_dir::temp_dir(const std::string& prefix) {
    auto base = std::filesystem::temp_directory_path();
    path_ = base / (prefix + "-" + random_hex(8));
    std::filesystem::create_directories(path_);
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(every);
    }
}

void run_coroutine(std::function<boost::asio::awaitable<void>()> make, std::chrono::milliseconds timeout) {
    boost::asio::io_context ioc;
    std::exception_ptr error;
    bool done = false;
    boost::asio::co_spawn(ioc, make(), [&](std::exception_ptr e) {
        error = e;
        done = true;
    });
    ioc.run_for(timeout);
    if (!done) throw std::runtime_error("coroutine did not finish within the test timeout");
    if (error) std::rethrow_exception(error);
}

process_result run_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                           const std::string& input, std::chrono::milliseconds timeout) {
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
        throw std::runtime_error("pipe failed");
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
    for (const auto& e : extra_env) {
        auto name = e.substr(0, e.find('=') + 1);
        std::erase_if(env_store, [&](const std::string& x) { return x.rfind(name, 0) == 0; });
        env_store.push_back(e);
    }
    std::vector<char*> envp, args;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto& a : argv_copy) args.push_back(a.data());
    args.push_back(nullptr);

    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        setpgid(0, 0);
        execvpe(args[0], args.data(), envp.data());
        _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    // Feed stdin from a thread so a child that does not read cannot block us.
    std::thread feeder([fd = in_pipe[1], input] {
        std::size_t off = 0;
        signal(SIGPIPE, SIG_IGN);
        while (off < input.size()) {
            auto n = write(fd, input.data() + off, input.size() - off);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
        close(fd);
    });
    process_result r;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open_fds = 2;
    bool timed_out = false;
    while (open_fds > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            kill(-pid, SIGKILL);
            break;
        }
        if (poll(fds, 2, static_cast<int>(std::min<long>(left.count(), 200))) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[8192];
            auto n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            } else {
                (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    int status = 0;
    waitpid(pid, &status, 0);
    feeder.join();
    if (timed_out) throw std::runtime_error("process timed out: " + argv.front());
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

std::string faasd_binary() { return FAASD_BINARY; }
std::filesystem::path source_dir() { return FAASD_SOURCE_DIR; }

}  // namespace faasd::test
