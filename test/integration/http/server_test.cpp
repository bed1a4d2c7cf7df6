// Component tests of http::server over real loopback sockets.

#include "http_support.hpp"

#include "support/support.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace faasd::test::http;
using faasd::http::request;
using faasd::http::response;
using faasd::http::route_params;
using faasd::http::router;
using faasd::http::server_config;
using faasd::test::run_coroutine;

namespace {

router hello_routes() {
    router r;
    r.add("GET", "/hello", [](const request& req, const route_params&) -> asio::awaitable<response> {
         auto name = req.query_param("name").value_or("world");
         co_return response::text(200, "hello " + std::string(name));
     }).add("GET", "/jobs/{id}", [](const request& req, const route_params& p) -> asio::awaitable<response> {
          co_return response::json(200, {{"id", p["id"]}, {"rid", req.request_id}});
      })
        .add("POST", "/echo", [](const request& req, const route_params&) -> asio::awaitable<response> {
            co_return response::text(200, req.body);
        })
        .add("POST", "/big", [](const request& req, const route_params&) -> asio::awaitable<response> {
            co_return response::text(200, std::to_string(req.body.size()));
        }, {.body_limit = 64 * 1024})
        .add("GET", "/throw", [](const request&, const route_params&) -> asio::awaitable<response> {
            throw std::runtime_error("secret detail");
            co_return response::text(200, "unreachable");
        })
        .add("GET", "/slow", [](const request&, const route_params&) -> asio::awaitable<response> {
            co_await pause(10s);
            co_return response::text(200, "late");
        }, {.timeout = std::chrono::milliseconds(200)})
        .add("DELETE", "/jobs/{id}", [](const request&, const route_params&) -> asio::awaitable<response> {
            co_return response{204, {}, {}};
        })
        .add("GET", "/inject", [](const request&, const route_params&) -> asio::awaitable<response> {
            response res = response::text(200, "ok");
            res.headers.add("X-Bad", "a\r\nSet-Cookie: stolen=1");
            res.headers.add("X-Good", "fine");
            co_return res;
        });
    return r;
}

std::string problem_type(const bhttp::response<bhttp::string_body>& res) {
    return std::string(boost::json::parse(res.body()).as_object().at("type").as_string());
}

}  // namespace

TEST_CASE("server keeps connections alive and answers routes, 404, 405, HEAD", "[http][integration]") {
    log_capture logs;
    run_coroutine([&]() -> asio::awaitable<void> {
        server_config cfg;
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, hello_routes(), cfg, logs.logger());
        auto c = co_await raw_conn::open(ts.port);

        co_await c.send(get("/hello?name=faasd&token=hunter2", "X-Request-Id: abc-1\r\nAuthorization: Bearer s3cr3t\r\n"));
        auto r1 = co_await c.read();
        CHECK(r1.result_int() == 200);
        CHECK(r1.body() == "hello faasd");
        CHECK(r1.keep_alive());
        CHECK(r1["X-Request-Id"] == "abc-1");

        co_await c.send(get("/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", "X-Request-Id: bad id!\r\n"));
        auto r2 = co_await c.read();
        CHECK(r2.result_int() == 200);
        auto body = boost::json::parse(r2.body()).as_object();
        CHECK(body.at("id") == "01ARZ3NDEKTSV4RRFFQ69G5FAV");
        std::string rid(r2["X-Request-Id"]);
        CHECK(rid != "bad id!");
        CHECK(body.at("rid").as_string() == rid);

        co_await c.send(get("/nope"));
        auto r3 = co_await c.read();
        CHECK(r3.result_int() == 404);
        CHECK(r3[bhttp::field::content_type] == "application/problem+json");
        CHECK(problem_type(r3) == "https://faasd.dev/problems/not-found");

        co_await c.send("PUT /jobs/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        auto r4 = co_await c.read();
        CHECK(r4.result_int() == 405);
        CHECK(r4[bhttp::field::allow] == "DELETE, GET, HEAD");
        CHECK(problem_type(r4) == "https://faasd.dev/problems/method-not-allowed");

        co_await c.send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        auto r5 = co_await c.read(true);
        CHECK(r5.result_int() == 200);
        CHECK(r5[bhttp::field::content_length] == "11");
        CHECK(r5.body().empty());

        co_await c.send("DELETE /jobs/x HTTP/1.1\r\nHost: t\r\n\r\n");
        auto r6 = co_await c.read();
        CHECK(r6.result_int() == 204);

        co_await c.send(get("/inject"));
        auto r7 = co_await c.read();
        CHECK(r7.result_int() == 200);
        CHECK(r7["X-Good"] == "fine");
        CHECK(r7.find("X-Bad") == r7.end());  // a header with CR/LF is dropped, not injected
        CHECK(r7.find("Set-Cookie") == r7.end());

        // Still the same connection: seven answers, one accept.
        co_await c.send(get("/hello"));
        {
            auto got1 = co_await c.read();
            CHECK(got1.body() == "hello world");
        }
        CHECK(ts.srv->stats().accepted == 1);

        auto text = ts.registry->render();
        CHECK(text.find("faasd_http_requests_total{method=\"GET\",route=\"/hello\",status=\"200\"} 2\n") !=
              std::string::npos);
        CHECK(text.find("faasd_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n") !=
              std::string::npos);
        CHECK(text.find("faasd_http_requests_total{method=\"PUT\",route=\"/jobs/{id}\",status=\"405\"} 1\n") !=
              std::string::npos);
        CHECK(text.find("faasd_http_request_duration_seconds_count{method=\"GET\",route=\"/jobs/{id}\"} 1\n") !=
              std::string::npos);
        co_await ts.stop();
    }, 10s);

    // The access log names the route pattern, never ids, queries or credentials.
    CHECK(logs.contains("event=http.request method=GET route=/jobs/{id} status=200"));
    CHECK(logs.contains("route=/hello status=200"));
    for (const auto& l : logs.snapshot()) {
        CHECK(l.find("01ARZ3NDEKTSV4RRFFQ69G5FAV") == std::string::npos);
        CHECK(l.find("hunter2") == std::string::npos);
        CHECK(l.find("s3cr3t") == std::string::npos);
    }
}

