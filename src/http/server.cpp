// The HTTP server: an accept loop and one coroutine per connection (cf. Beast's
// example/http/server/awaitable and Boost.MySQL's http_server_cpp20 server.cpp).

#include "server_detail.hpp"

#include <faasd/core/id.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <charconv>
#include <unordered_map>

namespace faasd::http {

using namespace detail;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

using clock = std::chrono::steady_clock;

// Method label values are limited so that arbitrary methods cannot blow up
// the metric cardinality.
std::string_view method_label(std::string_view m) {
    static constexpr std::string_view known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (auto k : known)
        if (k == m) return k;
    return "OTHER";
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::string to_hex(std::uint64_t v) {
    char buf[17];
    auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
    return std::string(buf, r.ptr);
}

// Built outside of co_await expressions: GCC 12 mishandles initializer lists there.
response too_large(std::uint64_t limit) {
    boost::json::object extra;
    extra["limit"] = limit;
    return response::problem(413, "body-too-large", "Request body too large", "", std::move(extra));
}

}  // namespace

bool is_acceptable_request_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

result<std::pair<std::string, std::uint16_t>> parse_listen_address(std::string_view s) {
    std::string_view host, port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return make_error_code(errc::invalid_argument);
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return make_error_code(errc::invalid_argument);
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return make_error_code(errc::invalid_argument);
    }
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || p != port.data() + port.size() || value > 65535)
        return make_error_code(errc::invalid_argument);
    std::string h = host.empty() ? std::string("0.0.0.0") : std::string(host);
    boost::system::error_code aec;
    asio::ip::make_address(h, aec);
    if (aec) return make_error_code(errc::invalid_argument);
    return std::pair<std::string, std::uint16_t>{h, static_cast<std::uint16_t>(value)};
}

void detail::server_metrics::init(metrics::registry& reg) {
    requests = &reg.counter("faasd_http_requests_total", "HTTP requests answered, by method, route pattern and status.",
                            {"method", "route", "status"});
    latency = &reg.histogram("faasd_http_request_duration_seconds",
                             "Time from the first byte of a request to the end of its response.",
                             metrics::default_latency_buckets(), {"method", "route"});
    connections = &reg.gauge("faasd_http_connections_open", "Open HTTP connections (including WebSockets).").with({});
    accepted = &reg.counter("faasd_http_connections_accepted_total", "Connections accepted.").with({});
    refused = &reg.counter("faasd_http_connections_refused_total",
                           "Connections closed at once because max_connections was reached.")
                   .with({});
    in_flight = &reg.gauge("faasd_http_requests_in_flight", "Requests being handled.").with({});
    ws_open = &reg.gauge("faasd_http_websocket_sessions_open", "Accepted WebSocket sessions still open.").with({});
    ws_sent = &reg.counter("faasd_http_websocket_messages_sent_total", "WebSocket messages written to clients.")
                   .with({});
    ws_overflow = &reg.counter("faasd_http_websocket_overflow_closes_total",
                               "WebSocket sessions closed (1013) because their send queue was full.")
                       .with({});
}

// ---------------------------------------------------------------------------

struct server::impl : std::enable_shared_from_this<server::impl> {
    impl(asio::any_io_executor executor, server_config c, router r, faasd::logger l,
         std::shared_ptr<metrics::registry> reg)
        : ex(std::move(executor)),
          strand(asio::make_strand(ex)),
          cfg(std::move(c)),
          routes(std::move(r)),
          log(std::move(l)),
          registry(std::move(reg)),
          acceptor(strand),
          drained(strand),
          id_prefix(random_hex(4)) {
        if (registry) m.init(*registry);
    }

    asio::any_io_executor ex;
    asio::strand<asio::any_io_executor> strand;  // the acceptor and the drain timer live here
    server_config cfg;
    router routes;
    faasd::logger log;
    std::shared_ptr<metrics::registry> registry;
    server_metrics m;

    tcp::acceptor acceptor;
    asio::steady_timer drained;
    std::atomic<std::uint16_t> bound_port{0};
    std::atomic<bool> stopping{false};
    clock::time_point stop_deadline{};  // strand

