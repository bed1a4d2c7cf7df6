#include "e2e_support.hpp"

#include "support/support.hpp"

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace faasd::e2e {
namespace fs = std::filesystem;

boost::json::value http_answer::json() const {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) throw std::runtime_error("not JSON (HTTP " + std::to_string(status) + "): " + body);
    return v;
}

http_answer http(const std::string& method, const std::string& url, const std::string& token,
                 const std::string& body, const std::vector<std::string>& headers) {
    test::temp_dir tmp("faasd-e2e-curl");
    const auto head = (tmp.path() / "headers").string();
    std::vector<std::string> argv = {"curl", "-sS", "-X", method, "-D", head, "-o", "-", "-w", "\n%{http_code}",
                                     "--max-time", "90", url};
    if (!token.empty()) argv.insert(argv.end(), {"-H", "Authorization: Bearer " + token});
    for (const auto& h : headers) argv.insert(argv.end(), {"-H", h});
    if (!body.empty()) argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
    auto r = test::run_process(argv, {}, body, std::chrono::seconds(100));
    if (r.exit_code != 0) throw std::runtime_error("curl " + method + " " + url + " failed: " + r.err);
    http_answer a;
    auto nl = r.out.rfind('\n');
    a.status = std::stoi(r.out.substr(nl + 1));
    a.body = r.out.substr(0, nl);
    std::ifstream in(head);
    std::stringstream s;
    s << in.rdbuf();
    a.headers = s.str();
    return a;
}

std::string keycloak_token(const std::string& user, const std::string& password) {
    const std::string url = test::require_env("FAASD_TEST_OIDC_TOKEN_URL");
    auto r = test::run_process({"curl", "-sS", "--max-time", "60", "-d", "grant_type=password", "-d",
                                "client_id=faas-cli", "-d", "username=" + user, "-d", "password=" + password, url});
    if (r.exit_code != 0) throw std::runtime_error("token request failed: " + r.err);
    auto v = boost::json::parse(r.out);
    if (!v.is_object() || !v.as_object().contains("access_token"))
        throw std::runtime_error("no access_token from Keycloak: " + r.out);
    return std::string(v.at("access_token").as_string());
}

std::string bare_repo_from(const fs::path& files, const fs::path& dir, const std::string& name) {
    const fs::path work = dir / (name + ".work");
    const fs::path bare = dir / (name + ".git");
    fs::create_directories(work);
    fs::copy(files, work, fs::copy_options::recursive);
    auto git = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {"git", "-C", work.string(), "-c", "user.name=e2e", "-c",
                                         "user.email=e2e@faasd.invalid"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = test::run_process(argv);
        if (r.exit_code != 0) throw std::runtime_error("git failed: " + r.err);
    };
    git({"init", "-q", "-b", "main"});
    git({"add", "-A"});
    git({"commit", "-q", "-m", "function " + name});
    git({"clone", "-q", "--bare", work.string(), bare.string()});
    return "file://" + bare.string();
}

std::string string_at(const boost::json::value& v, const char* key) {
    if (!v.is_object() || !v.as_object().contains(key) || !v.at(key).is_string()) return {};
    return std::string(v.at(key).as_string());
}

void wait_ready(const std::string& url, std::vector<bg_process*> processes, std::chrono::seconds timeout) {
    bool ok = test::wait_until(
        [&] {
            for (auto* p : processes)
                if (!p->running()) return true;  // reported below
            try {
                return http("GET", url).status == 200;
            } catch (const std::exception&) {
                return false;
            }
        },
        timeout, std::chrono::milliseconds(250));
    for (auto* p : processes) {
        INFO(p->name() << " log:\n" << p->log());
        REQUIRE(p->running());
    }
    REQUIRE(ok);
}

http_answer wait_result(const std::string& base, const std::string& id, const std::string& token,
                        std::chrono::seconds timeout, const std::string& query) {
    http_answer a;
    test::wait_until(
        [&] {
            a = http("GET", base + "/v1/jobs/" + id + "/result?wait=10" + query, token);
            return a.status != 409;
        },
        timeout, std::chrono::milliseconds(10));
    return a;
}

std::vector<std::string> role_environment(const std::string& prefix) {
    return {"FAASD_CREDENTIALS_KEYS=e2e1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "FAASD_KAFKA_BROKERS=" + test::require_env("FAASD_TEST_KAFKA"),
            "FAASD_TOPIC_PREFIX=" + prefix,
            "FAASD_TOPIC_REPLICATION=1",
            "FAASD_TOPIC_PARTITIONS=2",
            "FAASD_SHUTDOWN_GRACE=15s"};
}

std::vector<std::string> frontend_args(int port) {
    return {test::faasd_binary(), "frontend", "--listen", "127.0.0.1:" + std::to_string(port), "--oidc-issuer",
            test::require_env("FAASD_TEST_OIDC_ISSUER"), "--oidc-audience",
            test::require_env("FAASD_TEST_OIDC_AUDIENCE"), "--allow-file-repos", "true"};
}

}  // namespace faasd::e2e
