// The health endpoint helper over a real loopback socket.

#include "http_support.hpp"

#include "support/support.hpp"

#include <faasd/http/client.hpp>
#include <faasd/http/health.hpp>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace faasd::test::http;
using faasd::http::client;
using faasd::http::client_config;
using faasd::http::client_request;
using faasd::test::run_coroutine;

TEST_CASE("health endpoints report liveness, readiness and metrics", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        faasd::runtime::role_env env{faasd::logger::null(), std::make_shared<faasd::runtime::health>(),
                                     std::make_shared<faasd::runtime::shutdown_signal>(ex),
                                     std::chrono::milliseconds(500)};
        auto registry = std::make_shared<faasd::metrics::registry>();
        registry->counter("faasd_test_things_total", "Things.").with({}).inc(3);
        std::uint16_t port = 0;
        bool finished = false;
        asio::co_spawn(ex, faasd::http::serve_health(env, "127.0.0.1:0", registry, [&](std::uint16_t p) { port = p; }),
                       [&](std::exception_ptr e) {
                           finished = true;
                           if (e) std::rethrow_exception(e);
                       });
        co_await wait_for([&] { return port != 0; }, 2s, "health listen");
        client_config cfg;
        cfg.policy.allow_loopback = true;
        client cl(ex, cfg);
        auto url = "http://127.0.0.1:" + std::to_string(port);

        auto r = co_await cl.request(client_request("GET", url + "/healthz"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);

        env.health_state->set("kafka", false, "connecting");
        r = co_await cl.request(client_request("GET", url + "/readyz"));
        REQUIRE(r.has_value());
        CHECK(r->status == 503);
        auto report = boost::json::parse(r->body).as_object();
        CHECK(report.at("ready") == false);
        CHECK(report.at("components").at("kafka").at("detail") == "connecting");

        env.health_state->set("kafka", true);
        r = co_await cl.request(client_request("GET", url + "/readyz"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);

        r = co_await cl.request(client_request("GET", url + "/metrics"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->headers.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
        CHECK(r->body.find("faasd_test_things_total 3\n") != std::string::npos);
        CHECK(r->body.find("faasd_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"503\"} 1\n") !=
              std::string::npos);

        env.shutdown->request();
        co_await wait_for([&] { return finished; }, 2s, "health server to stop");
    }, 10s);
}
