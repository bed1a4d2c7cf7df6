// `faasd worker` as a child process against real Kafka (single node): what
// only a real process shows. The credential key ring leaves the worker's
// environment (and /proc/<pid>/environ) once read; a job whose worker is
// killed on every delivery ends failed with worker_lost instead of being
// delivered without end.

#include "integration/worker/worker_harness.hpp"

#include <faasd/crypto/sealing.hpp>

#include <fstream>
#include <sstream>

using namespace faasd;
using namespace faasd::test::worker;
namespace gitfx = faasd::test::git;
using jobs::job_state;

namespace {

/// `faasd worker` as a child process (its own process group, log to a file).
std::unique_ptr<gitfx::background_process> start_worker(const setup& s, const std::string& name,
                                                        std::vector<std::string> extra_args = {},
                                                        std::vector<std::string> env = {}) {
    std::vector<std::string> argv{faasd::test::faasd_binary(),
                                  "worker",
                                  "--kafka-brokers=" + s.brokers,
                                  "--topic-prefix=" + s.prefix,
                                  "--topic-partitions=2",
                                  "--topic-replication=1",
                                  "--worker-id=" + name,
                                  "--slots=2",
                                  "--sandbox=none",
                                  "--cache-dir=" + (s.tmp.path() / "cache").string(),
                                  "--jobs-dir=" + (s.tmp.path() / ("jobs-" + name)).string(),
                                  "--allowed-schemes=file",
                                  "--retry-backoff=200ms",
                                  "--heartbeat-interval=500ms",
                                  "--kafka-property=session.timeout.ms=6000",
                                  "--kafka-property=heartbeat.interval.ms=500",
                                  "--kafka-property=fetch.wait.max.ms=50",
                                  "--log-level=info",
                                  "--shutdown-grace=5s"};
    for (auto& a : extra_args) argv.push_back(std::move(a));
    return std::make_unique<gitfx::background_process>(argv, s.tmp.path() / (name + ".log"), env);
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream os;
    os << f.rdbuf();
    return os.str();
}

std::string tail(const std::string& s, std::size_t n = 3000) { return s.size() > n ? s.substr(s.size() - n) : s; }

}  // namespace

