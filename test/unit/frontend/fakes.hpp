#pragma once
// Fakes of the frontend's ports and a harness that drives frontend_app::handle
// with hand-built requests on a private io_context.

#include <faasd/core/id.hpp>
#include <faasd/frontend/app.hpp>
#include <faasd/frontend/ws.hpp>
#include <faasd/jobs/codec.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <deque>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace faasd::test::frontend {

namespace asio = boost::asio;
namespace fe = faasd::frontend;
using asio::awaitable;

inline constexpr std::int64_t t0_ms = 1'800'000'000'000;  // the fake clock's start

struct fake_clock : fe::clock {
    jobs::unix_ms t = t0_ms;
    jobs::unix_ms now() const override { return t; }
};

struct seq_ids : fe::id_source {
    int n = 0;
    std::string new_id(jobs::unix_ms now) override {
        std::array<std::uint8_t, 10> r{};
        r[9] = static_cast<std::uint8_t>(++n);
        r[8] = static_cast<std::uint8_t>(n >> 8);
        return faasd::make_job_id(static_cast<std::uint64_t>(now), r);
    }
};

inline fe::caller make_caller(std::string sub, std::vector<std::string> roles, std::int64_t exp_s = t0_ms / 1000 + 3600) {
    return fe::caller{{sub, sub + "-name", std::move(roles)}, exp_s};
}

struct fake_auth : fe::authenticator {
    std::map<std::string, fe::caller, std::less<>> tokens{
        {"alice-token", make_caller("alice", {"faas-user"})},
        {"bob-token", make_caller("bob", {"faas-user"})},
        {"carol-token", make_caller("carol", {"faas-user", "faas-admin"})},
        {"dave-token", make_caller("dave", {"offline_access"})},
    };
    int calls = 0;
    awaitable<result<fe::caller>> authenticate(std::string_view token) override {
        ++calls;
        if (token == "keys-unavailable") co_return errc::unavailable;
        auto it = tokens.find(token);
        if (it == tokens.end()) co_return errc::unauthorized;
        co_return it->second;
    }
};

struct fake_publisher : fe::job_publisher {
    std::vector<jobs::job_message> messages;
    std::vector<jobs::job_status> snapshots;
    std::vector<fe::cancel_request> cancels;
    std::vector<std::string> erased;                    ///< ids tombstoned or marked, in order
    std::vector<fe::erased_marker> markers;             ///< markers written
    bool fail = false;
    std::chrono::milliseconds delay{0};

    awaitable<void> pause() {
        if (delay.count() > 0) {
            asio::steady_timer t(co_await asio::this_coro::executor, delay);
            co_await t.async_wait(asio::use_awaitable);
        }
    }
    awaitable<result<void>> submit(const jobs::job_message& m, const jobs::job_status& q) override {
        co_await pause();
        if (fail) co_return errc::unavailable;
        // What goes on the wire, round-tripped, so tests see the real bytes' content.
        messages.push_back(*jobs::decode_job_message(jobs::encode(m)));
        snapshots.push_back(q);
        co_return result<void>{};
    }
    awaitable<result<void>> cancel(const fe::cancel_request& c, const jobs::job_status* s) override {
        co_await pause();
        if (fail) co_return errc::unavailable;
        cancels.push_back(c);
        if (s) snapshots.push_back(*s);
        co_return result<void>{};
    }
    awaitable<result<void>> erase(std::string_view id, const fe::erased_marker* marker) override {
        co_await pause();
        if (fail) co_return errc::unavailable;
        erased.emplace_back(id);
        if (marker) markers.push_back(*marker);
        co_return result<void>{};
    }
};

struct fake_observer : fe::observer_port {
    std::optional<boost::json::value> latest_report;
    std::optional<boost::json::value> latest_config;
    std::vector<boost::json::value> published;
    bool fail = false;
    std::optional<boost::json::value> report() const override { return latest_report; }
    std::optional<boost::json::value> config() const override { return latest_config; }
    awaitable<result<void>> publish_config(const boost::json::value& v) override {
        if (fail) co_return errc::unavailable;
        published.push_back(v);
        latest_config = v;
        co_return result<void>{};
    }
};

struct fake_sealer : fe::credential_sealer {
    std::string last_plaintext_keys;  // names seen, never values
    int calls = 0;
    bool fail = false;
    result<jobs::sealed_credentials> seal(const boost::json::object& creds, std::string_view job_id) override {
        ++calls;
        if (fail) return errc::unavailable;
        last_plaintext_keys.clear();
        for (const auto& [k, v] : creds) last_plaintext_keys += std::string(k) + ",";
        return jobs::sealed_credentials{"test-kid", "bm9uY2U", "sealed-for-" + std::string(job_id), {}};
    }
};

/// One frontend_app over fakes, with a private io_context.
struct harness {
    asio::io_context ioc;
    fake_clock clk;
    seq_ids ids;
    fake_auth auth;
    fake_publisher pub;
    fake_observer obs;
    fake_sealer sealer;
    fe::job_store store{ioc.get_executor()};
    bool ready = true;
    std::unique_ptr<fe::frontend_app> app;

    explicit harness(fe::frontend_settings s = {}) {
        fe::services svc{auth, pub, obs, sealer, clk, ids, store};
        svc.metrics_text = [] { return std::string("faasd_up 1\n"); };
        svc.readiness = [this] { return boost::json::object{{"ready", ready}, {"components", boost::json::object{}}}; };
        app = std::make_unique<fe::frontend_app>(std::move(s), std::move(svc));
    }