TEST_CASE("server answers pipelined requests in order", "[http][integration]") {
    const bool multi_threaded = GENERATE(false, true);  // strand per connection, or not
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        server_config cfg;
        cfg.multi_threaded = multi_threaded;
        test_server ts(ex, hello_routes(), cfg);
        auto c = co_await raw_conn::open(ts.port);
        co_await c.send(get("/hello?name=1") + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" +
                        get("/hello?name=3"));
        {
            auto got2 = co_await c.read();
            CHECK(got2.body() == "hello 1");
        }
        {
            auto got3 = co_await c.read();
            CHECK(got3.body() == "abc");
        }
        {
            auto got4 = co_await c.read();
            CHECK(got4.body() == "hello 3");
        }
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("server enforces body and header limits with problem responses", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        server_config cfg;
        cfg.body_limit = 1024;
        cfg.header_limit = 2048;
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, hello_routes(), cfg);

        SECTION("declared length over the global limit") {
            auto c = co_await raw_conn::open(ts.port);
            co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n");
            auto r = co_await c.read();
            CHECK(r.result_int() == 413);
            CHECK(r[bhttp::field::content_type] == "application/problem+json");
            auto body = boost::json::parse(r.body()).as_object();
            CHECK(body.at("type") == "https://faasd.dev/problems/body-too-large");
            CHECK(body.at("limit") == 1024);
            CHECK_FALSE(r.keep_alive());
            {
                bool closed8 = co_await c.closed_within(2s);
                CHECK(closed8);
            }
        }
        SECTION("a route may raise the limit") {
            auto c = co_await raw_conn::open(ts.port);
            co_await c.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x'));
            auto r = co_await c.read();
            CHECK(r.result_int() == 200);
            CHECK(r.body() == "5000");
        }
        SECTION("chunked body over the limit") {
            auto c = co_await raw_conn::open(ts.port);
            std::string chunk(800, 'y');
            co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n" + chunk +
                            "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
            auto r = co_await c.read();
            CHECK(r.result_int() == 413);
        }
        SECTION("Expect: 100-continue gets an interim answer, or 413 at once") {
            auto c = co_await raw_conn::open(ts.port);
            co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
            auto interim = co_await c.read();
            CHECK(interim.result_int() == 100);
            co_await c.send("hello");
            auto r = co_await c.read();
            CHECK(r.body() == "hello");
            co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
            {
                auto got5 = co_await c.read();
                CHECK(got5.result_int() == 413);
            }
        }
        SECTION("header over the limit") {
            auto c = co_await raw_conn::open(ts.port);
            co_await c.send(get("/hello", "X-Big: " + std::string(4000, 'h') + "\r\n"));
            auto r = co_await c.read();
            CHECK(r.result_int() == 431);
            {
                bool closed9 = co_await c.closed_within(2s);
                CHECK(closed9);
            }
        }
        SECTION("malformed request") {
            auto c = co_await raw_conn::open(ts.port);
            co_await c.send("GARBAGE\r\n\r\n");
            auto r = co_await c.read();
            CHECK(r.result_int() == 400);
        }
        SECTION("malformed target") {
            auto c = co_await raw_conn::open(ts.port);
            co_await c.send(get("/hello%zz"));
            auto r = co_await c.read();
            CHECK(r.result_int() == 400);
        }
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("server maps handler failures and timeouts to problems", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, hello_routes());
        auto c = co_await raw_conn::open(ts.port);
        co_await c.send(get("/throw"));
        auto r = co_await c.read();
        CHECK(r.result_int() == 500);
        CHECK(r.body().find("secret") == std::string::npos);
        CHECK(r.keep_alive());  // the connection survives a failing handler

        auto t0 = std::chrono::steady_clock::now();
        co_await c.send(get("/slow"));
        r = co_await c.read();
        CHECK(r.result_int() == 503);
        CHECK(std::chrono::steady_clock::now() - t0 < 2s);
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("server read deadlines close slow-loris and idle connections", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        server_config cfg;
        cfg.header_timeout = 300ms;
        cfg.idle_timeout = 400ms;
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, hello_routes(), cfg);

        // A header that never ends.
        auto slow = co_await raw_conn::open(ts.port);
        co_await slow.send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: ");
        auto t0 = std::chrono::steady_clock::now();
        co_await pause(100ms);
        co_await slow.send("a");  // trickling bytes does not extend the header deadline
        {
            bool closed10 = co_await slow.closed_within(3s);
            CHECK(closed10);
        }
        auto took = std::chrono::steady_clock::now() - t0;
        CHECK(took >= 250ms);
        CHECK(took < 2s);

        // An idle keep-alive connection.
        auto idle = co_await raw_conn::open(ts.port);
        co_await idle.send(get("/hello"));
        {
            auto got6 = co_await idle.read();
            CHECK(got6.result_int() == 200);
        }
        {
            bool closed11 = co_await idle.closed_within(3s);
            CHECK(closed11);
        }
        co_await wait_for([&] { return ts.srv->stats().connections == 0; }, 2s, "connections closed");
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("graceful stop finishes in-flight requests and closes idle connections", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        bool started = false;
        router r;
        r.add("GET", "/work", [&](const request&, const route_params&) -> asio::awaitable<response> {
            started = true;
            co_await pause(300ms);
            co_return response::text(200, "done");
        });
        r.add("GET", "/quick", [](const request&, const route_params&) -> asio::awaitable<response> {
            co_return response::text(200, "quick");
        });
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, std::move(r));

        auto idle = co_await raw_conn::open(ts.port);
        co_await idle.send(get("/quick"));
        {
            auto got7 = co_await idle.read();
            CHECK(got7.keep_alive());
        }

        auto busy = co_await raw_conn::open(ts.port);
        co_await busy.send(get("/work"));
        co_await wait_for([&] { return started; }, 2s, "handler start");

        auto t0 = std::chrono::steady_clock::now();
        ts.srv->stop(5s);
        // The idle connection is closed at once, well before the in-flight request ends.
        {
            bool closed12 = co_await idle.closed_within(250ms);
            CHECK(closed12);
        }

        auto res = co_await busy.read();
        CHECK(res.result_int() == 200);
        CHECK(res.body() == "done");
        CHECK_FALSE(res.keep_alive());
        co_await wait_for([&] { return ts.finished(); }, 3s, "run() to finish");
        CHECK(std::chrono::steady_clock::now() - t0 < 2s);

        // No longer accepting.
        tcp::socket s(co_await asio::this_coro::executor);
        auto [ec] = co_await s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), ts.port), use_tuple);
        CHECK(ec);
    }, 10s);
}

TEST_CASE("stop cancels requests that outlive the grace period", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        bool started = false;
        router r;
        r.add("GET", "/stuck", [&](const request&, const route_params&) -> asio::awaitable<response> {
            started = true;
            co_await pause(30s);
            co_return response::text(200, "never");
        }, {.timeout = std::chrono::milliseconds(0)});
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, std::move(r));
        auto c = co_await raw_conn::open(ts.port);
        co_await c.send(get("/stuck"));
        co_await wait_for([&] { return started; }, 2s, "handler start");
        auto t0 = std::chrono::steady_clock::now();
        co_await ts.stop(200ms, 3s);
        CHECK(std::chrono::steady_clock::now() - t0 < 2s);
        {
            bool closed13 = co_await c.closed_within(1s);
            CHECK(closed13);
        }
    }, 10s);
}

TEST_CASE("server refuses to bind a taken port", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, hello_routes());
        server_config cfg;
        cfg.port = ts.port;
        faasd::http::server other(ex, cfg, hello_routes(), faasd::logger::null());
        auto r = other.listen();
        CHECK_FALSE(r);
        co_await ts.stop();
    }, 10s);
}
