// Bad configuration (issue #2): every server subcommand of the real binary,
// given an unknown flag, a malformed broker list, a missing required key, an
// unreadable --config file or a malformed value, exits with status 2 and one
// line on stderr naming the offending option or file, before any network
// access: its Kafka brokers (and the frontend's issuer) point at a listening
// socket of this test, which must see no connection. No services needed.

#include "support/support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using faasd::test::faasd_binary;
using faasd::test::run_process;

namespace {

const std::string keys = "FAASD_CREDENTIALS_KEYS=k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A listening socket on 127.0.0.1 that nobody accepts on: connected() tells
/// whether a client completed a TCP handshake with it (a pending connection).
class sentinel {
public:
    sentinel() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, 16) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
    }
    ~sentinel() { ::close(fd_); }
    sentinel(const sentinel&) = delete;
    sentinel& operator=(const sentinel&) = delete;

    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    /// Accepts (and closes) every pending connection; true if there was one.
    bool connected() {
        bool any = false;
        for (int c; (c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
            ::close(c);
            any = true;
        }
        return any;
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

struct role_case {
    std::string role;
    std::vector<std::string> valid;  ///< arguments that make a valid configuration
    std::string missing_option;      ///< the required option the "missing" case leaves empty or out
    std::vector<std::string> missing;
    std::string malformed_option;  ///< the option the "malformed" case gives a bad value
    std::vector<std::string> malformed;
    bool kafka = true;  ///< has --kafka-brokers
};

// {SENTINEL} is replaced by the sentinel's host:port.
std::vector<role_case> role_cases() {
    const std::string brokers = "--kafka-brokers={SENTINEL}";
    const std::string issuer = "--oidc-issuer=http://{SENTINEL}/realms/faas";
    return {
        {"frontend", {brokers, issuer}, "--oidc-issuer", {brokers}, "--max-body", {brokers, issuer, "--max-body=lots"}},
        {"worker", {brokers}, "--cache-dir", {brokers, "--cache-dir="}, "--slots", {brokers, "--slots=many"}},
        {"observer", {brokers}, "--kafka-brokers", {"--kafka-brokers="}, "--tick", {brokers, "--tick=soon"}},
        {"scaler",
         {brokers, "--exec=echo {workers}"},
         "--exec",
         {brokers},
         "--exec-timeout",
         {brokers, "--exec=echo {workers}", "--exec-timeout=forever"}},
        {"supervisor", {brokers}, "--kafka-brokers", {"--kafka-brokers="}, "--stop-timeout",
         {brokers, "--stop-timeout=-"}},
        {"dev", {"--listen=127.0.0.1:0"}, "--state-dir", {"--state-dir="}, "--listen", {"--listen=nowhere"}, false},
    };
}

std::vector<std::string> substitute(std::vector<std::string> args, const std::string& address) {
    for (auto& a : args)
        if (auto p = a.find("{SENTINEL}"); p != std::string::npos) a.replace(p, 10, address);
    return args;
}

/// faasd <args> in a clean environment (no inherited FAASD_* variables).
faasd::test::process_result run_faasd(const std::vector<std::string>& args, const std::string& home) {
    std::vector<std::string> argv{"/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=" + home, keys, faasd_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, {}, {}, std::chrono::seconds(20));
}

}  // namespace

TEST_CASE("bad configuration: exit 2, one line naming the problem, no network access", "[config][integration]") {
    faasd::test::temp_dir tmp("faasd-badcfg");
    const auto dir = tmp.path() / "state";
    std::filesystem::create_directories(dir);
    const auto missing_file = (tmp.path() / "no-such-dir/faasd.toml").string();
    const auto a_directory = tmp.path().string();
    sentinel net;

    for (const auto& rc : role_cases()) {
        // Every bad case below changes one thing of a configuration the binary accepts.
        auto valid = substitute(rc.valid, net.address());
        if (rc.role == "dev") valid.push_back("--state-dir=" + dir.string());
        {
            std::vector<std::string> args{"--check-config", rc.role};
            args.insert(args.end(), valid.begin(), valid.end());
            auto r = run_faasd(args, tmp.path().string());
            INFO(rc.role << " (valid): " << r.err);
            REQUIRE(r.exit_code == 0);
        }

        struct bad_case {
            std::string what;
            std::vector<std::string> args;
            std::string named;  ///< the line must contain this
        };
        std::vector<bad_case> cases{
            {"unknown flag", valid, "--no-such-flag"},
            {"missing required key", substitute(rc.missing, net.address()), rc.missing_option},
            {"unreadable --config file (missing)", valid, missing_file},
            {"unreadable --config file (a directory)", valid, a_directory},
            {"malformed value", substitute(rc.malformed, net.address()), rc.malformed_option},
        };
        cases[0].args.push_back("--no-such-flag=1");
        cases[2].args.push_back("--config=" + missing_file);
        cases[3].args.push_back("--config=" + a_directory);
        if (rc.kafka) {
            auto args = valid;
            args.push_back("--kafka-brokers=localhost");  // the last value wins: no port
            cases.push_back({"malformed broker list", args, "--kafka-brokers"});
            args.back() = "--kafka-brokers={SENTINEL},http://x:1";
            cases.push_back({"malformed broker list (a URL)", substitute(args, net.address()), "--kafka-brokers"});
            // The producers stay durable (acks=all, idempotent), whatever --kafka-property says.
            for (const auto* weak : {"acks=1", "enable.idempotence=false", "request.required.acks=0"}) {
                args = valid;
                args.push_back(std::string("--kafka-property=") + weak);
                cases.push_back({std::string("weakened producer: ") + weak, args, "--kafka-property: " + std::string(weak)});
            }
        }
        if (rc.role == "worker") {
            // The SSH host keys the worker trusts: a file it cannot read, or one with nothing usable.
            auto args = valid;
            args.push_back("--ssh-known-hosts=" + missing_file);
            cases.push_back({"unreadable --ssh-known-hosts", args, "--ssh-known-hosts"});
            const auto garbage = tmp.path() / "known_hosts";
            std::ofstream(garbage) << "this is not a known_hosts line\n";
            args.back() = "--ssh-known-hosts=" + garbage.string();
            cases.push_back({"--ssh-known-hosts with no usable line", args, "no usable line"});
        }
        if (rc.role == "dev") {
            for (std::size_t i = 1; i < cases.size(); ++i)
                if (cases[i].what != "missing required key") cases[i].args.push_back("--state-dir=" + dir.string());
        }

        for (const auto& c : cases) {
            std::vector<std::string> args{rc.role};
            args.insert(args.end(), c.args.begin(), c.args.end());
            auto r = run_faasd(args, tmp.path().string());
            INFO("faasd " << rc.role << ": " << c.what);
            INFO("stderr: " << r.err);
            CHECK(r.exit_code == 2);
            CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
            CHECK(r.err.find(c.named) != std::string::npos);
            CHECK(r.out.empty());
            CHECK_FALSE(net.connected());
        }
    }
    // dev with an invalid configuration created nothing in its state directory.
    CHECK(std::filesystem::is_empty(dir));
}

TEST_CASE("faasd dev's state directory stays out of git and of the image build context", "[config][integration]") {
    const auto src = faasd::test::source_dir();
    // The dev IdP's private key and the credential keys live there (scripts/dev.sh).
    for (const auto* path : {".faasd-dev/credentials.keys", ".faasd-dev/dev-idp.pem", "sub/.faasd-dev/key"}) {
        auto r = run_process({"git", "-C", src.string(), "check-ignore", "--no-index", "-q", path});
        INFO(path << ": " << r.err);
        CHECK(r.exit_code == 0);
    }
    std::ifstream in(src / ".dockerignore");
    REQUIRE(in);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    CHECK(std::count(lines.begin(), lines.end(), ".faasd-dev") == 1);
    CHECK(std::count(lines.begin(), lines.end(), "**/.faasd-dev") == 1);
}
