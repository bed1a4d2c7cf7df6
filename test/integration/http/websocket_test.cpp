// Component tests of WebSocket routes over real loopback sockets, with a Beast
// WebSocket client.

#include "http_support.hpp"

#include "support/support.hpp"

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <catch2/catch.hpp>

using namespace faasd::test::http;
using faasd::http::request;
using faasd::http::response;
using faasd::http::route_params;
using faasd::http::router;
using faasd::http::server_config;
using faasd::http::ws_session;
using faasd::test::run_coroutine;
namespace websocket = boost::beast::websocket;
namespace close_code = faasd::http::close_code;

namespace {

using ws_stream = websocket::stream<beast::tcp_stream>;

struct ws_client {
    std::unique_ptr<ws_stream> ws;
    websocket::response_type res;
    boost::system::error_code ec;  // handshake result
};

// Connects and performs the handshake offering `protocols` (if not empty).
asio::awaitable<ws_client> ws_connect(std::uint16_t port, std::string target, std::string protocols) {
    ws_client c;
    auto ex = co_await asio::this_coro::executor;
    c.ws = std::make_unique<ws_stream>(ex);
    co_await beast::get_lowest_layer(*c.ws).async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
    c.ws->set_option(websocket::stream_base::decorator([protocols](websocket::request_type& req) {
        if (!protocols.empty()) req.set(bhttp::field::sec_websocket_protocol, protocols);
    }));
    auto [ec] = co_await c.ws->async_handshake(c.res, "127.0.0.1", target, use_tuple);
    c.ec = ec;
    co_return c;
}

// Reads messages until the server closes; returns them (the close code is in ws.reason()).
asio::awaitable<std::vector<std::string>> read_until_closed(ws_stream& ws) {
    std::vector<std::string> got;
    beast::flat_buffer buf;
    for (;;) {
        auto [ec, n] = co_await ws.async_read(buf, use_tuple);
        (void)n;
        if (ec) break;
        got.push_back(beast::buffers_to_string(buf.data()));
        buf.consume(buf.size());
    }
    co_return got;
}

asio::awaitable<std::string> read_one(ws_stream& ws) {
    beast::flat_buffer buf;
    co_await ws.async_read(buf, asio::use_awaitable);
    co_return beast::buffers_to_string(buf.data());
}

// An echo route that authenticates with a bearer subprotocol and selects "faasd.v1".
router echo_routes(bool* handler_done = nullptr) {
    router r;
    r.add_websocket("/v1/ws", [handler_done](std::shared_ptr<ws_session> s) -> asio::awaitable<void> {
        struct mark {
            bool* p;
            ~mark() {
                if (p) *p = true;
            }
        } m{handler_done};
        auto offered = s->offered_subprotocols();
        bool authorised = false;
        for (const auto& p : offered)
            if (p == "bearer.good-token") authorised = true;
        if (!authorised) {
            auto problem = response::problem(401, "unauthorized", "Missing or invalid token");
            co_await s->reject(std::move(problem));
            co_return;
        }
        std::optional<std::string> choice;
        if (s->upgrade_request().query_param("proto") == "token") choice = "bearer.good-token-not-offered";
        else if (std::find(offered.begin(), offered.end(), "faasd.v1") != offered.end()) choice = "faasd.v1";
        auto ec = co_await s->accept(choice);
        if (ec) co_return;
        while (auto msg = co_await s->read()) {
            if (*msg == "bye") co_return;
            s->send("echo: " + *msg);
        }
    });
    return r;
}

}  // namespace

TEST_CASE("websocket echo with subprotocol selection and normal close", "[http][integration]") {
    bool handler_done = false;
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, echo_routes(&handler_done));
        auto c = co_await ws_connect(ts.port, "/v1/ws", "faasd.v1, bearer.good-token");
        REQUIRE_FALSE(c.ec);
        // Only the safe, selected value is echoed, never the token.
        CHECK(c.res[bhttp::field::sec_websocket_protocol] == "faasd.v1");
        co_await wait_for([&] { return ts.srv->stats().websockets == 1; }, 2s, "session count");

        co_await c.ws->async_write(asio::buffer(std::string("hi")), asio::use_awaitable);
        auto reply = co_await read_one(*c.ws);
        CHECK(reply == "echo: hi");
        co_await c.ws->async_write(asio::buffer(std::string("bye")), asio::use_awaitable);
        auto rest = co_await read_until_closed(*c.ws);
        CHECK(rest.empty());
        CHECK(c.ws->reason().code == close_code::normal);
        co_await wait_for([&] { return ts.srv->stats().websockets == 0; }, 2s, "session end");
        auto text = ts.registry->render();
        CHECK(text.find("faasd_http_requests_total{method=\"GET\",route=\"/v1/ws\",status=\"101\"} 1") !=
              std::string::npos);
        CHECK(text.find("faasd_http_websocket_messages_sent_total 1\n") != std::string::npos);
        co_await ts.stop();
    }, 10s);
    CHECK(handler_done);
}

