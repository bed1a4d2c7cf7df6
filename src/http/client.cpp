// The HTTP/1.1 client: resolve once, filter by the address policy, connect to a
// checked address, optional TLS with host name verification, deadlines on
// every step, bounded redirects and response sizes, optional connection reuse.

#include <faasd/http/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <vector>

namespace faasd::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

class client_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "faasd.http.client"; }
    std::string message(int ev) const override {
        switch (static_cast<client_errc>(ev)) {
            case client_errc::timeout: return "timeout";
            case client_errc::too_large: return "response too large";
            case client_errc::address_forbidden: return "address forbidden by policy";
            case client_errc::tls_error: return "TLS error";
            case client_errc::connect_failed: return "connect failed";
            case client_errc::bad_status: return "unexpected HTTP status";
            case client_errc::invalid_url: return "invalid URL";
            case client_errc::resolve_failed: return "host name did not resolve";
            case client_errc::too_many_redirects: return "too many redirects";
            case client_errc::redirect_refused: return "redirect refused (https to http)";
            case client_errc::protocol_error: return "HTTP protocol error";
            case client_errc::file_error: return "file error";
            case client_errc::cancelled: return "cancelled";
        }
        return "unknown client error";
    }
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && lower(a) == lower(b);
}

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

bool is_redirect(int status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool is_idempotent(std::string_view m) {
    return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS";
}

/// The overall deadline and per-step budgets.
struct deadline {
    clock_type::time_point end;
    /// min(step, time left); nullopt once the total deadline has passed.
    std::optional<clock_type::duration> budget(std::chrono::milliseconds step) const {
        auto left = end - clock_type::now();
        if (left <= clock_type::duration::zero()) return std::nullopt;
        return std::min<clock_type::duration>(step, left);
    }
};

error_code err(client_errc e) { return make_error_code(e); }

// Maps a transport error to a client error.
error_code map_io(const error_code& ec) {
    if (ec == beast::error::timeout) return err(client_errc::timeout);
    if (ec == asio::error::operation_aborted) return err(client_errc::cancelled);
    if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow)
        return err(client_errc::too_large);
    return err(client_errc::protocol_error);
}

}  // namespace

const boost::system::error_category& client_category() noexcept {
    static const client_category_impl instance;
    return instance;
}

std::string url_parts::authority() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != (https ? 443 : 80)) h += ":" + std::to_string(port);
    return h;
}

std::string url_parts::origin() const { return (https ? "https://" : "http://") + authority(); }

result<url_parts> parse_url(std::string_view url) {
    auto r = boost::urls::parse_uri(url);  // absolute, with an optional fragment (ignored)
    if (!r) return err(client_errc::invalid_url);
    url_parts u;
    auto scheme = lower(r->scheme());
    if (scheme == "https") u.https = true;
    else if (scheme != "http") return err(client_errc::invalid_url);
    if (r->has_userinfo()) return err(client_errc::invalid_url);  // credentials never travel in URLs
    switch (r->host_type()) {
        case boost::urls::host_type::name: u.host = lower(r->host_address()); break;
        case boost::urls::host_type::ipv4: u.host = r->host_ipv4_address().to_string(); u.host_is_ip = true; break;
        case boost::urls::host_type::ipv6: u.host = r->host_ipv6_address().to_string(); u.host_is_ip = true; break;
        default: return err(client_errc::invalid_url);
    }
    if (u.host.empty() || has_crlf(u.host)) return err(client_errc::invalid_url);
    u.port = u.https ? 443 : 80;
    if (r->has_port() && !r->port().empty()) {
        std::string_view p = r->port();
        unsigned value = 0;
        auto [end, pec] = std::from_chars(p.data(), p.data() + p.size(), value);
        if (pec != std::errc() || end != p.data() + p.size() || value == 0 || value > 65535)
            return err(client_errc::invalid_url);
        u.port = static_cast<std::uint16_t>(value);
    }
    u.target = std::string(r->encoded_target());
    if (u.target.empty()) u.target = "/";
    else if (u.target.front() == '?') u.target = "/" + u.target;
    return u;
}

// ---------------------------------------------------------------------------

namespace {

/// One connection, plain or TLS.
struct conn {
    std::string key;  // origin
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
    beast::flat_buffer buffer;
    clock_type::time_point idle_since{};
    bool reused = false;

    beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
    void close() {
        error_code ec;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
        lowest().close();
    }
};

/// What one request/response exchange on a connection produced.
struct hop_outcome {
    error_code ec;
    client_response resp;
    std::optional<std::string> location;  // follow this redirect
    bool reusable = false;                 // the connection may go back to the pool
    bool stale = false;                    // a pooled connection failed before any response: retry
};

}  // namespace

struct client::impl {
    impl(asio::any_io_executor e, client_config c, faasd::logger l)
        : ex(std::move(e)), cfg(std::move(c)), log(std::move(l)), tls_ctx(ssl::context::tls_client) {
        SSL_CTX_set_min_proto_version(tls_ctx.native_handle(), TLS1_2_VERSION);
        error_code ec;
        if (cfg.use_system_ca) {
            tls_ctx.set_default_verify_paths(ec);
            if (ec) throw std::runtime_error("cannot load the system CA store: " + ec.message());
        }
        if (!cfg.ca_file.empty()) {
            tls_ctx.load_verify_file(cfg.ca_file, ec);
            if (ec) throw std::runtime_error("cannot load CA file " + cfg.ca_file + ": " + ec.message());
        }
        tls_ctx.set_verify_mode(ssl::verify_peer);
    }

    asio::any_io_executor ex;
    client_config cfg;
    faasd::logger log;
    ssl::context tls_ctx;

    mutable std::mutex mu;
    std::map<std::string, std::vector<std::unique_ptr<conn>>> idle;

    std::unique_ptr<conn> take_idle(const std::string& key) {
        std::lock_guard lock(mu);
        auto it = idle.find(key);
        if (it == idle.end()) return nullptr;
        auto& v = it->second;
        while (!v.empty()) {
            auto c = std::move(v.back());
            v.pop_back();
            if (clock_type::now() - c->idle_since < cfg.idle_keepalive) {
                c->reused = true;
                return c;
            }
            c->close();
        }
        return nullptr;
    }

    void put_idle(std::unique_ptr<conn> c) {
        std::lock_guard lock(mu);
        auto& v = idle[c->key];
        if (v.size() >= cfg.max_idle_per_host) {
            c->close();
            return;
        }
        c->idle_since = clock_type::now();
        c->lowest().expires_never();
        v.push_back(std::move(c));
    }

    static asio::awaitable<result<client_response>> run(std::shared_ptr<impl> self, client_request req,
                                                        std::optional<std::filesystem::path> file,
                                                        std::uint64_t file_max, int* status_out = nullptr);
    asio::awaitable<result<std::unique_ptr<conn>>> open(const url_parts& u, const deadline& dl);
    asio::awaitable<hop_outcome> hop(const url_parts& u, const client_request& req, const deadline& dl,
                                     const std::optional<std::filesystem::path>& file, std::uint64_t file_max);
    template <class Stream>
    asio::awaitable<hop_outcome> exchange(Stream& s, conn& c, const url_parts& u, const client_request& req,
                                          const deadline& dl, const std::optional<std::filesystem::path>& file,
                                          std::uint64_t file_max);
};

