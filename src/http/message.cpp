#include <faasd/http/message.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>

namespace faasd::http {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool percent_decode(std::string_view in, std::string& out, bool plus_is_space) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int hi = hex_value(in[i + 1]);
            int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return true;
}

}  // namespace

void fields::set(std::string_view name, std::string value) {
    std::erase_if(items_, [&](const auto& kv) { return iequals(kv.first, name); });
    items_.emplace_back(std::string(name), std::move(value));
}

std::optional<std::string_view> fields::get(std::string_view name) const {
    for (const auto& [k, v] : items_)
        if (iequals(k, name)) return std::string_view(v);
    return std::nullopt;
}

std::optional<std::string_view> request::query_param(std::string_view name) const {
    for (const auto& [k, v] : query)
        if (k == name) return std::string_view(v);
    return std::nullopt;
}

response response::json(int status, const boost::json::value& v) {
    response r;
    r.status = status;
    r.headers.set("Content-Type", "application/json");
    r.body = boost::json::serialize(v);
    return r;
}

response response::problem(int status, std::string_view slug, std::string_view title, std::string_view detail,
                           boost::json::object extra) {
    boost::json::object o = std::move(extra);
    o["type"] = "https://faasd.dev/problems/" + std::string(slug);
    o["title"] = title;
    o["status"] = status;
    if (!detail.empty()) o["detail"] = detail;
    response r;
    r.status = status;
    r.headers.set("Content-Type", "application/problem+json");
    r.body = boost::json::serialize(o);
    return r;
}

response response::text(int status, std::string body, std::string content_type) {
    response r;
    r.status = status;
    r.headers.set("Content-Type", std::move(content_type));
    r.body = std::move(body);
    return r;
}

bool parse_target(std::string_view target, std::string& path,
                  std::vector<std::pair<std::string, std::string>>& query) {
    if (target.empty() || target.front() != '/') return false;
    auto q = target.find('?');
    if (!percent_decode(target.substr(0, q), path, false)) return false;
    if (path.find('\0') != std::string::npos) return false;
    query.clear();
    if (q == std::string_view::npos) return true;
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        auto amp = rest.find('&');
        auto part = rest.substr(0, amp);
        if (!part.empty()) {
            auto eq = part.find('=');
            std::string k, v;
            if (!percent_decode(part.substr(0, eq), k, true)) return false;
            if (eq != std::string_view::npos && !percent_decode(part.substr(eq + 1), v, true)) return false;
            query.emplace_back(std::move(k), std::move(v));
        }
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return true;
}

}  // namespace faasd::http
