// The Kafka adapters against a real single-node Kafka (FAASD_TEST_KAFKA, from
// test/services/services.sh): topic creation and configs, group lag, and
// exactly-once transactions (which the mock cannot verify).

#include "support/support.hpp"
#include "unit/kafka/kafka_test_util.hpp"

#include <faasd/kafka/kafka.hpp>

#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>

#include <map>
#include <set>

using namespace faasd::kafka;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using faasd::kafka::testing::log_capture;

namespace {

template <class Options>
Options options(const log_capture& logs, const char* id) {
    Options o;
    o.brokers = faasd::test::require_env("FAASD_TEST_KAFKA");
    o.client_id = id;
    o.log = logs.logger(faasd::log_level::info);
    return o;
}

record rec(const std::string& topic, std::string key, std::string value) {
    record r;
    r.topic = topic;
    r.key = std::move(key);
    r.value = std::move(value);
    return r;
}

// Reads a whole topic (assign mode) until caught up.
asio::awaitable<std::vector<message>> read_all(consumer& c, std::string topic) {
    std::vector<std::string> topics{topic};
    auto r = co_await c.assign_topics(topics);
    REQUIRE(testing::ok(r));
    std::vector<message> out;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!c.caught_up() && std::chrono::steady_clock::now() < deadline)
        for (auto& m : co_await c.poll(256, 1s)) out.push_back(std::move(m));
    REQUIRE(c.caught_up());
    co_return out;
}

}  // namespace

TEST_CASE("kafka: ensure_topics creates compacted and normal topics, idempotently", "[kafka][integration]") {
    log_capture logs;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            bool ready = false;
            auto o = options<admin_options>(logs, "adm");
            o.on_readiness = [&](bool r, std::string_view) { ready = r; };
            admin adm(ex, o);
            auto compacted = faasd::test::unique_name("state");
            auto normal = faasd::test::unique_name("jobs");
            std::vector<topic_spec> specs{
                {compacted, 3, 3, {{"cleanup.policy", "compact"}}},  // replication capped at 1 broker
                {normal, 2, 1, {{"cleanup.policy", "delete"}, {"retention.ms", "3600000"}}},
            };
            CO_REQUIRE(co_await adm.ensure_topics(specs));
            CO_REQUIRE(co_await adm.ensure_topics(specs));  // already there: success

            std::vector<std::string> names{compacted, normal};
            auto md = co_await adm.describe_topics(names);
            REQUIRE(testing::ok(md));
            REQUIRE(md->size() == 2);
            for (const auto& t : *md) {
                INFO(t.name);
                CHECK(t.partitions.size() == (t.name == compacted ? 3u : 2u));
                for (const auto& p : t.partitions) {
                    CHECK(p.leader >= 0);
                    CHECK(p.replicas.size() == 1);
                }
            }
            auto cc = co_await adm.topic_configs(compacted);
            REQUIRE(testing::ok(cc));
            CHECK(cc->at("cleanup.policy") == "compact");
            auto nc = co_await adm.topic_configs(normal);
            REQUIRE(testing::ok(nc));
            CHECK(nc->at("cleanup.policy") == "delete");
            CHECK(nc->at("retention.ms") == "3600000");

            auto n = co_await adm.broker_count();
            REQUIRE(testing::ok(n));
            CHECK(*n == 1);
            CHECK(ready);

            // Invalid settings are permanent errors, returned at once.
            std::vector<topic_spec> bad{{faasd::test::unique_name("bad"), 1, 1, {{"cleanup.policy", "sideways"}}}};
            auto b = co_await adm.ensure_topics(bad);
            REQUIRE_FALSE(b.has_value());
            CHECK(b.error().cls == error_class::permanent);

            CO_REQUIRE(co_await adm.delete_topics(names));
            co_await adm.close();
        },
        60s);
}

TEST_CASE("kafka: faasd topics are created with their partitions, cleanup, retention and min ISR",
          "[kafka][integration]") {
    log_capture logs;
    auto names = faasd::jobs::topic_names::with_prefix(faasd::test::unique_name("faasd") + ".");
    std::map<std::string, std::size_t> partitions;
    std::map<std::string, std::map<std::string, std::string>> overrides;  // set on the topic itself
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            admin adm(ex, options<admin_options>(logs, "adm"));
            // Replication 3 asked for: capped at the one broker, and min.insync.replicas
            // (2 for replication 3) with it, or no acks=all write could succeed.
            CO_REQUIRE(co_await ensure_faasd_topics(adm, names, 2, 3));
            auto md = co_await adm.describe_topics(names.all());
            REQUIRE(testing::ok(md));
            for (const auto& t : *md) partitions[t.name] = t.partitions.size();
            for (const auto& t : names.all()) {
                auto c = co_await adm.topic_configs(t, true);
                REQUIRE(testing::ok(c));
                overrides[t] = *c;
            }
            CO_REQUIRE(co_await adm.delete_topics(names.all()));
            co_await adm.close();
        },
        60s);
    CHECK(partitions.size() == names.all().size());
    for (const auto& spec : faasd_topic_specs(names, 2, 3)) {
        INFO(spec.name);
        CHECK(spec.configs.at("min.insync.replicas") == "2");
        auto expected = spec.configs;
        expected["min.insync.replicas"] = "1";  // lowered with the replication factor
        CHECK(overrides[spec.name] == expected);
        CHECK(partitions[spec.name] == static_cast<std::size_t>(spec.partitions));
    }
}

