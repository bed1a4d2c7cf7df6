// Component tests of http::client against http::server (and a small TLS
// server) over real loopback sockets.

#include "http_support.hpp"

#include "support/support.hpp"

#include <faasd/http/client.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <catch2/catch.hpp>

#include <fstream>

using namespace faasd::test::http;
using faasd::http::client;
using faasd::http::client_config;
using faasd::http::client_errc;
using faasd::http::client_request;
using faasd::http::network;
using faasd::http::request;
using faasd::http::response;
using faasd::http::route_params;
using faasd::http::router;
using faasd::http::server_config;
using faasd::test::run_coroutine;
namespace ssl = boost::asio::ssl;

namespace {

using handler_fn = std::function<asio::awaitable<response>(const request&, const route_params&)>;

client_config loopback_ok() {
    client_config cfg;
    cfg.policy.allow_loopback = true;
    return cfg;
}

response redirect(int status, std::string location) {
    response r(status);
    r.headers.set("Location", std::move(location));
    return r;
}

std::string base(std::uint16_t port, const char* host = "127.0.0.1") {
    return "http://" + std::string(host) + ":" + std::to_string(port);
}

// Routes shared by the client tests. `self` is this server's base URL, `other` another server's.
router client_routes(const std::string* self, const std::string* other) {
    router r;
    r.add("GET", "/hello", [](const request& req, const route_params&) -> asio::awaitable<response> {
        response res = response::text(200, "hello " + std::string(req.query_param("who").value_or("?")));
        res.headers.set("X-Seen-Auth", req.headers.get("Authorization") ? "yes" : "no");
        co_return res;
    });
    r.add("POST", "/echo", [](const request& req, const route_params&) -> asio::awaitable<response> {
        response res = response::text(200, req.body);
        res.headers.set("X-Job", std::string(req.headers.get("X-Faasd-Job").value_or("")));
        co_return res;
    }, {.body_limit = 16 * 1024 * 1024});
    r.add("PUT", "/echo", [](const request& req, const route_params&) -> asio::awaitable<response> {
        co_return response::text(200, req.body);
    }, {.body_limit = 16 * 1024 * 1024});
    r.add("GET", "/r1", [](const request&, const route_params&) -> asio::awaitable<response> {
        co_return redirect(302, "/r2?x=1");
    });
    r.add("GET", "/r2", [self](const request& req, const route_params&) -> asio::awaitable<response> {
        co_return redirect(307, *self + "/hello?who=" + std::string(req.query_param("x").value_or("")));
    });
    r.add("GET", "/loop", [](const request&, const route_params&) -> asio::awaitable<response> {
        co_return redirect(302, "/loop");
    });
    r.add("GET", "/away", [other](const request&, const route_params&) -> asio::awaitable<response> {
        co_return redirect(302, *other + "/hello?who=other");
    });
    r.add("POST", "/see-other", [](const request&, const route_params&) -> asio::awaitable<response> {
        co_return redirect(303, "/hello?who=303");
    });
    r.add("GET", "/blob", [](const request& req, const route_params&) -> asio::awaitable<response> {
        auto n = std::stoul(std::string(req.query_param("n").value_or("1048576")));
        co_return response::text(200, std::string(n, 'b'), "application/octet-stream");
    });
    r.add("GET", "/missing", [](const request&, const route_params&) -> asio::awaitable<response> {
        co_return response::problem(404, "not-found", "No such blob");
    });
    r.add("GET", "/sleep", [](const request&, const route_params&) -> asio::awaitable<response> {
        co_await pause(2s);
        co_return response::text(200, "late");
    });
    return r;
}

}  // namespace

