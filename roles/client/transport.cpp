// HTTP(S) and WebSocket client over Beast (see transport.hpp).

#include "client/transport.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <variant>

namespace faasd::client {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using asio::awaitable;
using asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct target {
    bool tls = false;
    std::string host;
    std::string port;
    std::string path;  // with query
};

result<target> parse_url(std::string_view url) {
    auto u = boost::urls::parse_uri(url);
    if (!u) return errc::invalid_argument;
    target t;
    auto scheme = std::string(u->scheme());
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "https" || scheme == "wss") t.tls = true;
    else if (scheme != "http" && scheme != "ws") return errc::invalid_argument;
    t.host = std::string(u->host_address());
    if (t.host.empty()) return errc::invalid_argument;
    t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
    t.path = std::string(u->encoded_path());
    if (t.path.empty()) t.path = "/";
    if (u->has_query()) t.path += "?" + std::string(u->encoded_query());
    return t;
}

asio::ssl::context& tls_context() {
    static asio::ssl::context ctx = [] {
        asio::ssl::context c(asio::ssl::context::tls_client);
        c.set_default_verify_paths();
        c.set_verify_mode(asio::ssl::verify_peer);
        return c;
    }();
    return ctx;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// Sets the TLS SNI name and host-name check.
bool prepare_tls(asio::ssl::stream<beast::tcp_stream>& s, const std::string& host) {
    if (!SSL_set_tlsext_host_name(s.native_handle(), host.c_str())) return false;
    s.set_verify_callback(asio::ssl::host_name_verification(host));
    return true;
}

template <class Stream>
awaitable<result<http_reply>> exchange(Stream& stream, bhttp::request<bhttp::string_body>& req) {
    auto [wec, wn] = co_await bhttp::async_write(stream, req, tuple_awaitable);
    if (wec) co_return wec == beast::error::timeout ? errc::timeout : errc::unavailable;
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    auto [rec, rn] = co_await bhttp::async_read(stream, buf, parser, tuple_awaitable);
    if (rec) co_return rec == beast::error::timeout ? errc::timeout : errc::unavailable;
    auto res = parser.release();
    http_reply out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    out.body = std::move(res.body());
    co_return out;
}

}  // namespace

std::optional<std::string_view> http_reply::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return std::string_view(v);
    return std::nullopt;
}

awaitable<result<http_reply>> http_request(std::string method, std::string url, header_list headers, std::string body,
                                           std::chrono::milliseconds timeout) {
    auto t = parse_url(url);
    if (!t) co_return t.error();
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(t->host, t->port, tuple_awaitable);
    if (rec) co_return errc::unavailable;

    bhttp::request<bhttp::string_body> req;
    req.method(bhttp::string_to_verb(method));
    if (req.method() == bhttp::verb::unknown) co_return errc::invalid_argument;
    req.target(t->path);
    req.version(11);
    bool default_port = (t->tls && t->port == "443") || (!t->tls && t->port == "80");
    req.set(bhttp::field::host, default_port ? t->host : t->host + ":" + t->port);
    req.set(bhttp::field::user_agent, "faasd-cli");
    req.set(bhttp::field::connection, "close");
    for (auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST" || method == "PUT") {
        req.body() = std::move(body);
        req.prepare_payload();
    }

    if (!t->tls) {
        beast::tcp_stream stream(ex);
        stream.expires_after(timeout);
        auto [cec, ep] = co_await stream.async_connect(endpoints, tuple_awaitable);
        if (cec) co_return cec == beast::error::timeout ? errc::timeout : errc::unavailable;
        co_return co_await exchange(stream, req);
    }
    asio::ssl::stream<beast::tcp_stream> stream(ex, tls_context());
    if (!prepare_tls(stream, t->host)) co_return errc::unavailable;
    beast::get_lowest_layer(stream).expires_after(timeout);
    auto [cec, ep] = co_await beast::get_lowest_layer(stream).async_connect(endpoints, tuple_awaitable);
    if (cec) co_return cec == beast::error::timeout ? errc::timeout : errc::unavailable;
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, tuple_awaitable);
    if (hec) co_return errc::unavailable;
    co_return co_await exchange(stream, req);
}

awaitable<result<std::string>> http_get(std::string url, std::chrono::milliseconds timeout) {
    header_list h;
    h.emplace_back("Accept", "application/json");
    auto r = co_await http_request("GET", std::move(url), std::move(h), std::string(), timeout);
    if (!r) co_return r.error();
    if (r->status != 200) co_return errc::unavailable;
    co_return std::move(r->body);
}

// ---- WebSocket ---------------------------------------------------------------------

struct ws_client::impl {
    using plain = websocket::stream<beast::tcp_stream>;
    using secure = websocket::stream<asio::ssl::stream<beast::tcp_stream>>;
    std::variant<std::monostate, std::unique_ptr<plain>, std::unique_ptr<secure>> ws;
    beast::flat_buffer buf;
    std::uint16_t code = 0;
    std::string reason;
    std::string subprotocol;

};

ws_client::ws_client() : impl_(std::make_unique<impl>()) {}
ws_client::~ws_client() = default;

