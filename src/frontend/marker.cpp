#include <faasd/frontend/marker.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace faasd::frontend {
namespace json = boost::json;

std::string encode_marker(const erased_marker& m) {
    json::object o{{"v", 1},
                   {"erased", true},
                   {"id", m.id},
                   {"owner", m.owner},
                   {"idempotency_key", m.idempotency_key},
                   {"submitted_at", m.submitted_at},
                   {"erased_at", m.erased_at}};
    return json::serialize(o);
}

std::optional<erased_marker> decode_marker(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto& o = v.get_object();
    auto flag = o.find("erased");
    if (flag == o.end() || !flag->value().is_bool() || !flag->value().get_bool()) return std::nullopt;
    auto str = [&](std::string_view k) -> const json::string* {
        auto it = o.find(k);
        return it != o.end() && it->value().is_string() ? &it->value().get_string() : nullptr;
    };
    auto num = [&](std::string_view k) -> std::optional<jobs::unix_ms> {
        auto it = o.find(k);
        if (it == o.end() || !it->value().is_int64()) return std::nullopt;
        return it->value().get_int64();
    };
    auto id = str("id"), owner = str("owner"), key = str("idempotency_key");
    auto submitted = num("submitted_at"), erased = num("erased_at");
    if (!id || id->empty() || !owner || !key || !submitted || !erased) return std::nullopt;
    return erased_marker{std::string(*id), std::string(*owner), std::string(*key), *submitted, *erased};
}

std::optional<erased_marker> marker_for(const jobs::job_status& s, jobs::unix_ms now, std::chrono::milliseconds window) {
    if (s.idempotency_key.empty() || now >= s.submitted_at + window.count()) return std::nullopt;
    return erased_marker{s.id, s.owner.subject, s.idempotency_key, s.submitted_at, now};
}

bool marker_expired(const erased_marker& m, jobs::unix_ms now, std::chrono::milliseconds window) noexcept {
    return now >= m.submitted_at + window.count();
}

bool retention_expired(const jobs::job_status& s, jobs::unix_ms now, std::chrono::milliseconds retention) noexcept {
    if (!jobs::is_terminal(s.state)) return false;
    auto finished = s.finished_at ? s.finished_at : s.updated_at;
    return now - finished >= retention.count();
}

}  // namespace faasd::frontend
