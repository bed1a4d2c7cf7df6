#pragma once
// End-to-end helpers: faasd processes in the background, HTTP through curl,
// tokens from the test's Keycloak, git repositories from the example
// functions. The e2e tier talks to faasd only as a user would (REST, the CLI).

#include <boost/json/value.hpp>

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace faasd::e2e {

/// A child process whose stdout and stderr go to a log file. The destructor
/// SIGKILLs its process group if it is still running.
class bg_process {
public:
    bg_process(std::string name, std::vector<std::string> argv, std::vector<std::string> extra_env,
           const std::filesystem::path& log_dir);
    ~bg_process();
    bg_process(const bg_process&) = delete;
    bg_process& operator=(const bg_process&) = delete;

    /// True while the process has not exited.
    bool running();
    /// Sends SIGTERM and waits up to `timeout`; returns the exit status, or -1
    /// if it had to be SIGKILLed (or died of a signal).
    int stop(std::chrono::milliseconds timeout);
    /// What the process wrote so far.
    std::string log() const;
    const std::string& name() const noexcept { return name_; }

private:
    std::string name_;
    std::filesystem::path log_;
    pid_t pid_ = -1;
    int status_ = -1;
    bool exited_ = false;
};

/// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

struct http_answer {
    int status = 0;
    std::string body;
    std::string headers;  ///< raw response headers
    boost::json::value json() const;
};

/// One HTTP request with curl (bearer token and JSON body optional).
http_answer http(const std::string& method, const std::string& url, const std::string& token = {},
                 const std::string& body = {}, const std::vector<std::string>& headers = {});

/// An access token from the test Keycloak (password grant, client faas-cli).
std::string keycloak_token(const std::string& user, const std::string& password);

/// A bare repository (branch main) at dir/<name>.git made from a directory of
/// files; returns its file:// URL.
std::string bare_repo_from(const std::filesystem::path& files, const std::filesystem::path& dir,
                           const std::string& name);

/// A string member of a JSON object, or "" when absent.
std::string string_at(const boost::json::value& v, const char* key);

/// Waits until GET url answers 200; fails the test (with the processes' logs)
/// if one of them exits or the time runs out.
void wait_ready(const std::string& url, std::vector<bg_process*> processes, std::chrono::seconds timeout);

/// A job's result, long-polling (?wait) until it is no longer 409.
http_answer wait_result(const std::string& base, const std::string& id, const std::string& token,
                        std::chrono::seconds timeout, const std::string& query = {});

/// FAASD_* environment shared by the server roles of one test: the test's
/// real Kafka (FAASD_TEST_KAFKA), a fresh topic prefix, a credential key ring.
std::vector<std::string> role_environment(const std::string& prefix);

/// `faasd frontend` arguments for the test's Keycloak, listening on port.
std::vector<std::string> frontend_args(int port);

}  // namespace faasd::e2e
