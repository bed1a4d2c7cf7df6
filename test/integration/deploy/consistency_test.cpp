// The deployment files against the binary and against each other (issue #6):
// deploy/compose/{faas,keycloak}.yml resolve with docker-compose; the Kumori
// module vets against the schema stub; every faasd service and role runs a
// subcommand the binary has, with FAASD_* variables the binary reads and values
// it accepts (`faasd --check-config`); compose and Kumori agree on commands,
// variables, ports and image versions; the topic table matches the code.
//
// Needs docker-compose and cue (scripts/install-cue.sh); the topic test also
// the single-node test Kafka (FAASD_TEST_KAFKA).

#include "deploy_tools.hpp"

#include "unit/kafka/kafka_test_util.hpp"

#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/kafka.hpp>

#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>

#include <regex>

namespace d = faasd::test::deploy;
namespace json = boost::json;
using faasd::test::source_dir;

namespace {

// Resolved once per test run (docker-compose is slow to start).
const json::value& faas_doc() {
    static const auto doc = d::compose_config("deploy/compose/faas.yml", d::compose_variables());
    return doc;
}
const json::value& keycloak_doc() {
    static const auto doc = d::compose_config("deploy/compose/keycloak.yml", d::compose_variables());
    return doc;
}
const std::vector<d::compose_service>& faas_compose() {
    static const auto s = d::parse_compose(faas_doc());
    return s;
}
const std::vector<d::compose_service>& keycloak_compose() {
    static const auto s = d::parse_compose(keycloak_doc());
    return s;
}
const d::compose_service& service(const std::vector<d::compose_service>& all, const std::string& name) {
    for (const auto& s : all)
        if (s.name == name) return s;
    throw std::runtime_error("no compose service " + name);
}

struct kumori_exports {
    d::kumori_deployment faas, keycloak;
    json::value faas_json, keycloak_json;  ///< as cue exported them
};
const kumori_exports& kumori() {
    static const kumori_exports k = [] {
        faasd::test::temp_dir out("faasd-kumori");
        auto r = d::kumori_check(out.path());
        if (r.exit_code != 0) throw std::runtime_error("deploy/kumori/check.sh failed:\n" + r.out + r.err);
        auto faas = json::parse(d::read_text(out.path() / "faas_deployment.json"));
        auto keycloak = json::parse(d::read_text(out.path() / "keycloak_deployment.json"));
        return kumori_exports{d::parse_kumori(faas), d::parse_kumori(keycloak), faas, keycloak};
    }();
    return k;
}

std::string tag_of(const std::string& image) { return image.substr(image.rfind(':') + 1); }
std::string repo_of(const std::string& image) {
    auto s = image.substr(0, image.rfind(':'));
    for (std::string hub : {"registry.hub.docker.com/", "docker.io/", "quay.io/"})
        if (s.starts_with(hub)) s = s.substr(hub.size());
    return s;
}

/// The subcommand an argument list selects ("dev token --x" -> "dev token").
std::string command_path(const std::vector<std::string>& args) {
    std::string path;
    for (const auto& a : args) {
        if (a.starts_with("-")) break;
        std::string cand = path.empty() ? a : path + " " + a;
        if (d::binary().command(cand) == nullptr && !path.empty()) break;
        path = cand;
    }
    return path;
}

/// Every check a faasd process description gets, compose service or Kumori role.
void check_faasd_process(const std::string& where, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env) {
    INFO(where);
    REQUIRE_FALSE(args.empty());
    auto cmd = command_path(args);
    if (const auto* c = d::binary().command(cmd)) {
        CHECK(c->leaf);
        auto problems = d::env_problems(env, *c);
        for (const auto& p : problems) UNSCOPED_INFO(p);
        CHECK(problems.empty());
        // The binary parses and validates this very environment (exit 2 = drift).
        std::vector<std::string> argv{faasd::test::faasd_binary(), "--check-config"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = d::run_clean(argv, env);
        INFO("faasd --check-config: " << r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.err.find("matches no option") == std::string::npos);
    } else {
        INFO("`faasd " << cmd << "` is not in the binary; only pending roles may be missing");
        REQUIRE(d::pending_roles().count(cmd) == 1);
        WARN(where << ": `faasd " << cmd << "` is pending (not in the binary yet): its variables were checked "
                   << "against the shared options only");
        auto problems = d::shared_option_problems(env);
        for (const auto& p : problems) UNSCOPED_INFO(p);
        CHECK(problems.empty());
    }
}

std::map<std::string, std::string> effective_env(const d::kumori_container& c) {
    std::map<std::string, std::string> env;
    for (const auto& [k, v] : c.env) env[k] = v.kind == d::kumori_env::secret ? "test-secret" : v.effective;
    // Secrets that faasd parses get values of the right shape.
    if (env.count("FAASD_CREDENTIALS_KEYS"))
        env["FAASD_CREDENTIALS_KEYS"] = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    return env;
}

std::vector<const d::compose_service*> faasd_services() {
    std::vector<const d::compose_service*> out;
    for (const auto& s : faas_compose())
        if (d::is_faasd_image(s.image)) out.push_back(&s);
    return out;
}

std::vector<std::pair<const d::kumori_role*, const d::kumori_container*>> faasd_roles() {
    std::vector<std::pair<const d::kumori_role*, const d::kumori_container*>> out;
    for (const auto& r : kumori().faas.roles)
        for (const auto& c : r.containers)
            if (d::is_faasd_image(c.image)) out.emplace_back(&r, &c);
    return out;
}

std::set<std::string> faasd_vars(const std::map<std::string, std::string>& env) {
    std::set<std::string> out;
    for (const auto& [k, v] : env)
        if (k.starts_with("FAASD_")) out.insert(k);
    return out;
}

}  // namespace

TEST_CASE("faasd --dump-options describes the binary", "[deploy][integration]") {
    const auto& b = d::binary();
    CHECK(b.version == FAASD_VERSION);
    for (const auto& c : b.commands) {
        for (const auto& o : c.options) {
            INFO("faasd " << c.path << " --" << o.name);
            CHECK(o.env == faasd::config::env_name_for(o.name));  // bind_env's contract
        }
        if (c.leaf) {
            auto args = std::vector<std::string>{faasd::test::faasd_binary()};
            std::istringstream words(c.path);
            for (std::string w; words >> w;) args.push_back(w);
            args.push_back("--help");
            CHECK(faasd::test::run_process(args).exit_code == 0);
        }
    }
    for (const auto& role : d::pending_roles())
        if (b.command(role))
            WARN("`faasd " << role << "` has landed: remove it from pending_roles() in deploy_model.hpp");
}

TEST_CASE("compose files resolve, and refuse to start without their secrets", "[deploy][integration]") {
    CHECK(faas_compose().size() == 8);  // kafka1..3, kafka-init, frontend, worker, observer, scaler
    CHECK(keycloak_compose().size() == 2);

    auto vars = d::compose_variables();
    vars.erase("FAASD_CREDENTIALS_KEYS");
    try {
        d::compose_config("deploy/compose/faas.yml", vars);
        FAIL("faas.yml resolved without FAASD_CREDENTIALS_KEYS");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("set FAASD_CREDENTIALS_KEYS") != std::string::npos);
    }
    vars = d::compose_variables();
    vars.erase("KEYCLOAK_DB_PASSWORD");
    CHECK_THROWS_WITH(d::compose_config("deploy/compose/keycloak.yml", vars),
                      Catch::Contains("set KEYCLOAK_DB_PASSWORD"));
}

