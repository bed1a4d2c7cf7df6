// The Kafka adapters against librdkafka's in-process mock cluster: quick,
// no external broker. Exactly-once is not testable here (the mock does not
// commit transactional offsets); see test/integration/kafka.

#include "kafka_test_util.hpp"
#include "support/support.hpp"

#include <faasd/kafka/kafka.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>

#include <map>
#include <set>

using namespace faasd::kafka;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using faasd::kafka::testing::log_capture;

namespace {

struct fixture {
    mock_cluster cluster{1};
    log_capture logs;

    template <class Options>
    Options options(const char* id) {
        Options o;
        o.brokers = cluster.bootstrap_servers();
        o.client_id = id;
        o.log = logs.logger(std::getenv("FAASD_TEST_LOG_DEBUG") ? faasd::log_level::debug : faasd::log_level::info);
        o.properties = {};
        if (std::getenv("FAASD_TEST_LOG_DEBUG")) o.properties["debug"] = std::getenv("FAASD_TEST_LOG_DEBUG");
        return o;
    }
    consumer_options consumer_opts(const char* id, std::string group = {}) {
        auto o = options<consumer_options>(id);
        o.group_id = std::move(group);
        for (auto& [k, v] : mock_cluster::recommended_consumer_properties()) o.properties[k] = v;
        return o;
    }
};

record rec(const std::string& topic, std::string key, std::optional<std::string> value) {
    record r;
    r.topic = topic;
    r.key = std::move(key);
    r.value = std::move(value);
    return r;
}

}  // namespace

TEST_CASE("produce: send completes when the broker acknowledged", "[kafka][unit]") {
    fixture f;
    auto topic = faasd::test::unique_name("t");
    f.cluster.create_topic(topic, 3);
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            bool ready = false;
            auto o = f.options<producer_options>("p");
            o.on_readiness = [&](bool r, std::string_view) { ready = r; };
            producer p(ex, o);

            // Many concurrent sends from several coroutines, all on the loop.
            std::map<std::string, std::set<std::int32_t>> partitions_by_key;
            std::vector<result<delivery>> results(200, make_error(errc::timed_out));
            int done = 0;
            for (int i = 0; i < 200; ++i) {
                asio::co_spawn(
                    ex,
                    [&, i]() -> asio::awaitable<void> {
                        results[i] = co_await p.send(rec(topic, "key-" + std::to_string(i % 7), "v" + std::to_string(i)));
                        ++done;
                    },
                    asio::detached);
            }
            auto deadline = std::chrono::steady_clock::now() + 10s;
            while (done < 200 && std::chrono::steady_clock::now() < deadline) co_await testing::sleep(5ms);
            REQUIRE(done == 200);
            std::set<std::pair<std::int32_t, std::int64_t>> positions;
            for (int i = 0; i < 200; ++i) {
                INFO(i);
                REQUIRE(testing::ok(results[i]));
                CHECK(results[i]->topic == topic);
                CHECK(results[i]->offset >= 0);
                positions.insert({results[i]->partition, results[i]->offset});
                partitions_by_key["key-" + std::to_string(i % 7)].insert(results[i]->partition);
            }
            CHECK(positions.size() == 200);  // every record has its own offset
            for (auto& [k, parts] : partitions_by_key) CHECK(parts.size() == 1);  // a key maps to one partition

            // A record to a partition that does not exist fails permanently.
            record bad = rec(topic, "k", "v");
            bad.partition = 42;
            auto r = co_await p.send(bad);
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error().cls == error_class::permanent);

            auto s = p.stats();
            CHECK(s.delivered == 200);
            CHECK(s.in_flight == 0);
            // Readiness is the separate metadata probe on the blocking pool: on a loaded machine it
            // can come after the deliveries.
            for (auto until = std::chrono::steady_clock::now() + 10s; !ready && std::chrono::steady_clock::now() < until;)
                co_await testing::sleep(10ms);
            CHECK(ready);
            co_await p.close();
            auto after = co_await p.send(rec(topic, "k", "v"));
            REQUIRE_FALSE(after.has_value());
            CHECK(after.error().code == errc::destroy);
        },
        20s);
}

