#pragma once
// End-to-end helpers: faasd processes in the background, HTTP through curl,
// tokens from the test's Keycloak, git repositories from the example
// functions. The e2e tier talks to faasd only as a user would (REST, the CLI).

#include "support/support.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace faasd::e2e {

/// A faasd process of a test (test::background_process) logging to dir/<name>.log.
struct bg_process : test::background_process {
    bg_process(const std::string& name, std::vector<std::string> argv, const std::vector<std::string>& extra_env,
               const std::filesystem::path& dir)
        : background_process(std::move(argv), dir / (name + ".log"), extra_env) {}
};

using test::free_port;

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
