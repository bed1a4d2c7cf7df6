// The CLI client subcommands: login, submit, status, result, list, cancel, watch.
// Exit statuses (docs/frontend.md, "CLI"): 0 success (a finished job succeeded),
// 1 the job failed / timed out / was cancelled, 2 usage or configuration,
// 3 no such job, 4 not finished (or --wait timed out), 5 authentication,
// 6 the server or network failed.

#include "client/client.hpp"
#include "client/transport.hpp"
#include "common/command.hpp"

#include <faasd/config/config.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

namespace faasd::roles {
namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using namespace faasd::client;

namespace {

enum exit_code : int {
    ok = 0,
    job_failed = 1,
    usage = 2,
    not_found = 3,
    not_finished = 4,
    auth_failed = 5,
    server_failed = 6,
};

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void err(const std::string& msg) { std::fprintf(stderr, "faasd: %s\n", msg.c_str()); }

std::string trim_slash(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

/// Runs a command coroutine on a fresh io_context and returns its exit status.
int run_command(std::function<awaitable<int>()> f) {
    asio::io_context ioc;
    int status = server_failed;
    asio::co_spawn(ioc, f(), [&](std::exception_ptr e, int s) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                err(std::string("unexpected error: ") + ex.what());
            }
            status = server_failed;
        } else {
            status = s;
        }
    });
    ioc.run();
    return status;
}

/// The message of a problem+json answer ("title: detail"), or the status.
std::string problem_text(const http_reply& r) {
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (!ec && v.is_object()) {
        const auto& o = v.get_object();
        std::string s;
        if (auto t = o.find("title"); t != o.end() && t->value().is_string()) s = std::string(t->value().get_string());
        if (auto d = o.find("detail"); d != o.end() && d->value().is_string()) s += (s.empty() ? "" : ": ") + std::string(d->value().get_string());
        if (auto es = o.find("errors"); es != o.end() && es->value().is_array())
            for (const auto& e : es->value().get_array())
                if (e.is_object() && e.get_object().contains("pointer"))
                    s += "\n  " + std::string(e.at("pointer").as_string()) + ": " + std::string(e.at("detail").as_string());
        if (!s.empty()) return "HTTP " + std::to_string(r.status) + " " + s;
    }
    return "HTTP " + std::to_string(r.status);
}

int exit_for_status(int status) {
    if (status == 401) return auth_failed;
    if (status == 403) return auth_failed;
    if (status == 404) return not_found;
    if (status == 409) return not_finished;
    if (status >= 500) return server_failed;
    return usage;
}

