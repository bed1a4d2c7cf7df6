#pragma once
// A small HTTP(S) and WebSocket client for the CLI (and the frontend's OIDC
// discovery): one connection per request, a deadline on everything, TLS with
// the system's trust store, SNI and host-name verification. Beast stays in
// transport.cpp.

#include <faasd/core/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace faasd::client {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_reply {
    int status = 0;
    header_list headers;
    std::string body;
    std::optional<std::string_view> header(std::string_view name) const;
};

/// One request. errc::invalid_argument for a URL that is not http(s)://host[:port]/...,
/// errc::unavailable when the server cannot be reached or answers garbage,
/// errc::timeout when `timeout` passes.
boost::asio::awaitable<result<http_reply>> http_request(std::string method, std::string url, header_list headers,
                                                        std::string body, std::chrono::milliseconds timeout);

/// GET returning the body of a 200, errc::unavailable for anything else.
boost::asio::awaitable<result<std::string>> http_get(std::string url, std::chrono::milliseconds timeout);

/// A WebSocket client connection (ws:// or wss://, also http(s):// URLs).
class ws_client {
public:
    ws_client();
    ~ws_client();
    ws_client(const ws_client&) = delete;
    ws_client& operator=(const ws_client&) = delete;

    /// Connects and completes the handshake. On a refused upgrade, *status
    /// (if given) receives the HTTP status.
    boost::asio::awaitable<result<void>> connect(std::string url, header_list headers,
                                                 std::vector<std::string> subprotocols,
                                                 std::chrono::milliseconds timeout, int* status = nullptr);
    /// The next text message; nullopt when the connection closed (close_code() tells why).
    boost::asio::awaitable<std::optional<std::string>> read();
    boost::asio::awaitable<result<void>> write(std::string text);
    boost::asio::awaitable<void> close();
    /// The close code the server sent (0 if none).
    std::uint16_t close_code() const noexcept;
    std::string close_reason() const;
    /// The subprotocol the server selected ("" if none).
    std::string subprotocol() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace faasd::client
