#include <faasd/http/router.hpp>

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <stdexcept>

namespace faasd::http {
namespace {

bool is_param(std::string_view seg) { return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}'; }

// Splits "/a/b" into {"a", "b"}; "/" into {}. The caller checked the leading '/'.
template <class Out>
void split_path(std::string_view path, Out& out) {
    if (path.size() <= 1) return;
    path.remove_prefix(1);
    while (true) {
        auto slash = path.find('/');
        out.emplace_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes one path segment ('+' is literal in paths). False when
// malformed or when it decodes to a NUL or a '/'.
bool decode_segment(std::string_view in, std::string& out) {
    out.clear();
    if (in.find('%') == std::string_view::npos) {
        out.assign(in);
        return true;
    }
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return false;
        int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        char c = static_cast<char>(hi * 16 + lo);
        if (c == '\0' || c == '/') return false;
        out.push_back(c);
        i += 2;
    }
    return true;
}

std::string shape_of(const std::vector<std::string>& segments) {
    std::string s;
    for (const auto& seg : segments) s.append("/").append(is_param(seg) ? "{}" : seg);
    return s.empty() ? "/" : s;
}

bool valid_method(std::string_view m) {
    if (m.empty()) return false;
    return std::all_of(m.begin(), m.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// -1: a is more specific, 1: b is, 0: same shape.
int compare_specificity(const router::route& a, const router::route& b) {
    for (std::size_t i = 0; i < a.segments.size(); ++i) {
        bool pa = is_param(a.segments[i]), pb = is_param(b.segments[i]);
        if (pa != pb) return pa ? 1 : -1;
    }
    return 0;
}

}  // namespace

std::optional<std::string_view> route_params::get(std::string_view name) const {
    for (const auto& [k, v] : items_)
        if (k == name) return std::string_view(v);
    return std::nullopt;
}

router& router::add(std::string method, std::string pattern, handler h, route_options opts) {
    if (!h) throw std::invalid_argument("route " + pattern + " has no handler");
    route r;
    r.info = route_info{std::move(method), std::move(pattern), route_kind::http, opts};
    r.fn = std::move(h);
    return add_route(std::move(r));
}

router& router::add_websocket(std::string pattern, ws_handler h, route_options opts) {
    if (!h) throw std::invalid_argument("route " + pattern + " has no handler");
    route r;
    r.info = route_info{"GET", std::move(pattern), route_kind::websocket, opts};
    r.ws = std::move(h);
    return add_route(std::move(r));
}

router& router::add_route(route r) {
    const std::string& p = r.info.pattern;
    if (!valid_method(r.info.method)) throw std::invalid_argument("invalid method for route " + p);
    if (p.empty() || p.front() != '/') throw std::invalid_argument("route pattern must start with '/': " + p);
    split_path(p, r.segments);
    std::vector<std::string_view> names;
    for (const auto& seg : r.segments) {
        if (seg.empty()) throw std::invalid_argument("route pattern has an empty segment: " + p);
        if (is_param(seg)) {
            std::string_view name(seg.data() + 1, seg.size() - 2);
            bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
            });
            if (!ok) throw std::invalid_argument("bad parameter name in route pattern: " + p);
            if (std::find(names.begin(), names.end(), name) != names.end())
                throw std::invalid_argument("duplicate parameter in route pattern: " + p);
            names.push_back(name);
        } else if (seg.find_first_of("{}?#%") != std::string::npos) {
            throw std::invalid_argument("route pattern segment must be a literal or {name}: " + p);
        }
    }
    auto shape = shape_of(r.segments);
    for (const auto& other : routes_)
        if (other->info.method == r.info.method && shape_of(other->segments) == shape)
            throw std::invalid_argument("duplicate route: " + r.info.method + " " + p);
    r.index = routes_.size();
    routes_.push_back(std::make_shared<const route>(std::move(r)));
    return *this;
}

std::vector<route_info> router::routes() const {
    std::vector<route_info> out;
    out.reserve(routes_.size());
    for (const auto& r : routes_) out.push_back(r->info);
    return out;
}

router::match_result router::match(std::string_view method, std::string_view raw_path) const {
    match_result m;
    if (raw_path.empty() || raw_path.front() != '/') return m;

    // Paths are short: keep the segments on the stack (no allocation per request).
    boost::container::small_vector<std::string_view, 12> raw;
    split_path(raw_path, raw);
    boost::container::small_vector<std::string, 12> segs(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i)
        if (!decode_segment(raw[i], segs[i])) return m;

    const route* best = nullptr;        // best route with an acceptable method
    const route* best_get = nullptr;    // best GET route, the HEAD fallback
    const route* best_path = nullptr;   // best route for the path, any method
    boost::container::small_vector<std::string_view, 8> allowed;
    for (const auto& rp : routes_) {
        const route& r = *rp;
        if (r.segments.size() != segs.size()) continue;
        bool ok = true;
        for (std::size_t i = 0; i < segs.size() && ok; ++i)
            ok = is_param(r.segments[i]) ? !segs[i].empty() : r.segments[i] == segs[i];
        if (!ok) continue;
        allowed.push_back(r.info.method);
        if (!best_path || compare_specificity(r, *best_path) < 0) best_path = &r;
        if (r.info.method == method && (!best || compare_specificity(r, *best) < 0)) best = &r;
        if (r.info.method == "GET" && (!best_get || compare_specificity(r, *best_get) < 0)) best_get = &r;
    }
    if (!best && method == "HEAD") best = best_get;
    if (!best) {
        if (!best_path) return m;
        m.result = outcome::method_not_allowed;
        m.pattern = best_path->info.pattern;
        if (best_get) allowed.push_back("HEAD");
        std::sort(allowed.begin(), allowed.end());
        allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
        for (auto a : allowed) {
            if (!m.allow.empty()) m.allow.append(", ");
            m.allow.append(a);
        }
        return m;
    }
    m.result = outcome::found;
    m.matched = best;
    m.pattern = best->info.pattern;
    for (std::size_t i = 0; i < segs.size(); ++i)
        if (is_param(best->segments[i]))
            m.params.add(best->segments[i].substr(1, best->segments[i].size() - 2), std::move(segs[i]));
    return m;
}

}  // namespace faasd::http