TEST_CASE("faas.yml: every faasd service runs a subcommand with variables the binary reads", "[deploy][integration]") {
    auto services = faasd_services();
    std::set<std::string> commands;
    for (const auto* s : services) {
        check_faasd_process("deploy/compose/faas.yml service " + s->name, s->command, s->env);
        commands.insert(command_path(s->command));
        CHECK(s->restart == "unless-stopped");
        CHECK(repo_of(s->image) == "faasd");
        // The image of this version (the scaler: the Dockerfile's scaler target of it).
        CHECK(tag_of(s->image) == d::binary().version + (s->name == "scaler" ? "-scaler" : ""));
    }
    CHECK(commands == std::set<std::string>{"frontend", "worker", "observer", "scaler"});
    // Only the scaler is optional (a profile); the others start with a plain `up`.
    for (const auto* s : services) CHECK(s->profiles == (s->name == "scaler" ? std::vector<std::string>{"scaler"}
                                                                             : std::vector<std::string>{}));
}

TEST_CASE("faas.yml: the topology of the FaaS", "[deploy][integration]") {
    const auto& all = faas_compose();
    // Three KRaft brokers, each a voter, replication 3 and min.insync.replicas 2.
    std::set<std::string> node_ids;
    std::string voters;
    for (const auto* name : {"kafka1", "kafka2", "kafka3"}) {
        const auto& k = service(all, name);
        INFO(name);
        CHECK(repo_of(k.image) == "apache/kafka");
        CHECK(k.env.at("KAFKA_PROCESS_ROLES") == "broker,controller");
        CHECK(k.env.at("KAFKA_DEFAULT_REPLICATION_FACTOR") == "3");
        CHECK(k.env.at("KAFKA_MIN_INSYNC_REPLICAS") == "2");
        CHECK(k.env.at("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR") == "2");
        CHECK(k.env.at("KAFKA_ADVERTISED_LISTENERS") == std::string("PLAINTEXT://") + name + ":9092");
        CHECK(k.healthcheck);
        CHECK(k.restart == "unless-stopped");
        node_ids.insert(k.env.at("KAFKA_NODE_ID"));
        CHECK(k.env.at("KAFKA_CONTROLLER_QUORUM_VOTERS").find(k.env.at("KAFKA_NODE_ID") + "@" + name + ":9093") !=
              std::string::npos);
        if (voters.empty()) voters = k.env.at("KAFKA_CONTROLLER_QUORUM_VOTERS");
        CHECK(k.env.at("KAFKA_CONTROLLER_QUORUM_VOTERS") == voters);
        CHECK(k.env.at("CLUSTER_ID") == service(all, "kafka1").env.at("CLUSTER_ID"));
    }
    CHECK(node_ids.size() == 3);

    // faasd talks to all three brokers, with the topic layout kafka-init creates.
    const auto& init = service(all, "kafka-init");
    for (const auto* s : faasd_services()) {
        INFO(s->name);
        CHECK(s->env.at("FAASD_KAFKA_BROKERS") == "kafka1:9092,kafka2:9092,kafka3:9092");
        CHECK(s->env.at("FAASD_KAFKA_BROKERS") == init.env.at("BOOTSTRAP"));
        CHECK(s->env.at("FAASD_TOPIC_PREFIX") == init.env.at("TOPIC_PREFIX"));
        CHECK(s->env.at("FAASD_TOPIC_PARTITIONS") == init.env.at("PARTITIONS"));
        CHECK(s->env.at("FAASD_TOPIC_REPLICATION") == init.env.at("REPLICATION"));
        CHECK(s->container_name == false);  // scalable
    }
    CHECK(init.env.at("MIN_INSYNC_REPLICAS") == "2");
    CHECK(init.restart == "no");

    // The frontend is published and joins the network shared with keycloak.yml;
    // workers publish nothing and can be scaled.
    const auto& fe = service(all, "frontend");
    REQUIRE(fe.ports.size() == 1);
    CHECK(fe.ports[0].published != 0);
    CHECK(std::count(fe.networks.begin(), fe.networks.end(), "faasd-shared") == 1);
    const auto& wo = service(all, "worker");
    CHECK(wo.ports.empty());
    CHECK(wo.replicas >= 2);
    // The observer models workers of the workers' --slots; the scaler applies its
    // decisions to this compose project's worker service, within the same bounds.
    const auto& ob = service(all, "observer");
    CHECK(ob.env.at("FAASD_SLOTS_PER_WORKER") == wo.env.at("FAASD_SLOTS"));
    const auto& sc = service(all, "scaler");
    const auto& exec = sc.env.at("FAASD_EXEC");
    CHECK(exec.find("/faas.yml ") != std::string::npos);
    CHECK(exec.find(" up -d --no-deps --no-recreate --scale worker={workers} worker") != std::string::npos);
    CHECK(sc.env.at("FAASD_MIN_WORKERS") == ob.env.at("FAASD_MIN_WORKERS"));
    CHECK(sc.env.at("FAASD_MAX_WORKERS") == ob.env.at("FAASD_MAX_WORKERS"));
    // The frontend's container port is its --listen port.
    if (const auto* c = d::binary().command("frontend")) {
        bool listens = false;
        for (const auto& [k, v] : fe.env)
            if (auto p = d::wildcard_listen_port(v); p && *p == fe.ports[0].target && c->by_env(k)) listens = true;
        CHECK(listens);
    } else {
        WARN("faas.yml: frontend port " << fe.ports[0].target << " not checked against --listen (frontend pending)");
    }
    // Every faasd service that serves HTTP (an option listening on a wildcard
    // address) has a healthcheck asking that very port for /readyz.
    for (const auto* s : faasd_services()) {
        const auto* c = d::binary().command(command_path(s->command));
        if (c == nullptr) continue;  // pending (warned by the test above)
        for (const auto& [k, v] : s->env) {
            auto port = d::wildcard_listen_port(v);
            if (!port || c->by_env(k) == nullptr) continue;
            INFO(s->name << " " << k << "=" << v);
            REQUIRE(s->healthcheck);
            auto test = json::serialize(faas_doc().at("services").at(s->name).at("healthcheck").at("test"));
            CHECK(test.find("/dev/tcp/127.0.0.1/" + std::to_string(*port) + " ") != std::string::npos);
            CHECK(test.find("GET /readyz ") != std::string::npos);
        }
    }
}

