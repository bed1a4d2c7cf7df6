// The observer role's pure helpers: option validation, report parsing for the
// actuators, the scaler's command template.

#include "observer/observer.hpp"

#include <faasd/config/config.hpp>

#include <catch2/catch.hpp>

using namespace faasd::roles;

TEST_CASE("observer_config: --params and the shortcuts make the initial parameters", "[stats][unit]") {
    observer_config c;
    c.params = R"({"tick_ms":500,"min_workers":2,"max_workers":9})";
    c.max_workers = 12;
    c.tick = "250ms";
    c.validate();
    CHECK(c.initial_params().min_workers == 2);
    CHECK(c.initial_params().max_workers == 12);
    CHECK(c.initial_params().tick_ms == 250);
    CHECK(c.initial_params().slots_per_worker == faasd::stats::observer_params{}.slots_per_worker);
}

TEST_CASE("observer_config: bad values are config errors naming the problem", "[stats][unit]") {
    auto fails = [](observer_config c, const char* needle) {
        try {
            c.validate();
        } catch (const faasd::config::config_error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find(needle) != std::string::npos);
            return true;
        }
        return false;
    };
    observer_config a;
    a.params = R"({"min_workers":-1})";
    CHECK(fails(a, "min_workers"));
    observer_config b;
    b.params = "{nope";
    CHECK(fails(b, "--params"));
    observer_config c;
    c.min_workers = 30;  // above the default max_workers (20)
    CHECK(fails(c, "max_workers"));
    observer_config d;
    d.tick = "soon";
    CHECK(fails(d, "--tick"));
    observer_config e;
    e.params = "@/nonexistent/params.json";
    CHECK(fails(e, "cannot read"));
    observer_config f;
    f.replay_timeout = "x";
    CHECK(fails(f, "--replay-timeout"));
}

TEST_CASE("target_from_report: top-level target, else decision.target", "[stats][unit]") {
    CHECK(target_from_report(R"({"v":1,"target":4,"decision":{"target":3}})") == 4);
    CHECK(target_from_report(R"({"v":1,"decision":{"target":3}})") == 3);
    CHECK(target_from_report(R"({"v":1})") == std::nullopt);
    CHECK(target_from_report(R"({"target":-1})") == std::nullopt);
    CHECK(target_from_report(R"({"target":"3"})") == std::nullopt);
    CHECK(target_from_report("not json") == std::nullopt);
    CHECK(target_from_report("[1]") == std::nullopt);
}

TEST_CASE("scaler_command replaces every {workers}", "[stats][unit]") {
    CHECK(scaler_command("scale.sh {workers}", 3) == "scale.sh 3");
    CHECK(scaler_command("a={workers} b={workers}", 12) == "a=12 b=12");
    CHECK(scaler_command("{workers", 1) == "{workers");
    scaler_config s;
    CHECK_THROWS_AS(s.validate(), faasd::config::config_error);
    s.exec = "echo";
    CHECK_THROWS_AS(s.validate(), faasd::config::config_error);  // no {workers}
    s.exec = "echo {workers}";
    CHECK_NOTHROW(s.validate());
}

TEST_CASE("kafka_args: the supervisor's Kafka options, as worker arguments", "[stats][unit]") {
    kafka_config k;
    k.brokers = "b1:9092,b2:9092";
    k.topic_prefix = "x.";
    k.properties = {"security.protocol=SSL"};
    k.create_topics = false;
    const auto a = kafka_args(k);
    CHECK(a == std::vector<std::string>{"--kafka-brokers=b1:9092,b2:9092", "--topic-prefix=x.", "--topic-partitions=6",
                                        "--topic-replication=3", "--create-topics=false",
                                        "--kafka-property=security.protocol=SSL"});
}

TEST_CASE("observer_config: the shortcuts are unset by default, so --params decides", "[stats][unit]") {
    observer_config c;
    CHECK_FALSE(c.min_workers);
    CHECK_FALSE(c.initial_workers);
    c.params = R"({"min_workers":3,"max_workers":9,"slots_per_worker":2})";
    c.validate();
    CHECK(c.initial_params().min_workers == 3);
    CHECK(c.initial_params().max_workers == 9);
    CHECK(c.initial_params().slots_per_worker == 2);
    observer_config bad;
    bad.initial_workers = -1;
    CHECK_THROWS_AS(bad.validate(), faasd::config::config_error);
    observer_config lost;
    lost.lost_after = "soon";
    CHECK_THROWS_WITH(lost.validate(), Catch::Contains("--lost-after"));
    observer_config health;
    health.health_listen = "nowhere";
    CHECK_THROWS_WITH(health.validate(), Catch::Contains("--health-listen"));
    observer_config ok;
    ok.lost_after = "0s";
    ok.health_listen = "127.0.0.1:0";
    CHECK_NOTHROW(ok.validate());
    CHECK(ok.lost_after_ms().count() == 0);
}

TEST_CASE("resolve_stop_rule: SIGKILL never comes before the workers' own grace is over", "[stats][unit]") {
    using namespace std::chrono_literals;
    supervisor_config c;
    SECTION("defaults: the workers get the supervisor's grace - 2 s, the stop timeout their grace + 2 s") {
        const auto r = resolve_stop_rule(c, 20s);
        REQUIRE(r.worker_grace);
        CHECK(*r.worker_grace == 18s);
        CHECK(r.grace_arg == std::optional<std::string>("--shutdown-grace=18000ms"));
        CHECK(r.stop_timeout == 20s);
        CHECK_FALSE(r.raised);
        CHECK_FALSE(r.exceeds_own_grace);
    }
    SECTION("a shorter --stop-timeout is raised to the minimum, a longer one kept") {
        c.stop_timeout = "5s";
        auto r = resolve_stop_rule(c, 20s);
        CHECK(r.stop_timeout == 20s);
        CHECK(r.raised);
        c.stop_timeout = "90s";
        r = resolve_stop_rule(c, 20s);
        CHECK(r.stop_timeout == 90s);
        CHECK_FALSE(r.raised);
    }
    SECTION("the workers' own --shutdown-grace wins, in either form") {
        c.worker_args = {"--slots=2", "--shutdown-grace=75s"};
        auto r = resolve_stop_rule(c, 20s);
        CHECK(*r.worker_grace == 75s);
        CHECK_FALSE(r.grace_arg);
        CHECK(r.stop_timeout == 77s);
        CHECK(r.exceeds_own_grace);  // the supervisor's own shutdown would cut their drain short
        c.worker_args = {"--shutdown-grace", "30s"};
        r = resolve_stop_rule(c, 40s);
        CHECK(*r.worker_grace == 30s);
        CHECK(r.stop_timeout == 32s);
        CHECK_FALSE(r.exceeds_own_grace);
        c.worker_args = {"--shutdown-grace=later"};
        CHECK_THROWS_AS(resolve_stop_rule(c, 20s), faasd::config::config_error);
    }
    SECTION("a custom command: nothing is known about it") {
        c.worker_command = {"/bin/true"};
        CHECK(resolve_stop_rule(c, 20s).stop_timeout == 60s);
        CHECK_FALSE(resolve_stop_rule(c, 20s).worker_grace);
        c.stop_timeout = "3s";
        CHECK(resolve_stop_rule(c, 20s).stop_timeout == 3s);
    }
    SECTION("applied: the grace goes to the workers, the timeout to the supervisor") {
        faasd::logger quiet;
        const auto a = apply_stop_rule(c, 20s, quiet);
        CHECK(a.inherited_args == std::vector<std::string>{"--shutdown-grace=18000ms"});
        CHECK(a.stop_timeout == "20000ms");
    }
}
