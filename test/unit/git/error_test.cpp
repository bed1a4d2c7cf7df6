#include <faasd/git/cache.hpp>
#include <faasd/git/error.hpp>

#include <catch2/catch.hpp>
#include <git2/errors.h>

using namespace faasd::git;
using namespace std::chrono_literals;

TEST_CASE("git error codes have stable names, only network errors are retryable", "[git][unit]") {
    CHECK(std::string(to_string(git_errc::repo_not_found)) == "repo_not_found");
    CHECK(std::string(to_string(git_errc::ref_not_found)) == "ref_not_found");
    CHECK(std::string(to_string(git_errc::auth_failed)) == "auth_failed");
    CHECK(std::string(to_string(git_errc::clone_failed)) == "clone_failed");
    CHECK(std::string(to_string(git_errc::scheme_not_allowed)) == "scheme_not_allowed");
    CHECK(std::string(to_string(git_errc::network_error)) == "network_error");
    CHECK(std::string(to_string(git_errc::cancelled)) == "cancelled");
    CHECK(std::string(to_string(git_errc::invalid_url)) == "invalid_url");
    CHECK(std::string(to_string(git_errc::host_key_rejected)) == "host_key_rejected");
    CHECK_FALSE(is_retryable(git_errc::host_key_rejected));
    CHECK(is_retryable(git_errc::network_error));
    CHECK_FALSE(is_retryable(git_errc::repo_not_found));
    CHECK_FALSE(is_retryable(git_errc::auth_failed));
    boost::system::error_code ec = git_errc::auth_failed;
    CHECK(ec.message() == "auth_failed");
    CHECK(std::string(ec.category().name()) == "faasd.git");
}

TEST_CASE("libgit2 failures map to stable codes", "[git][unit]") {
    struct row {
        int code;
        int klass;
        const char* message;
        git_stage stage;
        git_errc expected;
    };
    const row rows[] = {
        // What libgit2 1.5 reports for each situation (seen in the integration tests).
        {GIT_ENOTFOUND, GIT_ERROR_REPOSITORY, "could not find repository at '/tmp/x'", git_stage::fetch, git_errc::repo_not_found},
        {GIT_ERROR, GIT_ERROR_OS, "failed to resolve path '/srv/nope.git': No such file or directory", git_stage::fetch, git_errc::repo_not_found},
        {GIT_ERROR, GIT_ERROR_NET, "unexpected http status code: 404", git_stage::fetch, git_errc::repo_not_found},
        {GIT_ERROR, GIT_ERROR_NET, "remote error: no such repository: /nope.git", git_stage::fetch, git_errc::repo_not_found},
        {GIT_EAUTH, GIT_ERROR_HTTP, "remote authentication required but no callback set", git_stage::fetch, git_errc::auth_failed},
        {GIT_ERROR, GIT_ERROR_NET, "remote error: access denied or repository not exported: /nope.git", git_stage::fetch, git_errc::repo_not_found},
        {GIT_EAUTH, GIT_ERROR_NET, "authentication failed: the server rejected the job's credentials", git_stage::fetch, git_errc::auth_failed},
        {GIT_ERROR, GIT_ERROR_HTTP, "unexpected http status code: 401", git_stage::fetch, git_errc::auth_failed},
        {GIT_ERROR, GIT_ERROR_SSH, "Failed to authenticate SSH session: Unable to send userauth-publickey request", git_stage::fetch, git_errc::auth_failed},
        {GIT_ERROR, GIT_ERROR_OS, "failed to connect to 127.0.0.1: Connection refused", git_stage::fetch, git_errc::network_error},
        {GIT_ERROR, GIT_ERROR_NET, "failed to resolve address for nowhere.invalid: Name or service not known", git_stage::fetch, git_errc::network_error},
        {GIT_ERROR, GIT_ERROR_NET, "early EOF", git_stage::fetch, git_errc::network_error},
        {GIT_ERROR, GIT_ERROR_HTTP, "unexpected http status code: 503", git_stage::fetch, git_errc::network_error},
        {GIT_ERROR, GIT_ERROR_SSL, "SSL error: unexpected eof", git_stage::fetch, git_errc::network_error},
        {GIT_ECERTIFICATE, GIT_ERROR_SSL, "the SSL certificate is invalid", git_stage::fetch, git_errc::clone_failed},
        // on_certificate refused an SSH host key (its own message; no word of it may read as auth or network).
        {GIT_ECERTIFICATE, GIT_ERROR_SSH, "the SSH host key of [h]:2222 (ssh-ed25519 SHA256:x) is not known: add it to the "
                                          "worker's --ssh-known-hosts file (ssh-keyscan -p 2222 h)", git_stage::fetch,
         git_errc::host_key_rejected},
        {GIT_ECERTIFICATE, GIT_ERROR_SSH, "invalid or unknown remote ssh hostkey", git_stage::fetch, git_errc::host_key_rejected},
        {GIT_ERROR, GIT_ERROR_ODB, "object not found - no match for id", git_stage::fetch, git_errc::clone_failed},
        {GIT_ENOTFOUND, GIT_ERROR_REFERENCE, "reference 'refs/heads/x' not found", git_stage::resolve, git_errc::ref_not_found},
        {GIT_EINVALIDSPEC, GIT_ERROR_REFERENCE, "invalid spec", git_stage::resolve, git_errc::ref_not_found},
        {GIT_ERROR, GIT_ERROR_OS, "failed to write file: No space left on device", git_stage::checkout, git_errc::clone_failed},
        {GIT_ERROR, GIT_ERROR_OS, "failed to connect", git_stage::local, git_errc::clone_failed},
    };
    for (const auto& r : rows) {
        INFO(r.message);
        CHECK(classify({r.code, r.klass, r.message}, r.stage, false) == r.expected);
    }
    // Our own flag wins over whatever libgit2 says.
    CHECK(classify({GIT_EUSER, GIT_ERROR_CALLBACK, "cancelled"}, git_stage::fetch, true) == git_errc::cancelled);
    CHECK(classify({GIT_ERROR, GIT_ERROR_NET, "early EOF"}, git_stage::fetch, true) == git_errc::cancelled);
}

