// Unit tests of the deployment model (deploy_model.hpp): the parsing and the
// drift checks that test/integration/deploy applies to the real files, here on
// hand-written inputs so that every rule is seen to fire.

#include "deploy_model.hpp"

#include <catch2/catch.hpp>

namespace d = faasd::test::deploy;
namespace json = boost::json;

namespace {

const char* dump_json = R"({"version":"0.1.0","commands":[
  {"path":"frontend","leaf":true,"options":[
    {"name":"kafka-brokers","env":"FAASD_KAFKA_BROKERS","default":"127.0.0.1:9092","takes_value":true,"multi":false,"required":false},
    {"name":"listen","env":"FAASD_LISTEN","default":":8080","takes_value":true,"multi":false,"required":false}]},
  {"path":"dev","leaf":false,"options":[]},
  {"path":"dev token","leaf":true,"options":[]}]})";

}  // namespace

TEST_CASE("parse_dump reads commands and options", "[deploy][unit]") {
    auto b = d::parse_dump(dump_json);
    CHECK(b.version == "0.1.0");
    REQUIRE(b.commands.size() == 3);
    const auto* fe = b.command("frontend");
    REQUIRE(fe != nullptr);
    CHECK(fe->leaf);
    REQUIRE(fe->by_env("FAASD_LISTEN") != nullptr);
    CHECK(fe->by_env("FAASD_LISTEN")->name == "listen");
    CHECK(fe->by_env("FAASD_NOPE") == nullptr);
    CHECK_FALSE(b.command("dev")->leaf);
    CHECK(b.command("dev token") != nullptr);
    CHECK(b.command("worker") == nullptr);
    CHECK_THROWS(d::parse_dump("not json"));
    CHECK_THROWS(d::parse_dump(R"({"commands":[]})"));
}

TEST_CASE("env_problems flags FAASD_* variables no option reads", "[deploy][unit]") {
    auto b = d::parse_dump(dump_json);
    const auto& fe = *b.command("frontend");
    std::map<std::string, std::string> ok{{"FAASD_KAFKA_BROKERS", "k:9092"},
                                          {"FAASD_LISTEN", "0.0.0.0:8080"},
                                          {"FAASD_CREDENTIALS_KEYS", "k1:x"},  // read directly (secret)
                                          {"JAVA_OPTS", "-Xmx1g"}};            // not faasd's
    CHECK(d::env_problems(ok, fe).empty());

    auto typo = ok;
    typo["FAASD_LISTN"] = ":8080";
    typo["FAASD_SLOTS"] = "4";  // a worker option given to the frontend
    auto problems = d::env_problems(typo, fe);
    REQUIRE(problems.size() == 2);
    CHECK(problems[0].find("FAASD_LISTN") != std::string::npos);
    CHECK(problems[1].find("FAASD_SLOTS") != std::string::npos);
}

TEST_CASE("read_directly follows config::unknown_env's exemptions", "[deploy][unit]") {
    CHECK(d::read_directly("FAASD_CREDENTIALS_KEYS"));
    CHECK(d::read_directly("FAASD_TEST_KAFKA"));
    CHECK(d::read_directly("FAASD_CONFIG"));
    CHECK_FALSE(d::read_directly("FAASD_KAFKA_BROKERS"));
    CHECK_FALSE(d::read_directly("FAASD_LISTN"));
}

TEST_CASE("wildcard_listen_port recognises listening addresses", "[deploy][unit]") {
    CHECK(d::wildcard_listen_port("0.0.0.0:8080") == 8080);
    CHECK(d::wildcard_listen_port(":9000") == 9000);
    CHECK(d::wildcard_listen_port("[::]:80") == 80);
    CHECK_FALSE(d::wildcard_listen_port("kafka1:9092"));
    CHECK_FALSE(d::wildcard_listen_port("127.0.0.1:8080"));
    CHECK_FALSE(d::wildcard_listen_port("0.0.0.0:"));
    CHECK_FALSE(d::wildcard_listen_port("20s"));
}