// Builders kept out of coroutines (GCC 12 rejects some braced initialisers
// of string literals inside coroutine bodies: "array used as initializer").
using form = std::vector<std::pair<std::string, std::string>>;
form form_refresh(const std::string& client_id, const std::string& refresh_token) {
    return {{"grant_type", "refresh_token"}, {"client_id", client_id}, {"refresh_token", refresh_token}};
}
form form_device_start(const std::string& client_id) { return {{"client_id", client_id}, {"scope", "openid"}}; }
form form_device_poll(const std::string& client_id, const std::string& device_code) {
    return {{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"}, {"client_id", client_id}, {"device_code", device_code}};
}
form form_password(const std::string& client_id, const std::string& user, const std::string& password) {
    return {{"grant_type", "password"}, {"client_id", client_id}, {"username", user}, {"password", password}, {"scope", "openid"}};
}
std::vector<std::string> ws_protocols() { return {"faasd.v1"}; }
std::string subscribe_message(const std::vector<std::string>& ids) {
    json::object sub{{"type", "subscribe"}};
    if (ids.empty()) sub["all"] = true;
    else sub["ids"] = json::array(ids.begin(), ids.end());
    return json::serialize(sub);
}
std::string list_json(const json::array& items, const std::string& cursor) {
    json::object out{{"items", items}};
    out["next_cursor"] = cursor.empty() ? json::value(nullptr) : json::value(cursor);
    return json::serialize(out);
}

// ---- tokens ---------------------------------------------------------------------------

struct oidc_endpoints {
    std::string token;
    std::string device;
};

awaitable<result<oidc_endpoints>> discover(const std::string& issuer, std::chrono::milliseconds timeout) {
    auto doc = co_await http_get(trim_slash(issuer) + "/.well-known/openid-configuration", timeout);
    if (!doc) co_return doc.error();
    boost::system::error_code ec;
    auto v = json::parse(*doc, ec);
    if (ec || !v.is_object()) co_return errc::bad_message;
    oidc_endpoints e;
    const auto& o = v.get_object();
    if (auto t = o.find("token_endpoint"); t != o.end() && t->value().is_string()) e.token = std::string(t->value().get_string());
    if (auto d = o.find("device_authorization_endpoint"); d != o.end() && d->value().is_string())
        e.device = std::string(d->value().get_string());
    if (e.token.empty()) co_return errc::bad_message;
    co_return e;
}

awaitable<result<http_reply>> post_form(const std::string& url, const std::vector<std::pair<std::string, std::string>>& fields,
                                        std::chrono::milliseconds timeout) {
    header_list h;
    h.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    h.emplace_back("Accept", "application/json");
    co_return co_await http_request("POST", url, std::move(h), form_encode(fields), timeout);
}

/// The bearer token to use: --token / FAASD_TOKEN, else the login cache (refreshed if needed).
awaitable<result<std::string>> resolve_token(const client_options& o, std::chrono::milliseconds timeout, bool force_refresh = false) {
    if (!o.token.empty()) co_return o.token;
    auto path = token_cache_path();
    auto t = load_token(path);
    if (!t) {
        err("not logged in: run `faasd login`, or set FAASD_TOKEN (e.g. FAASD_TOKEN=$(faasd dev token alice))");
        co_return errc::unauthorized;
    }
    if (!force_refresh && now_s() < t->expires_at - 10) co_return t->access_token;
    if (t->refresh_token.empty() || t->token_endpoint.empty() ||
        (t->refresh_expires_at != 0 && now_s() >= t->refresh_expires_at - 10)) {
        err("the login has expired: run `faasd login` again");
        co_return errc::unauthorized;
    }
    auto f = form_refresh(t->client_id, t->refresh_token);
    auto r = co_await post_form(t->token_endpoint, f, timeout);
    if (!r || r->status != 200) {
        err("could not refresh the login (" + (r ? std::to_string(r->status) : std::string("unreachable")) +
            "): run `faasd login` again");
        co_return errc::unauthorized;
    }
    auto fresh = parse_token_response(r->body, now_s());
    if (!fresh) co_return errc::unauthorized;
    fresh->issuer = t->issuer;
    fresh->client_id = t->client_id;
    fresh->token_endpoint = t->token_endpoint;
    if (fresh->refresh_token.empty()) fresh->refresh_token = t->refresh_token;
    (void)save_token(path, *fresh);
    co_return fresh->access_token;
}

std::chrono::milliseconds timeout_of(const client_options& o) {
    auto d = config::parse_duration(o.timeout);
    return d ? *d : std::chrono::seconds(30);
}

/// An API call with the resolved token.
awaitable<result<http_reply>> api(const client_options& o, const std::string& method, const std::string& path,
                                  std::string body = {}, header_list extra = {}) {
    auto timeout = timeout_of(o);
    auto tok = co_await resolve_token(o, timeout);
    if (!tok) co_return tok.error();
    header_list h = std::move(extra);
    h.emplace_back("Authorization", "Bearer " + *tok);
    h.emplace_back("Accept", "application/json");
    if (!body.empty()) h.emplace_back("Content-Type", "application/json");
    auto r = co_await http_request(method, trim_slash(o.server) + path, std::move(h), std::move(body), timeout);
    if (!r) {
        err("cannot reach the frontend at " + o.server + " (" + std::string(to_string(static_cast<errc>(r.error().value()))) + ")");
        co_return r.error();
    }
    co_return r;
}

int fail_from(const result<http_reply>& r) {
    if (!r) return r.error() == make_error_code(errc::unauthorized) ? auth_failed : server_failed;
    err(problem_text(*r));
    return exit_for_status(r->status);
}

void print_json(const std::string& body) {
    std::fwrite(body.data(), 1, body.size(), stdout);
    if (body.empty() || body.back() != '\n') std::fputc('\n', stdout);
}

std::string read_secret_line(const std::string& prompt, bool echo) {
    std::string line;
    if (isatty(0)) {
        std::fprintf(stderr, "%s", prompt.c_str());
        termios old{};
        bool restore = false;
        if (!echo && tcgetattr(0, &old) == 0) {
            termios t = old;
            t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            tcsetattr(0, TCSANOW, &t);
            restore = true;
        }
        std::getline(std::cin, line);
        if (restore) {
            tcsetattr(0, TCSANOW, &old);
            std::fprintf(stderr, "\n");
        }
    } else {
        std::getline(std::cin, line);
    }
    return line;
}

// ---- commands -------------------------------------------------------------------------

struct login_opts {
    std::string issuer;
    std::string client_id = "faas-cli";
    std::string username;
    bool password_stdin = false;
    bool device = false;
    bool print_token = false;
};

awaitable<int> do_login(client_options o, login_opts l) {
    auto timeout = timeout_of(o);
    if (l.issuer.empty()) {
        err("--oidc-issuer is required (the Keycloak realm URL, e.g. http://127.0.0.1:8180/realms/faas)");
        co_return usage;
    }
    auto ep = co_await discover(l.issuer, timeout);
    if (!ep) {
        err("cannot read " + trim_slash(l.issuer) + "/.well-known/openid-configuration");
        co_return server_failed;
    }
    result<stored_token> tok = errc::unauthorized;
    if (l.device) {
        if (ep->device.empty()) {
            err("the issuer offers no device authorization endpoint");
            co_return server_failed;
        }
        auto f = form_device_start(l.client_id);
        auto r = co_await post_form(ep->device, f, timeout);
        if (!r || r->status != 200) {
            err("device authorization refused: " + (r ? problem_text(*r) : std::string("unreachable")));
            co_return auth_failed;
        }
        auto d = parse_device_authorization(r->body);
        if (!d) co_return server_failed;
        std::fprintf(stderr, "To sign in, open %s\nand enter the code %s\n",
                     d->verification_uri_complete.empty() ? d->verification_uri.c_str() : d->verification_uri_complete.c_str(),
                     d->user_code.c_str());
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer t(ex);
        auto interval = std::chrono::seconds(d->interval);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(d->expires_in);
        while (std::chrono::steady_clock::now() < deadline) {
            t.expires_after(interval);
            co_await t.async_wait(asio::use_awaitable);
            auto g = form_device_poll(l.client_id, d->device_code);
            auto p = co_await post_form(ep->token, g, timeout);
            if (!p) continue;
            if (p->status == 200) {
                tok = parse_token_response(p->body, now_s());
                break;
            }
            auto [code, desc] = parse_oauth_error(p->body);
            if (code == "authorization_pending") continue;
            if (code == "slow_down") {
                interval += std::chrono::seconds(5);
                continue;
            }
            err("sign-in failed: " + code + (desc.empty() ? "" : " (" + desc + ")"));
            co_return auth_failed;
        }
        if (!tok) {
            err("the device code expired before sign-in completed");
            co_return auth_failed;
        }
    } else {
        auto user = l.username.empty() ? read_secret_line("username: ", true) : l.username;
        std::string password;
        if (l.password_stdin) std::getline(std::cin, password);
        else password = read_secret_line("password: ", false);
        if (user.empty() || password.empty()) {
            err("username and password are needed (or use --device)");
            co_return usage;
        }
        auto f = form_password(l.client_id, user, password);
        std::fill(password.begin(), password.end(), '\0');
        auto r = co_await post_form(ep->token, f, timeout);
        for (auto& [k, v] : f)
            if (k == "password") std::fill(v.begin(), v.end(), '\0');
        if (!r) {
            err("cannot reach " + ep->token);
            co_return server_failed;
        }
        if (r->status != 200) {
            auto [code, desc] = parse_oauth_error(r->body);
            err("login refused: " + (desc.empty() ? code : desc));
            co_return auth_failed;
        }
        tok = parse_token_response(r->body, now_s());
    }
    if (!tok) co_return server_failed;
    tok->issuer = l.issuer;
    tok->client_id = l.client_id;
    tok->token_endpoint = ep->token;
    auto path = token_cache_path();
    if (!save_token(path, *tok)) {
        err("cannot write " + path.string());
        co_return server_failed;
    }
    if (l.print_token) std::printf("%s\n", tok->access_token.c_str());
    else std::fprintf(stderr, "logged in; token cached in %s (expires in %s)\n", path.string().c_str(),
                      format_duration((tok->expires_at - now_s()) * 1000).c_str());
    co_return ok;
}

/// Waits for a job's result with a long-poll loop, showing progress on a terminal.
awaitable<int> wait_result(client_options o, std::string id, bool keep, std::chrono::milliseconds max) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    bool tty = isatty(2) && !o.json;
    std::string state = "queued";
    auto start = std::chrono::steady_clock::now();
    std::optional<result<http_reply>> final_reply;

    auto poll = [&]() -> awaitable<void> {
        while (true) {
            auto left = max.count() > 0 ? max - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                                        : std::chrono::milliseconds(60'000);
            auto wait_s = std::clamp<std::int64_t>(left.count() / 1000, 0, 30);
            std::string path = "/v1/jobs/" + id + "/result?wait=" + std::to_string(wait_s) + (keep ? "&keep=true" : "");
            client_options po = o;
            po.timeout = std::to_string(wait_s + 30) + "s";
            auto r = co_await api(po, "GET", path);
            if (r && r->status == 409) {
                boost::system::error_code ec;
                auto v = json::parse(r->body, ec);
                if (!ec && v.is_object() && v.get_object().contains("state")) state = std::string(v.at("state").as_string());
                if (max.count() > 0 && std::chrono::steady_clock::now() - start >= max) {
                    final_reply = std::move(r);
                    co_return;
                }
                continue;
            }
            final_reply = std::move(r);
            co_return;
        }
    };
    auto spinner = [&]() -> awaitable<void> {
        asio::steady_timer t(ex);
        for (std::size_t tick = 0;; ++tick) {
            if (tty) {
                auto el = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
                std::fprintf(stderr, "\r\033[K%s", progress_line(tick, state, el).c_str());
                std::fflush(stderr);
            }
            t.expires_after(std::chrono::milliseconds(120));
            co_await t.async_wait(asio::use_awaitable);
        }
    };
    co_await (poll() || spinner());
    if (tty) std::fprintf(stderr, "\r\033[K");
    auto& r = *final_reply;
    if (!r || r->status != 200) {
        if (r && r->status == 409) {
            err("still " + state + " after " + format_duration(max.count()));
            co_return not_finished;
        }
        co_return fail_from(r);
    }
    if (o.json) print_json(r->body);
    boost::system::error_code ec;
    auto v = json::parse(r->body, ec);
    if (ec || !v.is_object()) co_return server_failed;
    if (!o.json) std::fputs(describe_result(v.get_object()).c_str(), stdout);
    co_return exit_status_for(v.at("state").as_string());
}

struct submit_opts {
    std::string file;
    submit_flags flags;
    std::string idempotency_key;
    bool wait = false;
    bool keep = false;
    std::string wait_timeout = "0";
};

awaitable<int> do_submit(client_options o, submit_opts s) {
    std::string body;
    bool has_flags = !s.flags.repo.empty();
    if (!s.file.empty()) {
        if (has_flags) {
            err("give either a job file or --repo and friends, not both");
            co_return usage;
        }
        if (s.file == "-") {
            std::stringstream ss;
            ss << std::cin.rdbuf();
            body = ss.str();
        } else {
            std::ifstream f(s.file, std::ios::binary);
            if (!f) {
                err("cannot read " + s.file);
                co_return usage;
            }
            std::stringstream ss;
            ss << f.rdbuf();
            body = ss.str();
        }
    } else {
        std::string why;
        auto o2 = body_from_flags(s.flags, why);
        if (!o2) {
            err(why);
            co_return usage;
        }
        body = json::serialize(*o2);
    }
    header_list extra;
    if (!s.idempotency_key.empty()) extra.emplace_back("Idempotency-Key", s.idempotency_key);
    auto r = co_await api(o, "POST", "/v1/jobs", std::move(body), std::move(extra));
    if (!r || r->status != 202) co_return fail_from(r);
    boost::system::error_code ec;
    auto v = json::parse(r->body, ec);
    if (ec || !v.is_object()) co_return server_failed;
    std::string id(v.at("id").as_string());
    if (!s.wait) {
        if (o.json) print_json(r->body);
        else std::printf("%s %s%s\n", id.c_str(), std::string(v.at("state").as_string()).c_str(),
                         r->header("Idempotent-Replayed") ? " (existing job for this idempotency key)" : "");
        co_return ok;
    }
    if (!o.json) std::fprintf(stderr, "submitted %s\n", id.c_str());
    auto max = config::parse_duration(s.wait_timeout);
    co_return co_await wait_result(o, id, s.keep, max ? *max : std::chrono::milliseconds(0));
}

awaitable<int> do_status(client_options o, std::string id) {
    auto r = co_await api(o, "GET", "/v1/jobs/" + id);
    if (!r || r->status != 200) co_return fail_from(r);
    if (o.json) print_json(r->body);
    else std::fputs(describe_job(json::parse(r->body).as_object()).c_str(), stdout);
    co_return ok;
}

awaitable<int> do_result(client_options o, std::string id, bool wait, bool keep, std::string wait_timeout) {
    if (wait) {
        auto max = config::parse_duration(wait_timeout);
        co_return co_await wait_result(o, id, keep, max ? *max : std::chrono::milliseconds(0));
    }
    auto r = co_await api(o, "GET", "/v1/jobs/" + id + "/result" + (keep ? "?keep=true" : ""));
    if (r && r->status == 409) {
        auto v = json::parse(r->body);
        err("not finished yet: " + std::string(v.at("state").as_string()) + " (use --wait)");
        co_return not_finished;
    }
    if (!r || r->status != 200) co_return fail_from(r);
    if (o.json) print_json(r->body);
    auto v = json::parse(r->body).as_object();
    if (!o.json) std::fputs(describe_result(v).c_str(), stdout);
    co_return exit_status_for(v.at("state").as_string());
}

awaitable<int> do_list(client_options o, std::string state, int limit, bool all) {
    std::string cursor;
    json::array items;
    do {
        std::string path = "/v1/jobs?limit=" + std::to_string(limit);
        if (!state.empty()) path += "&state=" + state;
        if (!cursor.empty()) path += "&cursor=" + cursor;
        auto r = co_await api(o, "GET", path);
        if (!r || r->status != 200) co_return fail_from(r);
        auto v = json::parse(r->body).as_object();
        for (auto& i : v.at("items").as_array()) items.push_back(i);
        cursor = v.at("next_cursor").is_string() ? std::string(v.at("next_cursor").as_string()) : std::string();
    } while (all && !cursor.empty());
    if (o.json) {
        print_json(list_json(items, cursor));
    } else {
        std::fputs(jobs_table(items).c_str(), stdout);
        if (!cursor.empty()) std::fprintf(stderr, "(more: --all)\n");
    }
    co_return ok;
}

awaitable<int> do_cancel(client_options o, std::string id) {
    auto r = co_await api(o, "DELETE", "/v1/jobs/" + id);
    if (!r || r->status != 202) co_return fail_from(r);
    if (o.json) print_json(r->body);
    else std::printf("%s cancel requested (now %s)\n", id.c_str(),
                     std::string(json::parse(r->body).at("state").as_string()).c_str());
    co_return ok;
}

awaitable<int> do_watch(client_options o, std::vector<std::string> ids) {
    auto timeout = timeout_of(o);
    watch_tracker tracker(ids);  // with ids: exit once each finished or is gone
    bool refreshed = false, checked = false;
    std::string url = trim_slash(o.server) + "/v1/ws";
    while (true) {
        auto tok = co_await resolve_token(o, timeout, refreshed);
        if (!tok) co_return auth_failed;
        ws_client ws;
        header_list h;
        h.emplace_back("Authorization", "Bearer " + *tok);
        int status = 0;
        auto c = co_await ws.connect(url, std::move(h), ws_protocols(), timeout, &status);
        if (!c) {
            err(status ? "the frontend refused the WebSocket (HTTP " + std::to_string(status) + ")"
                       : "cannot reach the frontend at " + o.server);
            co_return status == 401 || status == 403 ? auth_failed : server_failed;
        }
        if (!co_await ws.write(subscribe_message(ids))) co_return server_failed;
        // Subscribed: a job that does not exist (or was already erased) would
        // never send anything, so ask for each once.
        if (!checked && !ids.empty()) {
            checked = true;
            for (const auto& id : ids) {
                auto r = co_await api(o, "GET", "/v1/jobs/" + id);
                if (r && r->status == 404) {
                    err("no such job: " + id + " (unknown, or erased)");
                    tracker.on_gone(id);
                }
            }
            if (auto done = tracker.outcome()) {
                co_await ws.close();
                co_return *done;
            }
        }
        while (auto m = co_await ws.read()) {
            boost::system::error_code ec;
            auto v = json::parse(*m, ec);
            if (ec || !v.is_object()) continue;
            const auto& e = v.get_object();
            auto type = e.contains("type") && e.at("type").is_string() ? std::string(e.at("type").as_string()) : "";
            if (type == "job") {
                const auto& j = e.at("job").as_object();
                if (o.json) print_json(json::serialize(j));
                else std::printf("%s\n", event_line(j).c_str());
                std::fflush(stdout);
                tracker.on_state(j.at("id").as_string(), j.at("state").as_string());
            } else if (type == "erased") {
                if (o.json) print_json(json::serialize(e));
                else std::printf("%s erased\n", std::string(e.at("id").as_string()).c_str());
                std::fflush(stdout);
                tracker.on_gone(e.at("id").as_string());
            } else if (type == "error" && !o.json) {
                err("server: " + std::string(e.at("message").as_string()));
            }
            if (auto done = tracker.outcome()) {
                co_await ws.close();
                co_return *done;
            }
        }
        if (ws.close_code() == 4002 && o.token.empty() && !refreshed) {
            std::fprintf(stderr, "faasd: token expired; refreshing and reconnecting\n");
            refreshed = true;
            continue;
        }
        err("the WebSocket closed (" + std::to_string(ws.close_code()) +
            (ws.close_reason().empty() ? "" : " " + ws.close_reason()) + ")");
        co_return ws.close_code() == 4002 || ws.close_code() == 4001 ? auth_failed : server_failed;
    }
}

void add_client_options(CLI::App& app, client_options& o) {
    app.add_option("--server", o.server, "Frontend base URL")->capture_default_str();
    app.add_option("--token", o.token,
                   "Bearer token to use instead of the login cache (also FAASD_TOKEN, e.g. from `faasd dev token`)");
    app.add_flag("--json", o.json, "Print the API's JSON instead of human output (default off)");
    app.add_option("--request-timeout", o.timeout, "Deadline of one HTTP request")->capture_default_str();
}

}  // namespace

void add_client_commands(CLI::App& app, command_list& out) {
    struct state {
        client_options o;
        login_opts login;
        submit_opts submit;
        std::string id;
        std::vector<std::string> ids;
        bool wait = false, keep = false, all = false;
        std::string wait_timeout = "0";
        std::string list_state;
        int limit = 20;
    };
    auto st = std::make_shared<state>();
    auto add = [&](const char* name, const char* help) {
        auto* c = app.add_subcommand(name, help);
        c->group("Client commands");
        add_client_options(*c, st->o);
        return c;
    };

    auto* login = add("login", "Sign in to Keycloak (password grant or device code) and cache the token (0600)");
    login->add_option("--oidc-issuer", st->login.issuer, "Keycloak realm URL, e.g. http://127.0.0.1:8180/realms/faas");
    login->add_option("--client-id", st->login.client_id, "Public OIDC client")->capture_default_str();
    login->add_option("--username", st->login.username, "User name (prompted when absent)");
    login->add_flag("--password-stdin", st->login.password_stdin,
                    "Read the password from standard input (default: prompt on a terminal)");
    login->add_flag("--device", st->login.device, "Use the device code flow (sign in with a browser) (default off)");
    login->add_flag("--print-token", st->login.print_token, "Also print the access token on standard output (default off)");
    out.push_back({login, {}, [st] { return run_command([st] { return do_login(st->o, st->login); }); }});

    auto* submit = add("submit", "Submit a job from a file (or - for stdin) or from flags");
    submit->add_option("file", st->submit.file, "Job description JSON file (docs/job-spec.md), or - for stdin");
    auto& f = st->submit.flags;
    submit->add_option("--repo", f.repo, "Repository URL (instead of a file)");
    submit->add_option("--ref", f.ref, "Branch or tag (default main when --commit is absent)");
    submit->add_option("--commit", f.commit, "Full commit hash");
    submit->add_option("--repo-credential", f.repo_credential, "Name of the credential to clone with");
    submit->add_option("--entry", f.entry, "Command and arguments (repeat for each argument)");
    submit->add_option("--data", f.data, "Inline JSON input");
    submit->add_option("--data-file", f.data_file, "File with the JSON input");
    submit->add_option("--timeout", f.timeout_s, "timeout_s (default: the server's)");
    submit->add_option("--delivery", f.delivery, "at-most-once | at-least-once | exactly-once (default: at-least-once)");
    submit->add_option("--retries", f.retries, "Infrastructure retries (default: the server's)");
    submit->add_option("--env", f.env, "NAME=VALUE for the function (repeatable)");
    submit->add_option("--tag", f.tags, "Tag (repeatable)");
    submit->add_option("--source", f.sources, "NAME=URL input (repeatable)");
    submit->add_option("--sink", f.sinks, "NAME=URL output, uploaded with PUT (repeatable)");
    submit->add_option("--credential-file", f.credential_files,
                       "NAME=PATH: a secret read from a file (never on the command line) (repeatable)");
    submit->add_option("--idempotency-key", st->submit.idempotency_key, "Same key within 24 h: the same job");
    submit->add_flag("--wait", st->submit.wait, "Wait for the result and print it (default off)");
    submit->add_flag("--keep", st->submit.keep, "With --wait: keep the job after reading its result (default off)");
    submit->add_option("--wait-timeout", st->submit.wait_timeout, "With --wait: give up after this long (0 = never)")
        ->capture_default_str();
    out.push_back({submit, {}, [st] { return run_command([st] { return do_submit(st->o, st->submit); }); }});

    auto* status = add("status", "Show a job's state");
    status->add_option("id", st->id, "Job id")->required();
    out.push_back({status, {}, [st] { return run_command([st] { return do_status(st->o, st->id); }); }});

    auto* result_cmd = add("result", "Print a finished job's result (then the job is erased unless --keep)");
    result_cmd->add_option("id", st->id, "Job id")->required();
    result_cmd->add_flag("--wait", st->wait, "Wait until the job finishes, with a progress indication (default off)");
    result_cmd->add_flag("--keep", st->keep, "Do not erase the job after reading the result (default off)");
    result_cmd->add_option("--wait-timeout", st->wait_timeout, "With --wait: give up after this long (0 = never)")
        ->capture_default_str();
    out.push_back({result_cmd, {}, [st] {
                       return run_command([st] { return do_result(st->o, st->id, st->wait, st->keep, st->wait_timeout); });
                   }});

    auto* list = add("list", "List your jobs, newest first");
    list->add_option("--state", st->list_state, "Only jobs in this state");
    list->add_option("--limit", st->limit, "Jobs per page")->capture_default_str();
    list->add_flag("--all", st->all, "Follow the cursor through every page (default off)");
    out.push_back({list, {}, [st] { return run_command([st] { return do_list(st->o, st->list_state, st->limit, st->all); }); }});

    auto* cancel = add("cancel", "Cancel a queued or running job");
    cancel->add_option("id", st->id, "Job id")->required();
    out.push_back({cancel, {}, [st] { return run_command([st] { return do_cancel(st->o, st->id); }); }});

    auto* watch = add("watch", "Follow job state changes live over a WebSocket (all your jobs, or the given ids)");
    watch->add_option("ids", st->ids,
                      "Job ids (exit when each has finished or is gone: 0 if all succeeded, 1 if one did not, "
                      "3 if one was erased or unknown before its outcome was seen)");
    out.push_back({watch, {}, [st] { return run_command([st] { return do_watch(st->o, st->ids); }); }});
}

}  // namespace faasd::roles
