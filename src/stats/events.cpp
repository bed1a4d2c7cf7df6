#include <faasd/stats/events.hpp>

#include <limits>

namespace faasd::stats {
namespace json = boost::json;

unix_ms event_time(const event& e) noexcept {
    struct visitor {
        unix_ms operator()(const job_submitted& v) const noexcept { return v.at; }
        unix_ms operator()(const job_started& v) const noexcept { return v.at; }
        unix_ms operator()(const job_finished& v) const noexcept { return v.finished_at; }
        unix_ms operator()(const worker_heartbeat& v) const noexcept { return v.at; }
        unix_ms operator()(const lag_sample& v) const noexcept { return v.at; }
    };
    return std::visit(visitor{}, e);
}

const char* to_string(worker_state s) noexcept {
    switch (s) {
        case worker_state::up:
            return "up";
        case worker_state::draining:
            return "draining";
        case worker_state::down:
            return "down";
    }
    return "up";
}

std::optional<worker_state> parse_worker_state(std::string_view s) noexcept {
    if (s == "up") return worker_state::up;
    if (s == "draining") return worker_state::draining;
    if (s == "down") return worker_state::down;
    return std::nullopt;
}

job_submitted submitted_from_message(const jobs::job_message& m, unix_ms queued_at) {
    return {m.id, m.attempt, queued_at, m.not_before};
}

std::optional<job_started> started_from_status(const jobs::job_status& s) {
    if (s.state != jobs::job_state::running || s.started_at <= 0 || s.id.empty()) return std::nullopt;
    return job_started{s.id, s.attempt, s.started_at, s.worker};
}

job_finished finished_from_result(const jobs::job_result& r) {
    job_finished f;
    f.id = r.id;
    f.attempt = r.attempt;
    f.submitted_at = r.times.submitted_at;
    f.started_at = r.times.started_at;
    f.run_ms = r.times.run_ms;
    f.finished_at = r.times.finished_at;
    f.state = r.state;
    f.worker = r.worker;
    return f;
}

json::object to_json(const worker_heartbeat& h) {
    return {{"v", jobs::wire_version}, {"worker", h.worker}, {"slots", h.slots},
            {"busy", h.busy},          {"at", h.at},         {"state", to_string(h.state)}};
}

result<worker_heartbeat> heartbeat_from_json(const json::value& v) {
    const auto* o = v.if_object();
    if (!o) return errc::bad_message;
    const auto* ver = o->if_contains("v");
    if (!ver || !ver->is_number()) return errc::bad_message;
    if (!ver->is_int64() || ver->get_int64() != jobs::wire_version) return errc::unsupported_version;

    worker_heartbeat h;
    const auto* worker = o->if_contains("worker");
    if (!worker || !worker->is_string() || worker->get_string().empty()) return errc::bad_message;
    h.worker = std::string(worker->get_string());

    auto integer = [&](std::string_view k, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
        const auto* f = o->if_contains(k);
        if (!f || !f->is_int64()) return false;
        out = f->get_int64();
        return out >= lo && out <= hi;
    };
    std::int64_t slots = 0, busy = 0, at = 0;
    if (!integer("slots", 0, 1'000'000, slots) || !integer("busy", 0, 1'000'000, busy) ||
        !integer("at", 1, std::numeric_limits<std::int64_t>::max(), at))
        return errc::bad_message;
    h.slots = static_cast<int>(slots);
    h.busy = static_cast<int>(busy);
    h.at = at;

    const auto* state = o->if_contains("state");
    if (state) {
        if (!state->is_string()) return errc::bad_message;
        auto s = parse_worker_state(state->get_string());
        if (!s) return errc::bad_message;
        h.state = *s;
    }
    return h;
}

}  // namespace faasd::stats