namespace {

json::value compose_doc() {
    return json::parse(R"({"services":{
      "kafka1":{"image":"apache/kafka:4.1.1","environment":{"KAFKA_NODE_ID":"1"},"healthcheck":{"test":["CMD","true"]},
                "restart":"unless-stopped","networks":{"faasd":null}},
      "frontend":{"image":"faasd:0.1.0","command":["frontend"],"restart":"unless-stopped",
                  "environment":{"FAASD_KAFKA_BROKERS":"kafka1:9092","FAASD_TOPIC_PREFIX":"faasd.",
                                 "FAASD_LISTEN":"0.0.0.0:8080","FAASD_ADMIN_LISTEN":":9000",
                                 "FAASD_OIDC_DISCOVERY":"http://keycloak:8080/realms/faas","FAASD_LOG_LEVEL":"info"},
                  "ports":[{"published":8080,"target":8080}],"networks":{"faasd":null,"faasd-shared":null}},
      "worker":{"image":"registry.example/team/faasd:0.1.0","command":"worker --flag",
                "environment":["FAASD_KAFKA_BROKERS=kafka1:9092","FAASD_HEALTH_LISTEN=:9100","EMPTY",
                                "FAASD_CACHE_DIR=/var/lib/faasd/cache","FAASD_JOBS_DIR=/var/lib/faasdx",
                                "FAASD_X_DIR=/var/lib/faasd"],
                "deploy":{"replicas":2},"ports":["9100"]},
      "scaler":{"image":"faasd:0.1.0-scaler","command":["scaler"],"profiles":["scaler"],
                "environment":{"FAASD_EXEC":"true"}}}})");
}

}  // namespace

TEST_CASE("parse_compose reads services in both compose forms", "[deploy][unit]") {
    auto services = d::parse_compose(compose_doc());
    REQUIRE(services.size() == 4);
    auto find = [&](const std::string& n) {
        return *std::find_if(services.begin(), services.end(), [&](const auto& s) { return s.name == n; });
    };
    auto fe = find("frontend");
    CHECK(fe.command == std::vector<std::string>{"frontend"});
    CHECK(fe.env.at("FAASD_LISTEN") == "0.0.0.0:8080");
    REQUIRE(fe.ports.size() == 1);
    CHECK(fe.ports[0].published == 8080);
    CHECK(fe.ports[0].target == 8080);
    CHECK(fe.replicas == 1);
    CHECK(fe.networks == std::vector<std::string>{"faasd", "faasd-shared"});
    auto wo = find("worker");
    CHECK(wo.command == std::vector<std::string>{"worker", "--flag"});
    CHECK(wo.env.at("FAASD_HEALTH_LISTEN") == ":9100");
    CHECK(wo.env.at("EMPTY").empty());
    CHECK(wo.replicas == 2);
    REQUIRE(wo.ports.size() == 1);
    CHECK(wo.ports[0].target == 9100);
    CHECK(wo.ports[0].published == 0);
    CHECK(find("kafka1").healthcheck);
    CHECK(find("scaler").profiles == std::vector<std::string>{"scaler"});
    CHECK(fe.profiles.empty());
    CHECK_FALSE(fe.healthcheck);
}

TEST_CASE("is_faasd_image accepts any registry path of the faasd image", "[deploy][unit]") {
    CHECK(d::is_faasd_image("faasd:0.1.0"));
    CHECK(d::is_faasd_image("registry.hub.docker.com/faasd/faasd:0.1.0"));
    CHECK(d::is_faasd_image("localhost/faasd:check"));
    CHECK_FALSE(d::is_faasd_image("apache/kafka:4.1.1"));
    CHECK_FALSE(d::is_faasd_image("faasd-tools:1"));
}