TEST_CASE("client GETs and POSTs and reports statuses", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::string self;
        test_server ts(ex, client_routes(&self, &self));
        self = base(ts.port);
        client cl(ex, loopback_ok());

        auto r = co_await cl.request(client_request("GET", self + "/hello?who=me"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body == "hello me");
        CHECK(r->headers.get("Content-Type") == "text/plain; charset=utf-8");
        CHECK(r->headers.get("X-Request-Id").has_value());
        CHECK(r->redirects == 0);

        client_request post("POST", self + "/echo");
        post.body = std::string(100000, 'p');
        post.headers.add("X-Faasd-Job", "01ARZ3NDEKTSV4RRFFQ69G5FAV");
        r = co_await cl.request(post);
        REQUIRE(r.has_value());
        CHECK(r->body.size() == 100000);
        CHECK(r->headers.get("X-Job") == "01ARZ3NDEKTSV4RRFFQ69G5FAV");

        r = co_await cl.request(client_request("GET", self + "/missing"));
        REQUIRE(r.has_value());  // any status is a success by default
        CHECK(r->status == 404);
        client_request strict("GET", self + "/missing");
        strict.expect_success = true;
        r = co_await cl.request(strict);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::bad_status));

        r = co_await cl.request(client_request("HEAD", self + "/hello"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body.empty());

        client_request big("GET", self + "/blob?n=5000");
        big.max_response_bytes = 4000;
        r = co_await cl.request(big);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::too_large));

        client_request bad_header("GET", self + "/hello");
        bad_header.headers.add("X-Evil", "a\r\nInjected: yes");
        r = co_await cl.request(bad_header);
        CHECK_FALSE(r.has_value());
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("client uploads a file with PUT", "[http][integration]") {
    faasd::test::temp_dir dir;
    auto file = dir.path() / "out.bin";
    {
        std::ofstream f(file, std::ios::binary);
        for (int i = 0; i < 50000; ++i) f << static_cast<char>('a' + i % 26);
    }
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::string self;
        test_server ts(ex, client_routes(&self, &self));
        self = base(ts.port);
        client cl(ex, loopback_ok());
        client_request put("PUT", self + "/echo");
        put.body_file = file;
        auto r = co_await cl.request(put);
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        REQUIRE(r->body.size() == 50000);
        CHECK(r->body.substr(0, 3) == "abc");

        client_request missing("PUT", self + "/echo");
        missing.body_file = dir.path() / "nope";
        r = co_await cl.request(missing);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::file_error));
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("client refuses forbidden addresses before connecting", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::string self;
        test_server ts(ex, client_routes(&self, &self));
        self = base(ts.port);
        client strict(ex);  // default policy: public addresses only
        for (std::string url : {self + "/hello", "http://localhost:" + std::to_string(ts.port) + "/hello",
                                "http://[::ffff:127.0.0.1]:" + std::to_string(ts.port) + "/hello"}) {
            INFO(url);
            auto r = co_await strict.request(client_request("GET", url));
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error() == make_error_code(client_errc::address_forbidden));
        }
        CHECK(ts.srv->stats().accepted == 0);  // never connected

        auto r = co_await strict.request(client_request("GET", "http://user:pw@example.com/"));
        CHECK(r.error() == make_error_code(client_errc::invalid_url));
        r = co_await strict.request(client_request("GET", "http://no-such-host.invalid/"));
        CHECK(r.error() == make_error_code(client_errc::resolve_failed));
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("client follows bounded redirects and re-checks every hop", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        // Server A on 127.0.0.2 (explicitly allowed), server B on 127.0.0.1 (loopback: refused).
        std::string a_base, b_base;
        server_config a_cfg;
        a_cfg.address = "127.0.0.2";
        test_server a(ex, client_routes(&a_base, &b_base), a_cfg);
        a_base = base(a.port, "127.0.0.2");
        test_server b(ex, client_routes(&b_base, &a_base));
        b_base = base(b.port);

        client_config cfg;
        cfg.max_redirects = 3;
        cfg.policy.allowed.push_back(*network::parse("127.0.0.2/32"));
        client cl(ex, cfg);

        auto r = co_await cl.request(client_request("GET", a_base + "/r1"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body == "hello 1");
        CHECK(r->redirects == 2);
        CHECK(r->url == a_base + "/hello?who=1");

        // A redirect to 127.0.0.1 is refused: loopback is not allowed.
        r = co_await cl.request(client_request("GET", a_base + "/away"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::address_forbidden));
        CHECK(b.srv->stats().accepted == 0);

        r = co_await cl.request(client_request("GET", a_base + "/loop"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::too_many_redirects));

        client_request no_follow("GET", a_base + "/r1");
        no_follow.follow_redirects = false;
        r = co_await cl.request(no_follow);
        REQUIRE(r.has_value());
        CHECK(r->status == 302);
        CHECK(r->headers.get("Location") == "/r2?x=1");

        // 303 after POST continues as GET.
        client_request post("POST", a_base + "/see-other");
        post.body = "payload";
        r = co_await cl.request(post);
        REQUIRE(r.has_value());
        CHECK(r->body == "hello 303");
        co_await a.stop();
        co_await b.stop();
    }, 10s);
}

