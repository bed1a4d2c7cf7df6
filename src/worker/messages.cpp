#include <faasd/worker/messages.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace faasd::worker {
namespace json = boost::json;

const char* to_string(worker_state s) noexcept {
    switch (s) {
        case worker_state::up: return "up";
        case worker_state::draining: return "draining";
        case worker_state::down: return "down";
    }
    return "?";
}

std::optional<worker_state> parse_worker_state(std::string_view s) noexcept {
    if (s == "up") return worker_state::up;
    if (s == "draining") return worker_state::draining;
    if (s == "down") return worker_state::down;
    return std::nullopt;
}

namespace {

result<json::object> parse_object(std::string_view bytes) {
    boost::system::error_code ec;
    auto v = json::parse(bytes, ec);
    if (ec || !v.is_object()) return errc::bad_message;
    auto& o = v.as_object();
    auto* ver = o.if_contains("v");
    if (ver == nullptr || !ver->is_int64()) return errc::bad_message;
    if (ver->as_int64() != jobs::wire_version) return errc::unsupported_version;
    return std::move(o);
}

const json::string* str(const json::object& o, std::string_view k) {
    auto* v = o.if_contains(k);
    return v && v->is_string() ? &v->as_string() : nullptr;
}

std::optional<std::int64_t> integer(const json::object& o, std::string_view k) {
    auto* v = o.if_contains(k);
    if (v == nullptr) return std::nullopt;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(v->as_uint64());
    return std::nullopt;
}

}  // namespace

std::string encode(const heartbeat& h) {
    json::object o{{"v", jobs::wire_version}, {"worker", h.worker}, {"slots", h.slots}, {"busy", h.busy},
                   {"at", h.at}, {"state", to_string(h.state)}};
    return json::serialize(o);
}

result<heartbeat> decode_heartbeat(std::string_view bytes) {
    auto o = parse_object(bytes);
    if (!o) return o.error();
    heartbeat h;
    auto* w = str(*o, "worker");
    auto* st = str(*o, "state");
    auto slots = integer(*o, "slots");
    auto busy = integer(*o, "busy");
    auto at = integer(*o, "at");
    if (!w || !st || !slots || !busy || !at) return errc::bad_message;
    auto state = parse_worker_state(*st);
    if (!state) return errc::bad_message;
    h.worker = std::string(*w);
    h.slots = static_cast<int>(*slots);
    h.busy = static_cast<int>(*busy);
    h.at = *at;
    h.state = *state;
    return h;
}

std::string encode(const cancel_request& c) {
    json::object o{{"v", jobs::wire_version}, {"id", c.id}, {"by", c.by}, {"at", c.at}};
    return json::serialize(o);
}

result<cancel_request> decode_cancel(std::optional<std::string_view> key, std::string_view value,
                                     jobs::unix_ms fallback_at) {
    auto o = parse_object(value);
    if (!o) return o.error();
    cancel_request c;
    if (auto* id = str(*o, "id"); id && !id->empty()) c.id = std::string(*id);
    else if (key && !key->empty()) c.id = std::string(*key);
    else return errc::bad_message;
    if (auto* by = str(*o, "by")) c.by = std::string(*by);
    c.at = integer(*o, "at").value_or(fallback_at);
    return c;
}

std::vector<std::pair<std::string, std::string>> dead_letter_headers(std::string_view reason, std::string_view topic,
                                                                     std::int32_t partition, std::int64_t offset,
                                                                     std::string_view worker, int attempt) {
    std::vector<std::pair<std::string, std::string>> h;
    h.emplace_back("faasd-reason", std::string(reason));
    h.emplace_back("faasd-topic", std::string(topic));
    h.emplace_back("faasd-partition", std::to_string(partition));
    h.emplace_back("faasd-offset", std::to_string(offset));
    h.emplace_back("faasd-worker", std::string(worker));
    if (attempt > 0) h.emplace_back("faasd-attempt", std::to_string(attempt));
    return h;
}

}  // namespace faasd::worker
