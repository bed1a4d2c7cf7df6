// Durability settings that do not depend on a broker: the min.insync.replicas
// of faasd's topics and the producer properties a durable producer refuses.

#include <faasd/kafka/kafka.hpp>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace faasd::kafka;

TEST_CASE("faasd topics require min(2, replication) in-sync replicas", "[kafka][unit]") {
    auto names = faasd::jobs::topic_names::with_prefix("p.");
    for (auto [rf, isr] : {std::pair{1, "1"}, {2, "2"}, {3, "2"}, {5, "2"}}) {
        INFO("replication " << rf);
        for (const auto& s : faasd_topic_specs(names, 6, rf)) {
            INFO(s.name);
            CHECK(s.configs.at("min.insync.replicas") == isr);
        }
    }
}

TEST_CASE("a durable producer's acks=all and idempotence cannot be weakened", "[kafka][unit]") {
    CHECK(durability_violation({}).empty());
    CHECK(durability_violation({{"acks", "all"}, {"enable.idempotence", "true"}, {"linger.ms", "0"}}).empty());
    CHECK(durability_violation({{"acks", "-1"}, {"request.required.acks", "all"}, {"enable.idempotence", "TRUE"}})
              .empty());
    for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{{"acks", "1"},
                                                                       {"acks", "0"},
                                                                       {"acks", "ALL "},
                                                                       {"request.required.acks", "1"},
                                                                       {"enable.idempotence", "false"},
                                                                       {"enable.idempotence", "0"}}) {
        INFO(k << "=" << v);
        auto why = durability_violation({{k, v}});
        CHECK(why.find(k + "=" + v) != std::string::npos);
    }
}

TEST_CASE("a durable producer refuses a weakening property before it connects", "[kafka][unit]") {
    boost::asio::io_context ioc;
    producer_options o;
    o.brokers = "127.0.0.1:1";
    o.properties = {{"acks", "1"}};
    CHECK_THROWS_WITH(producer(ioc.get_executor(), o), Catch::Contains("acks=1"));
}