TEST_CASE("produce: a full librdkafka queue is waited out, never blocking the loop", "[kafka][unit]") {
    fixture f;
    auto topic = faasd::test::unique_name("t");
    f.cluster.create_topic(topic, 2);
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            auto o = f.options<producer_options>("p");
            o.properties["queue.buffering.max.messages"] = "10";
            producer p(ex, o);
            testing::lateness_probe probe(ex);
            probe.start();
            constexpr int n = 500;
            int ok = 0, done = 0;
            for (int i = 0; i < n; ++i) {
                asio::co_spawn(
                    ex,
                    [&, i]() -> asio::awaitable<void> {
                        auto r = co_await p.send(rec(topic, std::to_string(i), "x"));
                        if (r) ++ok;
                        ++done;
                    },
                    asio::detached);
            }
            // Fire-and-forget records go through the same backlog.
            for (int i = 0; i < n; ++i) p.post(rec(topic, std::to_string(i), "posted"));
            CHECK(p.stats().backlog > 0);
            auto deadline = std::chrono::steady_clock::now() + 15s;
            while ((done < n || p.stats().delivered < 2 * n) && std::chrono::steady_clock::now() < deadline)
                co_await testing::sleep(5ms);
            probe.stop();
            CHECK(ok == n);
            auto s = p.stats();
            CHECK(s.delivered == 2 * n);
            CHECK(s.post_failed == 0);
            CHECK(s.backlog == 0);
            // Lateness not spent waiting for a CPU (see testing::lateness_probe).
            INFO("raw max lateness " << probe.max_lateness().count() << " ms");
            if (std::getenv("FAASD_TEST_PRINT_LATENESS"))
                std::printf("queue-full test: loop max lateness %lld ms, not waiting for a CPU %lld ms "
                            "(in that interval the loop thread ran %lld ms, waited %lld ms)\n",
                            static_cast<long long>(probe.max_lateness().count()),
                            static_cast<long long>(probe.max_unexplained().count()),
                            static_cast<long long>(probe.worst_on_cpu().count()),
                            static_cast<long long>(probe.worst_waiting().count()));
            CHECK(probe.max_unexplained() < 100ms);
            CO_REQUIRE(co_await p.flush(5s));
            co_await p.close();
        },
        30s);
}

TEST_CASE("consume: assign mode reads a topic from the beginning and reports caught_up", "[kafka][unit]") {
    fixture f;
    auto topic = faasd::test::unique_name("state");
    f.cluster.create_topic(topic, 3);
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            producer p(ex, f.options<producer_options>("p"));
            // Partition 2 stays empty: caught_up must not wait for data there.
            for (int i = 0; i < 20; ++i) {
                record r = rec(topic, "k" + std::to_string(i), "v" + std::to_string(i));
                r.partition = i % 2;
                if (i == 3) r.value.reset();           // tombstone
                if (i == 4) r.value = std::string();   // empty, not a tombstone
                if (i == 5) r.headers = {{"attempt", "2"}, {"null", std::nullopt}};
                CO_REQUIRE(co_await p.send(r));
            }

            consumer c(ex, f.consumer_opts("frontend"));
            CHECK_FALSE(c.caught_up());
            std::vector<std::string> topics{topic};  // no braced lists inside co_await (GCC 12)
            CO_REQUIRE(co_await c.assign_topics(topics));
            CHECK(c.assignment().size() == 3);
            std::vector<message> got;
            auto deadline = std::chrono::steady_clock::now() + 10s;
            while (!c.caught_up() && std::chrono::steady_clock::now() < deadline) {
                for (auto& m : co_await c.poll(64, 1s)) got.push_back(std::move(m));
            }
            REQUIRE(c.caught_up());
            REQUIRE(got.size() == 20);
            std::map<std::string, message> by_key;
            for (auto& m : got) by_key[*m.key] = m;
            CHECK(by_key.at("k3").tombstone());
            CHECK_FALSE(by_key.at("k4").tombstone());
            CHECK(by_key.at("k4").value == std::string());
            CHECK(by_key.at("k7").value == "v7");
            REQUIRE(by_key.at("k5").headers.size() == 2);
            CHECK(by_key.at("k5").headers[0] == header{"attempt", "2"});
            CHECK(by_key.at("k5").headers[1] == header{"null", std::nullopt});
            CHECK(by_key.at("k5").find_header("attempt")->value == "2");
            CHECK(by_key.at("k0").timestamp_ms > 0);

            // New records keep arriving after caught_up, which stays true.
            CO_REQUIRE(co_await p.send(rec(topic, "late", "x")));
            auto more = co_await testing::poll_n(c, 1, 5s);
            REQUIRE(more.size() == 1);
            CHECK(*more[0].key == "late");
            CHECK(c.caught_up());

            topic_partition p0{topic, 0};
            auto w = co_await c.query_watermarks(p0);
            REQUIRE(testing::ok(w));
            CHECK(w->low == 0);
            CHECK(w->high == 10 + (more[0].partition == 0 ? 1 : 0));

            // An empty topic is caught up at once.
            auto empty = faasd::test::unique_name("empty");
            f.cluster.create_topic(empty, 2);
            std::vector<std::string> empties{empty};
            CO_REQUIRE(co_await c.assign_topics(empties));
            CHECK_FALSE(c.caught_up());
            auto none = co_await c.poll(10, 5s);  // returns when caught up
            CHECK(none.empty());
            CHECK(c.caught_up());

            co_await c.close();
            co_await p.close();
        },
        20s);
}

