// Sources and sinks over real HTTP (faasd::http server on loopback, the
// worker's http_transfer with --allow-private-sources) and the example
// function fetch-transform-put in the real sandbox: a sealed bearer token for
// the source, a signing key for the function, the report uploaded to the sink.

#include "integration/http/http_support.hpp"
#include "integration/worker/worker_harness.hpp"

#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/sealing.hpp>
#include <faasd/http/router.hpp>

using namespace faasd;
using namespace faasd::test::worker;
namespace gitfx = faasd::test::git;
using jobs::job_state;

namespace {

std::string hex(const std::string& raw) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}

struct sink_log {
    std::string body;
    std::string job_header;
    std::string auth;
    int puts = 0;
    int fails_left = 0;  ///< answer 503 this many times first
};

}  // namespace

TEST_CASE("sources are downloaded and outputs uploaded over HTTP with sealed tokens", "[worker][integration]") {
    setup s;
    gitfx::repo fn(s.tmp.path() / "work-ftp", s.tmp.path() / "served/ftp.git");
    fn.add_tree(example("fetch-transform-put"));
    fn.commit("fetch-transform-put");
    auto key = crypto::generate_key("k1");
    auto ring = crypto::key_ring::parse(key).value();
    const std::string token = "tok-" + faasd::random_hex(6);
    const std::string signing = "sign-" + faasd::random_hex(6);
    const std::string csv = "region,amount\nnorth,10.5\nsouth,2\nnorth,4.5\n";
    const std::string expected_report = "region,total\nnorth,15.00\nsouth,2.00\n";

    auto sink = std::make_shared<sink_log>();
    sink->fails_left = 1;  // the first upload gets a 503: retried
    http::router routes;
    routes.add("GET", "/sales", [csv, token](const http::request& req, const http::route_params&) -> asio::awaitable<http::response> {
        auto auth = req.headers.get("Authorization");
        if (!auth || *auth != "Bearer " + token) co_return http::response(401);
        co_return http::response(200, {}, csv);
    });
    routes.add("PUT", "/report", [sink](const http::request& req, const http::route_params&) -> asio::awaitable<http::response> {
        ++sink->puts;
        if (sink->fails_left > 0) {
            --sink->fails_left;
            co_return http::response(503);
        }
        sink->body = req.body;
        sink->job_header = std::string(req.headers.get("X-Faasd-Job").value_or(""));
        sink->auth = std::string(req.headers.get("Authorization").value_or(""));
        co_return http::response(201);
    });

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            faasd::test::http::test_server srv(ex, routes);
            const std::string base = "http://127.0.0.1:" + std::to_string(srv.port);
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto wcfg = s.worker();
            wcfg.credentials_keys = key;
            wcfg.allow_private_sources = true;
            worker_run w(ex, s.logs.logger());
            w.start(wcfg, s.kafka());

            auto make = [&](const std::string& source_path, const std::string& src_token) {
                auto j = make_job(fn.file_url());
                j.spec.sources["sales"] = jobs::source_spec{base + source_path, {}, "src_token"};
                jobs::sink_spec sk;
                sk.url = base + "/report";
                sk.method = "PUT";
                j.spec.sinks["report"] = sk;
                j.spec.credentials =
                    crypto::seal(ring, j.id, R"({"signing_key": ")" + signing + R"(", "src_token": ")" + src_token + R"("})");
                j.spec.credentials.names = {"signing_key", "src_token"};
                return j;
            };
            auto good = make("/sales", token);
            auto denied = make("/sales", "wrong-token");
            auto missing = make("/nothing-here", token);
            for (const auto* j : {&good, &denied, &missing}) co_await k.submit(*j);
            REQUIRE(co_await k.wait_for(
                [&] {
                    for (const auto* j : {&good, &denied, &missing})
                        if (!k.seen.terminal(j->id) || k.seen.result_count(j->id) == 0) return false;
                    return true;
                },
                120s));
            INFO(s.logs.dump("job."));

            const auto* t = k.seen.terminal(good.id);
            INFO(t->error.code << " " << t->error.message);
            REQUIRE(t->state == job_state::succeeded);
            const auto& r = k.seen.results[good.id].front();
            CHECK(r.output.at("rows") == 3);
            CHECK(r.output.at("signature").as_string() == hex(crypto::hmac_sha256(signing, expected_report)));
            REQUIRE(r.outputs.size() == 1);
            CHECK(r.outputs[0].name == "report.csv");
            CHECK(r.outputs[0].sink == "report");
            CHECK(r.outputs[0].http_status == 201);
            CHECK(r.outputs[0].size == expected_report.size());
            CHECK(r.times.upload_ms >= 0);
            CHECK(sink->body == expected_report);
            CHECK(sink->job_header == good.id);
            CHECK(sink->auth.empty());  // the sink has no credential
            CHECK(sink->puts == 2);     // 503 then 201

            // A refused source and a missing one fail the job (permanent: one result each, no retry).
            CHECK(k.seen.terminal(denied.id)->state == job_state::failed);
            CHECK(k.seen.terminal(denied.id)->error.code == "source_failed");
            CHECK(k.seen.terminal(missing.id)->error.code == "source_failed");
            CHECK(k.seen.result_count(denied.id) == 1);
            CHECK(k.seen.result_count(missing.id) == 1);
            // The secrets never leave the worker.
            CHECK(s.logs.dump().find(token) == std::string::npos);
            CHECK(s.logs.dump().find(signing) == std::string::npos);
            for (const auto& [id, rs] : k.seen.results)
                for (const auto& x : rs) CHECK(jobs::encode(x).find(signing) == std::string::npos);

            REQUIRE(co_await w.stop());
            co_await srv.stop();
            co_await k.close();
        },
        test_timeout);
}