TEST_CASE("client drops credentials on cross-origin redirects", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::string a_base, b_base;
        test_server a(ex, client_routes(&a_base, &b_base));
        a_base = base(a.port);
        test_server b(ex, client_routes(&b_base, &a_base));
        b_base = base(b.port);
        client cl(ex, loopback_ok());

        client_request same("GET", a_base + "/r1");
        same.headers.add("Authorization", "Bearer t0ken");
        auto r = co_await cl.request(same);
        REQUIRE(r.has_value());
        CHECK(r->headers.get("X-Seen-Auth") == "yes");

        client_request cross("GET", a_base + "/away");
        cross.headers.add("Authorization", "Bearer t0ken");
        r = co_await cl.request(cross);
        REQUIRE(r.has_value());
        CHECK(r->body == "hello other");
        CHECK(r->headers.get("X-Seen-Auth") == "no");
        co_await a.stop();
        co_await b.stop();
    }, 10s);
}

TEST_CASE("client downloads to a file with a size cap", "[http][integration]") {
    faasd::test::temp_dir dir;
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::string self;
        test_server ts(ex, client_routes(&self, &self));
        self = base(ts.port);
        client cl(ex, loopback_ok());
        auto path = dir.path() / "data.bin";

        auto r = co_await cl.download(client_request("GET", self + "/blob?n=1048576"), path, 2 * 1024 * 1024);
        REQUIRE(r.has_value());
        CHECK(r->body_bytes == 1048576);
        CHECK(r->body.empty());
        CHECK(std::filesystem::file_size(path) == 1048576);

        r = co_await cl.download(client_request("GET", self + "/blob?n=1048576"), path, 100 * 1024);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::too_large));
        CHECK_FALSE(std::filesystem::exists(path));  // no partial file is left behind

        r = co_await cl.download(client_request("GET", self + "/missing"), path, 1024);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::bad_status));
        CHECK_FALSE(std::filesystem::exists(path));

        r = co_await cl.download(client_request("GET", self + "/blob?n=10"), dir.path() / "no-dir" / "x", 1024);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::file_error));
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("client deadlines: read and total", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::string self;
        test_server ts(ex, client_routes(&self, &self));
        self = base(ts.port);

        auto cfg = loopback_ok();
        cfg.read_timeout = 200ms;
        client reader(ex, cfg);
        auto t0 = std::chrono::steady_clock::now();
        auto r = co_await reader.request(client_request("GET", self + "/sleep"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::timeout));
        CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);

        cfg = loopback_ok();
        cfg.total_timeout = 300ms;
        client total(ex, cfg);
        t0 = std::chrono::steady_clock::now();
        r = co_await total.request(client_request("GET", self + "/sleep"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::timeout));
        CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);

        // A peer that accepts but never answers.
        tcp::acceptor silent(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        tcp::socket held(ex);
        silent.async_accept(held, [](boost::system::error_code) {});
        t0 = std::chrono::steady_clock::now();
        r = co_await reader.request(
            client_request("GET", "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/"));
        CHECK(r.error() == make_error_code(client_errc::timeout));
        CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);

        // Nobody listening.
        auto port = silent.local_endpoint().port();
        silent.close();
        held.close();
        r = co_await reader.request(client_request("GET", "http://127.0.0.1:" + std::to_string(port) + "/"));
        CHECK(r.error() == make_error_code(client_errc::connect_failed));
        co_await ts.stop();
    }, 10s);
}