TEST_CASE("the credential key ring leaves the worker's environment once read (--sandbox=none)", "[worker][integration]") {
    setup s;
    const std::string ring_text = crypto::generate_key("k1");
    const std::string key_value = ring_text.substr(ring_text.find(':') + 1);
    auto ring = crypto::key_ring::parse(ring_text).value();
    // The function looks for the key in its environment and in its parent's
    // (the worker's) /proc/<pid>/environ, and reports its parent and its secret.
    const auto url = shell_repo(s.tmp.path(), "snoop", R"SH(#!/bin/sh
in_env=0; env | grep -q FAASD_CREDENTIALS_KEYS && in_env=1
readable=0; in_proc=0
if tr '\0' '\n' < /proc/$PPID/environ > /tmp/faasd-snoop-$$ 2>/dev/null; then
  readable=1
  grep -q "$FN_NEEDLE" /tmp/faasd-snoop-$$ && in_proc=1
fi
rm -f /tmp/faasd-snoop-$$
secret=$(sed -e 's/.*"token": *"\([^"]*\)".*/\1/' "$FAASD_CREDENTIALS_FILE")
printf '{"ppid": %s, "in_env": %s, "readable": %s, "in_proc": %s, "secret": "%s"}\n' \
  "$PPID" "$in_env" "$readable" "$in_proc" "$secret" > "$FAASD_RESULT_FILE"
)SH");

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto w = start_worker(s, "w-env-" + faasd::random_hex(3), {}, {"FAASD_CREDENTIALS_KEYS=" + ring_text});

            auto job = make_job(url);
            job.spec.env["FN_NEEDLE"] = key_value.substr(0, 16);
            job.spec.credentials = crypto::seal(ring, job.id, R"({"token": "tok-123"})");
            job.spec.credentials.names = {"token"};
            co_await k.submit(job);
            bool done = co_await k.wait_for([&] { return k.seen.result_count(job.id) > 0; }, 60s);
            INFO(tail(w->log()));
            REQUIRE(done);
            const auto& r = k.seen.results[job.id].front();
            INFO(jobs::encode(r));
            REQUIRE(r.state == job_state::succeeded);
            CHECK(r.output.at("secret") == "tok-123");  // the ring still opens credentials
            CHECK(r.output.at("in_env") == 0);
            CHECK(r.output.at("in_proc") == 0);
            // The worker's own /proc/<pid>/environ (read here as the test's
            // user, who may read it whatever the function may): the initial
            // environment block no longer holds the key.
            const auto pid = r.output.at("ppid").as_int64();
            REQUIRE(w->running());
            const auto environ_text = read_file("/proc/" + std::to_string(pid) + "/environ");
            CHECK(environ_text.find("--kafka-brokers") == std::string::npos);  // it is the environment, not argv
            CHECK(environ_text.find(key_value) == std::string::npos);
            CHECK(environ_text.find(key_value.substr(0, 16)) == std::string::npos);
            CHECK(w->log().find(key_value) == std::string::npos);
            w->stop();
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("a job whose worker is lost on every delivery ends failed with worker_lost", "[worker][integration]") {
    setup s;
    const auto url = shell_repo(s.tmp.path(), "long", "#!/bin/sh\nsleep 120\necho '{}'\n");

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto job = make_job(url);
            co_await k.submit(job);
            auto running_with = [&](int deliveries) {
                auto it = k.seen.states.find(job.id);
                if (it == k.seen.states.end()) return false;
                for (const auto& st : it->second)
                    if (st.state == job_state::running && st.deliveries == deliveries) return true;
                return false;
            };

            // Two workers in turn take the job and are killed in the middle of its run.
            std::string logs;
            for (int delivery = 1; delivery <= 2; ++delivery) {
                auto w = start_worker(s, "w-lost-" + std::to_string(delivery), {"--max-deliveries=2"});
                bool running = co_await k.wait_for([&] { return running_with(delivery); }, 45s);
                logs += tail(w->log(), 1500);
                INFO(logs);
                REQUIRE(running);
                w->stop();  // SIGKILL: no hand-back, the snapshot stays running
            }
            // The third delivery is past --max-deliveries: dead-lettered, failed, never run.
            auto w = start_worker(s, "w-lost-3", {"--max-deliveries=2"});
            bool ended = co_await k.wait_for(
                [&] { return k.seen.terminal(job.id) && k.seen.result_count(job.id) > 0 && !k.seen.dead_letters.empty(); },
                45s);
            logs += tail(w->log(), 3000);
            INFO(logs);
            REQUIRE(ended);
            const auto* t = k.seen.terminal(job.id);
            CHECK(t->state == job_state::failed);
            CHECK(t->error.code == "worker_lost");
            CHECK(t->attempt == 1);
            REQUIRE(k.seen.result_count(job.id) == 1);
            CHECK(k.seen.results[job.id].front().error.code == "worker_lost");
            CHECK(k.seen.results[job.id].front().times.run_ms == 0);
            REQUIRE(k.seen.dead_letters.size() == 1);
            const auto* reason = k.seen.dead_letters.front().find_header("faasd-reason");
            REQUIRE(reason);
            REQUIRE(reason->value);
            CHECK(reason->value->rfind("worker_lost: ", 0) == 0);
            CHECK_FALSE(running_with(3));  // the third delivery never ran
            CHECK(w->log().find("job.redelivered") != std::string::npos);

            // The worker keeps serving.
            const auto quick = shell_repo(s.tmp.path(), "quick", "#!/bin/sh\necho '{\"ok\": true}'\n");
            auto next = make_job(quick);
            co_await k.submit(next);
            CHECK(co_await k.wait_for([&] { return k.seen.result_count(next.id) > 0; }, 30s));
            w->stop();
            co_await k.close();
        },
        test_timeout);
}
