#include <faasd/worker/http_transfer.hpp>

#include <faasd/http/client.hpp>

namespace faasd::worker {

namespace asio = boost::asio;

namespace {

http::client_config client_settings(const http_transfer_config& c) {
    http::client_config cc;
    cc.policy = c.allow_private ? http::address_policy::allow_all() : http::address_policy::public_only();
    cc.total_timeout = c.timeout;
    cc.read_timeout = std::min<std::chrono::milliseconds>(c.timeout, std::chrono::milliseconds(30'000));
    cc.max_response_bytes = 64 * 1024;  // sink answers are not kept
    cc.user_agent = "faasd-worker";
    return cc;
}

const char* error_name(http::client_errc e) {
    using E = http::client_errc;
    switch (e) {
        case E::timeout: return "timeout";
        case E::too_large: return "too_large";
        case E::address_forbidden: return "address_forbidden";
        case E::tls_error: return "tls_error";
        case E::connect_failed: return "connect_failed";
        case E::bad_status: return "bad_status";
        case E::invalid_url: return "invalid_url";
        case E::resolve_failed: return "resolve_failed";
        case E::too_many_redirects: return "too_many_redirects";
        case E::redirect_refused: return "redirect_refused";
        case E::protocol_error: return "protocol_error";
        case E::file_error: return "file_error";
        case E::cancelled: return "cancelled";
    }
    return "protocol_error";
}

transfer_outcome from_error(const boost::system::error_code& ec, const std::string& what) {
    transfer_outcome o;
    o.ok = false;
    // client_errc names ("timeout", "bad_status", ...) are what outcome.cpp classifies.
    o.error = ec.category() == http::client_category() ? error_name(static_cast<http::client_errc>(ec.value()))
                                                       : "protocol_error";
    o.message = what + ": " + ec.message();
    return o;
}

}  // namespace

http_transfer::http_transfer(asio::any_io_executor ex, http_transfer_config cfg, faasd::logger log)
    : client_(std::make_unique<http::client>(std::move(ex), client_settings(cfg), std::move(log))) {}

http_transfer::~http_transfer() = default;

asio::awaitable<transfer_outcome> http_transfer::download(jobs::source_spec source, std::string bearer,
                                                          std::filesystem::path to, std::uint64_t max_bytes) {
    http::client_request req("GET", source.url);
    for (const auto& [k, v] : source.headers) req.headers.set(k, v);
    if (!bearer.empty()) req.headers.set("Authorization", "Bearer " + bearer);
    int status = 0;
    auto r = co_await client_->download(std::move(req), to, max_bytes, &status);
    if (!r) {
        auto o = from_error(r.error(), "GET failed");
        if (o.error == "bad_status") {
            // The status decides: 5xx, 408 and 429 are retried (outcome.cpp), other statuses are not.
            o.http_status = status;
            o.message = "the source answered " + std::to_string(status);
        }
        co_return o;
    }
    transfer_outcome o;
    o.ok = true;
    o.http_status = r->status;
    o.bytes = r->body_bytes;
    co_return o;
}

asio::awaitable<transfer_outcome> http_transfer::upload(jobs::sink_spec sink, std::string bearer,
                                                        std::filesystem::path file,
                                                        std::vector<std::pair<std::string, std::string>> extra_headers) {
    http::client_request req(sink.method.empty() ? std::string("PUT") : sink.method, sink.url);
    for (const auto& [k, v] : sink.headers) req.headers.set(k, v);
    for (const auto& [k, v] : extra_headers) req.headers.set(k, v);
    if (!bearer.empty()) req.headers.set("Authorization", "Bearer " + bearer);
    req.body_file = file;
    std::uint64_t size = 0;
    std::error_code fec;
    size = std::filesystem::file_size(file, fec);
    auto r = co_await client_->request(std::move(req));
    if (!r) co_return from_error(r.error(), sink.method + " failed");
    transfer_outcome o;
    o.http_status = r->status;
    if (r->status < 200 || r->status > 299) {
        o.ok = false;
        o.error = "bad_status";
        o.message = "the sink answered " + std::to_string(r->status);
        co_return o;
    }
    o.ok = true;
    o.bytes = fec ? 0 : size;
    co_return o;
}

}  // namespace faasd::worker