TEST_CASE("kafka: a durable producer refuses properties that weaken acks=all or idempotence", "[kafka][integration]") {
    log_capture logs;
    const std::vector<std::pair<std::string, std::string>> weak{
        {"acks", "1"}, {"request.required.acks", "0"}, {"enable.idempotence", "false"}};
    std::vector<std::string> refused;  // what the durable producers' constructors said
    bool delivered = false;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            for (const auto& [k, v] : weak) {
                auto o = options<producer_options>(logs, "weak");
                o.properties[k] = v;
                try {
                    producer p(ex, o);
                    refused.push_back("(accepted)");
                    co_await p.close();
                } catch (const exception& e) {
                    refused.push_back(e.what());
                }
                // Explicitly not durable: allowed (librdkafka itself wants acks=all with idempotence).
                o.durable = false;
                o.properties["enable.idempotence"] = "false";
                producer not_durable(ex, o);
                co_await not_durable.close();
            }
            // What stays durable is accepted, and delivers.
            // (Braced temporaries of string literals in a coroutine trip GCC 12: named values.)
            auto o = options<producer_options>(logs, "strong");
            o.properties["acks"] = "-1";
            o.properties["enable.idempotence"] = "true";
            o.properties["linger.ms"] = "1";
            producer p(ex, o);
            auto topic = faasd::test::unique_name("durable");
            std::vector<topic_spec> specs(1);
            specs[0].name = topic;
            std::vector<std::string> topics{topic};
            admin adm(ex, options<admin_options>(logs, "adm"));
            CO_REQUIRE(co_await adm.ensure_topics(specs));
            auto d = co_await p.send(rec(topic, "k", "v"));
            delivered = d.has_value();
            co_await p.close();
            CO_REQUIRE(co_await adm.delete_topics(topics));
            co_await adm.close();
        },
        60s);
    REQUIRE(refused.size() == weak.size());
    for (std::size_t i = 0; i < weak.size(); ++i) {
        INFO(weak[i].first << "=" << weak[i].second);
        CHECK(refused[i].find(weak[i].first + "=" + weak[i].second) != std::string::npos);
    }
    CHECK(delivered);
}

TEST_CASE("kafka: committed offsets and watermarks give the group's lag", "[kafka][integration]") {
    log_capture logs;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            admin adm(ex, options<admin_options>(logs, "adm"));
            auto topic = faasd::test::unique_name("jobs");
            auto group = faasd::test::unique_name("workers");
            std::vector<topic_spec> specs{{topic, 2, 1, {}}};
            CO_REQUIRE(co_await adm.ensure_topics(specs));
            producer p(ex, options<producer_options>(logs, "p"));
            for (int i = 0; i < 10; ++i) {
                record r = rec(topic, std::to_string(i), "v");
                r.partition = i < 6 ? 0 : 1;  // 6 on partition 0, 4 on partition 1
                CO_REQUIRE(co_await p.send(r));
            }
            std::vector<std::string> topics{topic};
            // Nothing committed yet: the lag is everything.
            auto lag0 = co_await adm.group_lag(group, topics);
            REQUIRE(testing::ok(lag0));
            REQUIRE(lag0->size() == 2);
            CHECK(lag0->at(0).committed == offset_invalid);
            CHECK(lag0->at(0).lag == 6);
            CHECK(lag0->at(1).lag == 4);

            auto co = options<consumer_options>(logs, "w");
            co.group_id = group;
            consumer c(ex, co);
            REQUIRE(c.subscribe(topics));
            auto got = co_await testing::poll_n(c, 10, 30s);
            REQUIRE(got.size() == 10);
            // Processed 4 of partition 0 and all of partition 1.
            std::vector<topic_partition> positions{{topic, 0, 4}, {topic, 1, 4}};
            CO_REQUIRE(co_await c.commit(positions));

            auto committed = co_await adm.committed_offsets(group, topics);
            REQUIRE(testing::ok(committed));
            REQUIRE(committed->size() == 2);
            CHECK(committed->at(0) == topic_partition{topic, 0, 4});
            CHECK(committed->at(1) == topic_partition{topic, 1, 4});
            auto marks = co_await adm.watermarks(topics);
            REQUIRE(testing::ok(marks));
            CHECK(marks->at(0).high == 6);
            CHECK(marks->at(1).high == 4);
            auto lag = co_await adm.group_lag(group, topics);
            REQUIRE(testing::ok(lag));
            CHECK(lag->at(0).lag == 2);
            CHECK(lag->at(1).lag == 0);

            co_await c.close();
            co_await p.close();
            CO_REQUIRE(co_await adm.delete_topics(topics));
            co_await adm.close();
        },
        90s);
}