    static http::request make(std::string method, std::string target, std::string body = {},
                              std::vector<std::pair<std::string, std::string>> headers = {}) {
        http::request r;
        r.method = std::move(method);
        r.target = target;
        if (!http::parse_target(target, r.path, r.query)) throw std::runtime_error("bad target");
        for (auto& [k, v] : headers) r.headers.add(k, v);
        r.body = std::move(body);
        return r;
    }

    /// Runs one request to completion (or throws after 5 s). Like the server
    /// after a successful write, calls the response's on_written (unless
    /// `written` is false: the write failed) and lets the background tasks
    /// it starts finish.
    fe::dispatch_result run(const http::request& req, bool written = true) {
        std::optional<fe::dispatch_result> out;
        std::exception_ptr err;
        asio::co_spawn(ioc, app->handle(req), [&](std::exception_ptr e, fe::dispatch_result r) {
            err = e;
            if (!e) out = std::move(r);
        });
        ioc.restart();
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!out && !err && std::chrono::steady_clock::now() < deadline) ioc.run_for(std::chrono::milliseconds(10));
        if (err) std::rethrow_exception(err);
        if (!out) throw std::runtime_error("request did not finish in 5 s");
        if (written && out->res.on_written) out->res.on_written();
        out->res.on_written = nullptr;
        settle();
        return std::move(*out);
    }

    /// Runs the io_context until no background task is left (or 5 s).
    void settle() {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        do {
            ioc.restart();
            ioc.poll();
            if (app->background() == 0) break;
            ioc.run_for(std::chrono::milliseconds(5));
        } while (std::chrono::steady_clock::now() < deadline);
        if (app->background() != 0) throw std::runtime_error("background tasks did not finish in 5 s");
    }

    http::response call(std::string method, std::string target, std::string token = {}, std::string body = {},
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
        if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
        return run(make(std::move(method), std::move(target), std::move(body), std::move(headers))).res;
    }

    /// Like call(), for a response whose write failed (the client went away).
    http::response call_unwritten(std::string method, std::string target, std::string token) {
        std::vector<std::pair<std::string, std::string>> headers{{"Authorization", "Bearer " + token}};
        return run(make(std::move(method), std::move(target), {}, std::move(headers)), false).res;
    }

    /// Submits a minimal valid job as `token`; returns the job id (throws unless 202).
    std::string submit(const std::string& token, std::string body = {}) {
        if (body.empty()) body = R"({"repo": {"url": "https://git.example.org/fn.git", "ref": "main"}})";
        auto r = call("POST", "/v1/jobs", token, body, {{"Content-Type", "application/json"}});
        if (r.status != 202) throw std::runtime_error("submit failed: " + std::to_string(r.status) + " " + r.body);
        return std::string(boost::json::parse(r.body).at("id").as_string());
    }

    /// Applies a worker-style snapshot (running or terminal) for an existing job.
    void advance(const std::string& id, jobs::job_state st, std::string output = R"({"ok":true})") {
        auto s = *store.view().get(id);
        s.state = st;
        s.worker = "worker-1";
        s.updated_at = clk.t + 5;
        if (st == jobs::job_state::running) s.started_at = clk.t + 1;
        if (jobs::is_terminal(st)) {
            s.started_at = s.started_at ? s.started_at : clk.t + 1;
            s.finished_at = clk.t + 5;
            jobs::job_result r;
            r.id = id;
            r.owner_subject = s.owner.subject;
            r.state = st;
            r.worker = "worker-1";
            r.exit_code = st == jobs::job_state::succeeded ? 0 : 1;
            r.output = boost::json::parse(output);
            r.stdout_text = "out\n";
            r.times.submitted_at = s.submitted_at;
            r.times.queue_wait_ms = 1;
            r.times.prepare_ms = 2;
            r.times.run_ms = 3;
            r.times.total_ms = 6;
            s.result = r;
        }
        store.apply(s);
    }
};

inline boost::json::value body_of(const http::response& r) { return boost::json::parse(r.body); }

/// A WebSocket connection driven by the test.
struct fake_ws : fe::ws_connection {
    explicit fake_ws(asio::any_io_executor ex, std::size_t cap = 100) : signal(ex), capacity(cap) {
        signal.expires_at(asio::steady_timer::time_point::max());
    }
    std::deque<std::string> inbox;
    asio::steady_timer signal;
    bool peer_gone = false;
    std::vector<std::string> sent;
    std::size_t consumed = 0;  // messages the "client" has read
    std::size_t capacity;
    std::optional<std::pair<std::uint16_t, std::string>> closed;

    void push(std::string m) {
        inbox.push_back(std::move(m));
        signal.cancel();
    }
    void hang_up() {
        peer_gone = true;
        signal.cancel();
    }
    awaitable<std::optional<std::string>> read() override {
        while (inbox.empty() && !peer_gone && !closed) {
            signal.expires_at(asio::steady_timer::time_point::max());
            co_await signal.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (inbox.empty() || closed) co_return std::nullopt;
        auto m = std::move(inbox.front());
        inbox.pop_front();
        co_return m;
    }
    bool send(std::string text) override {
        if (closed) return true;
        if (sent.size() - consumed >= capacity) return false;
        sent.push_back(std::move(text));
        return true;
    }
    void close(std::uint16_t code, std::string reason) override {
        if (!closed) closed.emplace(code, std::move(reason));
        signal.cancel();
    }
    /// Messages of a given "type" sent so far.
    std::vector<boost::json::object> of_type(std::string_view type) const {
        std::vector<boost::json::object> out;
        for (const auto& s : sent) {
            auto o = boost::json::parse(s).as_object();
            if (o.at("type").as_string() == type) out.push_back(o);
        }
        return out;
    }
};

}  // namespace faasd::test::frontend