TEST_CASE("to_local rewrites a compose service into local processes", "[deploy][unit]") {
    std::uint16_t next = 40000;
    d::local_rewrite rw{
        "127.0.0.1:19092,127.0.0.1:29092", "t-1234.", {{"keycloak:8080", "127.0.0.1:18080"}}, [&] { return next++; },
        {"/var/lib/faasd", "/tmp/faasd"}};
    auto procs = d::to_local(d::parse_compose(compose_doc()), rw, "/tmp/h");
    REQUIRE(procs.size() == 3);  // kafka1 is not faasd; worker has 2 replicas; scaler only with --profile
    const auto& fe = procs[0];
    CHECK(fe.name == "frontend-1");
    CHECK(fe.args == std::vector<std::string>{"frontend"});
    CHECK(fe.env.at("FAASD_KAFKA_BROKERS") == "127.0.0.1:19092,127.0.0.1:29092");
    CHECK(fe.env.at("FAASD_TOPIC_PREFIX") == "t-1234.");
    CHECK(fe.env.at("FAASD_OIDC_DISCOVERY") == "http://127.0.0.1:18080/realms/faas");
    CHECK(fe.env.at("FAASD_LOG_LEVEL") == "info");
    REQUIRE(fe.ports.size() == 2);
    CHECK(fe.env.at("FAASD_LISTEN") == "127.0.0.1:" + std::to_string(fe.ports.at(8080)));
    CHECK(fe.env.at("FAASD_ADMIN_LISTEN") == "127.0.0.1:" + std::to_string(fe.ports.at(9000)));
    CHECK(fe.ports.at(8080) != fe.ports.at(9000));
    // Exactly the service's variables plus what an engine provides.
    CHECK(fe.env.size() == 6 + 3);
    CHECK(fe.env.at("HOME") == "/tmp/h/frontend-1");
    CHECK(fe.env.at("HOSTNAME") == "frontend-1");
    CHECK(fe.env.count("PATH") == 1);

    CHECK(procs[1].name == "worker-1");
    CHECK(procs[2].name == "worker-2");
    CHECK(procs[1].env.at("FAASD_HEALTH_LISTEN") != procs[2].env.at("FAASD_HEALTH_LISTEN"));
    CHECK(procs[1].args == std::vector<std::string>{"worker", "--flag"});
    // Container directories move under each process's HOME; look-alike paths stay.
    CHECK(procs[1].env.at("FAASD_CACHE_DIR") == "/tmp/h/worker-1/root/var/lib/faasd/cache");
    CHECK(procs[2].env.at("FAASD_CACHE_DIR") == "/tmp/h/worker-2/root/var/lib/faasd/cache");
    CHECK(procs[1].env.at("FAASD_X_DIR") == "/tmp/h/worker-1/root/var/lib/faasd");
    CHECK(procs[1].env.at("FAASD_JOBS_DIR") == "/var/lib/faasdx");
}

namespace {

// A small deployment in the shape `cue export` gives it: inbound -> web (lb),
// web -> db (lb), db peers (full on a duplex channel), a service client channel.
json::value kumori_doc() {
    return json::parse(R"({"name":"dep","artifact":{"ref":{"name":"svc"},"description":{
      "srv":{"client":{"idp":{"protocol":"http"}},"server":{"api":{"protocol":"http","port":80}}},
      "config":{"parameter":{"issuer":"https://a/realms/r"},"resource":{}},
      "role":{
        "in":{"artifact":{"ref":{"name":"inbound"},"description":{"builtin":true,"srv":{"client":{"inbound":{}}},
              "config":{"parameter":{"type":"https"},"resource":{}}}},"config":{}},
        "web":{"artifact":{"ref":{"name":"web"},"description":{
              "srv":{"server":{"http":{"protocol":"http","port":8080}},"client":{"db":{"protocol":"tcp"},"idp":{}}},
              "config":{"parameter":{"level":"info","n":3},"resource":{}},
              "code":{"faasd":{"name":"faasd","image":{"hub":{"name":"registry.hub.docker.com","secret":""},"tag":"faasd/faasd:0.1.0"},
                "cmd":["frontend"],"mapping":{"env":{
                  "FAASD_LOG_LEVEL":{"parameter":"level"},"FAASD_N":{"value":"3"},"FAASD_CREDENTIALS_KEYS":{"secret":"keys"}}}}}}},
              "config":{}},
        "db":{"artifact":{"ref":{"name":"db"},"description":{
              "srv":{"server":{"pg":{"protocol":"tcp","port":5432}},"duplex":{"peer":{"protocol":"tcp","port":7000}}},
              "config":{"parameter":{},"resource":{}},"code":{}}},"config":{}}},
      "connect":{
        "api":{"as":"lb","from":{"in":"inbound"},"to":{"web":{"http":{}}}},
        "self":{"as":"lb","from":{"self":"api"},"to":{"web":{"http":{}}}},
        "db":{"as":"lb","from":{"web":"db"},"to":{"db":{"pg":{}}}},
        "peers":{"as":"full","from":{"db":"peer"},"to":{"db":{"peer":{}}}},
        "idp":{"as":"lb","from":{"web":"idp"},"to":{"self":{"idp":{}}}}}}},
      "config":{"scale":{"detail":{"web":{"hsize":2},"db":{"hsize":3}}}}})");
}

}  // namespace

