#include "common/common.hpp"
#include "frontend/frontend.hpp"
#include "support/support.hpp"

#include <faasd/config/config.hpp>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

using namespace faasd;

namespace {

struct parsed {
    roles::common_config common;
    roles::kafka_config kafka;
    roles::frontend_config fe;
};

// Parses a command line for a `frontend` subcommand carrying every frontend option.
void parse(parsed& p, std::vector<std::string> args) {
    CLI::App app{"t"};
    auto* sub = app.add_subcommand("frontend");
    roles::add_common_options(*sub, p.common);
    roles::add_kafka_options(*sub, p.kafka);
    roles::add_frontend_options(*sub, p.fe);
    args.insert(args.begin(), "frontend");
    std::reverse(args.begin(), args.end());
    app.parse(args);
}

}  // namespace

constexpr const char* valid_ring = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

TEST_CASE("frontend config: defaults and validation", "[frontend][unit]") {
    parsed p;
    parse(p, {"--oidc-issuer", "http://kc/realms/faas"});
    p.fe.credentials_keys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    REQUIRE_NOTHROW(p.fe.validate());
    CHECK(p.fe.listen == "127.0.0.1:8080");
    CHECK(p.fe.oidc_audience == "faas-frontend");
    CHECK(p.fe.allowed_algs == "RS256");
    auto s = p.fe.settings();
    CHECK(s.max_body_bytes == 1024 * 1024);
    CHECK(s.job.repo_schemes == std::vector<std::string>{"https", "ssh"});
    CHECK(s.job.link_schemes == std::vector<std::string>{"https"});
    CHECK(s.submit_rate == 20);
    CHECK(s.max_unfinished_per_user == 100);
    CHECK(s.max_wait == std::chrono::seconds(60));
    CHECK(s.finished_retention == std::chrono::hours(72));
    CHECK(p.fe.oidc_accept_azp);  // docs/security.md rule 14: on in the frontend
    CHECK_FALSE(s.bench_hello);
    {
        parsed r;
        parse(r, {"--oidc-issuer", "http://kc/realms/faas", "--finished-retention", "2s", "--oidc-discovery-url",
                  "http://keycloak:8080/realms/faas"});
        r.fe.credentials_keys = valid_ring;
        REQUIRE_NOTHROW(r.fe.validate());
        CHECK(r.fe.settings().finished_retention == std::chrono::seconds(2));
        CHECK(r.fe.oidc_discovery_url == "http://keycloak:8080/realms/faas");
    }

    auto bad = [&](std::vector<std::string> args) {
        parsed q;
        args.insert(args.begin(), {"--oidc-issuer", "http://kc/realms/faas"});
        parse(q, args);
        q.fe.credentials_keys = valid_ring;
        CHECK_THROWS_AS(q.fe.validate(), config::config_error);
    };
    bad({"--listen", "nonsense"});
    bad({"--allowed-algs", "HS256"});
    bad({"--allowed-algs", "none"});
    bad({"--allowed-algs", ""});
    bad({"--clock-leeway", "1h"});
    bad({"--max-body", "12"});
    bad({"--max-timeout", "0"});
    bad({"--default-timeout", "7200"});
    bad({"--repo-schemes", "file"});
    bad({"--repo-schemes", "gopher"});
    bad({"--rate-limit", "-1"});
    bad({"--max-wait", "1h"});
    bad({"--oidc-jwks-file", "/nonexistent/jwks.json"});
    bad({"--finished-retention", "0s"});
    bad({"--finished-retention", "forever"});
    bad({"--oidc-discovery-url", "keycloak:8080"});
    parsed badkey;
    parse(badkey, {"--oidc-issuer", "http://kc/realms/faas"});
    badkey.fe.credentials_keys = "k1:x";  // not 32 bytes
    CHECK_THROWS_AS(badkey.fe.validate(), config::config_error);
    parsed none;
    parse(none, {});
    none.fe.credentials_keys = valid_ring;
    CHECK_THROWS_AS(none.fe.validate(), config::config_error);  // --oidc-issuer is required
}

TEST_CASE("frontend config: file-only dev settings", "[frontend][unit]") {
    parsed p;
    parse(p, {"--oidc-issuer", "http://kc/realms/faas", "--allow-file-repos", "true", "--link-schemes", "https,http",
              "--env-allow", "*", "--bench-hello"});
    p.fe.credentials_keys = valid_ring;
    REQUIRE_NOTHROW(p.fe.validate());
    auto s = p.fe.settings();
    CHECK(s.job.repo_schemes == std::vector<std::string>{"https", "ssh", "file"});
    CHECK(s.job.link_schemes == std::vector<std::string>{"https", "http", "file"});
    CHECK(s.job.env_allow == std::vector<std::string>{"*"});
    CHECK(s.bench_hello);
}

TEST_CASE("frontend config: the credential key ring is never an option", "[frontend][unit]") {
    CLI::App app{"t"};
    auto* sub = app.add_subcommand("frontend");
    roles::frontend_config fe;
    roles::add_frontend_options(*sub, fe);
    for (const auto* o : sub->get_options()) {
        auto name = o->get_name();
        CHECK(name.find("credentials-key") == std::string::npos);
        CHECK(name.find("secret") == std::string::npos);
        CHECK(name.find("password") == std::string::npos);
        // Every visible option documents itself.
        if (!o->get_group().empty() && name != "--help") CHECK_FALSE(o->get_description().empty());
    }
}

TEST_CASE("frontend config: config/frontend.example.toml is valid and matches the defaults", "[frontend][unit]") {
    CLI::App app{"t"};
    auto* sub = app.add_subcommand("frontend");
    parsed p;
    roles::add_common_options(*sub, p.common);
    roles::add_kafka_options(*sub, p.kafka);
    roles::add_frontend_options(*sub, p.fe);
    app.parse(std::vector<std::string>{"frontend"});
    auto file = (test::source_dir() / "config" / "frontend.example.toml").string();
    auto entries = config::read_file(file);
    REQUIRE_NOTHROW(config::apply_file(*sub, entries, file, config::all_long_names(app)));
    p.fe.credentials_keys = valid_ring;
    REQUIRE_NOTHROW(p.fe.validate());
    REQUIRE_NOTHROW(p.common.validate());
    REQUIRE_NOTHROW(p.kafka.validate());
    roles::frontend_config defaults;
    CHECK(p.fe.listen == defaults.listen);
    CHECK(p.fe.max_body == defaults.max_body);
    CHECK(p.fe.rate_limit == defaults.rate_limit);
    CHECK(p.fe.env_allow == defaults.env_allow);
    CHECK(p.fe.max_result == defaults.max_result);
    CHECK(p.fe.ws_queue == defaults.ws_queue);
    CHECK(p.fe.allow_file_repos == defaults.allow_file_repos);
    CHECK(p.fe.finished_retention == defaults.finished_retention);
    CHECK(p.fe.oidc_accept_azp == defaults.oidc_accept_azp);
    CHECK(p.fe.oidc_discovery_url.empty());
    CHECK(p.kafka.topic_prefix == "faasd.");
}