awaitable<result<void>> ws_client::connect(std::string url, header_list headers, std::vector<std::string> subprotocols,
                                           std::chrono::milliseconds timeout, int* status) {
    auto t = parse_url(url);
    if (!t) co_return t.error();
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(t->host, t->port, tuple_awaitable);
    if (rec) co_return errc::unavailable;
    std::string protocols;
    for (const auto& p : subprotocols) protocols += (protocols.empty() ? "" : ", ") + p;
    auto decorate = [headers, protocols](websocket::request_type& req) {
        req.set(bhttp::field::user_agent, "faasd-cli");
        for (const auto& [k, v] : headers) req.set(k, v);
        if (!protocols.empty()) req.set(bhttp::field::sec_websocket_protocol, protocols);
    };
    auto host = t->host + ":" + t->port;
    websocket::response_type res;
    auto finish = [&](auto& ws) -> awaitable<result<void>> {
        ws.set_option(websocket::stream_base::decorator(decorate));
        ws.read_message_max(16 * 1024 * 1024);
        auto [hec] = co_await ws.async_handshake(res, host, t->path, tuple_awaitable);
        if (status) *status = static_cast<int>(res.result_int());
        if (hec) co_return hec == beast::error::timeout ? errc::timeout : errc::unavailable;
        beast::get_lowest_layer(ws).expires_never();
        ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        impl_->subprotocol = std::string(res[bhttp::field::sec_websocket_protocol]);
        co_return result<void>{};
    };
    if (!t->tls) {
        auto ws = std::make_unique<impl::plain>(ex);
        beast::get_lowest_layer(*ws).expires_after(timeout);
        auto [cec, ep] = co_await beast::get_lowest_layer(*ws).async_connect(endpoints, tuple_awaitable);
        if (cec) co_return errc::unavailable;
        auto r = co_await finish(*ws);
        if (!r) co_return r;
        impl_->ws = std::move(ws);
        co_return result<void>{};
    }
    auto ws = std::make_unique<impl::secure>(ex, tls_context());
    if (!prepare_tls(ws->next_layer(), t->host)) co_return errc::unavailable;
    beast::get_lowest_layer(*ws).expires_after(timeout);
    auto [cec, ep] = co_await beast::get_lowest_layer(*ws).async_connect(endpoints, tuple_awaitable);
    if (cec) co_return errc::unavailable;
    auto [tec] = co_await ws->next_layer().async_handshake(asio::ssl::stream_base::client, tuple_awaitable);
    if (tec) co_return errc::unavailable;
    auto r = co_await finish(*ws);
    if (!r) co_return r;
    impl_->ws = std::move(ws);
    co_return result<void>{};
}

awaitable<std::optional<std::string>> ws_client::read() {
    if (std::holds_alternative<std::monostate>(impl_->ws)) co_return std::nullopt;
    auto& self = *impl_;
    self.buf.clear();
    boost::system::error_code ec;
    if (auto* p = std::get_if<std::unique_ptr<impl::plain>>(&self.ws)) {
        auto [e, n] = co_await (*p)->async_read(self.buf, tuple_awaitable);
        ec = e;
        if (ec == websocket::error::closed) {
            self.code = static_cast<std::uint16_t>((*p)->reason().code);
            self.reason = std::string((*p)->reason().reason.c_str());
        }
    } else {
        auto& s = std::get<std::unique_ptr<impl::secure>>(self.ws);
        auto [e, n] = co_await s->async_read(self.buf, tuple_awaitable);
        ec = e;
        if (ec == websocket::error::closed) {
            self.code = static_cast<std::uint16_t>(s->reason().code);
            self.reason = std::string(s->reason().reason.c_str());
        }
    }
    if (ec) co_return std::nullopt;
    co_return beast::buffers_to_string(self.buf.data());
}

awaitable<result<void>> ws_client::write(std::string text) {
    if (std::holds_alternative<std::monostate>(impl_->ws)) co_return errc::unavailable;
    boost::system::error_code ec;
    if (auto* p = std::get_if<std::unique_ptr<impl::plain>>(&impl_->ws)) {
        auto [e, n] = co_await (*p)->async_write(asio::buffer(text), tuple_awaitable);
        ec = e;
    } else {
        auto [e, n] = co_await std::get<std::unique_ptr<impl::secure>>(impl_->ws)->async_write(asio::buffer(text), tuple_awaitable);
        ec = e;
    }
    if (ec) co_return errc::unavailable;
    co_return result<void>{};
}

awaitable<void> ws_client::close() {
    if (auto* p = std::get_if<std::unique_ptr<impl::plain>>(&impl_->ws)) {
        if ((*p)->is_open()) co_await (*p)->async_close(websocket::close_code::normal, tuple_awaitable);
    } else if (auto* s = std::get_if<std::unique_ptr<impl::secure>>(&impl_->ws)) {
        if ((*s)->is_open()) co_await (*s)->async_close(websocket::close_code::normal, tuple_awaitable);
    }
}

std::uint16_t ws_client::close_code() const noexcept { return impl_->code; }
std::string ws_client::close_reason() const { return impl_->reason; }
std::string ws_client::subprotocol() const { return impl_->subprotocol; }

}  // namespace faasd::client