TEST_CASE("consume: group members commit, and a re-joined group resumes from the committed offset",
          "[kafka][unit]") {
    fixture f;
    auto topic = faasd::test::unique_name("jobs");
    auto group = faasd::test::unique_name("workers");
    f.cluster.create_topic(topic, 1);
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            producer p(ex, f.options<producer_options>("p"));
            for (int i = 0; i < 10; ++i) CO_REQUIRE(co_await p.send(rec(topic, std::to_string(i), std::to_string(i))));

            std::vector<topic_partition> assigned, revoked;
            auto o = f.consumer_opts("w1", group);
            o.on_assigned = [&](const std::vector<topic_partition>& ps) { assigned = ps; };
            o.on_revoked = [&](const std::vector<topic_partition>& ps, bool) {
                revoked = ps;
                return std::vector<topic_partition>{};
            };
            consumer a(ex, o);
            REQUIRE(a.subscribe({topic}));
            auto first = co_await testing::poll_n(a, 10, 8s);
            REQUIRE(first.size() == 10);
            REQUIRE(assigned.size() == 1);
            CHECK(assigned[0].topic == topic);
            for (int i = 0; i < 10; ++i) CHECK(first[i].offset == i);
            // Processed the first six: commit the position after the sixth.
            std::vector<topic_partition> positions{first[5].next_position()};
            CO_REQUIRE(co_await a.commit(positions));
            std::vector<topic_partition> p0{{topic, 0}};
            auto committed = co_await a.committed(p0);
            REQUIRE(testing::ok(committed));
            CHECK(committed->at(0).offset == 6);
            co_await a.close();
            CHECK(revoked.size() == 1);  // leaving the group revoked the partition on the loop

            admin adm(ex, f.options<admin_options>("adm"));
            std::vector<std::string> topics{topic};
            auto lag = co_await adm.group_lag(group, topics);
            REQUIRE(testing::ok(lag));
            REQUIRE(lag->size() == 1);
            CHECK(lag->at(0).committed == 6);
            CHECK(lag->at(0).high == 10);
            CHECK(lag->at(0).lag == 4);
            co_await adm.close();

            consumer b(ex, f.consumer_opts("w2", group));
            REQUIRE(b.subscribe({topic}));
            auto rest = co_await testing::poll_n(b, 4, 8s);
            REQUIRE(rest.size() == 4);
            CHECK(rest.front().offset == 6);
            CHECK(rest.back().offset == 9);
            co_await b.close();
            co_await p.close();
        },
        25s);
}