TEST_CASE("kafka: a committed transaction is visible to read_committed consumers, an aborted one is not",
          "[kafka][integration]") {
    log_capture logs;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            admin adm(ex, options<admin_options>(logs, "adm"));
            auto in = faasd::test::unique_name("jobs");
            auto out = faasd::test::unique_name("results");
            auto group = faasd::test::unique_name("workers");
            std::vector<topic_spec> specs{{in, 1, 1, {}}, {out, 1, 1, {}}};
            CO_REQUIRE(co_await adm.ensure_topics(specs));

            producer plain(ex, options<producer_options>(logs, "submit"));
            for (int i = 0; i < 4; ++i) CO_REQUIRE(co_await plain.send(rec(in, "job" + std::to_string(i), "run")));

            auto co = options<consumer_options>(logs, "worker");
            co.group_id = group;
            consumer worker(ex, co);
            std::vector<std::string> in_topics{in};
            REQUIRE(worker.subscribe(in_topics));
            auto jobs = co_await testing::poll_n(worker, 4, 30s);
            REQUIRE(jobs.size() == 4);

            auto po = options<producer_options>(logs, "txn");
            po.transactional_id = faasd::test::unique_name("txn");
            producer txn(ex, po);
            CO_REQUIRE(co_await txn.init_transactions());

            // Transaction 1: results of jobs 0 and 1, with the offset after job 1. Committed.
            REQUIRE(testing::ok(txn.begin_transaction()));
            CO_REQUIRE(co_await txn.send(rec(out, "job0", "ok")));
            CO_REQUIRE(co_await txn.send(rec(out, "job1", "ok")));
            std::vector<topic_partition> after1{jobs[1].next_position()};
            CO_REQUIRE(co_await txn.send_offsets_to_transaction(after1, worker));
            CO_REQUIRE(co_await txn.commit_transaction());

            // Transaction 2: results of jobs 2 and 3 with their offset. Aborted.
            REQUIRE(testing::ok(txn.begin_transaction()));
            CO_REQUIRE(co_await txn.send(rec(out, "job2", "ok")));
            CO_REQUIRE(co_await txn.send(rec(out, "job3", "ok")));
            std::vector<topic_partition> after3{jobs[3].next_position()};
            CO_REQUIRE(co_await txn.send_offsets_to_transaction(after3, worker));
            CO_REQUIRE(co_await txn.abort_transaction());

            // The group's offset is the committed transaction's, not the aborted one's.
            std::vector<topic_partition> p0{{in, 0}};
            auto committed = co_await worker.committed(p0);
            REQUIRE(testing::ok(committed));
            CHECK(committed->at(0).offset == 2);

            auto keys = [](const std::vector<message>& ms) {
                std::vector<std::string> k;
                for (const auto& m : ms) k.push_back(*m.key);
                return k;
            };
            consumer rc(ex, options<consumer_options>(logs, "read-committed"));
            auto seen = co_await read_all(rc, out);
            CHECK(keys(seen) == std::vector<std::string>{"job0", "job1"});

            auto uo = options<consumer_options>(logs, "read-uncommitted");
            uo.read_committed = false;
            consumer ru(ex, uo);
            auto all = co_await read_all(ru, out);
            CHECK(keys(all) == std::vector<std::string>{"job0", "job1", "job2", "job3"});

            // Misuse is reported, not thrown: a transactional call without a transactional id.
            auto no_txn = co_await plain.commit_transaction();
            REQUIRE_FALSE(no_txn.has_value());
            CHECK(no_txn.error().code == errc::not_configured);

            co_await rc.close();
            co_await ru.close();
            co_await worker.close();
            co_await txn.close();
            co_await plain.close();
            std::vector<std::string> both{in, out};
            CO_REQUIRE(co_await adm.delete_topics(both));
            co_await adm.close();
        },
        120s);
}
