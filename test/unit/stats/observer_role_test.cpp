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