    std::string id_prefix;
    std::atomic<std::uint64_t> next_id{0};
    std::atomic<std::uint64_t> accepted_count{0};
    std::atomic<std::uint64_t> request_count{0};
    std::atomic<std::size_t> ws_count{0};

    std::mutex mu;
    std::unordered_map<connection*, std::shared_ptr<connection>> conns;

    result<std::uint16_t> listen();
    static asio::awaitable<void> run(std::shared_ptr<impl> self);
    void begin_stop(std::chrono::milliseconds grace);  // strand
    void force_close_all();
    std::size_t connection_count() {
        std::lock_guard lock(mu);
        return conns.size();
    }
    void start_connection(tcp::socket sock);
    void finish_connection(const std::shared_ptr<connection>& c);

    static asio::awaitable<void> run_connection(std::shared_ptr<impl> self, std::shared_ptr<connection> c);

    std::string make_request_id() { return id_prefix + "-" + to_hex(next_id.fetch_add(1) + 1); }

    bhttp::response<bhttp::string_body> to_beast(response&& r, const beast_request& req, const std::string& rid,
                                                 bool head, bool keep_alive) const;
    asio::awaitable<boost::system::error_code> write(connection& c, bhttp::response<bhttp::string_body>& res);
    void record(std::string_view method, std::string_view route, int status, clock::time_point start,
                const std::string& rid, const connection& c);
};

result<std::uint16_t> server::impl::listen() {
    if (acceptor.is_open()) return bound_port.load();
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(cfg.address, ec);
    if (ec) return make_error_code(errc::invalid_argument);
    tcp::endpoint ep(addr, cfg.port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        boost::system::error_code ignored;
        acceptor.close(ignored);
        return ec;
    }
    bound_port = acceptor.local_endpoint().port();
    return bound_port.load();
}

asio::awaitable<void> server::impl::run(std::shared_ptr<impl> self) {
    if (!self->acceptor.is_open() && !self->stopping) {
        auto r = self->listen();
        if (!r) throw boost::system::system_error(r.error(), "http server listen on " + self->cfg.address);
    }
    self->log.info("http.listening", {{"address", self->cfg.address}, {"port", self->bound_port.load()}});

    while (!self->stopping) {
        auto conn_ex = self->cfg.multi_threaded ? asio::any_io_executor(asio::make_strand(self->ex)) : self->ex;
        auto [ec, sock] = co_await self->acceptor.async_accept(conn_ex, use_tuple);
        if (ec) {
            if (self->stopping || ec == asio::error::operation_aborted) break;
            // E.g. EMFILE: back off briefly rather than spin.
            self->log.warn("http.accept_failed", {{"error", ec.message()}});
            asio::steady_timer pause(self->strand, 100ms);
            co_await pause.async_wait(use_tuple);
            continue;
        }
        self->start_connection(std::move(sock));
    }

    // Drain: wait for connections to finish until the deadline, then force them.
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
    if (self->stop_deadline == clock::time_point{}) self->stop_deadline = clock::now();
    for (int phase = 0; phase < 2 && self->connection_count() > 0; ++phase) {
        self->drained.expires_at(phase == 0 ? self->stop_deadline : clock::now() + 2s);
        while (self->connection_count() > 0) {
            auto [wec] = co_await self->drained.async_wait(use_tuple);
            if (!wec) break;  // the deadline passed
        }
        if (phase == 0 && self->connection_count() > 0) {
            self->log.warn("http.stop_forced", {{"connections", self->connection_count()}});
            self->force_close_all();
        }
    }
    if (auto n = self->connection_count(); n > 0) self->log.error("http.stop_abandoned", {{"connections", n}});
    self->log.info("http.stopped", {{"port", self->bound_port.load()}});
}