TEST_CASE("faas.yml and keycloak.yml: the frontend reaches the issuer its tokens name", "[deploy][integration]") {
    const auto& fe = service(faas_compose(), "frontend");
    const auto& kc = service(keycloak_compose(), "keycloak");
    // Tokens say iss = KC_HOSTNAME/realms/faas; the frontend trusts exactly that.
    REQUIRE(fe.env.count("FAASD_OIDC_ISSUER") == 1);
    CHECK(fe.env.at("FAASD_OIDC_ISSUER") == kc.env.at("KC_HOSTNAME") + "/realms/faas");
    // ... and fetches <issuer>/.well-known/openid-configuration from inside the
    // network: the issuer's host is an alias of Keycloak on the shared network,
    // its port the one Keycloak listens on (and publishes, for clients).
    auto url = faasd::config::parse_endpoint(kc.env.at("KC_HOSTNAME").substr(kc.env.at("KC_HOSTNAME").find("//") + 2));
    REQUIRE(url.has_value());
    std::set<std::string> aliases;
    const auto& nets = keycloak_doc().at("services").at("keycloak").at("networks").as_object();
    REQUIRE(nets.contains("faasd-shared"));
    for (const auto& a : nets.at("faasd-shared").at("aliases").as_array()) aliases.insert(std::string(a.as_string()));
    CHECK(aliases.count(url->host) == 1);
    CHECK(std::to_string(url->port) == kc.env.at("KC_HTTP_PORT"));
    REQUIRE(kc.ports.size() == 1);
    CHECK(kc.ports[0].target == url->port);
    CHECK(kc.ports[0].published == url->port);
    CHECK(std::count(fe.networks.begin(), fe.networks.end(), "faasd-shared") == 1);
}