TEST_CASE("a source answering 503 or 429 is retried with the job's backoff, 404 is not", "[worker][integration]") {
    setup s;
    const auto fn = shell_repo(s.tmp.path(), "cat-source", R"SH(#!/bin/sh
printf '{"got": "%s"}\n' "$(cat "$FAASD_SOURCES_DIR/in")" > "$FAASD_RESULT_FILE"
)SH");
    auto hits = std::make_shared<std::map<std::string, int>>();
    http::router routes;
    // First answer: the status in the path; then 200 with the body "ok".
    for (const auto* path : {"/503", "/429", "/404"}) {
        routes.add("GET", path, [hits, path](const http::request&, const http::route_params&) -> asio::awaitable<http::response> {
            const int n = ++(*hits)[path];
            const int status = std::stoi(std::string(path).substr(1));
            if (n == 1 || status == 404) co_return http::response(status);
            co_return http::response(200, {}, "ok");
        });
    }

    faasd::test::run_coroutine(
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            faasd::test::http::test_server srv(ex, routes);
            const std::string base = "http://127.0.0.1:" + std::to_string(srv.port);
            kafka_side k(ex, s.brokers, s.prefix, s.logs.logger(log_level::info));
            co_await k.start();
            auto wcfg = s.worker();
            wcfg.allow_private_sources = true;
            worker_run w(ex, s.logs.logger());
            w.start(wcfg, s.kafka());

            std::map<std::string, jobs::job_message> jobs_by_path;
            for (const auto* path : {"/503", "/429", "/404"}) {
                auto j = make_job(fn);
                j.spec.sources["in"] = jobs::source_spec{base + path, {}, ""};
                jobs_by_path.emplace(path, j);
                co_await k.submit(j);
            }
            REQUIRE(co_await k.wait_for(
                [&] {
                    for (const auto& [p, j] : jobs_by_path)
                        if (!k.seen.terminal(j.id)) return false;
                    return true;
                },
                60s));
            INFO(s.logs.dump("job."));

            for (const auto* path : {"/503", "/429"}) {
                const auto& j = jobs_by_path.at(path);
                INFO(path);
                CHECK(k.seen.terminal(j.id)->state == job_state::succeeded);
                CHECK(k.seen.terminal(j.id)->attempt == 2);
                REQUIRE(k.seen.result_count(j.id) == 2);
                const auto& first = k.seen.results[j.id][0];
                CHECK(first.state == job_state::failed);
                CHECK(first.error.code == "source_failed");
                CHECK(first.error.message.find(std::string(path).substr(1)) != std::string::npos);
                CHECK(k.seen.results[j.id][1].output.at("got") == "ok");
                CHECK((*hits)[path] == 2);
            }
            const auto& gone = jobs_by_path.at("/404");
            CHECK(k.seen.terminal(gone.id)->state == job_state::failed);
            CHECK(k.seen.terminal(gone.id)->error.code == "source_failed");
            CHECK(k.seen.terminal(gone.id)->error.message.find("404") != std::string::npos);
            CHECK(k.seen.result_count(gone.id) == 1);
            CHECK((*hits)["/404"] == 1);

            REQUIRE(co_await w.stop());
            co_await srv.stop();
            co_await k.close();
        },
        test_timeout);
}