asio::awaitable<result<std::unique_ptr<conn>>> client::impl::open(const url_parts& u, const deadline& dl) {
    auto budget = dl.budget(cfg.connect_timeout);
    if (!budget) co_return err(client_errc::timeout);
    auto connect_deadline = clock_type::now() + *budget;

    // Resolve once, with a watchdog (the resolver has no deadline of its own).
    struct resolve_state {
        explicit resolve_state(asio::any_io_executor e) : resolver(e), watchdog(e) {}
        tcp::resolver resolver;
        asio::steady_timer watchdog;
        bool timed_out = false;
    };
    auto st = std::make_shared<resolve_state>(ex);
    st->watchdog.expires_at(connect_deadline);
    st->watchdog.async_wait([st](error_code ec) {
        if (ec) return;
        st->timed_out = true;
        st->resolver.cancel();
    });
    auto port = std::to_string(u.port);
    auto [rec, results] = co_await st->resolver.async_resolve(u.host, port, use_tuple);
    st->watchdog.cancel();
    if (st->timed_out) co_return err(client_errc::timeout);
    if (rec == asio::error::operation_aborted) co_return err(client_errc::cancelled);
    if (rec) co_return err(client_errc::resolve_failed);

    // Keep only the addresses the policy allows; connect to exactly those.
    std::vector<tcp::endpoint> allowed;
    for (const auto& e : results) {
        if (cfg.policy.allows(e.endpoint().address())) {
            allowed.push_back(e.endpoint());
        } else {
            log.info("http.client.address_refused",
                     {{"host", u.host},
                      {"address", e.endpoint().address().to_string()},
                      {"class", to_string(classify(e.endpoint().address()))}});
        }
    }
    if (allowed.empty()) co_return err(client_errc::address_forbidden);

    auto c = std::make_unique<conn>();
    c->key = u.origin();
    beast::tcp_stream stream(ex);
    stream.expires_at(connect_deadline);
    auto [cec, ep] = co_await stream.async_connect(allowed, use_tuple);
    (void)ep;
    if (cec == beast::error::timeout) co_return err(client_errc::timeout);
    if (cec == asio::error::operation_aborted) co_return err(client_errc::cancelled);
    if (cec) co_return err(client_errc::connect_failed);
    error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);

    if (!u.https) {
        c->plain = std::make_unique<beast::tcp_stream>(std::move(stream));
        co_return c;
    }
    c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(stream), tls_ctx);
    if (!u.host_is_ip && !SSL_set_tlsext_host_name(c->tls->native_handle(), u.host.c_str()))
        co_return err(client_errc::tls_error);
    c->tls->set_verify_callback(ssl::host_name_verification(u.host));
    beast::get_lowest_layer(*c->tls).expires_at(connect_deadline);
    auto [hec] = co_await c->tls->async_handshake(ssl::stream_base::client, use_tuple);
    if (hec == beast::error::timeout) co_return err(client_errc::timeout);
    if (hec == asio::error::operation_aborted) co_return err(client_errc::cancelled);
    if (hec) {
        log.info("http.client.tls_failed", {{"host", u.host}, {"error", hec.message()}});
        co_return err(client_errc::tls_error);
    }
    co_return c;
}