namespace {

/// Runs deploy/compose/kafka/create-topics.sh with exactly `env` and, as its
/// KAFKA_TOPICS, a stand-in that records its arguments (the real kafka-topics
/// is one JVM start per topic: ~3 s each here). Returns the --create calls as
/// topic specs, sorted by name.
std::vector<faasd::kafka::topic_spec> run_create_topics(std::map<std::string, std::string> env) {
    faasd::test::temp_dir tmp("faasd-create-topics");
    const auto calls = tmp.path() / "calls";
    const auto shim = tmp.path() / "kafka-topics";
    {
        std::ofstream out(shim);
        out << "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '" << calls.string()
            << "'\necho @@end >> '" << calls.string() << "'\n";
    }
    std::filesystem::permissions(shim, std::filesystem::perms::owner_all);
    env["KAFKA_TOPICS"] = shim.string();
    env["PATH"] = "/usr/bin:/bin";
    auto r = d::run_clean({"/bin/bash", (source_dir() / "deploy/compose/kafka/create-topics.sh").string()}, env);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);

    std::vector<faasd::kafka::topic_spec> out;
    std::istringstream in(d::read_text(calls));
    std::vector<std::string> args;
    for (std::string line; std::getline(in, line);) {
        if (line != "@@end") {
            args.push_back(line);
            continue;
        }
        INFO("kafka-topics " << json::serialize(json::value_from(args)));
        auto value = [&](const std::string& flag, std::size_t from) {
            REQUIRE(from + 1 < args.size());
            CHECK(args[from] == flag);
            return args[from + 1];
        };
        CHECK(value("--bootstrap-server", 0) == env.at("BOOTSTRAP"));
        if (std::count(args.begin(), args.end(), "--create") == 1) {
            CHECK(std::count(args.begin(), args.end(), "--if-not-exists") == 1);
            faasd::kafka::topic_spec spec;
            for (std::size_t i = 0; i < args.size(); ++i) {
                if (args[i] == "--topic") spec.name = value("--topic", i);
                if (args[i] == "--partitions") spec.partitions = std::stoi(value("--partitions", i));
                if (args[i] == "--replication-factor") spec.replication_factor = std::stoi(value("--replication-factor", i));
                if (args[i] == "--config") {
                    auto kv = value("--config", i);
                    auto eq = kv.find('=');
                    REQUIRE(eq != std::string::npos);
                    CHECK(spec.configs.emplace(kv.substr(0, eq), kv.substr(eq + 1)).second);
                }
            }
            out.push_back(spec);
        }
        args.clear();
    }
    auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
    std::sort(out.begin(), out.end(), by_name);
    return out;
}

std::string describe(const std::vector<faasd::kafka::topic_spec>& specs) {
    std::string out;
    for (const auto& s : specs) {
        out += "\n  " + s.name + " partitions=" + std::to_string(s.partitions) +
               " replication=" + std::to_string(s.replication_factor);
        for (const auto& [k, v] : s.configs) out += " " + k + "=" + v;
    }
    return out;
}

std::vector<faasd::kafka::topic_spec> sorted_specs(const faasd::jobs::topic_names& names, int partitions, int rf) {
    auto specs = faasd::kafka::faasd_topic_specs(names, partitions, rf);
    std::sort(specs.begin(), specs.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return specs;
}

}  // namespace

