#pragma once
// Helpers shared by the test tiers. Service addresses come from FAASD_TEST_*
// variables (written by test/services/services.sh); a missing variable fails
// the test with a message saying how to start the services: integration tests
// never skip silently.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/types.h>

namespace faasd::test {

/// The value of an environment variable; throws (failing the test) when unset.
std::string require_env(const char* name);

/// A unique, fresh name for topics, groups and directories ("t-<hex>").
std::string unique_name(const std::string& prefix = "t");

/// A temporary directory removed (recursively) on destruction.
class temp_dir {
public:
    explicit temp_dir(const std::string& prefix = "faasd-test");
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
};

/// Polls pred every `every` until it is true or `timeout` passes; returns pred's last value.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every = std::chrono::milliseconds(20));

/// Runs a coroutine on a fresh io_context for at most `timeout`; rethrows its
/// exception; throws std::runtime_error if it did not finish in time.
template <class T>
T run_coroutine(std::function<boost::asio::awaitable<T>()> make, std::chrono::milliseconds timeout) {
    boost::asio::io_context ioc;
    std::exception_ptr error;
    std::optional<T> value;
    bool done = false;
    boost::asio::co_spawn(ioc, make(), [&](std::exception_ptr e, T v) {
        error = e;
        if (!e) value = std::move(v);
        done = true;
    });
    ioc.run_for(timeout);
    if (!done) throw std::runtime_error("coroutine did not finish within the test timeout");
    if (error) std::rethrow_exception(error);
    return std::move(*value);
}

void run_coroutine(std::function<boost::asio::awaitable<void>()> make, std::chrono::milliseconds timeout);

/// Result of running a child process to completion.
struct process_result {
    int exit_code = -1;
    std::string out;
    std::string err;
};

/// Runs argv (argv[0] searched in PATH) with extra environment entries
/// ("NAME=value"), stdin from `input`, and returns its exit status and output.
/// Kills it (and fails) after `timeout`.
process_result run_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {},
                           const std::string& input = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// The environment of this process with `extra_env` entries ("NAME=value")
/// added, replacing variables of the same name.
std::vector<std::string> environment_with(const std::vector<std::string>& extra_env);

/// A long-running child process: argv[0] searched in PATH, this environment
/// plus `extra_env`, its own process group, stdout and stderr to `log`. The
/// destructor SIGKILLs the group if it is still running.
class background_process {
public:
    background_process(std::vector<std::string> argv, std::filesystem::path log,
                       const std::vector<std::string>& extra_env = {});
    ~background_process();
    background_process(const background_process&) = delete;
    background_process& operator=(const background_process&) = delete;

    /// True while the process has not exited (reaps it when it has).
    bool running();
    /// SIGKILLs the process group and reaps it, at once.
    void stop();
    /// Graceful stop: SIGTERM, wait up to `grace`; returns the exit status, or -1
    /// if it had to be SIGKILLed (or died of a signal).
    int stop(std::chrono::milliseconds grace);
    /// What the process wrote so far.
    std::string log() const;
    /// The log file's name without extension (for messages).
    std::string name() const { return log_.stem().string(); }

private:
    std::filesystem::path log_;
    pid_t pid_ = -1;
    int status_ = -1;
    bool exited_ = false;
};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound, then released).
int free_port();

/// Path of the faasd binary under test.
std::string faasd_binary();
/// Path of the source tree.
std::filesystem::path source_dir();

}  // namespace faasd::test