TEST_CASE("parse_kumori reads roles, environments and connectors", "[deploy][unit]") {
    auto dep = d::parse_kumori(kumori_doc());
    CHECK(dep.name == "dep");
    CHECK(dep.service == "svc");
    CHECK(dep.client.count("idp") == 1);
    const auto* web = dep.role("web");
    REQUIRE(web != nullptr);
    CHECK(web->hsize == 2);
    CHECK(web->server.at("http") == 8080);
    REQUIRE(web->containers.size() == 1);
    const auto& c = web->containers[0];
    CHECK(c.image == "registry.hub.docker.com/faasd/faasd:0.1.0");
    CHECK(c.cmd == std::vector<std::string>{"frontend"});
    CHECK(c.env.at("FAASD_LOG_LEVEL").kind == d::kumori_env::parameter);
    CHECK(c.env.at("FAASD_LOG_LEVEL").effective == "info");
    CHECK(c.env.at("FAASD_N").effective == "3");
    CHECK(c.env.at("FAASD_CREDENTIALS_KEYS").kind == d::kumori_env::secret);
    CHECK(dep.role("in")->builtin);
    CHECK(dep.role("in")->hsize == -1);
    CHECK(dep.role("db")->duplex.at("peer") == 7000);
    CHECK(dep.connectors.size() == 5);
}

TEST_CASE("topology_problems accepts a sound deployment and names each fault", "[deploy][unit]") {
    CHECK(d::topology_problems(d::parse_kumori(kumori_doc())).empty());

    auto has = [](const std::vector<std::string>& v, const std::string& what) {
        return std::any_of(v.begin(), v.end(), [&](const auto& s) { return s.find(what) != std::string::npos; });
    };
    SECTION("a client channel no connector serves") {
        auto doc = kumori_doc();
        doc.at("artifact").at("description").at("connect").as_object().erase("db");
        CHECK(has(d::topology_problems(d::parse_kumori(doc)), "client channel db is linked to no connector"));
    }
    SECTION("a connector to an unknown role or channel") {
        auto doc = kumori_doc();
        doc.at("artifact").at("description").at("connect").at("db").at("to") = json::parse(R"({"dbx":{"pg":{}}})");
        CHECK(has(d::topology_problems(d::parse_kumori(doc)), "no role dbx"));
        doc.at("artifact").at("description").at("connect").at("db").at("to") = json::parse(R"({"db":{"pgx":{}}})");
        CHECK(has(d::topology_problems(d::parse_kumori(doc)), "has no server or duplex channel pgx"));
    }
    SECTION("a duplex channel behind a load balancer") {
        auto doc = kumori_doc();
        doc.at("artifact").at("description").at("connect").at("peers").at("as") = "lb";
        CHECK(has(d::topology_problems(d::parse_kumori(doc)), "duplex channels need a full connector"));
    }
    SECTION("a role without instances, an unknown connector kind") {
        auto doc = kumori_doc();
        doc.at("config").at("scale").at("detail").as_object().erase("db");
        doc.at("artifact").at("description").at("connect").at("api").at("as") = "rr";
        auto p = d::topology_problems(d::parse_kumori(doc));
        CHECK(has(p, "role db: no scale.detail hsize"));
        CHECK(has(p, "as must be lb or full"));
    }
    SECTION("the service's own channels must be wired") {
        auto doc = kumori_doc();
        doc.at("artifact").at("description").at("connect").as_object().erase("idp");
        doc.at("artifact").at("description").at("connect").as_object().erase("self");
        auto p = d::topology_problems(d::parse_kumori(doc));
        CHECK(has(p, "service client channel idp is linked to no connector"));
        CHECK(has(p, "service server channel api is linked to no connector"));
    }
}
