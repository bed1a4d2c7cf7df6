// deploy/compose/faas.yml as local processes: each faasd service (and each
// replica) becomes `faasd <command>` with the service's environment, the Kafka
// address, topic prefix, listening ports and Keycloak URL rewritten to the
// test's own services. The first test proves that the harness starts processes
// with exactly the compose environment and that faasd accepts it; the second
// runs the topology against the test's Kafka and Keycloak and a job through it
// end to end (token from Keycloak, submit over REST, result back).

#include "deploy_tools.hpp"

#include <catch2/catch.hpp>


namespace d = faasd::test::deploy;
namespace json = boost::json;

namespace {

std::uint16_t free_port() { return static_cast<std::uint16_t>(faasd::test::free_port()); }

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
    d::local_rewrite rw{"kafka.test.invalid:9092", faasd::test::unique_name("t") + ".", {}, free_port,
                        {"/var/lib/faasd", "/tmp/faasd"}};
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

namespace {

/// A git repository (branch main) holding one of examples/functions/, to run by file:// URL.
std::filesystem::path example_repo(const std::filesystem::path& root, const std::string& example) {
    auto dir = root / example;
    std::filesystem::copy(faasd::test::source_dir() / "examples/functions" / example, dir,
                          std::filesystem::copy_options::recursive);
    std::vector<std::string> env{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.test", "GIT_COMMITTER_NAME=t",
                                 "GIT_COMMITTER_EMAIL=t@example.test", "HOME=" + root.string()};
    for (const auto& cmd : std::vector<std::vector<std::string>>{{"git", "init", "-q", "-b", "main", dir.string()},
                                                                  {"git", "-C", dir.string(), "add", "-A"},
                                                                  {"git", "-C", dir.string(), "commit", "-q", "-m", "fn"}}) {
        auto r = faasd::test::run_process(cmd, env);
        if (r.exit_code != 0) throw std::runtime_error("git failed: " + r.err);
    }
    return dir;
}

}  // namespace

// Needs test/services/services.sh up kafka keycloak. The compose variables are
// what an operator would set for a trial: the issuer of the test's Keycloak, and
// file:// repositories allowed (the function comes from a local repository).
TEST_CASE("faas.yml topology runs a job end to end", "[deploy][integration][topology]") {
    auto kafka = faasd::test::require_env("FAASD_TEST_KAFKA");
    auto issuer = faasd::test::require_env("FAASD_TEST_OIDC_ISSUER");  // http://127.0.0.1:PORT/realms/faas
    for (const auto& role : {"frontend", "worker", "observer"})
        if (d::binary().command(role) == nullptr) {
            REQUIRE(d::pending_roles().count(role) == 1);
            WARN("faas.yml topology without `faasd " << role << "` (pending): that service is not started");
        }
    REQUIRE(d::binary().command("frontend") != nullptr);
    REQUIRE(d::binary().command("worker") != nullptr);

    faasd::test::temp_dir tmp("faasd-topology-e2e");
    d::local_rewrite rw{kafka, faasd::test::unique_name("t") + ".", {}, free_port, {"/var/lib/faasd", "/tmp/faasd"}};
    auto procs = local_topology(rw, (tmp.path() / "home").string(),
                                {{"KEYCLOAK_PUBLIC_URL", issuer.substr(0, issuer.find("/realms/"))},
                                 {"FAASD_ALLOW_FILE_REPOS", "true"},
                                 {"FAASD_WORKER_SCHEMES", "https,ssh,file"}});
    d::process_group group(tmp.path() / "logs");
    std::vector<std::size_t> started;
    std::uint16_t api_port = 0;
    std::vector<std::uint16_t> worker_health;
    for (std::size_t i = 0; i < procs.size(); ++i) {
        const auto& p = procs[i];
        if (d::binary().command(p.args.at(0)) == nullptr) continue;  // pending role (warned above)
        if (p.service == "frontend") CHECK(p.env.at("FAASD_OIDC_ISSUER") == issuer);  // via KEYCLOAK_PUBLIC_URL
        std::vector<std::string> argv{faasd::test::faasd_binary()};
        argv.insert(argv.end(), p.args.begin(), p.args.end());
        started.push_back(group.start(p.name, argv, p.env));
        if (p.service == "frontend") api_port = static_cast<std::uint16_t>(p.ports.at(8080));
        if (p.service == "worker") worker_health.push_back(static_cast<std::uint16_t>(p.ports.at(9090)));
    }
    REQUIRE(api_port != 0);                 // FAASD_LISTEN=0.0.0.0:8080 rewritten to a local port
    REQUIRE(worker_health.size() == 2);     // deploy.replicas, each with FAASD_HEALTH_LISTEN=0.0.0.0:9090
    auto stderr_of = [&](std::size_t i) { return d::process_group::slurp(group.entries()[i].err); };
    auto all_running = [&] {
        for (auto i : started)
            if (!group.running(i)) return false;
        return true;
    };
    // The endpoints of the compose healthchecks (and the Kumori probes).
    bool ready = faasd::test::wait_until(
        [&] {
            if (!all_running()) return true;  // stop waiting: someone died
            if (http_status(api_port, "/readyz") != 200) return false;
            for (auto port : worker_health)
                if (http_status(port, "/readyz") != 200) return false;
            return true;
        },
        std::chrono::seconds(90), std::chrono::milliseconds(250));
    for (auto i : started) {
        INFO(group.entries()[i].name << " stderr:\n" << stderr_of(i));
        REQUIRE(group.running(i));  // exit status 2 = the compose environment drifted
    }
    REQUIRE(ready);
    CHECK(http_status(api_port, "/healthz") == 200);
    for (auto port : worker_health) CHECK(http_status(port, "/healthz") == 200);

    // A token for alice from the test's Keycloak (password grant, public client faas-cli).
    std::vector<std::string> client_env{"HOME=" + (tmp.path() / "client").string()};
    std::filesystem::create_directories(tmp.path() / "client");
    auto login = faasd::test::run_process({faasd::test::faasd_binary(), "login", "--oidc-issuer", issuer, "--client-id",
                                           "faas-cli", "--username", "alice", "--password-stdin", "--print-token"},
                                          client_env, "alice-pw\n");
    INFO("faasd login: " << login.err);
    REQUIRE(login.exit_code == 0);
    auto token = login.out.substr(0, login.out.find('\n'));
    REQUIRE(token.size() > 100);

    // Submit over REST to the published frontend and wait for the result.
    auto repo = example_repo(tmp.path(), "echo-sh");
    auto server = "http://127.0.0.1:" + std::to_string(api_port);
    auto submit = faasd::test::run_process(
        {faasd::test::faasd_binary(), "submit", "--server", server, "--token", token, "--repo", "file://" + repo.string(),
         "--ref", "main", "--data", R"({"hello":"deploy"})", "--wait", "--wait-timeout", "120s", "--json"},
        client_env, {}, std::chrono::seconds(180));
    {
        INFO("faasd submit: " << submit.out << submit.err);
        for (auto i : started) UNSCOPED_INFO(group.entries()[i].name << " stderr:\n" << stderr_of(i));
        REQUIRE(submit.exit_code == 0);
    }
    auto result = json::parse(submit.out).as_object();
    CHECK(result.at("state") == "succeeded");
    CHECK(result.at("exit_code") == 0);
    const auto& output = result.at("output").as_object();
    CHECK(output.at("echo") == json::value{{"hello", "deploy"}});
    CHECK(output.at("job") == result.at("id"));
    // The job ran on one of the two workers of the topology.
    auto worker = std::string(result.at("worker").as_string());
    REQUIRE(!worker.empty());
    int ran_on = 0;
    for (auto i : started)
        if (group.entries()[i].name.starts_with("worker-") && stderr_of(i).find(worker) != std::string::npos) ++ran_on;
    CHECK(ran_on == 1);

    // Graceful stop: every process exits 0 on SIGTERM within the compose stop_grace_period.
    group.stop_all(std::chrono::seconds(30));
    for (auto i : started) {
        INFO(group.entries()[i].name << " stderr:\n" << stderr_of(i));
        CHECK(group.entries()[i].status == 0);
    }
}