template <class Stream>
asio::awaitable<hop_outcome> client::impl::exchange(Stream& s, conn& c, const url_parts& u,
                                                    const client_request& req, const deadline& dl,
                                                    const std::optional<std::filesystem::path>& file,
                                                    std::uint64_t file_max) {
    hop_outcome out;
    const bool head = req.method == "HEAD";

    // 1. The request.
    auto fill = [&](auto& msg) {
        msg.method_string(req.method);
        msg.target(u.target);
        msg.version(11);
        msg.set(bhttp::field::host, u.authority());
        msg.set(bhttp::field::user_agent, cfg.user_agent);
        for (const auto& [k, v] : req.headers.items()) {
            if (iequals(k, "Host") || iequals(k, "Content-Length") || iequals(k, "Transfer-Encoding") ||
                iequals(k, "Connection"))
                continue;
            msg.insert(k, v);
        }
        if (!cfg.reuse_connections) msg.set(bhttp::field::connection, "close");
    };
    auto budget = dl.budget(cfg.read_timeout);
    if (!budget) {
        out.ec = err(client_errc::timeout);
        co_return out;
    }
    error_code wec;
    if (req.body_file) {
        bhttp::request<bhttp::file_body> msg;
        fill(msg);
        msg.body().open(req.body_file->c_str(), beast::file_mode::scan, wec);
        if (wec) {
            out.ec = err(client_errc::file_error);
            co_return out;
        }
        msg.prepare_payload();
        c.lowest().expires_after(*budget);
        auto [ec, n] = co_await bhttp::async_write(s, msg, use_tuple);
        (void)n;
        wec = ec;
    } else {
        bhttp::request<bhttp::string_body> msg;
        fill(msg);
        msg.body() = req.body;
        if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH")
            msg.prepare_payload();
        c.lowest().expires_after(*budget);
        auto [ec, n] = co_await bhttp::async_write(s, msg, use_tuple);
        (void)n;
        wec = ec;
    }
    if (wec) {
        out.stale = c.reused && wec != beast::error::timeout && wec != asio::error::operation_aborted;
        out.ec = map_io(wec);
        co_return out;
    }

    // 2. The response header (skipping 1xx interim responses).
    std::optional<bhttp::response_parser<bhttp::empty_body>> hp;
    for (;;) {
        hp.emplace();
        hp->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(cfg.max_header_bytes, UINT32_MAX)));
        hp->body_limit(boost::none);
        hp->skip(head);
        budget = dl.budget(cfg.read_timeout);
        if (!budget) {
            out.ec = err(client_errc::timeout);
            co_return out;
        }
        c.lowest().expires_after(*budget);
        auto [ec, n] = co_await bhttp::async_read_header(s, c.buffer, *hp, use_tuple);
        (void)n;
        if (ec) {
            bool nothing = ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
                           ec == asio::error::eof || ec == asio::error::broken_pipe;
            out.stale = c.reused && nothing && is_idempotent(req.method);
            out.ec = map_io(ec);
            co_return out;
        }
        int st = static_cast<int>(hp->get().result_int());
        if (st >= 100 && st < 200 && st != 101) continue;
        break;
    }
    auto& header = hp->get();
    out.resp.status = static_cast<int>(header.result_int());
    for (const auto& f : header) out.resp.headers.add(std::string(f.name_string()), std::string(f.value()));

    // 3. A redirect to follow: the caller checks and resolves the next hop.
    if (req.follow_redirects && cfg.max_redirects > 0 && is_redirect(out.resp.status)) {
        if (auto loc = header.find(bhttp::field::location); loc != header.end()) {
            out.location = std::string(loc->value());
            co_return out;  // the body is not read; the connection is closed
        }
    }
    if (req.expect_success && (out.resp.status < 200 || out.resp.status > 299)) {
        log.info("http.client.bad_status", {{"host", u.host}, {"status", out.resp.status}});
        out.ec = err(client_errc::bad_status);
        co_return out;
    }

    // 4. The body, in memory or into a file, with a deadline on each read.
    auto read_body = [&](auto& parser) -> asio::awaitable<error_code> {
        while (!parser.is_done()) {
            auto b = dl.budget(cfg.read_timeout);
            if (!b) co_return err(client_errc::timeout);
            c.lowest().expires_after(*b);
            auto [ec, n] = co_await bhttp::async_read_some(s, c.buffer, parser, use_tuple);
            (void)n;
            if (ec) co_return map_io(ec);
        }
        co_return error_code{};
    };
    bool keep_alive = header.keep_alive();
    // A declared length was checked against no limit while reading the header.
    std::uint64_t limit = file ? file_max : req.max_response_bytes.value_or(cfg.max_response_bytes);
    if (auto len = hp->content_length(); len && *len > limit) {
        out.ec = err(client_errc::too_large);
        co_return out;
    }
    if (file) {
        bhttp::response_parser<bhttp::file_body> fp(std::move(*hp));
        fp.body_limit(file_max);
        error_code fec;
        fp.get().body().open(file->c_str(), beast::file_mode::write, fec);
        if (fec) {
            out.ec = err(client_errc::file_error);
            co_return out;
        }
        auto ec = co_await read_body(fp);
        if (!ec) {
            fp.get().body().close();
            std::error_code fs_ec;
            out.resp.body_bytes = std::filesystem::file_size(*file, fs_ec);
        }
        out.ec = ec;
    } else {
        bhttp::response_parser<bhttp::string_body> sp(std::move(*hp));
        sp.body_limit(req.max_response_bytes.value_or(cfg.max_response_bytes));
        auto ec = co_await read_body(sp);
        if (!ec) {
            out.resp.body = std::move(sp.get().body());
            out.resp.body_bytes = out.resp.body.size();
        }
        out.ec = ec;
    }
    out.reusable = !out.ec && keep_alive && c.buffer.size() == 0;
    co_return out;
}

asio::awaitable<hop_outcome> client::impl::hop(const url_parts& u, const client_request& req, const deadline& dl,
                                               const std::optional<std::filesystem::path>& file,
                                               std::uint64_t file_max) {
    for (int attempt = 0;; ++attempt) {
        std::unique_ptr<conn> c;
        if (cfg.reuse_connections && attempt == 0) c = take_idle(u.origin());
        if (!c) {
            auto opened = co_await open(u, dl);
            if (!opened) {
                hop_outcome o;
                o.ec = opened.error();
                co_return o;
            }
            c = std::move(*opened);
        }
        hop_outcome o;
        if (c->tls) {
            o = co_await exchange(*c->tls, *c, u, req, dl, file, file_max);
        } else {
            o = co_await exchange(*c->plain, *c, u, req, dl, file, file_max);
        }
        if (o.stale && attempt == 0) {
            c->close();
            log.debug("http.client.retry_stale", {{"host", u.host}});
            continue;
        }
        if (o.reusable && cfg.reuse_connections) put_idle(std::move(c));
        else c->close();
        co_return o;
    }
}