TEST_CASE("websocket upgrades can be rejected or refused", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, echo_routes());

        SECTION("no token: the handler rejects with 401") {
            auto c = co_await ws_connect(ts.port, "/v1/ws", "faasd.v1");
            CHECK(c.ec);
            CHECK(c.res.result_int() == 401);
            CHECK(c.res[bhttp::field::content_type] == "application/problem+json");
        }
        SECTION("a subprotocol that was not offered is never echoed: 403") {
            auto c = co_await ws_connect(ts.port, "/v1/ws?proto=token", "faasd.v1, bearer.good-token");
            CHECK(c.ec);
            CHECK(c.res.result_int() == 403);
            CHECK(c.res[bhttp::field::sec_websocket_protocol].empty());
        }
        SECTION("no subprotocol offered: accepted without one") {
            auto c = co_await ws_connect(ts.port, "/v1/ws", "bearer.good-token");
            REQUIRE_FALSE(c.ec);
            CHECK(c.res.find(bhttp::field::sec_websocket_protocol) == c.res.end());
            co_await c.ws->async_close(websocket::close_code::normal, asio::use_awaitable);
        }
        SECTION("a plain GET on a WebSocket route: 426") {
            auto c = co_await raw_conn::open(ts.port);
            co_await c.send(get("/v1/ws"));
            auto r = co_await c.read();
            CHECK(r.result_int() == 426);
            CHECK(r[bhttp::field::upgrade] == "websocket");
        }
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("websocket send queue is bounded: a client that does not read is closed with 1013",
          "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        std::size_t attempted = 0, accepted = 0;
        bool overflowed = false;
        bool send_after_overflow = true;
        router r;
        r.add_websocket("/v1/ws", [&](std::shared_ptr<ws_session> s) -> asio::awaitable<void> {
            if (co_await s->accept()) co_return;
            const std::string chunk(64 * 1024, 'x');
            // Push until the bounded queue refuses; yield so the writer can run.
            while (attempted < 100000) {
                ++attempted;
                if (!s->send(chunk)) {
                    overflowed = true;
                    break;
                }
                ++accepted;
                if (attempted % 4 == 0) co_await pause(0ms);
            }
            CHECK(s->get_stats().overflowed);
            CHECK(s->get_stats().queued_messages == 0);  // the queue was dropped
            send_after_overflow = s->send("more");
            while (co_await s->read()) {
            }
        });
        server_config cfg;
        cfg.websocket.send_queue_messages = 16;
        cfg.websocket.send_queue_bytes = 4 * 1024 * 1024;
        cfg.websocket.write_timeout = 5s;  // long enough for the client to start reading
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, std::move(r), cfg);

        auto c = co_await ws_connect(ts.port, "/v1/ws", "");
        REQUIRE_FALSE(c.ec);
        // Do not read until the server has given up on this client.
        co_await wait_for([&] { return overflowed; }, 5s, "queue overflow");
        CHECK_FALSE(send_after_overflow);
        CHECK(accepted > 16);  // kernel buffers took some; the queue took 16 more
        auto got = co_await read_until_closed(*c.ws);
        CHECK(c.ws->reason().code == close_code::overloaded);
        CHECK(got.size() < accepted);  // the queued tail was dropped, not buffered
        CHECK_FALSE(got.empty());
        co_await wait_for([&] { return ts.srv->stats().websockets == 0; }, 2s, "session end");
        CHECK(ts.registry->render().find("faasd_http_websocket_overflow_closes_total 1\n") != std::string::npos);
        co_await ts.stop();
    }, 15s);
}

TEST_CASE("websocket write deadline drops a client that never reads", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        bool done = false;
        router r;
        r.add_websocket("/v1/ws", [&](std::shared_ptr<ws_session> s) -> asio::awaitable<void> {
            if (co_await s->accept()) co_return;
            const std::string chunk(256 * 1024, 'x');
            for (int i = 0; i < 64 && s->send(chunk); ++i) co_await pause(1ms);
            while (co_await s->read()) {
            }
            done = true;
        });
        server_config cfg;
        cfg.websocket.send_queue_messages = 1000;
        cfg.websocket.send_queue_bytes = 64 * 1024 * 1024;
        cfg.websocket.write_timeout = 300ms;
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, std::move(r), cfg);
        auto c = co_await ws_connect(ts.port, "/v1/ws", "");
        REQUIRE_FALSE(c.ec);
        auto t0 = std::chrono::steady_clock::now();
        co_await wait_for([&] { return done; }, 5s, "handler to see the drop");
        CHECK(std::chrono::steady_clock::now() - t0 < 4s);
        CHECK(ts.srv->stats().websockets == 0);
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("websocket keepalive pings keep readers alive, silent peers time out", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        int ended = 0;
        router r;
        r.add_websocket("/v1/ws", [&](std::shared_ptr<ws_session> s) -> asio::awaitable<void> {
            if (co_await s->accept()) co_return;
            while (co_await s->read()) {
            }
            ++ended;
        });
        server_config cfg;
        cfg.websocket.idle_timeout = 400ms;
        auto ex = co_await asio::this_coro::executor;
        test_server ts(ex, std::move(r), cfg);

        // A client with a pending read answers pings automatically.
        auto reader = co_await ws_connect(ts.port, "/v1/ws", "");
        REQUIRE_FALSE(reader.ec);
        bool reader_closed = false;
        beast::flat_buffer rbuf;
        reader.ws->async_read(rbuf, [&](boost::system::error_code, std::size_t) { reader_closed = true; });

        // A connection that never reads cannot answer pings.
        auto silent = co_await ws_connect(ts.port, "/v1/ws", "");
        REQUIRE_FALSE(silent.ec);

        co_await wait_for([&] { return ended == 1; }, 3s, "the silent session to time out");
        co_await pause(600ms);  // more than the idle timeout again
        CHECK(ended == 1);
        CHECK_FALSE(reader_closed);

        // Graceful stop closes the remaining session with 1001.
        co_await ts.stop(2s);
        co_await wait_for([&] { return reader_closed; }, 2s, "reader close");
        CHECK(reader.ws->reason().code == close_code::going_away);
        CHECK(ended == 2);
    }, 10s);
}