void server::impl::begin_stop(std::chrono::milliseconds grace) {
    if (stopping.exchange(true)) return;
    stop_deadline = clock::now() + grace;
    boost::system::error_code ec;
    acceptor.close(ec);
    std::vector<std::shared_ptr<connection>> all;
    {
        std::lock_guard lock(mu);
        for (auto& [p, c] : conns) all.push_back(c);
    }
    for (auto& c : all) {
        asio::post(c->ex, [c] {
            if (c->ws && c->ws->accepted()) {
                c->ws->close(close_code::going_away, "server stopping");
            } else if (c->idle) {
                c->stream.cancel();
            }
            // Otherwise a request is in flight: its response carries Connection: close.
        });
    }
    // Wake run() in case nothing is left.
    drained.cancel();
}

void server::impl::force_close_all() {
    std::vector<std::shared_ptr<connection>> all;
    {
        std::lock_guard lock(mu);
        for (auto& [p, c] : conns) all.push_back(c);
    }
    for (auto& c : all) {
        asio::post(c->ex, [c] {
            c->cancel.emit(asio::cancellation_type::terminal);
            if (c->ws && c->ws->accepted()) {
                c->ws->force_close();
            } else {
                boost::system::error_code ec;
                c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
                c->stream.close();
            }
        });
    }
}

void server::impl::start_connection(tcp::socket sock) {
    boost::system::error_code ec;
    auto ep = sock.remote_endpoint(ec);
    if (ec) return;  // already gone
    if (connection_count() >= cfg.max_connections) {
        if (m.refused) m.refused->inc();
        log.warn("http.connection_refused", {{"reason", "max_connections"}, {"limit", cfg.max_connections}});
        sock.close(ec);
        return;
    }
    sock.set_option(tcp::no_delay(true), ec);
    auto c = std::make_shared<connection>(std::move(sock), ep.address().to_string());
    {
        std::lock_guard lock(mu);
        conns.emplace(c.get(), c);
    }
    ++accepted_count;
    if (m.accepted) m.accepted->inc();
    if (m.connections) m.connections->inc();
    auto self = shared_from_this();
    asio::co_spawn(c->ex, run_connection(self, c),
                   asio::bind_cancellation_slot(c->cancel.slot(), [self, c](std::exception_ptr e) {
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& err) {
                               self->log.error("http.connection_failed", {{"remote", c->remote}, {"error", err.what()}});
                           }
                       }
                       self->finish_connection(c);
                   }));
}

void server::impl::finish_connection(const std::shared_ptr<connection>& c) {
    std::size_t left;
    {
        std::lock_guard lock(mu);
        conns.erase(c.get());
        left = conns.size();
    }
    if (m.connections) m.connections->dec();
    if (stopping && left == 0) {
        asio::post(strand, [self = shared_from_this()] { self->drained.cancel(); });
    }
}

bhttp::response<bhttp::string_body> server::impl::to_beast(response&& r, const beast_request& req,
                                                          const std::string& rid, bool head,
                                                          bool keep_alive) const {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), req.version()};
    for (auto& [k, v] : r.headers.items()) {
        // Beast writes header values verbatim: never let CR/LF through (header injection).
        if (k.empty() || k.find_first_of("\r\n:") != std::string::npos || v.find_first_of("\r\n") != std::string::npos) {
            log.error("http.bad_response_header", {{"name", k.find_first_of("\r\n") == std::string::npos ? k : "?"}});
            continue;
        }
        res.insert(k, v);
    }
    if (!cfg.request_id_header.empty()) res.set(cfg.request_id_header, rid);
    res.keep_alive(keep_alive);
    bool no_body = r.status < 200 || r.status == 204 || r.status == 304;
    if (no_body) {
        res.body().clear();
        res.erase(bhttp::field::content_length);
    } else if (head) {
        res.content_length(r.body.size());
    } else {
        res.body() = std::move(r.body);
        res.prepare_payload();
    }
    return res;
}

asio::awaitable<boost::system::error_code> server::impl::write(connection& c,
                                                               bhttp::response<bhttp::string_body>& res) {
    c.stream.expires_after(cfg.write_timeout);
    auto [ec, n] = co_await bhttp::async_write(c.stream, res, use_tuple);
    (void)n;
    co_return ec;
}

