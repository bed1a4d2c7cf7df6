// Large results through the worker against real Kafka: a function that floods
// stdout and stderr and writes a large result.json must end with a result
// (cut to the result budget), and the worker must keep serving; a broker that
// refuses the record anyway gets a smaller one, never an endless retry.

#include "integration/worker/worker_harness.hpp"

#include <faasd/kafka/admin.hpp>
#include <faasd/worker/result_budget.hpp>

using namespace faasd;
using namespace faasd::test::worker;
namespace gitfx = faasd::test::git;
using jobs::job_state;

namespace {

// ~2 MiB on stdout and on stderr (kept: 1 MiB each, the default --output-cap)
// and a ~900 KB result.json (under the 1 MiB result file cap).
const char* flood_script = R"(#!/bin/sh
head -c 2097152 /dev/zero | tr '\0' 'o'
head -c 2097152 /dev/zero | tr '\0' 'e' >&2
{ printf '{"blob": "'; head -c 900000 /dev/zero | tr '\0' 'x'; printf '"}'; } > "$FAASD_RESULT_FILE"
)";

const char* small_script = R"(#!/bin/sh
echo '{"small": true}'
)";

}  // namespace

TEST_CASE("a flood of output and a large result.json end with a result, the worker keeps serving",
          "[worker][integration]") {
    setup s;
    const auto flood = shell_repo(s.tmp.path(), "flood", flood_script);
    const auto small = shell_repo(s.tmp.path(), "small", small_script);

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            worker_run w(ex, s.logs.logger());
            w.start(s.worker("bwrap", 1), s.kafka());  // default caps; one slot: a wedged slot blocks the next job

            auto big = make_job(flood);
            co_await k.submit(big);
            auto next = make_job(small);
            co_await k.submit(next);
            bool finished = co_await k.wait_for(
                [&] {
                    return k.seen.terminal(big.id) && k.seen.result_count(big.id) > 0 && k.seen.terminal(next.id) &&
                           k.seen.result_count(next.id) > 0;
                },
                60s);
            INFO(s.logs.dump("job."));
            REQUIRE(finished);

            const auto& r = k.seen.results[big.id].front();
            CHECK(r.state == job_state::succeeded);
            CHECK(r.capped);
            CHECK(r.stdout_truncated);
            CHECK(r.stderr_truncated);
            CHECK(faasd::worker::encoded_size(r) <= faasd::worker::result_limits{}.result_bytes);
            CHECK(r.stdout_text.find("[faasd: cut to fit the result size limit") != std::string::npos);
            const auto* t = k.seen.terminal(big.id);
            CHECK(t->state == job_state::succeeded);
            REQUIRE(t->result);
            CHECK(t->result->capped);
            CHECK(faasd::worker::encoded_size(*t->result) <= faasd::worker::result_limits{}.snapshot_bytes);

            CHECK(k.seen.terminal(next.id)->state == job_state::succeeded);
            CHECK(k.seen.results[next.id].front().output.at("small") == true);
            CHECK(s.logs.dump().find("job.publish_failed") == std::string::npos);  // never refused, never retried

            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("a result the broker refuses as too large is published cut to the fallback size", "[worker][integration]") {
    setup s;
    // 200 KB of stdout: within the worker's 512 KiB budget, above this results topic's limit.
    const auto chatty = shell_repo(s.tmp.path(), "chatty", R"(#!/bin/sh
head -c 200000 /dev/zero | tr '\0' 'c'
)");
    const auto small = shell_repo(s.tmp.path(), "small", small_script);

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            {
                kafka::admin_options ao;
                ao.brokers = s.brokers;
                ao.log = s.logs.logger();
                kafka::admin adm(ex, ao);
                std::vector<kafka::topic_spec> specs{
                    {s.prefix + "results", 2, 1, {{"max.message.bytes", "50000"}}}};
                auto created = co_await adm.ensure_topics(specs);
                co_await adm.close();
                CO_REQUIRE(created);
            }
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            REQUIRE(k.topics.results == s.prefix + "results");
            worker_run w(ex, s.logs.logger());
            w.start(s.worker("bwrap", 1), s.kafka());

            auto job = make_job(chatty);
            co_await k.submit(job);
            auto next = make_job(small);
            co_await k.submit(next);
            bool finished = co_await k.wait_for(
                [&] {
                    return k.seen.result_count(job.id) > 0 && k.seen.terminal(job.id) &&
                           k.seen.result_count(next.id) > 0;
                },
                60s);
            INFO(s.logs.dump("job."));
            REQUIRE(finished);
            const auto& r = k.seen.results[job.id].front();
            CHECK(r.state == job_state::succeeded);
            CHECK(r.capped);
            CHECK(faasd::worker::encoded_size(r) <= faasd::worker::result_limits::fallback_bytes);
            CHECK(s.logs.dump().find("job.publish_refused") != std::string::npos);
            CHECK(k.seen.terminal(job.id)->state == job_state::succeeded);
            CHECK(k.seen.results[next.id].front().state == job_state::succeeded);

            REQUIRE(co_await w.stop());
            co_await k.close();
        },
        test_timeout);
}
