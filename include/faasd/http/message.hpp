#pragma once
// Beast-free HTTP message types for handlers (STYLE.md section 6: handlers are
// pure functions from a parsed request to a response). The server adapter in
// src/http converts between these and Beast messages; nothing that includes
// this header pulls in Beast.

#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace faasd::http {

/// Header fields in arrival order; names compared case-insensitively.
class fields {
public:
    void add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }
    /// Replaces every field of that name.
    void set(std::string_view name, std::string value);
    /// The first value of that name, if any.
    std::optional<std::string_view> get(std::string_view name) const;
    const std::vector<std::pair<std::string, std::string>>& items() const noexcept { return items_; }

private:
    std::vector<std::pair<std::string, std::string>> items_;
};

// request and response are deliberately not aggregates (they declare
// constructors): GCC 12 destroys aggregate temporaries created inside a
// co_await expression twice, so `co_await f(request{...})` must not compile
// as aggregate initialisation. See docs/http.md.

struct request {
    request() = default;

    std::string method;  ///< "GET", "POST", ...
    std::string target;  ///< path and query, as received ("/v1/jobs?limit=10")
    std::string path;    ///< decoded path without the query ("/v1/jobs")
    std::vector<std::pair<std::string, std::string>> query;  ///< decoded query parameters, in order
    fields headers;
    std::string body;
    std::string remote;  ///< peer address, for logs and rate limits
    std::string request_id;  ///< from X-Request-Id when acceptable, else made by the server

    std::optional<std::string_view> query_param(std::string_view name) const;
};

struct response {
    response() = default;
    explicit response(int status_code, fields h = {}, std::string b = {})
        : status(status_code), headers(std::move(h)), body(std::move(b)) {}

    int status = 200;
    fields headers;
    std::string body;
    /// Called by the server once the whole response was written to the
    /// connection (not when the write failed, nor for a response the server
    /// replaced, e.g. after a handler deadline). Must not throw; runs on the
    /// connection's executor, so long work should be spawned.
    std::function<void()> on_written;

    /// application/json with the serialised value.
    static response json(int status, const boost::json::value& v);
    /// RFC 7807 application/problem+json: type is a stable URI-like slug
    /// ("https://faasd.dev/problems/<slug>" is built from it), title a short sentence.
    static response problem(int status, std::string_view slug, std::string_view title,
                            std::string_view detail = {}, boost::json::object extra = {});
    static response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
};

/// Splits "/a/b?x=1&y=%20" into a decoded path and query pairs. Returns false
/// when the target is malformed (bad percent-encoding, not origin-form).
bool parse_target(std::string_view target, std::string& path,
                  std::vector<std::pair<std::string, std::string>>& query);

}  // namespace faasd::http