TEST_CASE("consume: a paused consumer that keeps polling stays in the group past max.poll.interval.ms",
          "[kafka][unit]") {
    fixture f;
    auto topic = faasd::test::unique_name("jobs");
    auto group = faasd::test::unique_name("workers");
    f.cluster.create_topic(topic, 2);
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            producer p(ex, f.options<producer_options>("p"));
            int revocations = 0, assignments = 0;
            auto o = f.consumer_opts("w", group);
            // The mock needs session.timeout.ms > 3 s; max.poll.interval.ms must be >= it.
            o.properties["session.timeout.ms"] = "3500";
            o.properties["max.poll.interval.ms"] = "3500";
            o.on_assigned = [&](const std::vector<topic_partition>&) { ++assignments; };
            o.on_revoked = [&](const std::vector<topic_partition>&, bool) {
                ++revocations;
                return std::vector<topic_partition>{};
            };
            consumer c(ex, o);
            REQUIRE(c.subscribe({topic}));
            CO_REQUIRE(co_await p.send(rec(topic, "a", "1")));
            auto first = co_await testing::poll_n(c, 1, 8s);
            REQUIRE(first.size() == 1);
            REQUIRE(c.assignment().size() == 2);

            // All slots busy: pause everything and keep polling for 1.3 x max.poll.interval.ms.
            REQUIRE(c.pause_all());
            for (int i = 0; i < 5; ++i) CO_REQUIRE(co_await p.send(rec(topic, "b" + std::to_string(i), "2")));
            auto t0 = std::chrono::steady_clock::now();
            auto while_paused = co_await testing::poll_for(c, 4500ms);
            CHECK(std::chrono::steady_clock::now() - t0 >= 4500ms);
            CHECK(while_paused.empty());
            CHECK(revocations == 0);
            CHECK(assignments == 1);
            CHECK(c.assignment().size() == 2);
            CHECK(f.logs.count("kafka.max_poll_exceeded") == 0);

            REQUIRE(c.resume_all());
            auto after = co_await testing::poll_n(c, 5, 5s);
            CHECK(after.size() == 5);
            CHECK(revocations == 0);
            co_await c.close();
            co_await p.close();
        },
        20s);
}

TEST_CASE("consume: a consumer that stops polling loses its partitions after max.poll.interval.ms",
          "[kafka][unit]") {
    // The control for the test above: the same setup without polling.
    fixture f;
    auto topic = faasd::test::unique_name("jobs");
    auto group = faasd::test::unique_name("workers");
    f.cluster.create_topic(topic, 1);
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            producer p(ex, f.options<producer_options>("p"));
            bool lost = false;
            auto o = f.consumer_opts("w", group);
            // The mock needs session.timeout.ms > 3 s; max.poll.interval.ms must be >= it.
            o.properties["session.timeout.ms"] = "3500";
            o.properties["max.poll.interval.ms"] = "3500";
            o.on_revoked = [&](const std::vector<topic_partition>&, bool l) {
                lost = l;
                return std::vector<topic_partition>{};
            };
            consumer c(ex, o);
            REQUIRE(c.subscribe({topic}));
            CO_REQUIRE(co_await p.send(rec(topic, "a", "1")));
            auto one = co_await testing::poll_n(c, 1, 8s);
            REQUIRE(one.size() == 1);
            co_await testing::sleep(4500ms);  // the loop runs, but nobody polls
            (void)co_await c.poll(10, 300ms);
            CHECK(lost);
            CHECK(f.logs.count("kafka.max_poll_exceeded") >= 1);
            co_await c.close();
            co_await p.close();
        },
        20s);
}

