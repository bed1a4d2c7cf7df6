// Error classification of the Kafka adapters (pure, no broker).

#include <faasd/core/error.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/client.hpp>
#include <faasd/kafka/error.hpp>
#include <faasd/kafka/topics.hpp>

#include <catch2/catch.hpp>
#include <librdkafka/rdkafka.h>

using namespace faasd::kafka;

TEST_CASE("kafka errors are classified once, by a table", "[kafka][unit]") {
    struct row {
        rd_kafka_resp_err_t code;
        error_class expected;
    };
    const row table[] = {
        // transient: retry
        {RD_KAFKA_RESP_ERR__TRANSPORT, error_class::retryable},
        {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, error_class::retryable},
        {RD_KAFKA_RESP_ERR__TIMED_OUT, error_class::retryable},
        {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, error_class::retryable},
        {RD_KAFKA_RESP_ERR__QUEUE_FULL, error_class::retryable},
        {RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, error_class::retryable},
        {RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, error_class::retryable},
        {RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, error_class::retryable},
        {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, error_class::retryable},
        {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, error_class::retryable},
        {RD_KAFKA_RESP_ERR_NOT_COORDINATOR, error_class::retryable},
        {RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, error_class::retryable},
        {RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, error_class::retryable},
        {RD_KAFKA_RESP_ERR_NOT_CONTROLLER, error_class::retryable},
        {RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS, error_class::retryable},
        {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, error_class::retryable},
        // unit of work void: abort and redo
        {RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION, error_class::abortable},
        {RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID, error_class::abortable},
        {RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST, error_class::abortable},
        {RD_KAFKA_RESP_ERR__DESTROY, error_class::abortable},
        {RD_KAFKA_RESP_ERR__PURGE_QUEUE, error_class::abortable},
        {RD_KAFKA_RESP_ERR_INVALID_TXN_STATE, error_class::abortable},
        {RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID, error_class::abortable},
        // cannot succeed as asked
        {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, error_class::permanent},
        {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, error_class::permanent},
        {RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION, error_class::permanent},
        {RD_KAFKA_RESP_ERR__INVALID_ARG, error_class::permanent},
        {RD_KAFKA_RESP_ERR__STATE, error_class::permanent},
        {RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, error_class::permanent},
        {RD_KAFKA_RESP_ERR_INVALID_CONFIG, error_class::permanent},
        {RD_KAFKA_RESP_ERR_POLICY_VIOLATION, error_class::permanent},
        {RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR, error_class::permanent},
        {RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE, error_class::permanent},
        // client unusable: throw
        {RD_KAFKA_RESP_ERR__FATAL, error_class::fatal},
        {RD_KAFKA_RESP_ERR_PRODUCER_FENCED, error_class::fatal},
        {RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, error_class::fatal},
        {RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, error_class::fatal},
        {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, error_class::fatal},
        {RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, error_class::fatal},
        {RD_KAFKA_RESP_ERR__AUTHENTICATION, error_class::fatal},
        {RD_KAFKA_RESP_ERR__NOT_CONFIGURED, error_class::fatal},
    };
    for (const auto& r : table) {
        INFO(rd_kafka_err2name(r.code));
        auto ec = make_error_code_from_rd(r.code);
        CHECK(classify(ec) == r.expected);
        CHECK(make_error(ec).cls == r.expected);
        CHECK(error_name(ec) == rd_kafka_err2name(r.code));
    }
}

TEST_CASE("named kafka error codes compare with librdkafka's", "[kafka][unit]") {
    CHECK(make_error_code(errc::queue_full) == make_error_code_from_rd(RD_KAFKA_RESP_ERR__QUEUE_FULL));
    CHECK(make_error_code(errc::producer_fenced).message() == rd_kafka_err2str(RD_KAFKA_RESP_ERR_PRODUCER_FENCED));
    CHECK(std::string(kafka_category().name()) == "kafka");
    boost::system::error_code ec = errc::msg_timed_out;
    CHECK(ec == make_error_code_from_rd(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT));
}

TEST_CASE("errors of other categories are classified too", "[kafka][unit]") {
    CHECK(classify(faasd::make_error_code(faasd::errc::timeout)) == error_class::retryable);
    CHECK(classify(faasd::make_error_code(faasd::errc::unavailable)) == error_class::retryable);
    CHECK(classify(faasd::make_error_code(faasd::errc::cancelled)) == error_class::abortable);
    CHECK(classify(faasd::make_error_code(faasd::errc::invalid_argument)) == error_class::permanent);
}

TEST_CASE("kafka results carry the classified error and throw kafka::exception", "[kafka][unit]") {
    result<int> r = make_error(errc::msg_timed_out, "t[0]: timed out");
    REQUIRE_FALSE(r);
    CHECK(r.error().retryable());
    CHECK(r.error().message().find("_MSG_TIMED_OUT (retryable): t[0]: timed out") != std::string::npos);
    CHECK_THROWS_AS(r.value(), faasd::kafka::exception);
    try {
        (void)r.value();
    } catch (const faasd::kafka::exception& e) {
        CHECK(e.err().code == errc::msg_timed_out);
    }
    result<void> ok;
    CHECK(ok);
}

TEST_CASE("backoff doubles up to the cap and counts attempts", "[kafka][unit]") {
    backoff_policy p{std::chrono::milliseconds(100), std::chrono::milliseconds(1000), 4};
    CHECK(p.delay(1) == std::chrono::milliseconds(100));
    CHECK(p.delay(2) == std::chrono::milliseconds(200));
    CHECK(p.delay(4) == std::chrono::milliseconds(800));
    CHECK(p.delay(5) == std::chrono::milliseconds(1000));
    CHECK(p.delay(50) == std::chrono::milliseconds(1000));
    CHECK(p.may_retry(3));
    CHECK_FALSE(p.may_retry(4));
    CHECK(backoff_policy{}.may_retry(1000));
}

TEST_CASE("kafka properties parse from key=value strings", "[kafka][unit]") {
    auto m = parse_properties({"security.protocol=SSL", "a=b=c"});
    CHECK(m.at("security.protocol") == "SSL");
    CHECK(m.at("a") == "b=c");
    CHECK_THROWS_AS(parse_properties({"novalue"}), faasd::kafka::exception);
    CHECK_THROWS_AS(parse_properties({"=x"}), faasd::kafka::exception);
}

TEST_CASE("faasd topic specs follow the architecture document", "[kafka][unit]") {
    auto names = faasd::jobs::topic_names::with_prefix("p.");
    auto specs = faasd_topic_specs(names, 6, 3);
    REQUIRE(specs.size() == names.all().size());
    for (const auto& s : specs) {
        INFO(s.name);
        CHECK(s.replication_factor == 3);
        bool compacted = names.compacted(s.name);
        CHECK(s.configs.at("cleanup.policy") == (compacted ? "compact" : "delete"));
        CHECK(s.configs.contains("retention.ms") == !compacted);
        if (s.name == names.observer || s.name == names.observer_config)
            CHECK(s.partitions == 1);
        else
            CHECK(s.partitions == 6);
    }
    auto retention = [&](const std::string& n) {
        for (const auto& s : specs)
            if (s.name == n) return s.configs.at("retention.ms");
        return std::string();
    };
    CHECK(retention(names.jobs_at_least_once) == "604800000");
    CHECK(retention(names.results) == "604800000");
    CHECK(retention(names.dead_letter) == "604800000");
    CHECK(retention(names.cancel) == "86400000");
    CHECK(retention(names.observer) == "86400000");
    CHECK(retention(names.heartbeats) == "3600000");
}
