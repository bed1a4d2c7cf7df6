// known_hosts parsing and lookup. The keys, the fingerprint and the hashed
// lines were made with OpenSSH 9.2 (ssh-keygen -t ed25519, -l -E sha256, -H).

#include <faasd/auth/base64.hpp>
#include <faasd/git/known_hosts.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace faasd::git;
using v = known_hosts::verdict;

namespace {

const std::string key_a = "AAAAC3NzaC1lZDI1NTE5AAAAICxVvPXM2DmMTBfGiB3gdXFJgXFtopgH13M8sJqk9xr2";
const std::string key_b = "AAAAC3NzaC1lZDI1NTE5AAAAIKKsrIG5TVL1SLe847ldNnrfdGpYkTn4TD42D6x7D8Qj";

std::string blob(const std::string& b64) { return faasd::auth::base64_decode(b64).value(); }

}  // namespace

TEST_CASE("ssh key blobs: type and fingerprint as ssh-keygen shows them", "[git][unit]") {
    CHECK(ssh_key_type(blob(key_a)) == "ssh-ed25519");
    CHECK(ssh_fingerprint(blob(key_a)) == "SHA256:j9P7SlOHMjgnNZuWQ8R8ObEXIXYL3WG/fBM2lJh+Cm8");
    CHECK(ssh_key_type("") == "");
    CHECK(ssh_key_type(std::string("\0\0\0\x50short", 9)) == "");  // length beyond the blob
    CHECK(known_hosts_name("Git.Example.org", 22) == "git.example.org");
    CHECK(known_hosts_name("10.0.0.1", 2222) == "[10.0.0.1]:2222");
}

TEST_CASE("known_hosts: plain, wildcard, negated and port-qualified names", "[git][unit]") {
    auto kh = known_hosts::parse("# comment\n"
                                 "\n"
                                 "git.example.org,10.0.0.5 ssh-ed25519 " + key_a + " a comment\r\n"
                                 "*.corp.example,!bad.corp.example ssh-ed25519 " + key_a + "\n"
                                 "[git.example.org]:2222 ssh-ed25519 " + key_b + "\n"
                                 "git?.example.net ssh-ed25519 " + key_b + "\n");
    CHECK(kh.size() == 4);
    CHECK(kh.skipped() == 0);
    struct row {
        const char* host;
        int port;
        const std::string& key;
        v want;
    };
    const row rows[] = {
        {"git.example.org", 22, key_a, v::match},
        {"GIT.EXAMPLE.ORG", 22, key_a, v::match},  // names are case-insensitive
        {"10.0.0.5", 22, key_a, v::match},
        {"git.example.org", 22, key_b, v::mismatch},  // known host, other key
        {"git.example.org", 2222, key_b, v::match},   // [host]:port is its own name
        {"git.example.org", 2222, key_a, v::mismatch},
        {"git.example.org", 2200, key_a, v::unknown},
        {"build.corp.example", 22, key_a, v::match},
        {"bad.corp.example", 22, key_a, v::unknown},  // negated
        {"corp.example", 22, key_a, v::unknown},      // '*.' needs a label
        {"git1.example.net", 22, key_b, v::match},
        {"git12.example.net", 22, key_b, v::unknown},  // '?' is one character
        {"other.example", 22, key_a, v::unknown},
    };
    for (const auto& r : rows) {
        INFO(r.host << ":" << r.port);
        CHECK(kh.check(r.host, r.port, blob(r.key)) == r.want);
    }
}

TEST_CASE("known_hosts: hashed names, revoked keys and lines that do not parse", "[git][unit]") {
    // `ssh-keygen -H` of "git.example.org <a>" and "[git.example.org]:2222 <b>".
    auto hashed = known_hosts::parse("|1|t5JVlAL8z0xqJgdYjI9aAeOm/Gg=|Qv5Qq8qxCD7X74vAKk8SxEJAUEs= ssh-ed25519 " + key_a +
                                     "\n|1|FzRCqLKCZyL4KvzPq7iLHx3ZHKw=|AnbvlUBYpCaZWajMKHuoUklCNyQ= ssh-ed25519 " + key_b +
                                     "\n");
    CHECK(hashed.size() == 2);
    CHECK(hashed.check("git.example.org", 22, blob(key_a)) == v::match);
    CHECK(hashed.check("git.example.org", 2222, blob(key_b)) == v::match);
    CHECK(hashed.check("git.example.org", 22, blob(key_b)) == v::mismatch);
    CHECK(hashed.check("git.example.com", 22, blob(key_a)) == v::unknown);

    auto revoked = known_hosts::parse("@revoked * ssh-ed25519 " + key_b + "\n"
                                      "git.example.org ssh-ed25519 " + key_b + "\n"
                                      "@cert-authority *.example.org ssh-ed25519 " + key_a + "\n");
    CHECK(revoked.size() == 2);
    CHECK(revoked.skipped() == 1);  // host certificates are not supported
    CHECK(revoked.check("git.example.org", 22, blob(key_b)) == v::revoked);
    CHECK(revoked.check("anything", 22, blob(key_b)) == v::revoked);
    CHECK(revoked.check("git.example.org", 22, blob(key_a)) == v::mismatch);

    auto bad = known_hosts::parse("just-a-host\n"
                                  "host ssh-ed25519\n"
                                  "host ssh-ed25519 not*base64\n"
                                  "host ssh-rsa " + key_a + "\n"  // the type does not match the blob
                                  "|1|bad|salt ssh-ed25519 " + key_a + "\n"
                                  "@unknown host ssh-ed25519 " + key_a + "\n"
                                  "host ssh-ed25519 " + key_a + "\n");
    CHECK(bad.size() == 1);
    CHECK(bad.skipped() == 6);
    CHECK(bad.check("host", 22, blob(key_a)) == v::match);
}