TEST_CASE("brokers unreachable: not ready, bounded retries, the loop stays responsive", "[kafka][unit]") {
    // A port nobody listens on.
    int port = 0;
    {
        asio::io_context tmp;
        asio::ip::tcp::acceptor a(tmp, {asio::ip::make_address("127.0.0.1"), 0});
        port = a.local_endpoint().port();
    }
    log_capture logs;
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            testing::lateness_probe probe(ex);
            probe.start();
            std::vector<bool> readiness;
            admin_options o;
            o.brokers = "127.0.0.1:" + std::to_string(port);
            o.log = logs.logger(faasd::log_level::info);
            o.probe_timeout = 200ms;
            o.reconnect = {100ms, 200ms};
            o.request_timeout = 300ms;
            o.on_readiness = [&](bool r, std::string_view) { readiness.push_back(r); };
            admin adm(ex, o);

            auto start = std::chrono::steady_clock::now();
            std::vector<topic_spec> specs{{"t", 1, 1, {}}};
            backoff_policy three{50ms, 100ms, 3};
            auto r = co_await adm.ensure_topics(specs, three);
            auto elapsed = std::chrono::steady_clock::now() - start;
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error().retryable());
            CHECK(logs.count("kafka.ensure_topics.retry") == 2);  // attempts 1 and 2 retried, 3 gave up
            CHECK(logs.count("kafka.ensure_topics.failed") == 1);
            CHECK(elapsed < 5s);

            // Meanwhile the readiness monitor keeps probing with backoff: one
            // line per failed attempt, never a busy loop.
            co_await testing::sleep(1000ms);
            auto total = std::chrono::steady_clock::now() - start;
            int unreachable = logs.count("kafka.unreachable");
            CHECK(unreachable >= 2);
            // Each attempt costs >= probe_timeout (200 ms) + backoff (>= 100 ms).
            CHECK(unreachable <= std::chrono::duration_cast<std::chrono::milliseconds>(total).count() / 300 + 1);
            REQUIRE_FALSE(readiness.empty());
            CHECK(std::find(readiness.begin(), readiness.end(), true) == readiness.end());
            CHECK_FALSE(adm.ready());

            // A producer to nowhere: the record times out as a retryable error.
            producer_options po;
            po.brokers = o.brokers;
            po.log = o.log;
            po.probe_timeout = 200ms;
            po.properties["message.timeout.ms"] = "500";
            producer p(ex, po);
            auto d = co_await p.send(rec("t", "k", "v"));
            REQUIRE_FALSE(d.has_value());
            CHECK(d.error().code == errc::msg_timed_out);
            CHECK(d.error().retryable());

            probe.stop();
            INFO(logs.dump("kafka."));
            CHECK(probe.ticks() > 50);
            INFO("raw max lateness " << probe.max_lateness().count() << " ms");
            CHECK(probe.max_unexplained() < 50ms);
            co_await p.close(100ms);
            co_await adm.close();
        },
        20s);
}

TEST_CASE("mock cluster: topics and recommended properties", "[kafka][unit]") {
    mock_cluster c(3);
    CHECK(c.broker_count() == 3);
    auto bs = c.bootstrap_servers();
    CHECK(std::count(bs.begin(), bs.end(), ',') == 2);
    c.create_topic("a", 2, 5);  // replication capped at 3
    c.create_topic("a", 2, 1);  // existing: left alone
    auto props = mock_cluster::recommended_consumer_properties();
    CHECK(props.at("fetch.wait.max.ms") == "5");
    create_faasd_topics(c, faasd::jobs::topic_names::with_prefix("x."), 2);
}

TEST_CASE("consume: poll is cancellable, and close() ends an outstanding poll", "[kafka][unit]") {
    fixture f;
    auto topic = faasd::test::unique_name("cancel");
    f.cluster.create_topic(topic, 1);
    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            consumer c(ex, f.consumer_opts("w"));
            std::vector<std::string> topics{topic};
            CO_REQUIRE(co_await c.assign_topics(topics));
            (void)co_await c.poll(10, 2s);  // reaches the (empty) end
            REQUIRE(c.caught_up());

            // Cancellation through the awaiting coroutine's slot.
            asio::cancellation_signal cancel;
            bool aborted = false, finished = false;
            asio::co_spawn(ex, c.poll(10),
                           asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, std::vector<message>) {
                               finished = true;
                               try {
                                   if (e) std::rethrow_exception(e);
                               } catch (const boost::system::system_error& se) {
                                   aborted = se.code() == asio::error::operation_aborted;
                               }
                           }));
            co_await testing::sleep(100ms);
            CHECK_FALSE(finished);
            cancel.emit(asio::cancellation_type::terminal);
            co_await testing::sleep(50ms);
            CHECK(finished);
            CHECK(aborted);

            // close() while a poll waits: the poll returns an empty batch.
            bool closed_poll_returned = false;
            std::size_t got = 99;
            asio::co_spawn(ex, c.poll(10), [&](std::exception_ptr e, std::vector<message> ms) {
                closed_poll_returned = !e;
                got = ms.size();
            });
            co_await testing::sleep(100ms);
            co_await c.close();
            co_await testing::sleep(50ms);
            CHECK(closed_poll_returned);
            CHECK(got == 0);
            auto after = co_await c.poll(10, 10ms);
            CHECK(after.empty());
        },
        20s);
}