TEST_CASE("kafka/create-topics.sh creates the topics faasd creates, with the same settings", "[deploy][integration]") {
    // The compose file mounts the script kafka-init runs.
    bool mounted = false;
    const auto& vols = faas_doc().at("services").at("kafka-init").at("volumes").as_array();
    for (const auto& v : vols)
        mounted =
            mounted || json::serialize(v).find("kafka/create-topics.sh:/faasd/create-topics.sh") != std::string::npos;
    CHECK(mounted);

    // With kafka-init's own environment: names, partitions, replication, cleanup
    // policy, retention and min.insync.replicas exactly as kafka::faasd_topic_specs.
    const auto& init = service(faas_compose(), "kafka-init");
    std::map<std::string, std::string> env;
    for (const auto* k : {"BOOTSTRAP", "TOPIC_PREFIX", "PARTITIONS", "REPLICATION", "MIN_INSYNC_REPLICAS"})
        env[k] = init.env.at(k);
    auto names = faasd::jobs::topic_names::with_prefix(env.at("TOPIC_PREFIX"));
    {
        auto got = run_create_topics(env);
        auto want = sorted_specs(names, std::stoi(env.at("PARTITIONS")), std::stoi(env.at("REPLICATION")));
        INFO("create-topics.sh:" << describe(got) << "\nfaasd:" << describe(want));
        CHECK(got == want);
    }
    // Its defaults agree with faasd's too, also for one broker.
    for (const auto* rf : {"3", "1"}) {
        auto got = run_create_topics({{"BOOTSTRAP", "b:1"}, {"REPLICATION", rf}});
        auto want = sorted_specs(faasd::jobs::topic_names::with_prefix("faasd."), 6, std::stoi(rf));
        INFO("create-topics.sh:" << describe(got) << "\nfaasd:" << describe(want));
        CHECK(got == want);
    }

    // On the real single-node Kafka, the script's topics and the ones faasd
    // creates for itself carry the same partitions and topic-level configs.
    const auto brokers = faasd::test::require_env("FAASD_TEST_KAFKA");
    const auto compose_prefix = faasd::test::unique_name("compose") + ".";
    auto compose_names = faasd::jobs::topic_names::with_prefix(compose_prefix);
    auto own_names = faasd::jobs::topic_names::with_prefix(faasd::test::unique_name("faasd") + ".");
    auto script_specs = run_create_topics(
        {{"BOOTSTRAP", brokers}, {"TOPIC_PREFIX", compose_prefix}, {"PARTITIONS", "2"}, {"REPLICATION", "1"}});
    CHECK(script_specs == sorted_specs(compose_names, 2, 1));
    faasd::kafka::testing::log_capture logs;
    std::map<std::string, std::size_t> partitions;
    std::map<std::string, std::map<std::string, std::string>> overrides;  // set on the topic itself
    auto all = compose_names.all();
    for (const auto& t : own_names.all()) all.push_back(t);
    faasd::test::run_coroutine(
        [&]() -> boost::asio::awaitable<void> {
            faasd::kafka::admin_options o;
            o.brokers = brokers;
            o.log = logs.logger(faasd::log_level::info);
            faasd::kafka::admin adm(co_await boost::asio::this_coro::executor, o);
            CO_REQUIRE(co_await adm.ensure_topics(script_specs));
            CO_REQUIRE(co_await faasd::kafka::ensure_faasd_topics(adm, own_names, 2, 1));
            auto md = co_await adm.describe_topics(all);
            REQUIRE(faasd::kafka::testing::ok(md));
            for (const auto& t : *md) partitions[t.name] = t.partitions.size();
            for (const auto& t : all) {
                auto c = co_await adm.topic_configs(t, true);
                REQUIRE(faasd::kafka::testing::ok(c));
                overrides[t] = *c;
            }
            CO_REQUIRE(co_await adm.delete_topics(all));
            co_await adm.close();
        },
        std::chrono::seconds(60));
    auto compose_topics = compose_names.all(), own_topics = own_names.all();
    REQUIRE(compose_topics.size() == own_topics.size());
    for (std::size_t i = 0; i < own_topics.size(); ++i) {
        INFO(compose_topics[i] << " vs " << own_topics[i]);
        CHECK(partitions.at(compose_topics[i]) == partitions.at(own_topics[i]));
        CHECK(overrides.at(compose_topics[i]) == overrides.at(own_topics[i]));
        CHECK(overrides.at(compose_topics[i]).count("min.insync.replicas") == 1);
    }
}

TEST_CASE("keycloak.yml: Keycloak on PostgreSQL imports the tests' realm", "[deploy][integration]") {
    const auto& all = keycloak_compose();
    const auto& kc = service(all, "keycloak");
    const auto& pg = service(all, "postgres");
    CHECK(repo_of(kc.image) == "keycloak/keycloak");
    CHECK(repo_of(pg.image) == "postgres");
    CHECK(kc.env.at("KC_DB") == "postgres");
    CHECK(kc.env.at("KC_DB_URL").find("//postgres:5432/" + pg.env.at("POSTGRES_DB")) != std::string::npos);
    CHECK(kc.env.at("KC_DB_USERNAME") == pg.env.at("POSTGRES_USER"));
    CHECK(kc.env.at("KC_DB_PASSWORD") == pg.env.at("POSTGRES_PASSWORD"));
    CHECK(kc.command == std::vector<std::string>{"start", "--import-realm"});
    CHECK(kc.healthcheck);
    CHECK(pg.healthcheck);
    CHECK(std::count(kc.networks.begin(), kc.networks.end(), "faasd-shared") == 1);

    // The same realm file the integration tests import.
    std::string realm_mount;
    for (const auto& v : keycloak_doc().at("services").at("keycloak").at("volumes").as_array())
        if (json::serialize(v).find("/opt/keycloak/data/import/") != std::string::npos)
            realm_mount = json::serialize(v);
    auto realm_file = (source_dir() / "config/keycloak/faas-realm.json").lexically_normal().string();
    CHECK(realm_mount.find(realm_file + ":/opt/keycloak/data/import/faas-realm.json") != std::string::npos);
    if (std::filesystem::exists(realm_file)) {
        auto realm = json::parse(d::read_text(realm_file));
        CHECK(realm.at("realm") == "faas");
        // Every ${VAR...} placeholder of the realm is in Keycloak's environment.
        auto text = d::read_text(realm_file);
        std::regex placeholder(R"(\$\{([A-Za-z_][A-Za-z0-9_]*)[:}])");
        for (std::sregex_iterator it(text.begin(), text.end(), placeholder), e; it != e; ++it) {
            INFO("realm placeholder " << (*it)[1]);
            CHECK(kc.env.count((*it)[1]) == 1);
        }
    } else {
        WARN("config/keycloak/faas-realm.json is not on this branch yet (services branch): realm not checked");
    }
}

