// Repository preparation over ssh:// against a real OpenSSH sshd on loopback:
// the job's private key authenticates, and the server's host key is checked
// against the worker's known_hosts (--ssh-known-hosts) before anything is sent.

#include "git_fixtures.hpp"

#include "support/support.hpp"

#include <faasd/git/cache.hpp>
#include <faasd/git/known_hosts.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <fstream>

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace tg = faasd::test::git;
using namespace faasd::git;
using namespace std::chrono_literals;

namespace {

struct ssh_env {
    faasd::test::temp_dir tmp{"faasd-ssh"};
    std::vector<std::string> lines;
    faasd::logger log{faasd::log_level::debug, faasd::log_format::text,
                      [this](std::string_view l) { lines.emplace_back(l); }, false};
    tg::ssh_server server{tmp.path() / "sshd"};
    tg::repo fn{tmp.path() / "work/fn", tmp.path() / "served/fn.git"};
    std::string commit;
    int caches = 0;

    ssh_env() {
        fn.write("main", "#!/bin/sh\necho '{\"over\": \"ssh\"}'\n");
        commit = fn.commit("ssh function");
    }

    /// A fresh cache (so that every case goes to the server) trusting `known_hosts_text`.
    std::unique_ptr<repo_cache> cache(const std::optional<std::string>& known_hosts_text) {
        cache_config c;
        c.dir = tmp.path() / ("cache-" + std::to_string(++caches));
        c.schemes = scheme_policy({"ssh"});
        c.retry = retry_policy{1, 20ms, 50ms};
        if (known_hosts_text) c.ssh_known_hosts = std::make_shared<const known_hosts>(known_hosts::parse(*known_hosts_text));
        return std::make_unique<repo_cache>(c, log);
    }

    prepare_result prepare(repo_cache& cache, const std::string& key, const std::string& dest) {
        prepare_request r;
        r.url = server.url(tmp.path() / "served/fn.git");
        r.ref = "main";
        r.credentials.ssh_private_key = key;
        r.destination = tmp.path() / "jobs" / dest;
        return faasd::test::run_coroutine<prepare_result>(
            [&]() -> asio::awaitable<prepare_result> { co_return co_await cache.prepare(r); }, 60s);
    }

    std::string describe(const prepare_result& r) const {
        return (r ? "ok " + r->commit : std::string(to_string(r.error().code)) + ": " + r.error().message) +
               "\nsshd log:\n" + server.log();
    }
    std::string host_line() const { return "[127.0.0.1]:" + std::to_string(server.port()) + " " + server.host_public_key(); }
};

}  // namespace

TEST_CASE("ssh://: the job's key authenticates once the host key is known", "[git][integration]") {
    ssh_env e;
    const auto key = e.server.client_key();

    SECTION("a plain known_hosts line") {
        auto cache = e.cache("# the test server\n" + e.host_line() + "\n");
        auto p = e.prepare(*cache, key, "plain");
        INFO(e.describe(p));
        REQUIRE(p.has_value());
        CHECK(p->commit == e.commit);
        CHECK(fs::exists(e.tmp.path() / "jobs/plain/main"));
        // A wrong client key is the server's refusal, not a host key problem.
        tg::sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (e.tmp.path() / "stranger").string()});
        std::ifstream f(e.tmp.path() / "stranger", std::ios::binary);
        std::string stranger((std::istreambuf_iterator<char>(f)), {});
        auto other = e.cache(e.host_line() + "\n");
        auto refused = e.prepare(*other, stranger, "stranger");
        INFO(e.describe(refused));
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == git_errc::auth_failed);
        for (const auto& line : e.lines) CHECK(line.find("PRIVATE KEY") == std::string::npos);
    }
    SECTION("a hashed line, as ssh-keygen -H writes it") {
        auto file = e.tmp.path() / "known_hosts";
        tg::write_file(file, e.host_line() + "\n");
        tg::sh({"ssh-keygen", "-q", "-H", "-f", file.string()});
        std::ifstream f(file, std::ios::binary);
        std::string hashed((std::istreambuf_iterator<char>(f)), {});
        REQUIRE(hashed.starts_with("|1|"));
        auto cache = e.cache(hashed);
        auto p = e.prepare(*cache, key, "hashed");
        INFO(hashed << e.describe(p));
        REQUIRE(p.has_value());
        CHECK(p->commit == e.commit);
    }
}

TEST_CASE("ssh://: an unknown, changed or revoked host key refuses the server before authenticating",
          "[git][integration]") {
    ssh_env e;
    const auto key = e.server.client_key();
    const auto fingerprint = e.server.host_fingerprint();
    REQUIRE(fingerprint.starts_with("SHA256:"));
    auto refused = [&](const std::optional<std::string>& known, const std::string& dest) {
        auto cache = e.cache(known);
        auto p = e.prepare(*cache, key, dest);
        INFO(e.describe(p));
        REQUIRE_FALSE(p.has_value());
        CHECK(p.error().code == git_errc::host_key_rejected);
        // The server's key is named the way ssh-keygen -l names it.
        CHECK(p.error().message.find(fingerprint) != std::string::npos);
        CHECK_FALSE(fs::exists(e.tmp.path() / "jobs" / dest));
        return p.error().message;
    };

    // No file: only ~/.ssh/known_hosts, which does not know a server on a random port.
    auto unknown = refused(std::nullopt, "none");
    CHECK(unknown.find("is not known") != std::string::npos);
    CHECK(unknown.find("ssh-keyscan -p " + std::to_string(e.server.port())) != std::string::npos);
    // Another host's entry does not help.
    refused("[127.0.0.1]:1 " + e.server.host_public_key() + "\n", "other-port");

    // The file has a different key for this host.
    tg::sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (e.tmp.path() / "impostor").string()});
    std::ifstream f(e.tmp.path() / "impostor.pub", std::ios::binary);
    std::string impostor((std::istreambuf_iterator<char>(f)), {});
    auto changed = refused("[127.0.0.1]:" + std::to_string(e.server.port()) + " " + impostor, "changed");
    CHECK(changed.find("is not the one") != std::string::npos);

    // Revoked: refused even next to a line that trusts it.
    auto revoked = refused("@revoked * " + e.server.host_public_key() + "\n" + e.host_line() + "\n", "revoked");
    CHECK(revoked.find("revoked") != std::string::npos);

    // Nothing was fetched from the server in any of these: sshd saw no accepted key.
    CHECK(e.server.log().find("Accepted publickey") == std::string::npos);
}
