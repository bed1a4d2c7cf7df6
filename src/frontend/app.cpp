#include <faasd/frontend/app.hpp>
#include <faasd/frontend/openapi.hpp>
#include <faasd/frontend/problems.hpp>
#include <faasd/frontend/retention.hpp>
#include <faasd/jobs/codec.hpp>
#include <faasd/jobs/merge.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace faasd::frontend {
namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;

bool caller::has_role(std::string_view r) const noexcept {
    return std::find(identity.roles.begin(), identity.roles.end(), r) != identity.roles.end();
}

struct frontend_app::inflight {
    explicit inflight(asio::any_io_executor ex) : signal(std::move(ex), asio::steady_timer::time_point::max()) {}
    asio::steady_timer signal;
    bool done = false;
    bool ok = false;
};

namespace {

// ---- small helpers -----------------------------------------------------------

bool can_see(const caller& who, std::string_view owner) { return owner == who.subject() || who.is_admin(); }

bool is_json_content_type(std::string_view ct) {
    auto semi = ct.find(';');
    auto base = ct.substr(0, semi);
    while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
    std::string lower(base);
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return lower == "application/json" || (lower.starts_with("application/") && lower.ends_with("+json"));
}

template <class I>
std::optional<I> parse_int(std::string_view s) {
    I v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

std::optional<bool> parse_bool(std::string_view s) {
    if (s == "true" || s == "1" || s.empty()) return true;  // "?keep" alone means keep
    if (s == "false" || s == "0") return false;
    return std::nullopt;
}

std::string job_path(std::string_view id) { return "/v1/jobs/" + std::string(id); }

json::object links(std::string_view id) {
    return {{"self", job_path(id)}, {"result", job_path(id) + "/result"}};
}

http::response accepted(const jobs::job_status& s, bool replayed) {
    json::object body{{"id", s.id},
                      {"state", jobs::to_string(s.state)},
                      {"submitted_at", s.submitted_at},
                      {"links", links(s.id)}};
    auto r = http::response::json(202, body);
    r.headers.set("Location", job_path(s.id));
    if (replayed) r.headers.set("Idempotent-Replayed", "true");
    return r;
}

// Decrements a counter when the submission leaves scope, however it leaves.
struct pending_guard {
    std::map<std::string, std::size_t, std::less<>>& m;
    std::string key;
    pending_guard(std::map<std::string, std::size_t, std::less<>>& map, std::string k) : m(map), key(std::move(k)) { ++m[key]; }
    ~pending_guard() {
        auto it = m.find(key);
        if (it != m.end() && --it->second == 0) m.erase(it);
    }
};

// Marks an in-flight idempotent submission done and wakes its waiters.
struct inflight_guard {
    std::map<std::string, std::shared_ptr<frontend_app::inflight>, std::less<>>* m = nullptr;
    std::string id;
    std::shared_ptr<frontend_app::inflight> f;
    bool ok = false;
    ~inflight_guard() {
        if (!f) return;
        f->done = true;
        f->ok = ok;
        f->signal.cancel();
        if (auto it = m->find(id); it != m->end() && it->second == f) m->erase(it);
    }
};

// The snapshot written next to a new job message.
jobs::job_status queued_snapshot(const jobs::job_message& m) {
    jobs::job_status s;
    s.id = m.id;
    s.owner = m.owner;
    s.state = jobs::job_state::queued;
    s.attempt = m.attempt;
    s.submitted_at = m.submitted_at;
    s.updated_at = m.submitted_at;
    s.repo = m.spec.repo;
    s.repo.credential.clear();
    s.delivery = m.spec.delivery;
    s.tags = m.spec.tags;
    s.idempotency_key = m.idempotency_key;
    return s;
}

// What an earlier submission of (subject, key) within the window left: its
// job, or the marker of its erasure, or nothing.
std::variant<std::monostate, jobs::job_status, erased_marker> idempotent_match(frontend_app& app, std::string_view subject,
                                                                               std::string_view key, unix_ms now) {
    const auto window = app.settings().idempotency_window;
    const auto& store = app.svc().store;
    for (int back = 0; back < 2; ++back) {
        auto id = idempotent_job_id(subject, key, now - back * window.count(), window);
        if (const auto* m = store.marker(id))
            if (m->owner == subject && m->idempotency_key == key && now - m->submitted_at < window.count()) return *m;
        const auto& view = store.view();
        if (view.owner_of(id) != subject) continue;
        auto s = view.get(id);
        if (s && s->idempotency_key == key && now - s->submitted_at < window.count()) return std::move(*s);
    }
    return std::monostate{};
}

http::response key_consumed(const erased_marker& m) {
    return make_problem(problems::idempotency_key_consumed,
                        "the job of this Idempotency-Key has finished and was erased (its result was read); "
                        "use another key for a new job",
                        json::object{{"id", m.id}, {"state", "erased"}});
}

// ---- handlers ------------------------------------------------------------------

awaitable<http::response> healthz(request_context&) {
    co_return http::response::json(200, json::object{{"status", "ok"}});
}

awaitable<http::response> readyz(request_context& c) {
    auto report = c.app.svc().readiness();
    bool ready = report.contains("ready") && report.at("ready").is_bool() && report.at("ready").get_bool();
    co_return http::response::json(ready ? 200 : 503, report);
}

awaitable<http::response> metrics(request_context& c) {
    co_return http::response::text(200, c.app.svc().metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
}

awaitable<http::response> openapi(request_context&) {
    co_return http::response::text(200, std::string(openapi_document()), "application/json");
}

awaitable<http::response> bench_hello(request_context& c) {
    if (!c.app.settings().bench_hello) co_return make_problem(problems::not_found);
    co_return http::response::text(200, "hello\n");
}

awaitable<http::response> submit_job(request_context& c) {
    auto& app = c.app;
    const auto& set = app.settings();
    auto& svc = app.svc();
    const caller& who = *c.who;
    const auto& sub = who.subject();

    if (c.req.body.size() > set.max_body_bytes)
        co_return make_problem(problems::payload_too_large,
                               "the body may have at most " + std::to_string(set.max_body_bytes) + " bytes");
    if (auto ct = c.req.headers.get("Content-Type"); ct && !is_json_content_type(*ct))
        co_return make_problem(problems::unsupported_media_type, "Content-Type must be application/json");
    std::string key;
    if (auto k = c.req.headers.get("Idempotency-Key")) {
        if (!is_valid_idempotency_key(*k))
            co_return make_problem(problems::invalid_request,
                                   "Idempotency-Key must be 1 to 255 visible ASCII characters");
        key = std::string(*k);
    }
    auto now = svc.clk.now();

    // A retry with the same key gets the same job, before any limit applies.
    std::string id;
    std::optional<inflight_guard> flight;
    if (!key.empty()) {
        auto earlier = idempotent_match(app, sub, key, now);
        if (auto* s = std::get_if<jobs::job_status>(&earlier)) co_return accepted(*s, true);
        if (auto* m = std::get_if<erased_marker>(&earlier)) co_return key_consumed(*m);
        id = idempotent_job_id(sub, key, now, set.idempotency_window);
        auto& inflight = app.inflight_submissions();
        while (true) {
            auto it = inflight.find(id);
            if (it == inflight.end()) break;
            auto f = it->second;  // the first submission of this key on this replica is still publishing
            while (!f->done) co_await f->signal.async_wait(asio::as_tuple(asio::use_awaitable));
            if (f->ok) {
                if (auto s = svc.store.view().get(id)) co_return accepted(*s, true);
                if (const auto* mk = svc.store.marker(id)) co_return key_consumed(*mk);
            }
            // It failed: try again ourselves.
        }
        auto f = std::make_shared<frontend_app::inflight>(co_await asio::this_coro::executor);
        inflight.emplace(id, f);
        flight.emplace();
        flight->m = &inflight;
        flight->id = id;
        flight->f = std::move(f);
    }

    if (auto wait = app.submit_limiter().take(sub, now))
        co_return too_many(problems::rate_limited, *wait, "submission rate limit per user reached");

    auto v = jobs::validate_job_text(c.req.body, set.job);
    if (!v.ok()) co_return invalid_job_problem(v.issues);

    auto& pending = app.pending_per_user();
    auto pend_it = pending.find(sub);
    std::size_t unfinished = svc.store.view().unfinished(sub) + (pend_it == pending.end() ? 0 : pend_it->second);
    if (unfinished >= set.max_unfinished_per_user)
        co_return too_many(problems::too_many_jobs, std::chrono::seconds(5),
                           "at most " + std::to_string(set.max_unfinished_per_user) +
                               " queued or running jobs per user");

    if (id.empty()) id = svc.ids.new_id(now);
    jobs::job_message m;
    m.id = id;
    m.owner = who.identity;
    m.submitted_at = now;
    m.attempt = 1;
    m.idempotency_key = key;
    m.spec = std::move(v.job->spec);
    if (!v.job->credentials.empty()) {
        auto names = std::move(m.spec.credentials.names);
        auto sealed = svc.sealer.seal(v.job->credentials, id);
        // Wipe the clear values as soon as they are sealed: in the parsed
        // description and in the request body they were parsed from. The
        // server built the request as a mutable object and reads nothing of
        // the body after the handler, so writing through the const view is
        // defined and safe.
        for (auto& [k, val] : v.job->credentials)
            if (val.is_string()) std::fill(val.get_string().begin(), val.get_string().end(), '\0');
        auto& raw = const_cast<std::string&>(c.req.body);
        std::fill(raw.begin(), raw.end(), '\0');
        if (!sealed) {
            app.log().error("job.seal_failed", {{"job", id}, {"error", to_string(static_cast<errc>(sealed.error().value()))}});
            co_return problem_from_error(errc::unavailable);
        }
        m.spec.credentials = std::move(*sealed);
        m.spec.credentials.names = std::move(names);
    }
    auto q = queued_snapshot(m);

    result<void> published = errc::internal;
    {
        pending_guard pg(pending, sub);
        published = co_await svc.publisher.submit(m, q);
    }
    if (!published) {
        app.log().warn("job.publish_failed", {{"job", id}, {"user", sub}, {"error", published.error().message()}});
        co_return problem_from_error(errc::unavailable);
    }
    svc.store.apply(q);  // read-your-writes
    if (flight) flight->ok = true;
    app.log().debug("job.submitted", {{"job", id}, {"user", sub}, {"delivery", jobs::to_string(m.spec.delivery)}});
    co_return accepted(q, false);
}

awaitable<http::response> get_job(request_context& c) {
    const auto& id = c.params.at("id");
    auto& view = c.app.svc().store.view();
    if (!can_see(*c.who, view.owner_of(id))) co_return make_problem(problems::not_found, "no such job");
    auto s = view.get(id);
    if (!s) co_return make_problem(problems::not_found, "no such job");
    co_return http::response::json(200, job_json(*s));
}

// A result body for a terminal job that has no stored result (cancelled while queued).
std::string synthesized_result(const jobs::job_status& s) {
    jobs::timing t;
    t.submitted_at = s.submitted_at;
    t.started_at = s.started_at;
    t.finished_at = s.finished_at;
    if (s.finished_at && s.submitted_at) t.total_ms = s.finished_at - s.submitted_at;
    if (s.started_at && s.submitted_at) t.queue_wait_ms = s.started_at - s.submitted_at;
    json::object o{{"id", s.id},           {"state", jobs::to_string(s.state)}, {"attempt", s.attempt},
                   {"worker", s.worker},   {"timing", jobs::to_json(t)},        {"output", nullptr},
                   {"stdout", ""},         {"stderr", ""}};
    if (!s.error.empty()) o["error"] = jobs::to_json(s.error);
    return json::serialize(o);
}

// After a result was written: erase the job (marker or tombstone), unless it
// is gone or no longer finished.
awaitable<void> erase_after_read(frontend_app& app, std::string id) {
    auto& svc = app.svc();
    auto s = svc.store.view().get(id);
    if (!s || !jobs::is_terminal(s->state)) co_return;
    auto erased = co_await erase_job(app, *s, svc.clk.now());
    if (!erased) app.log().warn("job.erase_failed", {{"job", id}, {"error", erased.error().message()}});
}

awaitable<http::response> get_result(request_context& c) {
    auto& app = c.app;
    auto& svc = app.svc();
    const auto& id = c.params.at("id");
    bool keep = false;
    if (auto k = c.req.query_param("keep")) {
        auto b = parse_bool(*k);
        if (!b) co_return make_problem(problems::invalid_request, "keep must be true or false");
        keep = *b;
    }
    std::chrono::seconds wait{0};
    if (auto w = c.req.query_param("wait")) {
        auto n = parse_int<long>(*w);
        if (!n || *n < 0 || *n > app.settings().max_wait.count())
            co_return make_problem(problems::invalid_request,
                                   "wait must be a whole number of seconds from 0 to " +
                                       std::to_string(app.settings().max_wait.count()));
        wait = std::chrono::seconds(*n);
    }
    const auto& view = svc.store.view();
    if (!can_see(*c.who, view.owner_of(id))) co_return make_problem(problems::not_found, "no such job");

    auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
        auto st = view.state_of(id);
        if (!st) co_return make_problem(problems::not_found, "no such job");  // erased meanwhile
        if (jobs::is_terminal(*st)) break;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            co_return make_problem(problems::not_finished, "the job is " + std::string(jobs::to_string(*st)),
                                   json::object{{"state", jobs::to_string(*st)}});
        co_await svc.store.wait_change(id, left);
    }
    std::string body;
    if (auto text = view.result_json(id)) body = std::move(*text);
    else body = synthesized_result(*view.get(id));

    auto res = http::response::text(200, std::move(body), "application/json");
    // Erase only once the result was written to the client: a handler
    // deadline, a failed write or a client that went away leave the job (and
    // its unread result) in place.
    if (!keep) res.on_written = [&app, id = std::string(id)] { app.spawn(erase_after_read(app, id)); };
    co_return res;
}

awaitable<http::response> list_jobs(request_context& c) {
    const auto& set = c.app.settings();
    std::optional<jobs::job_state> state;
    if (auto s = c.req.query_param("state")) {
        state = jobs::parse_job_state(*s);
        if (!state)
            co_return make_problem(problems::invalid_request,
                                   "state must be one of queued, running, succeeded, failed, timed_out, cancelled");
    }
    std::size_t limit = set.default_list_limit;
    if (auto l = c.req.query_param("limit")) {
        auto n = parse_int<std::size_t>(*l);
        if (!n || *n < 1 || *n > set.max_list_limit)
            co_return make_problem(problems::invalid_request,
                                   "limit must be from 1 to " + std::to_string(set.max_list_limit));
        limit = *n;
    }
    std::string_view cursor;
    if (auto cur = c.req.query_param("cursor")) {
        if (!jobs::job_view::is_valid_cursor(*cur)) co_return make_problem(problems::invalid_request, "bad cursor");
        cursor = *cur;
    }
    auto page = c.app.svc().store.view().list(c.who->subject(), state, limit, cursor);
    json::array items;
    items.reserve(page.items.size());
    for (const auto& s : page.items) items.push_back(job_json(s));
    json::object body{{"items", std::move(items)}};
    body["next_cursor"] = page.next_cursor.empty() ? json::value(nullptr) : json::value(page.next_cursor);
    co_return http::response::json(200, body);
}

awaitable<http::response> cancel_job(request_context& c) {
    auto& app = c.app;
    auto& svc = app.svc();
    const auto& id = c.params.at("id");
    const auto& view = svc.store.view();
    if (!can_see(*c.who, view.owner_of(id))) co_return make_problem(problems::not_found, "no such job");
    auto s = view.get(id);
    if (!s) co_return make_problem(problems::not_found, "no such job");
    if (jobs::is_terminal(s->state))
        co_return make_problem(problems::already_finished, "the job is " + std::string(jobs::to_string(s->state)),
                               json::object{{"state", jobs::to_string(s->state)}});
    auto now = svc.clk.now();
    cancel_request req{id, c.who->subject(), now};
    std::optional<jobs::job_status> cancelled;
    if (s->state == jobs::job_state::queued) {
        cancelled = *s;
        cancelled->state = jobs::job_state::cancelled;
        cancelled->finished_at = now;
        cancelled->updated_at = std::max(now, s->updated_at);
        cancelled->error = {"cancelled", "cancelled by " + c.who->identity.username};
    }
    auto r = co_await svc.publisher.cancel(req, cancelled ? &*cancelled : nullptr);
    if (!r) {
        app.log().warn("job.cancel_failed", {{"job", id}, {"error", r.error().message()}});
        co_return problem_from_error(errc::unavailable);
    }
    if (cancelled) svc.store.apply(*cancelled);
    auto after = view.state_of(id).value_or(jobs::job_state::cancelled);
    app.log().info("job.cancel_requested", {{"job", id}, {"by", c.who->subject()}});
    co_return http::response::json(
        202, json::object{{"id", id}, {"state", jobs::to_string(after)}, {"cancel_requested", true}, {"links", links(id)}});
}

awaitable<http::response> observer_report(request_context& c) {
    auto r = c.app.svc().observer.report();
    if (!r) co_return make_problem(problems::no_report, "no report has been published yet");
    co_return http::response::json(200, *r);
}

awaitable<http::response> get_observer_config(request_context& c) {
    auto cfg = c.app.svc().observer.config();
    // Nothing published yet: the observer runs with its defaults.
    auto checked = c.app.observer_check()(cfg ? *cfg : json::value(json::object{}));
    co_return http::response::json(200, checked.issues.empty() ? checked.normalised : *cfg);
}

awaitable<http::response> put_observer_config(request_context& c) {
    auto& app = c.app;
    if (c.req.body.size() > app.settings().max_body_bytes) co_return make_problem(problems::payload_too_large);
    if (auto ct = c.req.headers.get("Content-Type"); ct && !is_json_content_type(*ct))
        co_return make_problem(problems::unsupported_media_type, "Content-Type must be application/json");
    boost::system::error_code ec;
    auto v = json::parse(c.req.body, ec);
    if (ec) co_return invalid_job_problem({{"", "the body is not valid JSON"}}, problems::invalid_config);
    auto checked = app.observer_check()(v);
    if (!checked.issues.empty()) co_return invalid_job_problem(checked.issues, problems::invalid_config);
    auto r = co_await app.svc().observer.publish_config(checked.normalised);
    if (!r) {
        app.log().warn("observer.config_publish_failed", {{"error", r.error().message()}});
        co_return problem_from_error(errc::unavailable);
    }
    app.log().info("observer.config_changed", {{"by", c.who->subject()}});
    co_return http::response::json(200, checked.normalised);
}

constexpr std::array routes{
    route{"GET", "/healthz", access::public_, healthz, "healthz"},
    route{"GET", "/readyz", access::public_, readyz, "readyz"},
    route{"GET", "/metrics", access::public_, metrics, "metrics"},
    route{"GET", "/openapi.json", access::public_, openapi, "openapi"},
    route{"POST", "/v1/jobs", access::user, submit_job, "submitJob"},
    route{"GET", "/v1/jobs", access::user, list_jobs, "listJobs"},
    route{"GET", "/v1/jobs/{id}", access::user, get_job, "getJob"},
    route{"DELETE", "/v1/jobs/{id}", access::user, cancel_job, "cancelJob"},
    route{"GET", "/v1/jobs/{id}/result", access::user, get_result, "getJobResult"},
    route{"GET", "/v1/observer/report", access::user, observer_report, "getObserverReport"},
    route{"GET", "/v1/observer/config", access::admin, get_observer_config, "getObserverConfig"},
    route{"PUT", "/v1/observer/config", access::admin, put_observer_config, "putObserverConfig"},
    route{"GET", "/v1/ws", access::user, nullptr, "websocket", true},
    route{"GET", "/v1/bench/hello", access::public_, bench_hello, "benchHello"},
};

}  // namespace

std::span<const route> route_table() { return routes; }

bool match_path(std::string_view pattern, std::string_view path, std::map<std::string, std::string, std::less<>>& params) {
    params.clear();
    while (!pattern.empty() || !path.empty()) {
        if (pattern.empty() || path.empty() || pattern.front() != '/' || path.front() != '/') return false;
        pattern.remove_prefix(1);
        path.remove_prefix(1);
        auto pe = pattern.find('/');
        auto se = path.find('/');
        auto pseg = pattern.substr(0, pe);
        auto sseg = path.substr(0, se);
        if (pseg.size() >= 2 && pseg.front() == '{' && pseg.back() == '}') {
            if (sseg.empty()) return false;
            params.emplace(std::string(pseg.substr(1, pseg.size() - 2)), std::string(sseg));
        } else if (pseg != sseg) {
            return false;
        }
        pattern = pe == std::string_view::npos ? std::string_view() : pattern.substr(pe);
        path = se == std::string_view::npos ? std::string_view() : path.substr(se);
    }
    return true;
}

json::object job_json(const jobs::job_status& s) {
    json::object o{{"id", s.id},
                   {"state", jobs::to_string(s.state)},
                   {"attempt", s.attempt},
                   {"owner", json::object{{"sub", s.owner.subject}, {"username", s.owner.username}}},
                   {"submitted_at", s.submitted_at},
                   {"updated_at", s.updated_at},
                   {"repo", jobs::to_json(s.repo)},
                   {"delivery", jobs::to_string(s.delivery)},
                   {"tags", json::array(s.tags.begin(), s.tags.end())}};
    o["started_at"] = s.started_at ? json::value(s.started_at) : json::value(nullptr);
    o["finished_at"] = s.finished_at ? json::value(s.finished_at) : json::value(nullptr);
    o["worker"] = s.worker.empty() ? json::value(nullptr) : json::value(s.worker);
    o["error"] = s.error.empty() ? json::value(nullptr) : json::value(jobs::to_json(s.error));
    if (!s.idempotency_key.empty()) o["idempotency_key"] = s.idempotency_key;
    o["links"] = links(s.id);
    return o;
}

observer_params_check default_observer_validator(const json::value& v) {
    observer_params_check out;
    if (!v.is_object()) {
        out.issues.push_back({"", "the observer parameters must be a JSON object"});
        return out;
    }
    json::object o = v.get_object();
    for (const auto& [k, val] : o) {
        if (k == "v") continue;
        if (!val.is_number() && !val.is_bool())
            out.issues.push_back({"/" + std::string(k), "must be a number"});
        else if (val.is_number() && val.to_number<double>() < 0)
            out.issues.push_back({"/" + std::string(k), "must not be negative"});
    }
    o["v"] = 1;
    out.normalised = std::move(o);
    return out;
}

frontend_app::frontend_app(frontend_settings settings, services svc, faasd::logger log, observer_validator check)
    : settings_(std::move(settings)),
      svc_(std::move(svc)),
      log_(std::move(log)),
      observer_check_(std::move(check)),
      limiter_(settings_.submit_rate, settings_.submit_burst),
      background_done_(svc_.store.executor(), asio::steady_timer::time_point::max()) {}

void frontend_app::spawn(awaitable<void> task) {
    ++background_;
    asio::co_spawn(svc_.store.executor(), std::move(task), [this](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                log_.error("frontend.task_failed", {{"error", x.what()}});
            } catch (...) {
                log_.error("frontend.task_failed");
            }
        }
        --background_;
        background_done_.cancel();
    });
}