TEST_CASE("the deployment files use the versions the test services run", "[deploy][integration]") {
    auto kafka = tag_of(service(faas_compose(), "kafka1").image);
    auto keycloak = tag_of(service(keycloak_compose(), "keycloak").image);
    auto services = source_dir() / "test/services/services.sh";
    if (std::filesystem::exists(services)) {
        auto text = d::read_text(services);
        INFO("test/services/services.sh must run Kafka " << kafka << " and Keycloak " << keycloak);
        CHECK(text.find(kafka) != std::string::npos);
        CHECK(text.find(keycloak) != std::string::npos);
    } else {
        WARN("test/services/services.sh is not on this branch yet: versions not compared");
    }
}

// One test case (sections) so that check.sh runs once per process.
TEST_CASE("Kumori manifests", "[deploy][integration]") {
    const auto& k = kumori();  // deploy/kumori/check.sh: cue vet + cue export with the stub

    SECTION("both deployments vet and export against the schema stub") {
        CHECK(k.faas.name == "faasd");
        CHECK(k.keycloak.name == "faasd-auth");
        CHECK(k.faas.service == "faas");
        CHECK(k.keycloak.service == "keycloak");
    }

    SECTION("every faasd role runs a subcommand with variables the binary reads, as in faas.yml") {
        std::map<std::string, std::set<std::string>> kumori_vars;
        for (const auto& [role, c] : faasd_roles()) {
            auto env = effective_env(*c);
            check_faasd_process("Kumori role " + role->name, c->cmd, env);
            CHECK(c->entrypoint.empty());  // the image's ENTRYPOINT is faasd
            CHECK(tag_of(c->image) == d::binary().version);
            kumori_vars[command_path(c->cmd)] = faasd_vars(env);
            // Every server channel of a faasd role is a port it listens on.
            if (d::binary().command(command_path(c->cmd))) {
                for (const auto& [ch, port] : role->server) {
                    bool listens = false;
                    for (const auto& [name, v] : env)
                        if (auto p = d::wildcard_listen_port(v); p && *p == port) listens = true;
                    INFO("role " << role->name << " channel " << ch);
                    CHECK(listens);
                }
            }
        }
        // Compose and Kumori run the same commands with the same FAASD_* variables.
        std::map<std::string, std::set<std::string>> compose_vars;
        // (The compose scaler has no Kumori role: scale.sh is run where kam is, docs/deployment.md.)
        for (const auto* s : faasd_services())
            if (s->profiles.empty()) compose_vars[command_path(s->command)] = faasd_vars(s->env);
        CHECK(kumori_vars == compose_vars);
        // The frontend's API channel is the port faas.yml publishes.
        CHECK(k.faas.role("frontend")->server.at("api") == service(faas_compose(), "frontend").ports.at(0).target);
    }

    SECTION("compose and Kumori agree on every value both set, and on the commands") {
        // Values that differ by design, and why (docs/deployment.md, "Compose and Kumori").
        const std::map<std::string, std::string> differ{
            {"FAASD_KAFKA_BROKERS", "addresses: compose's service names, Kumori's full connector (0.kafka)"},
            {"KAFKA_CONTROLLER_QUORUM_VOTERS", "addresses: compose's kafkaN, Kumori's voterN client channels"},
            {"KC_DB_URL", "addresses: compose's postgres:5432, Kumori's load-balancer connector (0.db:80)"},
            {"FAASD_OIDC_ISSUER", "each deployment's public Keycloak URL (= its KC_HOSTNAME + realm, checked above)"},
            {"FAASD_OIDC_DISCOVERY_URL", "compose: empty, the issuer URL works inside the network; Kumori: the idp "
                                         "link to the keycloak service (0.idp)"},
            {"KC_HOSTNAME", "each deployment's public Keycloak URL"},
            {"KC_HTTP_PORT", "compose: the public port (the issuer URL works inside the network); Kumori: 8080 "
                             "behind the HTTPS inbound"},
            {"FAASD_CACHE_DIR", "Kumori: on the worker's scratch volume; compose: a named volume shared by replicas"},
            {"FAASD_JOBS_DIR", "Kumori: on the worker's scratch volume; compose: on the tmpfs /tmp"},
        };
        // Set on one side only.
        const std::map<std::string, std::string> one_sided{
            {"KAFKA_ADVERTISED_LISTENERS", "Kumori: /kumori/start.sh derives it from the instance's address"},
        };
        const auto faas_text = d::read_text(source_dir() / "deploy/compose/faas.yml");
        const auto keycloak_text = d::read_text(source_dir() / "deploy/compose/keycloak.yml");
        int compared = 0;
        std::set<std::string> roles_seen;
        for (const auto* dep : {&k.faas, &k.keycloak})
            for (const auto& role : dep->roles) {
                const d::compose_service* cs = nullptr;
                for (const auto* all : {&faas_compose(), &keycloak_compose()})
                    for (const auto& s : *all)
                        if (s.name == role.name) cs = &s;
                if (role.builtin) continue;
                INFO("role " << role.name);
                REQUIRE(cs != nullptr);  // every Kumori role is a compose service of the same name
                roles_seen.insert(role.name);
                const auto& c = role.containers.at(0);
                for (const auto& [name, v] : c.env) {
                    INFO(name << ": Kumori " << v.effective);
                    auto it = cs->env.find(name);
                    bool prefixed = name.starts_with("FAASD_") || name.starts_with("KAFKA_") || name.starts_with("KC_");
                    if (it == cs->env.end()) {
                        CHECK((!prefixed || one_sided.count(name) == 1));
                        continue;
                    }
                    if (v.kind == d::kumori_env::secret) {
                        // A Kumori secret is a required .env variable in compose, never a literal.
                        std::regex from_env("\\n\\s+" + name + ": \\$\\{[A-Z_]+:\\?");
                        CHECK((std::regex_search(faas_text, from_env) || std::regex_search(keycloak_text, from_env)));
                    } else if (differ.count(name) == 0) {
                        CHECK(it->second == v.effective);
                        ++compared;
                    }
                }
                for (const auto& [name, value] : cs->env) {
                    if (!(name.starts_with("FAASD_") || name.starts_with("KAFKA_") || name.starts_with("KC_"))) continue;
                    INFO(name << " (compose " << value << ") is not set in Kumori");
                    CHECK((c.env.count(name) == 1 || one_sided.count(name) == 1));
                }
                // The same program: faasd and Keycloak with the same arguments; Kafka with the
                // image's own entrypoint (compose), or start.sh exec'ing it (Kumori).
                if (repo_of(c.image) == "apache/kafka") {
                    CHECK(cs->entrypoint.empty());
                    CHECK(cs->command.empty());
                    CHECK(c.entrypoint == std::vector<std::string>{"/bin/bash", "/kumori/start.sh"});
                    const auto& code = k.faas_json.at("artifact").at("description").at("role").at(role.name)
                                           .at("artifact").at("description").at("code").as_object();
                    auto start = json::serialize(code.begin()->value().at("mapping").at("filesystem")
                                                     .at("/kumori/start.sh").at("data").at("value"));
                    CHECK(start.find("exec /etc/kafka/docker/run") != std::string::npos);
                } else {
                    CHECK(c.entrypoint == cs->entrypoint);
                    CHECK(c.cmd == cs->command);
                }
            }
        CHECK(roles_seen == std::set<std::string>{"frontend", "worker", "observer", "kafka1", "kafka2", "kafka3",
                                                  "keycloak", "postgres"});
        CHECK(compared >= 40);
    }

    SECTION("Kafka, Keycloak and PostgreSQL run the images of the compose files") {
        for (const auto* dep : {&k.faas, &k.keycloak})
            for (const auto& r : dep->roles)
                for (const auto& c : r.containers) {
                    INFO("role " << r.name << " image " << c.image);
                    if (repo_of(c.image) == "apache/kafka")
                        CHECK(c.image.ends_with(service(faas_compose(), "kafka1").image));
                    if (repo_of(c.image) == "keycloak/keycloak")
                        CHECK(c.image.ends_with(service(keycloak_compose(), "keycloak").image));
                    if (repo_of(c.image) == "postgres")
                        CHECK(c.image.ends_with(service(keycloak_compose(), "postgres").image));
                }
    }

    SECTION("roles, connectors and links of both service applications") {
        for (const auto* dep : {&k.faas, &k.keycloak}) {
            auto problems = d::topology_problems(*dep);
            for (const auto& p : problems) UNSCOPED_INFO(dep->name << ": " << p);
            CHECK(problems.empty());
        }
        const auto& faas = k.faas;
        // An HTTPS inbound in front of the frontends, through a load balancer.
        bool inbound = false;
        for (const auto& c : faas.connectors)
            if (c.as == "lb" && c.to.count("frontend") && c.from.size() == 1 && faas.role(c.from.begin()->first) &&
                faas.role(c.from.begin()->first)->builtin)
                inbound = true;
        CHECK(inbound);
        // A full connector from every faasd role to the three brokers.
        bool clients = false;
        for (const auto& c : faas.connectors)
            if (c.as == "full" && c.from.count("frontend") && c.from.count("worker") && c.from.count("observer") &&
                c.to.count("kafka1") && c.to.count("kafka2") && c.to.count("kafka3"))
                clients = true;
        CHECK(clients);
        // Three brokers with node ids 1..3 of one cluster; as in faas.yml.
        std::set<std::string> ids, clusters;
        for (const auto* r : {"kafka1", "kafka2", "kafka3"}) {
            REQUIRE(faas.role(r) != nullptr);
            CHECK(faas.role(r)->hsize == 1);
            const auto& env = faas.role(r)->containers.at(0).env;
            ids.insert(env.at("KAFKA_NODE_ID").effective);
            clusters.insert(env.at("CLUSTER_ID").effective);
            CHECK(env.at("KAFKA_MIN_INSYNC_REPLICAS").effective ==
                  service(faas_compose(), "kafka1").env.at("KAFKA_MIN_INSYNC_REPLICAS"));
        }
        CHECK(ids == std::set<std::string>{"1", "2", "3"});
        CHECK(clusters.size() == 1);
        CHECK(faas.role("worker")->hsize >= 1);
        // The observer models workers of the workers' --slots.
        CHECK(faas.role("observer")->containers.at(0).env.at("FAASD_SLOTS_PER_WORKER").effective ==
              faas.role("worker")->containers.at(0).env.at("FAASD_SLOTS").effective);
        // The faas service reaches the keycloak service: its idp client channel and
        // the keycloak service's oidc server channel (linked after deployment).
        CHECK(faas.client.count("idp") == 1);
        CHECK(k.keycloak.server.count("oidc") == 1);
        // The issuer the frontend trusts is the keycloak deployment's public URL + realm.
        auto realm = json::value_to<std::string>(k.keycloak.parameters.at("realm").at("realm"));
        auto issuer = json::value_to<std::string>(faas.parameters.at("oidc_issuer"));
        CHECK(issuer == json::value_to<std::string>(k.keycloak.parameters.at("public_url")) + "/realms/" + realm);
        CHECK(json::value_to<std::string>(faas.role("frontend")->parameters.at("oidc_issuer")) == issuer);
    }
}