TEST_CASE("retry backoff doubles, is capped and runs out", "[git][unit]") {
    retry_policy p{4, 100ms, 250ms};
    CHECK_FALSE((backoff_delay(p, 1)).has_value());
    CHECK(backoff_delay(p, 2) == 100ms);
    CHECK(backoff_delay(p, 3) == 200ms);
    CHECK(backoff_delay(p, 4) == 250ms);
    CHECK_FALSE((backoff_delay(p, 5)).has_value());
    auto j = backoff_delay(p, 2, 0.5);
    REQUIRE(j.has_value());
    CHECK(*j == 112ms);  // up to +25 %
    CHECK_FALSE((backoff_delay(retry_policy{1, 100ms, 100ms}, 2)).has_value());
}

TEST_CASE("LRU eviction removes the oldest mirrors not in use until the cache fits", "[git][unit]") {
    std::vector<mirror_entry> e{
        {"a", 400, 1000, false},
        {"b", 300, 500, false},  // oldest
        {"c", 200, 3000, false},
        {"d", 500, 100, true},   // older still, but in use
    };
    CHECK(plan_eviction(e, 2000).empty());
    CHECK(plan_eviction(e, 1100) == std::vector<std::string>{"b"});
    CHECK(plan_eviction(e, 800) == std::vector<std::string>{"b", "a"});
    CHECK(plan_eviction(e, 0) == std::vector<std::string>{"b", "a", "c"});  // never "d"
    CHECK(plan_eviction({}, 0).empty());
}

TEST_CASE("cache configuration is validated", "[git][unit]") {
    cache_config c;
    CHECK_FALSE(validate(c).empty());  // no directory
    c.dir = "/tmp/x";
    CHECK(validate(c).empty());
    auto bad = c;
    bad.max_bytes = 1000;
    CHECK_FALSE(validate(bad).empty());
    bad = c;
    bad.threads = 0;
    CHECK_FALSE(validate(bad).empty());
    bad = c;
    bad.retry.attempts = 0;
    CHECK_FALSE(validate(bad).empty());
    bad = c;
    bad.retry.max_backoff = 1ms;
    CHECK_FALSE(validate(bad).empty());
    bad = c;
    bad.ref_staleness = -1ms;
    CHECK_FALSE(validate(bad).empty());
}