TEST_CASE("client reuses keep-alive connections and retries stale ones", "[http][integration]") {
    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::string self;
        server_config scfg;
        scfg.idle_timeout = 150ms;
        test_server ts(ex, client_routes(&self, &self), scfg);
        self = base(ts.port);
        auto cfg = loopback_ok();
        cfg.reuse_connections = true;
        client cl(ex, cfg);

        for (int i = 0; i < 3; ++i) {
            auto r = co_await cl.request(client_request("GET", self + "/hello?who=again"));
            REQUIRE(r.has_value());
            CHECK(r->body == "hello again");
        }
        CHECK(ts.srv->stats().accepted == 1);
        CHECK(cl.idle_connections() == 1);

        // The server closes the idle connection; the client notices and retries once.
        co_await wait_for([&] { return ts.srv->stats().connections == 0; }, 2s, "server idle close");
        auto r = co_await cl.request(client_request("GET", self + "/hello?who=fresh"));
        REQUIRE(r.has_value());
        CHECK(r->body == "hello fresh");
        CHECK(ts.srv->stats().accepted == 2);
        co_await ts.stop();
    }, 10s);
}

namespace {

// A minimal HTTPS server for the client tests: answers every request with
// "secure <target>" and closes. Failed handshakes are ignored.
asio::awaitable<void> tls_server(tcp::acceptor& acc, ssl::context& ctx, int& served) {
    for (;;) {
        auto [ec, sock] = co_await acc.async_accept(use_tuple);
        if (ec) co_return;
        beast::ssl_stream<beast::tcp_stream> s(std::move(sock), ctx);
        beast::get_lowest_layer(s).expires_after(5s);
        auto [hec] = co_await s.async_handshake(ssl::stream_base::server, use_tuple);
        if (hec) continue;
        beast::flat_buffer buf;
        bhttp::request<bhttp::string_body> req;
        auto [rec, rn] = co_await bhttp::async_read(s, buf, req, use_tuple);
        (void)rn;
        if (rec) continue;
        bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
        if (req.target() == "/downgrade") {
            res.result(bhttp::status::found);
            res.set(bhttp::field::location, "http://localhost:" + std::to_string(acc.local_endpoint().port()) + "/");
        } else {
            res.body() = "secure " + std::string(req.target());
        }
        res.keep_alive(false);
        res.prepare_payload();
        co_await bhttp::async_write(s, res, use_tuple);
        ++served;
        beast::get_lowest_layer(s).close();  // no close_notify wait: the test client closes anyway
    }
}

}  // namespace

TEST_CASE("client speaks https with CA and host name verification", "[http][integration]") {
    faasd::test::temp_dir dir;
    auto cert = (dir.path() / "cert.pem").string();
    auto key = (dir.path() / "key.pem").string();
    auto gen = faasd::test::run_process({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                                         "-days", "1", "-subj", "/CN=localhost", "-addext",
                                         "subjectAltName=DNS:localhost"});
    REQUIRE(gen.exit_code == 0);

    run_coroutine([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        ssl::context server_ctx(ssl::context::tls_server);
        server_ctx.use_certificate_chain_file(cert);
        server_ctx.use_private_key_file(key, ssl::context::pem);
        tcp::acceptor acc(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        auto port = std::to_string(acc.local_endpoint().port());
        int served = 0;
        asio::co_spawn(ex, tls_server(acc, server_ctx, served), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });

        auto cfg = loopback_ok();
        cfg.ca_file = cert;
        client trusting(ex, cfg);
        auto r = co_await trusting.request(client_request("GET", "https://localhost:" + port + "/secret?x=1"));
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body == "secure /secret?x=1");

        // The certificate names localhost, not 127.0.0.1.
        r = co_await trusting.request(client_request("GET", "https://127.0.0.1:" + port + "/"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::tls_error));

        // Without the extra CA the self-signed certificate is not trusted.
        client system_only(ex, loopback_ok());
        r = co_await system_only.request(client_request("GET", "https://localhost:" + port + "/"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::tls_error));

        // A redirect from https to http is refused.
        r = co_await trusting.request(client_request("GET", "https://localhost:" + port + "/downgrade"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(client_errc::redirect_refused));

        // And a plain-HTTP client talking to the TLS port gets a protocol error, not a hang.
        r = co_await trusting.request(client_request("GET", "http://localhost:" + port + "/"));
        CHECK_FALSE(r.has_value());
        CHECK(served == 2);
        acc.close();
    }, 10s);
}
