#pragma once
// The route table (STYLE.md section 6, cf. mysql-http handle_request.cpp's
// endpoint table): an explicit list of (method, path pattern) -> handler.
// Patterns are literal segments and `{name}` segments ("/v1/jobs/{id}/result"),
// the same syntax as OpenAPI path templates, so the table can be checked
// against openapi.json (routes()). Matching is pure and needs no I/O.
//
// Thread safety: build the router before handing it to a server; after that
// it is only read, from any thread.

#include <faasd/http/message.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace faasd::http {

class ws_session;

/// Values of the `{name}` segments of the matched pattern, percent-decoded.
class route_params {
public:
    std::optional<std::string_view> get(std::string_view name) const;
    /// The value of a parameter the pattern is known to have ("" if absent).
    std::string_view operator[](std::string_view name) const { return get(name).value_or(std::string_view{}); }
    const std::vector<std::pair<std::string, std::string>>& items() const noexcept { return items_; }
    void add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }

private:
    std::vector<std::pair<std::string, std::string>> items_;
};

/// A request handler. It may await ports (a Kafka acknowledgment, ...); an
/// exception becomes a 500 problem (logged, with no detail in the body).
using handler = std::function<boost::asio::awaitable<response>(const request&, const route_params&)>;

/// A WebSocket route handler: it inspects session->upgrade_request() (auth),
/// then calls accept() or reject(). See websocket.hpp.
using ws_handler = std::function<boost::asio::awaitable<void>(std::shared_ptr<ws_session>)>;

/// Per-route overrides of the server defaults.
struct route_options {
    std::optional<std::uint64_t> body_limit = std::nullopt;           ///< bytes; else server_config::body_limit
    std::optional<std::chrono::milliseconds> timeout = std::nullopt;  ///< handler deadline; else server_config::handler_timeout
};

enum class route_kind {
    http,       ///< a request/response handler
    websocket,  ///< a GET that upgrades to WebSocket
};

/// One row of the table, for introspection (the OpenAPI check) and logs.
struct route_info {
    std::string method;   ///< upper case, e.g. "GET"
    std::string pattern;  ///< e.g. "/v1/jobs/{id}"
    route_kind kind = route_kind::http;
    route_options options;
};

class router {
public:
    struct route {
        route_info info;
        handler fn;      ///< kind == http
        ws_handler ws;   ///< kind == websocket
        std::vector<std::string> segments;  ///< pattern split on '/'; "{x}" kept as is
        std::size_t index = 0;              ///< position in the table
    };

    /// Adds a route. Throws std::invalid_argument for a malformed pattern
    /// (must start with '/', no empty segments except a lone "/", params are
    /// whole segments with unique names) or a duplicate (method, pattern shape).
    router& add(std::string method, std::string pattern, handler h, route_options opts = {});
    /// Adds a WebSocket upgrade route (method GET).
    router& add_websocket(std::string pattern, ws_handler h, route_options opts = {});

    /// The table, in insertion order.
    std::vector<route_info> routes() const;
    std::size_t size() const noexcept { return routes_.size(); }

    enum class outcome {
        found,               ///< route and params are set
        not_found,           ///< no pattern matches the path
        method_not_allowed,  ///< some pattern matches, not with this method; allow is set
    };
    struct match_result {
        outcome result = outcome::not_found;
        const route* matched = nullptr;
        route_params params;
        std::string allow;  ///< "GET, HEAD, POST" for 405 responses
        /// The pattern that matched the path (also for 405), else empty.
        std::string_view pattern;
    };

    /// Matches a method and a raw (still percent-encoded) path without the
    /// query. Literal segments beat `{param}` segments at the first position
    /// where two patterns differ. HEAD falls back to GET. A segment that is
    /// not valid percent-encoding matches nothing.
    match_result match(std::string_view method, std::string_view raw_path) const;

private:
    router& add_route(route r);
    std::vector<std::shared_ptr<const route>> routes_;
};

}  // namespace faasd::http