asio::awaitable<result<client_response>> client::impl::run(std::shared_ptr<impl> self, client_request req,
                                                           std::optional<std::filesystem::path> file,
                                                           std::uint64_t file_max, int* status_out) {
    const auto& cfg = self->cfg;
    auto started = clock_type::now();
    deadline dl{started + cfg.total_timeout};
    for (char ch : req.method)
        if (ch < 'A' || ch > 'Z') co_return make_error_code(errc::invalid_argument);
    if (req.method.empty()) co_return make_error_code(errc::invalid_argument);
    for (const auto& [k, v] : req.headers.items())
        if (k.empty() || has_crlf(k) || has_crlf(v) || k.find(':') != std::string::npos)
            co_return make_error_code(errc::invalid_argument);

    std::string url = req.url;
    auto parsed = parse_url(url);
    if (!parsed) co_return parsed.error();
    url_parts u = std::move(*parsed);
    int redirects = 0;
    for (;;) {
        auto o = co_await self->hop(u, req, dl, file, file_max);
        if (status_out && o.resp.status != 0) *status_out = o.resp.status;
        if (o.ec) {
            if (file) {
                std::error_code ignored;
                std::filesystem::remove(*file, ignored);
            }
            self->log.debug("http.client.failed", {{"host", u.host}, {"error", o.ec.message()}});
            co_return o.ec;
        }
        if (!o.location) {
            o.resp.url = url;
            o.resp.redirects = redirects;
            self->log.debug("http.client.request",
                            {{"method", req.method},
                             {"host", u.host},
                             {"status", o.resp.status},
                             {"redirects", redirects},
                             {"ms", std::chrono::duration<double, std::milli>(clock_type::now() - started).count()}});
            co_return std::move(o.resp);
        }

        // Follow a redirect: resolve the reference against the current URL.
        if (++redirects > cfg.max_redirects) co_return err(client_errc::too_many_redirects);
        auto base = boost::urls::parse_uri(url);
        auto ref = boost::urls::parse_uri_reference(*o.location);
        if (!base || !ref) co_return err(client_errc::invalid_url);
        boost::urls::url next;
        if (!boost::urls::resolve(*base, *ref, next)) co_return err(client_errc::invalid_url);
        next.remove_fragment();
        auto nu = parse_url(next.buffer());
        if (!nu) co_return nu.error();
        if (u.https && !nu->https && !cfg.allow_https_downgrade) co_return err(client_errc::redirect_refused);
        // Credentials never follow a redirect to another origin.
        if (nu->origin() != u.origin()) {
            fields kept;
            for (const auto& [k, v] : req.headers.items())
                if (!iequals(k, "Authorization") && !iequals(k, "Cookie") && !iequals(k, "Proxy-Authorization"))
                    kept.add(k, v);
            req.headers = std::move(kept);
        }
        // 303, and 301/302 after a POST, continue as GET without a body.
        if ((o.resp.status == 303 && req.method != "HEAD") ||
            ((o.resp.status == 301 || o.resp.status == 302) && req.method == "POST")) {
            req.method = "GET";
            req.body.clear();
            req.body_file.reset();
            fields kept;
            for (const auto& [k, v] : req.headers.items())
                if (!iequals(k, "Content-Type")) kept.add(k, v);
            req.headers = std::move(kept);
        }
        url = std::string(next.buffer());
        u = std::move(*nu);
    }
}

// ---------------------------------------------------------------------------

client::client(asio::any_io_executor ex, client_config cfg, faasd::logger log)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(cfg), std::move(log))) {}

client::~client() {
    std::lock_guard lock(impl_->mu);
    for (auto& [k, v] : impl_->idle)
        for (auto& c : v) c->close();
    impl_->idle.clear();
}

asio::awaitable<result<client_response>> client::request(client_request req) {
    return impl::run(impl_, std::move(req), std::nullopt, 0);
}

asio::awaitable<result<client_response>> client::download(client_request req, std::filesystem::path path,
                                                          std::uint64_t max_bytes, int* status) {
    req.expect_success = true;
    return impl::run(impl_, std::move(req), std::move(path), max_bytes, status);
}

std::size_t client::idle_connections() const {
    std::lock_guard lock(impl_->mu);
    std::size_t n = 0;
    for (const auto& [k, v] : impl_->idle) n += v.size();
    return n;
}

}  // namespace faasd::http