void server::impl::record(std::string_view method, std::string_view route, int status, clock::time_point start,
                          const std::string& rid, const connection& c) {
    ++request_count;
    auto elapsed = std::chrono::duration<double>(clock::now() - start).count();
    if (m.requests) {
        char buf[8];
        auto r = std::to_chars(buf, buf + sizeof buf, status);
        auto ml = method_label(method);
        m.requests->with({ml, route, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf))}).inc();
        m.latency->with({ml, route}).observe(elapsed);
    }
    if (log.enabled(cfg.access_log_level)) {
        log.log(cfg.access_log_level, "http.request",
                {{"method", method_label(method)},
                 {"route", route},
                 {"status", status},
                 {"ms", elapsed * 1000.0},
                 {"rid", rid},
                 {"remote", c.remote}});
    }
}

asio::awaitable<void> server::impl::run_connection(std::shared_ptr<impl> self, std::shared_ptr<connection> c) {
    const auto& cfg = self->cfg;
    beast::flat_buffer buffer;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser;

    // Writes a problem response generated by the server itself and records it.
    auto reply = [&](response r, const beast_request& req, std::string_view route, const std::string& rid,
                     clock::time_point start, bool head, bool keep_alive) -> asio::awaitable<bool> {
        int status = r.status;
        auto res = self->to_beast(std::move(r), req, rid, head, keep_alive);
        auto ec = co_await self->write(*c, res);
        self->record(req.method_string(), route, status, start, rid, *c);
        co_return !ec;
    };

    try {
        for (;;) {
            // 1. Wait for the next request (an idle keep-alive connection).
            if (buffer.size() == 0) {
                c->idle = true;
                if (self->stopping) break;
                c->stream.expires_after(cfg.idle_timeout);
                auto [ec, n] = co_await c->stream.async_read_some(buffer.prepare(4096), use_tuple);
                c->idle = false;
                if (ec) break;  // closed, idle timeout, or stop
                buffer.commit(n);
            }
            c->idle = false;
            auto start = clock::now();

            // 2. The header, within header_limit and header_timeout.
            parser.emplace();
            parser->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(cfg.header_limit, UINT32_MAX)));
            // The body limit depends on the route: checked once the header is parsed.
            parser->body_limit(boost::none);
            c->stream.expires_after(cfg.header_timeout);
            auto [hec, hn] = co_await bhttp::async_read_header(c->stream, buffer, *parser, use_tuple);
            (void)hn;
            beast_request& breq = parser->get();
            std::string rid;
            if (!cfg.request_id_header.empty()) {
                auto it = breq.find(cfg.request_id_header);
                if (it != breq.end() && is_acceptable_request_id(it->value()))
                    rid = std::string(it->value());
            }
            if (rid.empty()) rid = self->make_request_id();
            if (hec) {
                if (hec == bhttp::error::header_limit) {
                    co_await reply(response::problem(431, "header-too-large", "Request header fields too large"),
                                   breq, "unmatched", rid, start, false, false);
                } else if (hec != beast::error::timeout && hec != bhttp::error::end_of_stream &&
                           hec != bhttp::error::partial_message && hec != asio::error::operation_aborted &&
                           hec != asio::error::connection_reset && hec != asio::error::eof) {
                    co_await reply(response::problem(400, "bad-request", "Malformed HTTP request"), breq,
                                   "unmatched", rid, start, false, false);
                }
                break;
            }
            if (self->m.in_flight) self->m.in_flight->inc();
            struct in_flight_guard {
                metrics::gauge* g;
                ~in_flight_guard() {
                    if (g) g->dec();
                }
            } guard{self->m.in_flight};

            const std::string method(breq.method_string());
            std::string_view target = breq.target();
            const bool head = method == "HEAD";
            bool keep_alive = breq.keep_alive();

            // 3. Route.
            auto q = target.find('?');
            auto match = self->routes.match(method, target.substr(0, q));
            std::string_view route_label =
                match.result == router::outcome::not_found ? std::string_view("unmatched") : match.pattern;
            request req;
            req.method = method;
            req.target = std::string(target);
            req.remote = c->remote;
            req.request_id = rid;
            if (!parse_target(target, req.path, req.query)) {
                co_await reply(response::problem(400, "bad-target", "Malformed request target"), breq, route_label,
                               rid, start, head, false);
                break;
            }
            if (match.result == router::outcome::not_found) {
                // The body (if any) is not read: close after answering.
                bool body_pending = !parser->is_done();
                if (!co_await reply(response::problem(404, "not-found", "No such resource"), breq, route_label, rid,
                                    start, head, keep_alive && !body_pending && !self->stopping) ||
                    body_pending || !keep_alive || self->stopping)
                    break;
                continue;
            }
            if (match.result == router::outcome::method_not_allowed) {
                bool body_pending = !parser->is_done();
                auto r = response::problem(405, "method-not-allowed", "Method not allowed for this resource");
                r.headers.set("Allow", match.allow);
                if (!co_await reply(std::move(r), breq, route_label, rid, start, head,
                                    keep_alive && !body_pending && !self->stopping) ||
                    body_pending || !keep_alive || self->stopping)
                    break;
                continue;
            }
            const router::route& rt = *match.matched;

            // 4. The body, within the route's limit and body_timeout.
            std::uint64_t limit = rt.info.options.body_limit.value_or(cfg.body_limit);
            if (auto len = parser->content_length(); len && *len > limit) {
                co_await reply(too_large(limit), breq, route_label, rid, start, head, false);
                break;
            }
            parser->body_limit(limit);
            if (!parser->is_done()) {
                if (auto expect = breq.find(bhttp::field::expect);
                    expect != breq.end() && iequals(expect->value(), "100-continue")) {
                    static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
                    c->stream.expires_after(cfg.write_timeout);
                    auto [wec, wn] = co_await asio::async_write(c->stream, asio::buffer(cont), use_tuple);
                    (void)wn;
                    if (wec) break;
                }
                c->stream.expires_after(cfg.body_timeout);
                auto [bec, bn] = co_await bhttp::async_read(c->stream, buffer, *parser, use_tuple);
                (void)bn;
                if (bec == bhttp::error::body_limit) {
                    co_await reply(too_large(limit), breq, route_label, rid, start, head, false);
                    break;
                }
                if (bec) {
                    if (bec != beast::error::timeout && bec != bhttp::error::partial_message &&
                        bec != asio::error::operation_aborted && bec != bhttp::error::end_of_stream)
                        co_await reply(response::problem(400, "bad-request", "Malformed HTTP request body"), breq,
                                       route_label, rid, start, head, false);
                    break;
                }
            }
            c->stream.expires_never();
            req.headers = [&] {
                fields f;
                for (const auto& h : breq) f.add(std::string(h.name_string()), std::string(h.value()));
                return f;
            }();
            req.body = std::move(breq.body());

            // 5. WebSocket upgrade: the connection becomes the session's.
            if (rt.info.kind == route_kind::websocket) {
                if (!websocket::is_upgrade(breq)) {
                    auto r = response::problem(426, "upgrade-required", "This resource needs a WebSocket upgrade");
                    r.headers.set("Upgrade", "websocket");
                    if (!co_await reply(std::move(r), breq, route_label, rid, start, head,
                                        keep_alive && !self->stopping) ||
                        !keep_alive || self->stopping)
                        break;
                    continue;
                }
                auto session = std::make_shared<ws_session_impl>(c->ex, c->stream, breq, std::move(req),
                                                                 std::move(match.params), cfg.websocket, self->m,
                                                                 self->log, &self->ws_count);
                c->ws = session;
                std::exception_ptr failure;
                try {
                    co_await rt.ws(session);
                } catch (...) {
                    failure = std::current_exception();
                }
                if (failure) {
                    try {
                        std::rethrow_exception(failure);
                    } catch (const std::exception& e) {
                        self->log.error("http.websocket_handler_failed",
                                        {{"route", route_label}, {"rid", rid}, {"error", e.what()}});
                    }
                }
                if (session->accepted()) {
                    session->close(failure ? close_code::internal_error : close_code::normal, "");
                    co_await session->wait_done();
                    // Beast answers a malformed upgrade itself (400).
                    self->record(method, route_label, session->handshake_ok() ? 101 : 400, start, rid, *c);
                } else {
                    auto rej = session->take_rejection();
                    response r = failure ? response::problem(500, "internal", "Internal error")
                                 : rej   ? std::move(*rej)
                                         : response::problem(403, "websocket-refused", "WebSocket upgrade refused");
                    co_await reply(std::move(r), breq, route_label, rid, start, false, false);
                }
                break;
            }

            // 6. The handler, within its deadline.
            response res;
            auto timeout = rt.info.options.timeout.value_or(cfg.handler_timeout);
            // The handler runs inline in this coroutine. Its deadline is a per-connection
            // timer that, when it fires, emits terminal cancellation into this coroutine's
            // own slot: whatever the handler awaits is cancelled. No extra coroutine, no
            // parallel group: a deadline costs one timer wait per request.
            const bool deadline = timeout.count() > 0;
            if (deadline) {
                auto gen = ++c->deadline_gen;
                c->timed_out = false;
                c->deadline.expires_after(timeout);
                c->deadline.async_wait([c, gen](boost::system::error_code ec) {
                    if (ec || gen != c->deadline_gen) return;
                    c->timed_out = true;
                    c->cancel.emit(asio::cancellation_type::terminal);
                });
            }
            std::exception_ptr failure;
            try {
                res = co_await rt.fn(req, match.params);
            } catch (...) {
                failure = std::current_exception();
            }
            if (deadline) {
                ++c->deadline_gen;
                c->deadline.cancel();
            }
            if (deadline && c->timed_out) {
                c->timed_out = false;
                co_await asio::this_coro::reset_cancellation_state();
                self->log.warn("http.handler_timeout", {{"route", route_label}, {"rid", rid}});
                res = response::problem(503, "timeout", "The request took too long");
            } else if (failure) {
                try {
                    std::rethrow_exception(failure);
                } catch (const std::exception& e) {
                    self->log.error("http.handler_failed",
                                    {{"route", route_label}, {"rid", rid}, {"error", e.what()}});
                } catch (...) {
                    self->log.error("http.handler_failed", {{"route", route_label}, {"rid", rid}});
                }
                res = response::problem(500, "internal", "Internal error");
            }

            // 7. The response.
            keep_alive = keep_alive && !self->stopping;
            int status = res.status;
            auto on_written = std::move(res.on_written);
            auto bres = self->to_beast(std::move(res), breq, rid, head, keep_alive);
            c->stream.expires_after(cfg.write_timeout);
            auto [wec, wn] = co_await bhttp::async_write(c->stream, bres, use_tuple);
            (void)wn;
            self->record(method, route_label, status, start, rid, *c);
            if (!wec && on_written) on_written();
            if (wec) break;
            if (!keep_alive) break;
        }
    } catch (const boost::system::system_error& e) {
        // Cancellation at a forced stop ends the connection quietly.
        if (e.code() != asio::error::operation_aborted) throw;
    }
    if (!(c->ws && c->ws->accepted()) && c->stream.socket().is_open()) {
        boost::system::error_code ec;
        c->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        c->stream.close();
    }
}

// ---------------------------------------------------------------------------

server::server(asio::any_io_executor ex, server_config cfg, router routes, faasd::logger log,
               std::shared_ptr<metrics::registry> metrics)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(cfg), std::move(routes), std::move(log),
                                   std::move(metrics))) {}

server::~server() {
    if (impl_) stop(std::chrono::milliseconds(0));
}

result<std::uint16_t> server::listen() { return impl_->listen(); }

std::uint16_t server::port() const noexcept { return impl_->bound_port.load(); }

asio::awaitable<void> server::run() {
    return asio::co_spawn(impl_->strand, impl::run(impl_), asio::use_awaitable);
}

void server::stop(std::chrono::milliseconds grace) {
    asio::post(impl_->strand, [self = impl_, grace] { self->begin_stop(grace); });
}

server_stats server::stats() const {
    server_stats s;
    s.connections = impl_->connection_count();
    s.accepted = impl_->accepted_count.load();
    s.requests = impl_->request_count.load();
    s.websockets = impl_->ws_count.load();
    return s;
}

const router& server::routes() const noexcept { return impl_->routes; }

}  // namespace faasd::http