namespace {

/// A copy of deploy/kumori under `root` (without the generated cue.mod/pkg link).
std::filesystem::path copy_kumori_module(const std::filesystem::path& root) {
    auto module = root / "deploy/kumori";
    std::filesystem::create_directories(module);
    for (const auto& e : std::filesystem::directory_iterator(source_dir() / "deploy/kumori")) {
        auto name = e.path().filename().string();
        if (name == ".out" || name == "cue.mod") continue;  // cue.mod/pkg: check.sh links it anew
        std::filesystem::copy(e.path(), module / name, std::filesystem::copy_options::recursive);
    }
    std::filesystem::create_directories(module / "cue.mod");
    std::filesystem::copy(source_dir() / "deploy/kumori/cue.mod/module.cue", module / "cue.mod/module.cue");
    return module;
}

}  // namespace

TEST_CASE("Kumori: scale.sh sets the workers' hsize and updates the deployment", "[deploy][integration]") {
    faasd::test::temp_dir tmp("faasd-kumori-scale");
    auto module = copy_kumori_module(tmp.path());
    auto r = faasd::test::run_process({"/bin/bash", (module / "scale.sh").string(), "7"}, {"KAM=echo"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out ==
          "ctl update deployment faasd --deployment " + (module / "faas_deployment").string() + " --yes --wait 5m\n");
    CHECK(faasd::test::run_process({"/bin/bash", (module / "scale.sh").string(), "many"}, {"KAM=echo"}).exit_code == 2);
    auto check = d::kumori_check(tmp.path() / "out", module);
    INFO(check.out << check.err);
    REQUIRE(check.exit_code == 0);
    auto dep = d::parse_kumori(json::parse(d::read_text(tmp.path() / "out/faas_deployment.json")));
    CHECK(dep.role("worker")->hsize == 7);
    CHECK(dep.role("frontend")->hsize == kumori().faas.role("frontend")->hsize);  // nothing else changed
}

TEST_CASE("Kumori checks fail on a broken manifest", "[deploy][integration]") {
    // A copy of the module with three faults; check.sh must report each.
    faasd::test::temp_dir tmp("faasd-kumori-mutant");
    auto module = copy_kumori_module(tmp.path());
    auto mutate = [&](const std::string& file, const std::string& from, const std::string& to) {
        auto text = d::read_text(module / file);
        auto pos = text.find(from);
        REQUIRE(pos != std::string::npos);
        text.replace(pos, from.size(), to);
        std::ofstream(module / file, std::ios::trunc) << text;
    };
    // 1. a role passes a parameter its component does not declare
    mutate("faas_service/service_artifact.cue", "parameter: {node_id: 2,", "parameter: {nodeid: 2, node_id: 2,");
    // 2. a mistyped environment mapping in a faasd component
    mutate("observer/component_artifact.cue", "cmd: [\"observer\"]",
           "cmd: [\"observer\"]\n\t\t\tmapping: env: X: valeu: \"1\"");
    // 3. a deployment without a required parameter
    mutate("keycloak_deployment/manifest.cue", "public_url: \"https://auth.faasd.example.org\"", "");

    auto r = d::kumori_check(tmp.path() / "out", module);
    INFO(r.out << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("field not allowed: nodeid") != std::string::npos);
    CHECK(r.out.find("ok   cue vet ./frontend") != std::string::npos);  // unaffected artifacts still pass
    CHECK(r.err.find("FAIL cue vet ./observer") != std::string::npos);
    CHECK(r.err.find("FAIL cue export ./keycloak_deployment") != std::string::npos);
}