awaitable<bool> frontend_app::wait_background(std::function<bool()> done, std::chrono::milliseconds max) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer limit(co_await asio::this_coro::executor, max);
    while (!done()) {
        auto r = co_await (background_done_.async_wait(asio::as_tuple(asio::use_awaitable)) ||
                           limit.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (r.index() == 1) co_return done();
    }
    co_return true;
}

awaitable<std::variant<caller, http::response>> frontend_app::authenticate(std::optional<std::string_view> token,
                                                                           access needed) {
    if (!token || token->empty()) co_return unauthorized_problem(settings_.realm, false);
    auto who = co_await svc_.auth.authenticate(*token);
    if (!who) {
        if (who.error() == make_error_code(errc::unavailable)) co_return problem_from_error(errc::unavailable);
        co_return unauthorized_problem(settings_.realm, true);
    }
    if (needed == access::admin && !who->is_admin())
        co_return make_problem(problems::forbidden, "this needs the faas-admin role");
    if (needed == access::user && !who->is_user())
        co_return make_problem(problems::forbidden, "this needs the faas-user role");
    co_return std::move(*who);
}

std::optional<std::string_view> bearer_token(std::optional<std::string_view> header) {
    if (!header) return std::nullopt;
    auto h = *header;
    if (h.size() < 7) return std::string_view();
    std::string scheme(h.substr(0, 7));
    for (auto& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (scheme != "bearer ") return std::string_view();
    auto t = h.substr(7);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    return t;
}

awaitable<http::response> frontend_app::invoke(const route& r, const http::request& req,
                                               std::map<std::string, std::string, std::less<>> params) {
    http::response res;
    try {
        request_context ctx{req, std::move(params), std::nullopt, *this};
        if (r.who != access::public_) {
            auto token = bearer_token(req.headers.get("Authorization"));
            auto a = co_await authenticate(token, r.who);
            if (auto* failed = std::get_if<http::response>(&a)) co_return std::move(*failed);
            ctx.who = std::move(std::get<caller>(a));
        }
        res = co_await r.fn(ctx);
    } catch (const std::exception& e) {
        log_.error("http.handler_failed", {{"route", r.name}, {"error", e.what()}});
        res = make_problem(problems::internal);
    }
    co_return res;
}

awaitable<dispatch_result> frontend_app::handle(const http::request& req) {
    dispatch_result out;
    std::map<std::string, std::string, std::less<>> params;
    const route* found = nullptr;
    std::string allow;
    for (const auto& r : routes) {
        if (r.websocket || !match_path(r.pattern, req.path, params)) continue;  // the server upgrades GET /v1/ws
        if (r.method == req.method) {
            found = &r;
            break;
        }
        allow += (allow.empty() ? "" : ", ") + std::string(r.method);
    }
    if (!found) {
        if (!allow.empty()) {
            out.res = make_problem(problems::method_not_allowed);
            out.res.headers.set("Allow", allow);
            out.route = "method_not_allowed";
        } else {
            out.res = make_problem(problems::not_found);
        }
        co_return out;
    }
    out.route = found->name;
    out.res = co_await invoke(*found, req, std::move(params));
    co_return out;
}

}  // namespace faasd::frontend
