#pragma once
// An async HTTP/1.1 client (http and https) for OIDC discovery and JWKS, data
// source downloads, sink uploads and tests (Beast stays in src/http).
//
//   http::client c(ex, cfg);
//   auto r = co_await c.request(http::client_request("GET", issuer + "/.well-known/openid-configuration"));
//   if (!r) log(r.error());            // client_errc: timeout, address_forbidden, tls_error, ...
//   else use(r->status, r->body);
//
// Every hop (the first URL and each redirect target) is parsed, resolved once,
// filtered by the address policy and connected to one of the checked
// addresses. TLS verifies the chain against the system CAs (plus ca_file) and
// the host name, and sends SNI. Deadlines: connect (resolve + TCP + TLS),
// read (each read, so a stalled transfer is caught), and total.
//
// Thread safety: one client may be used by several coroutines at once on one
// io_context; with connection reuse the idle pool is mutex-protected.

#include <faasd/core/error.hpp>
#include <faasd/core/log.hpp>
#include <faasd/http/address_policy.hpp>
#include <faasd/http/message.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace faasd::http {

/// Why a client request failed.
enum class client_errc {
    timeout = 1,         ///< a connect, read or total deadline passed
    too_large,           ///< the response (or its header) exceeded the size limit
    address_forbidden,   ///< every resolved address is refused by the address policy
    tls_error,           ///< handshake, certificate chain or host name verification failed
    connect_failed,      ///< no resolved (and allowed) address accepted the connection
    bad_status,          ///< expect_success was set and the final status is not 2xx
    invalid_url,         ///< not an absolute http(s) URL, or it has user info
    resolve_failed,      ///< the host name did not resolve
    too_many_redirects,  ///< more than max_redirects hops
    redirect_refused,    ///< a redirect from https to http (see allow_https_downgrade)
    protocol_error,      ///< the peer sent something that is not HTTP/1.1, or closed early
    file_error,          ///< the upload file cannot be read or the download file written
    cancelled,           ///< the awaiting coroutine was cancelled
};

const boost::system::error_category& client_category() noexcept;
inline boost::system::error_code make_error_code(client_errc e) noexcept {
    return {static_cast<int>(e), client_category()};
}

struct client_config {
    std::chrono::milliseconds connect_timeout{5'000};  ///< resolve + TCP connect + TLS handshake, per hop
    std::chrono::milliseconds read_timeout{30'000};    ///< each read (and the request write) may take this long
    std::chrono::milliseconds total_timeout{60'000};   ///< the whole request, redirects included
    std::uint64_t max_response_bytes = 8 * 1024 * 1024;  ///< in-memory bodies; download() takes its own cap
    std::size_t max_header_bytes = 64 * 1024;             ///< response header size
    int max_redirects = 5;                                ///< 0 disables following redirects
    bool allow_https_downgrade = false;                   ///< follow https -> http redirects
    address_policy policy = address_policy::public_only();
    std::string ca_file;           ///< extra trusted CA certificates (PEM), added to the system store
    bool use_system_ca = true;     ///< trust the system CA store
    bool reuse_connections = false;  ///< keep idle keep-alive connections for reuse
    std::size_t max_idle_per_host = 4;
    std::chrono::milliseconds idle_keepalive{30'000};  ///< drop pooled connections idle longer than this
    std::string user_agent = "faasd";
};

/// Not an aggregate on purpose (GCC 12 double-destroys aggregate temporaries in
/// co_await expressions): write `co_await c.request(client_request("GET", url))`.
struct client_request {
    client_request() = default;
    client_request(std::string m, std::string u) : method(std::move(m)), url(std::move(u)) {}

    std::string method = "GET";
    std::string url;                              ///< absolute http:// or https:// URL
    fields headers;                               ///< Host, Content-Length and User-Agent are set by the client
    std::string body;                             ///< sent when body_file is not set
    std::optional<std::filesystem::path> body_file;  ///< upload this file instead (streamed)
    bool follow_redirects = true;
    bool expect_success = false;                  ///< non-2xx final status -> client_errc::bad_status
    std::optional<std::uint64_t> max_response_bytes;  ///< overrides client_config::max_response_bytes
};

struct client_response {
    int status = 0;
    fields headers;
    std::string body;          ///< empty for download() and HEAD
    std::uint64_t body_bytes = 0;  ///< bytes of body received (also for downloads)
    std::string url;           ///< the final URL, after redirects
    int redirects = 0;         ///< redirects followed
};

/// The parts of an absolute http(s) URL (exposed for tests).
struct url_parts {
    bool https = false;
    std::string host;         ///< lower-case name or IP literal (no brackets)
    std::uint16_t port = 0;
    std::string target;       ///< origin-form: path and query, "/" at least
    bool host_is_ip = false;
    /// "host" or "host:port" when the port is not the scheme's default ([v6] in brackets).
    std::string authority() const;
    /// scheme://authority, for comparing origins.
    std::string origin() const;
};
result<url_parts> parse_url(std::string_view url);

class client {
public:
    /// Loads the CA store once (at startup). Throws std::runtime_error if ca_file cannot be loaded.
    explicit client(boost::asio::any_io_executor ex, client_config cfg = {}, faasd::logger log = faasd::logger::null());
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// Sends the request and reads the whole response into memory (at most
    /// max_response_bytes). Any status is a success unless expect_success.
    boost::asio::awaitable<result<client_response>> request(client_request req);

    /// Like request() but streams a 2xx body into `path` (created or truncated),
    /// at most max_bytes (else too_large and the file is removed). Non-2xx
    /// statuses are bad_status (nothing is written). `status`, when not null,
    /// receives the last HTTP status read (also when the result is an error,
    /// so that a caller can tell 503 from 404); it must outlive the call.
    boost::asio::awaitable<result<client_response>> download(client_request req, std::filesystem::path path,
                                                             std::uint64_t max_bytes, int* status = nullptr);

    /// Number of pooled idle connections (tests).
    std::size_t idle_connections() const;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace faasd::http

template <>
struct boost::system::is_error_code_enum<faasd::http::client_errc> : std::true_type {};
