#include <faasd/frontend/ws.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace faasd::frontend {
namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

template <class F>
void for_each_item(std::string_view header, F f) {
    while (!header.empty()) {
        auto comma = header.find(',');
        f(trim(header.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
}

std::string event_text(const json::object& o) { return json::serialize(o); }

std::string error_text(std::string_view code, std::string_view message, std::string_view id = {}) {
    json::object o{{"type", "error"}, {"code", code}, {"message", message}};
    if (!id.empty()) o["id"] = id;
    return json::serialize(o);
}

}  // namespace

std::optional<ws_client_message> parse_ws_message(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto& o = v.get_object();
    auto t = o.find("type");
    if (t == o.end() || !t->value().is_string()) return std::nullopt;
    std::string_view type = t->value().get_string();
    ws_client_message m;
    if (type == "ping") {
        m.type = ws_client_message::kind::ping;
        return m;
    }
    if (type == "auth") {
        auto tok = o.find("token");
        if (tok == o.end() || !tok->value().is_string() || tok->value().get_string().empty()) return std::nullopt;
        m.type = ws_client_message::kind::auth;
        m.token = std::string(tok->value().get_string());
        return m;
    }
    if (type == "subscribe" || type == "unsubscribe") {
        m.type = type == "subscribe" ? ws_client_message::kind::subscribe : ws_client_message::kind::unsubscribe;
        if (auto a = o.find("all"); a != o.end()) {
            if (!a->value().is_bool()) return std::nullopt;
            m.all = a->value().get_bool();
        }
        if (auto ids = o.find("ids"); ids != o.end()) {
            if (!ids->value().is_array()) return std::nullopt;
            for (const auto& e : ids->value().get_array()) {
                if (!e.is_string() || e.get_string().empty() || e.get_string().size() > 64) return std::nullopt;
                m.ids.emplace_back(e.get_string());
            }
        }
        if (!m.all && m.ids.empty()) return std::nullopt;
        return m;
    }
    return std::nullopt;
}

std::optional<std::string> token_from_subprotocols(std::string_view header) {
    std::optional<std::string> out;
    for_each_item(header, [&](std::string_view item) {
        if (!out && item.size() > ws_token_prefix.size() && item.substr(0, ws_token_prefix.size()) == ws_token_prefix)
            out = std::string(item.substr(ws_token_prefix.size()));
    });
    return out;
}

bool offers_ws_subprotocol(std::string_view header) {
    bool found = false;
    for_each_item(header, [&](std::string_view item) { found = found || item == ws_subprotocol; });
    return found;
}

awaitable<upgrade_auth> authenticate_upgrade(frontend_app& app, std::optional<std::string> authorization,
                                             std::string offered_subprotocols) {
    std::optional<std::string> token;
    if (authorization) {
        // A header with another scheme is a missing token: 401, as on every route.
        token = std::string(bearer_token(*authorization).value_or(std::string_view()));
    } else {
        token = token_from_subprotocols(offered_subprotocols);
    }
    if (!token) co_return std::monostate{};
    auto r = co_await app.authenticate(*token, access::user);
    if (auto* who = std::get_if<caller>(&r)) co_return std::move(*who);
    co_return std::move(std::get<http::response>(r));
}

// ---- hub -----------------------------------------------------------------------

ws_hub::ws_hub(job_store& store, ws_settings settings) : store_(store), settings_(settings) {
    listener_ = store_.add_listener([this](const job_change& c) { on_change(c); });
}

ws_hub::~ws_hub() { store_.remove_listener(listener_); }

void ws_hub::attach(session& s) { sessions_.insert(&s); }

void ws_hub::set_live(bool live) {
    if (live_ == live) return;
    live_ = live;
    if (!live) return;
    // Coalesce what was held back: one event per followed job, its state now.
    const auto& view = store_.view();
    for (auto* s : std::vector<session*>(sessions_.begin(), sessions_.end())) {
        for (const auto& id : s->ids) {
            auto owner = view.owner_of(id);
            if (owner.empty() || (owner != s->subject && !s->admin)) continue;
            if (auto st = view.get(id)) deliver(*s, event_text(json::object{{"type", "job"}, {"job", job_json(*st)}}));
        }
    }
}

void ws_hub::detach(session& s) {
    set_all(s, false);
    for (const auto& id : std::set<std::string, std::less<>>(s.ids)) remove_id(s, id);
    sessions_.erase(&s);
}

void ws_hub::set_all(session& s, bool all) {
    if (s.all == all) return;
    s.all = all;
    if (all) {
        all_by_subject_.emplace(s.subject, &s);
    } else {
        auto [b, e] = all_by_subject_.equal_range(s.subject);
        for (auto it = b; it != e; ++it)
            if (it->second == &s) {
                all_by_subject_.erase(it);
                break;
            }
    }
}

void ws_hub::add_id(session& s, const std::string& id) {
    if (s.ids.insert(id).second) by_id_.emplace(id, &s);
}

void ws_hub::remove_id(session& s, const std::string& id) {
    if (s.ids.erase(id) == 0) return;
    auto [b, e] = by_id_.equal_range(id);
    for (auto it = b; it != e; ++it)
        if (it->second == &s) {
            by_id_.erase(it);
            break;
        }
}

void ws_hub::deliver(session& s, std::string text) {
    if (s.closing) return;
    if (!s.conn->send(std::move(text))) {
        s.closing = true;
        ++slow_closes_;
        s.conn->close(ws_close::slow_consumer, "too slow: outgoing queue full");
        return;
    }
    ++sent_;
}

void ws_hub::close_all(std::string reason) {
    for (auto* s : sessions_)
        if (!s->closing) {
            s->closing = true;
            s->conn->close(ws_close::going_away, reason);
        }
}

void ws_hub::on_change(const job_change& c) {
    if (!live_) return;  // replaying the state topic: set_live(true) sends the outcome
    // Who gets it: the owner's "all" subscribers, and id subscribers that may see the job.
    std::vector<session*> targets;
    if (!c.owner.empty()) {
        auto [b, e] = all_by_subject_.equal_range(c.owner);
        for (auto it = b; it != e; ++it) targets.push_back(it->second);
    }
    {
        auto [b, e] = by_id_.equal_range(c.id);
        for (auto it = b; it != e; ++it) {
            auto* s = it->second;
            bool visible = !c.owner.empty() && (s->subject == c.owner || s->admin);
            if (visible && std::find(targets.begin(), targets.end(), s) == targets.end()) targets.push_back(s);
        }
    }
    if (targets.empty()) return;
    std::string text = c.status ? event_text(json::object{{"type", "job"}, {"job", job_json(*c.status)}})
                                : event_text(json::object{{"type", "erased"}, {"id", c.id}});
    for (auto* s : targets) deliver(*s, text);
}

// ---- session -----------------------------------------------------------------------

namespace {

json::object welcome(const caller& who) {
    return {{"type", "welcome"},
            {"sub", who.subject()},
            {"username", who.identity.username},
            {"expires_at", who.expires_at}};
}

// Authenticates a token for the WebSocket: the caller, or a close code and reason.
awaitable<std::variant<caller, std::pair<std::uint16_t, std::string>>> ws_authenticate(frontend_app& app,
                                                                                      std::string_view token) {
    auto r = co_await app.authenticate(token, access::user);
    if (auto* who = std::get_if<caller>(&r)) co_return std::move(*who);
    auto status = std::get<http::response>(r).status;
    if (status == 403) co_return std::pair<std::uint16_t, std::string>{ws_close::forbidden, "the faas-user role is needed"};
    if (status == 503) co_return std::pair<std::uint16_t, std::string>{ws_close::unavailable, "try again later"};
    co_return std::pair<std::uint16_t, std::string>{ws_close::unauthorized, "authentication failed"};
}

}  // namespace

awaitable<void> run_ws_session(ws_connection& conn, std::optional<caller> authenticated, frontend_app& app,
                               ws_hub& hub) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    const auto& settings = hub.settings();
    auto& svc = app.svc();

    // 1. Authenticated at the upgrade, or by the first message (a short deadline:
    //    a tokenless socket must not hold a connection for long).
    if (!authenticated) {
        asio::steady_timer t(ex, settings.auth_timeout);
        auto r = co_await (conn.read() || t.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (r.index() == 1) {
            conn.close(ws_close::unauthorized, "authentication timeout");
            co_return;
        }
        auto& first = std::get<0>(r);
        if (!first) co_return;
        auto m = parse_ws_message(*first);
        if (!m || m->type != ws_client_message::kind::auth) {
            conn.close(ws_close::unauthorized, "send {\"type\":\"auth\",\"token\":...} first");
            co_return;
        }
        auto a = co_await ws_authenticate(app, m->token);
        if (auto* failed = std::get_if<std::pair<std::uint16_t, std::string>>(&a)) {
            conn.close(failed->first, failed->second);
            co_return;
        }
        authenticated = std::move(std::get<caller>(a));
    }
    caller who = std::move(*authenticated);

    ws_hub::session s;
    s.conn = &conn;
    s.subject = who.subject();
    s.admin = who.is_admin();
    hub.attach(s);
    struct detach_guard {
        ws_hub& h;
        ws_hub::session& s;
        ~detach_guard() { h.detach(s); }
    } guard{hub, s};
    app.log().debug("ws.opened", {{"user", s.subject}});
    hub.deliver(s, event_text(welcome(who)));

    // 2. Serve messages until the peer leaves, the token expires or we close.
    std::size_t bad = 0;
    asio::steady_timer expiry(ex);
    while (!s.closing) {
        auto left = std::chrono::milliseconds(who.expires_at * 1000 - svc.clk.now());
        if (left.count() <= 0) {
            s.closing = true;
            conn.close(ws_close::token_expired, "token expired");
            break;
        }
        expiry.expires_after(left);
        auto r = co_await (conn.read() || expiry.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (r.index() == 1) {
            auto [ec] = std::get<1>(r);
            s.closing = true;
            if (ec) conn.close(ws_close::going_away, "shutting down");
            else conn.close(ws_close::token_expired, "token expired");
            break;
        }
        auto& text = std::get<0>(r);
        if (!text || s.closing) break;
        auto m = parse_ws_message(*text);
        if (!m) {
            hub.deliver(s, error_text("bad-message",
                                      "expected {\"type\": \"subscribe\"|\"unsubscribe\"|\"auth\"|\"ping\", ...}"));
            if (++bad >= settings.max_bad_messages) {
                s.closing = true;
                conn.close(ws_close::bad_message, "too many malformed messages");
            }
            continue;
        }
        switch (m->type) {
            case ws_client_message::kind::ping:
                hub.deliver(s, R"({"type":"pong"})");
                break;
            case ws_client_message::kind::auth: {
                auto again = co_await ws_authenticate(app, m->token);
                if (auto* failed = std::get_if<std::pair<std::uint16_t, std::string>>(&again)) {
                    s.closing = true;
                    conn.close(failed->first, failed->second);
                    break;
                }
                auto& fresh = std::get<caller>(again);
                if (fresh.subject() != who.subject()) {
                    s.closing = true;
                    conn.close(ws_close::forbidden, "a session cannot change its user");
                    break;
                }
                who = std::move(fresh);
                s.admin = who.is_admin();
                hub.deliver(s, event_text(welcome(who)));
                break;
            }
            case ws_client_message::kind::subscribe: {
                json::object ack{{"type", "subscribed"}};
                if (m->all) {
                    hub.set_all(s, true);
                    ack["all"] = true;
                }
                json::array accepted;
                std::vector<std::string> snapshots;
                for (const auto& id : m->ids) {
                    if (s.ids.size() >= settings.max_subscriptions && !s.ids.contains(id)) {
                        hub.deliver(s, error_text("too-many-subscriptions",
                                                  "at most " + std::to_string(settings.max_subscriptions) +
                                                      " job ids per connection",
                                                  id));
                        continue;
                    }
                    // Unknown ids are accepted too (the job may not have reached this
                    // replica yet); events come only for jobs the caller may see.
                    hub.add_id(s, id);
                    accepted.push_back(json::value(id));
                    const auto& view = svc.store.view();
                    auto owner = view.owner_of(id);
                    if (hub.live() && !owner.empty() && (owner == s.subject || s.admin))  // else set_live sends it
                        if (auto st = view.get(id))
                            snapshots.push_back(event_text(json::object{{"type", "job"}, {"job", job_json(*st)}}));
                }
                if (!m->ids.empty()) ack["ids"] = std::move(accepted);
                hub.deliver(s, event_text(ack));
                for (auto& snap : snapshots) hub.deliver(s, std::move(snap));
                break;
            }
            case ws_client_message::kind::unsubscribe: {
                if (m->all) hub.set_all(s, false);
                for (const auto& id : m->ids) hub.remove_id(s, id);
                json::object ack{{"type", "unsubscribed"}};
                if (m->all) ack["all"] = true;
                if (!m->ids.empty()) ack["ids"] = json::array(m->ids.begin(), m->ids.end());
                hub.deliver(s, event_text(ack));
                break;
            }
        }
    }
    app.log().debug("ws.closed", {{"user", s.subject}});
}

}  // namespace faasd::frontend
