// deploy/compose/faas.yml as local processes: each faasd service (and each
// replica) becomes `faasd <command>` with the service's environment, the Kafka
// address, topic prefix, listening ports and Keycloak URL rewritten to the
// test's own services. Proves that the harness starts processes with exactly
// the compose environment and that faasd accepts it; the end-to-end job run is
// the hidden [.pending-roles] test below, to enable when the roles land.

#include "deploy_tools.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace d = faasd::test::deploy;
namespace json = boost::json;

namespace {

std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("no free port");
    ::close(fd);
    return ntohs(a.sin_port);
}

std::map<std::string, std::string> parse_env_output(const std::string& out) {
    std::map<std::string, std::string> env;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        auto eq = line.find('=');
        if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return env;
}

/// HTTP status of GET http://127.0.0.1:port/path, or 0 if nothing answers.
int http_status(std::uint16_t port, const std::string& path) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = 0;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
            char buf[64] = {};
            auto n = ::recv(fd, buf, sizeof buf - 1, 0);
            if (n > 12 && std::string_view(buf, 5) == "HTTP/") status = std::atoi(buf + 9);
        }
    }
    ::close(fd);
    return status;
}

std::vector<d::local_process> local_topology(const d::local_rewrite& rw, const std::string& home,
                                             const std::map<std::string, std::string>& vars = {}) {
    auto doc = d::compose_config("deploy/compose/faas.yml", d::compose_variables(vars));
    return d::to_local(d::parse_compose(doc), rw, home);
}

}  // namespace

TEST_CASE("faas.yml services start as local processes with exactly their compose environment",
          "[deploy][integration]") {
    faasd::test::temp_dir tmp("faasd-topology");
    d::local_rewrite rw{"kafka.test.invalid:9092", faasd::test::unique_name("t") + ".", {}, free_port};
    auto procs = local_topology(rw, (tmp.path() / "home").string());
    // frontend, 2 workers (deploy.replicas), observer
    REQUIRE(procs.size() == 4);

    // The harness itself: each process sees exactly its environment (`env` prints it).
    d::process_group group(tmp.path() / "logs");
    for (const auto& p : procs) group.start(p.name, {"/usr/bin/env"}, p.env);
    REQUIRE(faasd::test::wait_until(
        [&] {
            for (std::size_t i = 0; i < procs.size(); ++i)
                if (group.running(i)) return false;
            return true;
        },
        std::chrono::seconds(20)));
    for (std::size_t i = 0; i < procs.size(); ++i) {
        const auto& e = group.entries()[i];
        INFO(e.name);
        CHECK(e.status == 0);
        auto seen = parse_env_output(d::process_group::slurp(e.out));
        CHECK(seen == procs[i].env);
        CHECK(seen.at("FAASD_KAFKA_BROKERS") == rw.kafka_brokers);
        CHECK(seen.at("FAASD_TOPIC_PREFIX") == rw.topic_prefix);
    }

    // faasd accepts each environment (exit status 2 would be drift); pending roles
    // are not in the binary yet and are checked by the consistency test.
    int checked = 0;
    for (const auto& p : procs) {
        INFO(p.name);
        if (d::binary().command(p.args.at(0)) == nullptr) {
            REQUIRE(d::pending_roles().count(p.args.at(0)) == 1);
            continue;
        }
        std::vector<std::string> argv{faasd::test::faasd_binary(), "--check-config"};
        argv.insert(argv.end(), p.args.begin(), p.args.end());
        auto r = d::run_clean(argv, p.env);
        INFO(r.err);
        CHECK(r.exit_code == 0);
        ++checked;
    }
    if (checked == 0) WARN("no role of faas.yml is in the binary yet: only the environments were checked");
}

// TODO(lead): enable when frontend, worker and observer land (remove the "." from
// the tag and the roles from pending_roles()). Needs test/services/services.sh
// (3-node Kafka and Keycloak).
// (Not tagged [deploy], so that "[deploy]" does not select it; run it with "[pending-roles]".)
TEST_CASE("faas.yml topology runs a job end to end", "[integration][.pending-roles]") {
    auto kafka = faasd::test::require_env("FAASD_TEST_KAFKA3");
    auto keycloak = faasd::test::require_env("FAASD_TEST_KEYCLOAK");   // http://127.0.0.1:PORT
    auto issuer = faasd::test::require_env("FAASD_TEST_OIDC_ISSUER");  // .../realms/faas
    for (const auto* role : {"frontend", "worker", "observer"}) REQUIRE(d::binary().command(role) != nullptr);

    faasd::test::temp_dir tmp("faasd-topology-e2e");
    auto kc_host = keycloak.substr(keycloak.find("//") + 2);
    d::local_rewrite rw{kafka, faasd::test::unique_name("t") + ".", {{"keycloak:8080", kc_host}}, free_port};
    // The compose variables the operator would set, pointing at the test's Keycloak.
    auto procs = local_topology(rw, (tmp.path() / "home").string(),
                                {{"KEYCLOAK_PUBLIC_URL", issuer.substr(0, issuer.find("/realms/"))}});
    d::process_group group(tmp.path() / "logs");
    std::uint16_t api_port = 0;
    for (const auto& p : procs) {
        std::vector<std::string> argv{faasd::test::faasd_binary()};
        argv.insert(argv.end(), p.args.begin(), p.args.end());
        group.start(p.name, argv, p.env);
        if (p.service == "frontend" && p.ports.count(8080)) api_port = static_cast<std::uint16_t>(p.ports.at(8080));
    }
    REQUIRE(api_port != 0);  // FAASD_LISTEN=0.0.0.0:8080 rewritten to a local port
    bool ready = faasd::test::wait_until(
        [&] {
            for (std::size_t i = 0; i < procs.size(); ++i)
                if (!group.running(i)) return true;  // stop waiting: someone died
            return http_status(api_port, "/ready") == 200;
        },
        std::chrono::seconds(60), std::chrono::milliseconds(200));
    for (std::size_t i = 0; i < procs.size(); ++i) {
        INFO(procs[i].name << " stderr:\n" << d::process_group::slurp(group.entries()[i].err));
        CHECK(group.running(i));  // exit status 2 = the compose environment drifted
    }
    REQUIRE(ready);

    // TODO(lead): submit a job through the REST API with a token for alice from
    // FAASD_TEST_KEYCLOAK (password grant, client faas-cli) — e.g. with `faasd
    // client` or an HTTP client — wait for its result (poll with a deadline),
    // and assert the function's output and the job's state. Then stop the
    // topology and check every process exits 0:
    FAIL("TODO(lead): run a job through the topology once the REST API has landed");
    group.stop_all(std::chrono::seconds(30));
    for (const auto& e : group.entries()) CHECK(e.status == 0);
}
