// run_frontend: the composition root of `faasd frontend` (docs/frontend.md,
// "Wiring"). Adapters of the frontend's ports over Kafka, OpenSSL and the HTTP
// client, the state/observer topic follower, and the HTTP/WebSocket server
// whose routes call the pure handlers of faasd::frontend.

#include "frontend/frontend.hpp"

#include <faasd/config/config.hpp>
#include <faasd/core/id.hpp>
#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/sealing.hpp>
#include <faasd/crypto/verifier.hpp>
#include <faasd/frontend/limits.hpp>
#include <faasd/frontend/oidc.hpp>
#include <faasd/frontend/retention.hpp>
#include <faasd/frontend/ws.hpp>
#include <faasd/http/client.hpp>
#include <faasd/http/server.hpp>
#include <faasd/http/websocket.hpp>
#include <faasd/jobs/codec.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/admin.hpp>
#include <faasd/kafka/consumer.hpp>
#include <faasd/kafka/producer.hpp>
#include <faasd/kafka/topics.hpp>
#include <faasd/metrics/registry.hpp>
#include <faasd/stats/params.hpp>

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
#include <chrono>
#include <cstdlib>
#include <optional>
#include <span>
#include <stdexcept>
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace faasd::roles {
namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using namespace asio::experimental::awaitable_operators;

namespace {

// ---- ports ----------------------------------------------------------------------

struct system_clock final : frontend::clock {
    jobs::unix_ms now() const override {
        return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
};

/// Job ids from OpenSSL's CSPRNG (frontend::random_ids): not predictable from earlier ids.
struct ulid_source final : frontend::id_source {
    frontend::random_ids ids;
    std::string new_id(jobs::unix_ms now) override { return ids.next(now); }
};

/// The role's metrics (docs/frontend.md, "Metrics"). Counters fed from
/// cumulative statistics (token cache, JWKS) advance by their deltas at scrape time.
struct frontend_metrics {
    explicit frontend_metrics(metrics::registry& r)
        : jobs(r.gauge("faasd_jobs", "Jobs in this replica's view, by state", {"state"})),
          submitted(r.counter("faasd_jobs_submitted_total", "Accepted submissions, by delivery mode", {"delivery"})),
          kafka_errors(r.counter("faasd_kafka_errors_total", "Failed Kafka writes, by operation", {"op"})),
          snapshots(r.counter("faasd_state_snapshots_total", "State-topic records applied, by outcome", {"outcome"})),
          view_memory(r.gauge("faasd_view_memory_bytes", "The job view's own estimate of its heap bytes").with({})),
          token_cache(r.counter("faasd_token_cache_total", "Verified-token cache lookups, by result", {"result"})),
          auth_failures(r.counter("faasd_auth_failures_total", "Refused bearer tokens, by reason", {"reason"})),
          jwks(r.counter("faasd_jwks_refreshes_total", "Signing-key fetches, by outcome", {"outcome"})),
          ws_sessions(r.gauge("faasd_ws_sessions", "Open WebSocket sessions").with({})),
          ws_events(r.counter("faasd_ws_events_total", "Job events sent over WebSockets").with({})),
          markers(r.gauge("faasd_erased_markers", "Erased markers of idempotent jobs in this replica's view").with({})),
          retention(r.counter("faasd_retention_erased_total", "Erasures by the retention sweep, by what was erased",
                              {"what"})) {}

    metrics::gauge_family& jobs;
    metrics::counter_family& submitted;
    metrics::counter_family& kafka_errors;
    metrics::counter_family& snapshots;
    metrics::gauge& view_memory;
    metrics::counter_family& token_cache;
    metrics::counter_family& auth_failures;
    metrics::counter_family& jwks;
    metrics::gauge& ws_sessions;
    metrics::counter& ws_events;
    metrics::gauge& markers;
    metrics::counter_family& retention;

    /// Advances c by how much `now` grew since `last`.
    static void advance(metrics::counter& c, std::uint64_t now, std::uint64_t& last) {
        if (now > last) c.inc(static_cast<double>(now - last));
        last = now;
    }
    std::uint64_t hits = 0, misses = 0, refresh_ok = 0, refresh_failed = 0, refresh_skipped = 0, events = 0;
};

/// Every failed send is the client's 503: nothing was promised.
result<void> delivered(const kafka::result<kafka::delivery>& d, const faasd::logger& log, frontend_metrics& m,
                       std::string_view op, std::string_view key) {
    if (d) return {};
    m.kafka_errors.with({op}).inc();
    log.warn("frontend.publish_failed", {{"op", op}, {"key", key}, {"error", d.error().message()}});
    return errc::unavailable;
}

kafka::record make_record(std::string topic, std::string_view key, std::optional<std::string> value) {
    kafka::record r;
    r.topic = std::move(topic);
    r.key = std::string(key);
    r.value = std::move(value);
    return r;
}

class kafka_publisher final : public frontend::job_publisher {
public:
    kafka_publisher(kafka::producer& p, const jobs::topic_names& names, faasd::logger log, frontend_metrics& m)
        : p_(p), names_(names), log_(std::move(log)), m_(m) {}

    awaitable<result<void>> submit(const jobs::job_message& m, const jobs::job_status& queued) override {
        // Both records in flight at once; 202 only when the broker acknowledged both.
        auto [a, b] = co_await (p_.send(make_record(names_.jobs(m.spec.delivery), m.id, jobs::encode(m))) &&
                                p_.send(make_record(names_.state, m.id, jobs::encode(queued))));
        if (auto r = delivered(a, log_, m_, "submit", m.id); !r) co_return r;
        // The job is stored and will run: a lost queued snapshot is not retried
        // (a late one could outlive the job's later snapshots in the compacted
        // topic); the worker's running snapshot follows.
        (void)delivered(b, log_, m_, "snapshot", m.id);
        m_.submitted.with({jobs::to_string(m.spec.delivery)}).inc();
        co_return result<void>{};
    }

    awaitable<result<void>> cancel(const frontend::cancel_request& c, const jobs::job_status* cancelled) override {
        json::object v{{"v", 1}, {"id", c.id}, {"by", c.by}, {"at", c.at}};
        auto a = co_await p_.send(make_record(names_.cancel, c.id, json::serialize(v)));
        if (auto r = delivered(a, log_, m_, "cancel", c.id); !r) co_return r;
        if (!cancelled) co_return result<void>{};
        auto b = co_await p_.send(make_record(names_.state, c.id, jobs::encode(*cancelled)));
        co_return delivered(b, log_, m_, "cancel", c.id);
    }

    awaitable<result<void>> erase(std::string_view id, const frontend::erased_marker* marker) override {
        std::string key(id);
        std::optional<std::string> value;
        if (marker) value = frontend::encode_marker(*marker);
        auto d = co_await p_.send(make_record(names_.state, key, std::move(value)));
        co_return delivered(d, log_, m_, "erase", key);
    }

private:
    kafka::producer& p_;
    const jobs::topic_names& names_;
    faasd::logger log_;
    frontend_metrics& m_;
};

class kafka_observer final : public frontend::observer_port {
public:
    kafka_observer(kafka::producer& p, const jobs::topic_names& names, faasd::logger log, frontend_metrics& m)
        : p_(p), names_(names), log_(std::move(log)), m_(m) {}

    std::optional<json::value> report() const override { return report_; }
    std::optional<json::value> config() const override { return config_; }

    awaitable<result<void>> publish_config(const json::value& params) override {
        auto d = co_await p_.send(make_record(names_.observer_config, "config", json::serialize(params)));
        if (auto r = delivered(d, log_, m_, "config", "config"); !r) co_return r;
        config_ = params;  // read-your-writes; the topic follower confirms it
        co_return result<void>{};
    }

    /// From the topic follower.
    void on_message(const kafka::message& m) {
        auto& slot = m.topic == names_.observer ? report_ : config_;
        if (m.tombstone()) {
            slot.reset();
            return;
        }
        boost::system::error_code ec;
        auto v = json::parse(*m.value, ec);
        if (ec) {
            log_.warn("frontend.observer_message_invalid", {{"topic", m.topic}, {"offset", m.offset}});
            return;
        }
        slot = std::move(v);
    }

private:
    kafka::producer& p_;
    const jobs::topic_names& names_;
    faasd::logger log_;
    frontend_metrics& m_;
    std::optional<json::value> report_;
    std::optional<json::value> config_;
};

class ring_sealer final : public frontend::credential_sealer {
public:
    explicit ring_sealer(crypto::key_ring ring) : ring_(std::move(ring)) {}
    result<jobs::sealed_credentials> seal(const json::object& credentials, std::string_view job_id) override {
        if (ring_.empty()) return errc::unavailable;
        std::string plain = json::serialize(credentials);
        auto sealed = crypto::seal(ring_, job_id, plain);
        crypto::wipe(plain);
        return sealed;
    }

private:
    crypto::key_ring ring_;
};

/// The WebSocket port over the HTTP server's session.
class ws_adapter final : public frontend::ws_connection {
public:
    explicit ws_adapter(std::shared_ptr<http::ws_session> s) : s_(std::move(s)) {}
    awaitable<std::optional<std::string>> read() override { co_return co_await s_->read(); }
    bool send(std::string text) override { return s_->send(std::move(text)); }
    void close(std::uint16_t code, std::string reason) override { s_->close(code, std::move(reason)); }

private:
    std::shared_ptr<http::ws_session> s_;
};

frontend::observer_params_check check_observer_params(const json::value& v) {
    frontend::observer_params_check out;
    auto r = stats::params_from_json(v);
    for (const auto& e : r.errors) out.issues.push_back({e.field.empty() ? "" : "/" + e.field, e.reason});
    if (r.ok()) out.normalised = stats::to_json(r.params);
    return out;
}

std::chrono::milliseconds dur(const std::string& s, std::chrono::milliseconds fallback) {
    auto d = config::parse_duration(s);
    return d ? *d : fallback;
}

auth::token_policy token_policy_of(const frontend_config& cfg) {
    auth::token_policy p;
    p.issuer = cfg.oidc_issuer;
    p.audience = cfg.oidc_audience;
    p.accept_azp = cfg.oidc_accept_azp;
    p.leeway = std::chrono::duration_cast<std::chrono::seconds>(dur(cfg.clock_leeway, std::chrono::seconds(30)));
    p.algorithms.clear();
    std::string algs = cfg.allowed_algs;
    std::size_t pos = 0;
    while (pos <= algs.size()) {
        auto comma = algs.find(',', pos);
        auto item = algs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        while (!item.empty() && item.front() == ' ') item.erase(0, 1);
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (auto a = auth::parse_jws_alg(item)) p.algorithms.push_back(*a);
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    if (p.algorithms.empty()) p.algorithms.push_back(auth::jws_alg::rs256);
    return p;
}

/// Waits `d`, or less when shutdown is requested; false then.
awaitable<bool> pause_unless_shutdown(runtime::shutdown_signal& shutdown, std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await (t.async_wait(asio::as_tuple(asio::use_awaitable)) || shutdown.wait());
    co_return !shutdown.requested();
}

/// Assigns the state, observer and observer-config topics from the beginning
/// (no group), retrying until it works or shutdown is requested (false).
/// Calls that run on the Kafka pool are never cancelled half-way: shutdown is
/// checked between attempts.
awaitable<bool> assign_topics(kafka::consumer& c, const jobs::topic_names& names, runtime::health& health,
                              runtime::shutdown_signal& shutdown, const faasd::logger& log) {
    const std::vector<std::string> topics{names.state, names.observer, names.observer_config};
    kafka::backoff_policy backoff;
    for (int failures = 1;; ++failures) {
        auto r = co_await c.assign_topics(topics, kafka::offset_beginning);
        if (r) co_return true;
        health.set("state", false, "assigning: " + r.error().message());
        log.warn("frontend.assign_failed", {{"error", r.error().message()}, {"attempt", failures}});
        if (!co_await pause_unless_shutdown(shutdown, backoff.delay(failures))) co_return false;
    }
}

/// Reads the assigned topics for as long as the role runs.
awaitable<void> follow_topics(kafka::consumer& c, const jobs::topic_names& names, frontend::job_store& store,
                              kafka_observer& observer, runtime::health& health, const faasd::logger& log,
                              frontend_metrics& fm, std::function<void()> on_caught_up) {
    bool caught_up = false;
    std::uint64_t applied = 0;
    for (;;) {
        auto batch = co_await c.poll(512);
        for (const auto& m : batch) {
            if (m.topic != names.state) {
                observer.on_message(m);
                continue;
            }
            if (!m.key) continue;
            if (m.tombstone()) {
                store.erase(*m.key);
                fm.snapshots.with({"tombstone"}).inc();
                continue;
            }
            auto s = jobs::decode_job_status(*m.value);
            if (!s) {
                if (auto mk = frontend::decode_marker(*m.value); mk && mk->id == *m.key) {
                    store.erase(*m.key, std::move(*mk));
                    fm.snapshots.with({"marker"}).inc();
                    continue;
                }
            }
            if (!s || s->id != *m.key) {
                fm.snapshots.with({"invalid"}).inc();
                log.warn("frontend.state_invalid", {{"partition", m.partition}, {"offset", m.offset}});
                continue;
            }
            auto outcome = store.apply(*s);
            fm.snapshots.with({outcome == jobs::apply_outcome::inserted   ? "inserted"
                               : outcome == jobs::apply_outcome::replaced ? "replaced"
                               : outcome == jobs::apply_outcome::kept     ? "kept"
                                                                          : "ignored"})
                .inc();
            ++applied;
        }
        if (!caught_up && c.caught_up()) {
            caught_up = true;
            health.set("state", true, "caught up");
            log.info("frontend.state_loaded", {{"snapshots", applied}, {"jobs", store.view().size()}});
            if (on_caught_up) on_caught_up();
        }
    }
}

}  // namespace

awaitable<void> run_frontend(frontend_config cfg, runtime::role_env& env, kafka_config kcfg,
                             std::function<void(std::uint16_t)> on_listening) {
    auto ex = co_await asio::this_coro::executor;
    const auto& log = env.log;
    auto health = env.health_state;
    const auto names = jobs::topic_names::with_prefix(kcfg.topic_prefix);
    const auto settings = cfg.settings();

    if (cfg.credentials_keys.empty())
        if (const char* k = std::getenv("FAASD_CREDENTIALS_KEYS")) cfg.credentials_keys = k;
    std::string why;
    auto ring = crypto::key_ring::parse(cfg.credentials_keys, &why);
    if (!ring) throw std::runtime_error("FAASD_CREDENTIALS_KEYS: " + (why.empty() ? std::string("invalid") : why));

    health->set("kafka", false, "connecting");
    health->set("state", false, "not loaded");
    health->set("keys", false, "not loaded");

    auto props = kafka::parse_properties(kcfg.properties);
    auto client_opts = [&](kafka::client_options& o, std::string id) {
        o.brokers = kcfg.brokers;
        o.properties = props;
        o.client_id = std::move(id);
        o.log = log;
    };

    // 1. Kafka clients.
    kafka::producer_options po;
    client_opts(po, "faasd-frontend");
    po.properties.try_emplace("acks", "all");
    po.properties.try_emplace("enable.idempotence", "true");
    // A client waits for these writes: 2 ms instead of the library's 5 takes
    // 3 ms off a lone submit and measured about 5 % more submits/s at 64
    // connections (docs/frontend.md, Measurements).
    po.properties.try_emplace("linger.ms", "2");
    po.on_readiness = [health](bool ready, std::string_view detail) { health->set("kafka", ready, std::string(detail)); };
    kafka::producer producer(ex, po);

    kafka::consumer_options co;
    client_opts(co, "faasd-frontend-state");
    co.read_committed = true;
    // Under load, fetch the state topic in batches rather than one fetch per
    // record: each fetch costs the broker and this loop a request. Another
    // replica (or a WebSocket subscriber) then sees a change at most 20 ms
    // later; this replica applies its own writes at once. At 64 connections it
    // cut the broker's CPU per submit by a quarter (docs/frontend.md).
    co.properties.try_emplace("fetch.min.bytes", "65536");
    co.properties.try_emplace("fetch.wait.max.ms", "20");
    kafka::consumer consumer(ex, co);

    // 2. Metrics.
    auto registry = std::make_shared<metrics::registry>();
    frontend_metrics fm(*registry);

    // 3. Ports and the app.
    system_clock clk;
    ulid_source ids;
    jobs::view_limits vl;
    if (auto mr = config::parse_size(cfg.max_result)) vl.max_result_bytes = *mr;
    frontend::job_store store(ex, vl);
    kafka_publisher publisher(producer, names, log, fm);
    kafka_observer observer(producer, names, log, fm);
    ring_sealer sealer(std::move(*ring));

    crypto::verifier verifier(token_policy_of(cfg), cfg.token_cache_size);
    http::client_config hc;
    hc.policy = http::address_policy::allow_all();  // the issuer is the operator's choice (often a private address)
    hc.total_timeout = std::chrono::seconds(15);
    hc.max_response_bytes = 1024 * 1024;
    auto http_client = std::make_shared<http::client>(ex, hc, log);
    frontend::fetch_fn fetch = [http_client](std::string url) -> awaitable<result<std::string>> {
        auto r = co_await http_client->request(http::client_request("GET", url));
        if (!r || r->status != 200) co_return errc::unavailable;
        co_return std::move(r->body);
    };
    frontend::oidc_keys::options ko;
    ko.issuer = cfg.oidc_issuer;
    ko.discovery_url = cfg.oidc_discovery_url;
    ko.jwks_file = cfg.oidc_jwks_file;
    ko.cooldown = dur(cfg.jwks_refresh_cooldown, std::chrono::seconds(30));
    ko.max_age = dur(cfg.jwks_max_age, std::chrono::minutes(10));
    frontend::oidc_keys keys(ex, ko, fetch, verifier, log);
    frontend::oidc_authenticator authn(verifier, keys, clk, [&fm](std::string_view reason) {
        fm.auth_failures.with({reason}).inc();
    });

    frontend::ws_hub* hub_ptr = nullptr;
    frontend::services svc{authn, publisher, observer, sealer, clk, ids, store};
    svc.readiness = [health] { return health->report(); };
    svc.metrics_text = [&, registry] {
        const auto& counts = store.view().counts();
        for (int i = 0; i < static_cast<int>(counts.size()); ++i)
            fm.jobs.with({jobs::to_string(static_cast<jobs::job_state>(i))}).set(static_cast<double>(counts[i]));
        fm.view_memory.set(static_cast<double>(store.view().memory_bytes() + store.markers_memory_bytes()));
        auto cs = verifier.cache_stats();
        frontend_metrics::advance(fm.token_cache.with({"hit"}), cs.hits, fm.hits);
        frontend_metrics::advance(fm.token_cache.with({"miss"}), cs.misses, fm.misses);
        const auto& ks = keys.stats();
        frontend_metrics::advance(fm.jwks.with({"ok"}), ks.refreshes_ok, fm.refresh_ok);
        frontend_metrics::advance(fm.jwks.with({"failed"}), ks.refreshes_failed, fm.refresh_failed);
        frontend_metrics::advance(fm.jwks.with({"skipped"}), ks.refreshes_skipped, fm.refresh_skipped);
        fm.markers.set(static_cast<double>(store.markers().size()));
        if (hub_ptr) {
            fm.ws_sessions.set(static_cast<double>(hub_ptr->sessions()));
            frontend_metrics::advance(fm.ws_events, hub_ptr->events_sent(), fm.events);
        }
        return registry->render();
    };
    frontend::frontend_app app(settings, std::move(svc), log, check_observer_params);
    frontend::ws_settings wss;
    wss.max_subscriptions = cfg.ws_max_subscriptions;
    frontend::ws_hub hub(store, wss);
    hub.set_live(false);  // until the state topic is caught up: no replayed records to WebSockets
    hub_ptr = &hub;

    // 4. Routes: the app's table, served by faasd::http.
    http::router routes;
    for (const auto& rt : frontend::route_table()) {
        if (rt.websocket) {
            routes.add_websocket(std::string(rt.pattern), [&app, &hub](std::shared_ptr<http::ws_session> s) -> awaitable<void> {
                const auto& req = s->upgrade_request();
                std::optional<std::string> authorization;
                if (auto a = req.headers.get("Authorization")) authorization = std::string(*a);
                std::string offered;
                bool ours = false;
                for (const auto& p : s->offered_subprotocols()) {
                    if (!offered.empty()) offered += ", ";
                    offered += p;
                    if (p == frontend::ws_subprotocol) ours = true;
                }
                // Authenticate before the handshake: a bad token gets a plain 401 (or 403/503), no upgrade.
                auto a = co_await frontend::authenticate_upgrade(app, std::move(authorization), std::move(offered));
                if (auto* refused = std::get_if<http::response>(&a)) {
                    co_await s->reject(std::move(*refused));
                    co_return;
                }
                std::optional<frontend::caller> who;
                if (auto* c = std::get_if<frontend::caller>(&a)) who = std::move(*c);
                std::optional<std::string> proto;
                if (ours) proto = std::string(frontend::ws_subprotocol);
                if (auto ec = co_await s->accept(proto)) co_return;
                ws_adapter conn(s);
                co_await frontend::run_ws_session(conn, std::move(who), app, hub);
            });
            continue;
        }
        http::route_options o;
        if (rt.method == "POST" || rt.method == "PUT") o.body_limit = settings.max_body_bytes;
        if (rt.name == "getJobResult") o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(settings.max_wait) + std::chrono::seconds(10);
        const frontend::route* row = &rt;
        routes.add(std::string(rt.method), std::string(rt.pattern),
                   [&app, row](const http::request& req, const http::route_params& p) -> awaitable<http::response> {
                       std::map<std::string, std::string, std::less<>> params;
                       for (const auto& [k, v] : p.items()) params.emplace(k, v);
                       co_return co_await app.invoke(*row, req, std::move(params));
                   },
                   o);
    }

    auto listen = http::parse_listen_address(cfg.listen);
    if (!listen) throw std::invalid_argument("--listen: '" + cfg.listen + "' is not host:port");
    http::server_config sc;
    sc.address = listen->first;
    sc.port = listen->second;
    sc.body_limit = settings.max_body_bytes;
    sc.websocket.send_queue_messages = cfg.ws_queue;
    http::server server(ex, sc, std::move(routes), log, registry);
    auto port = server.listen();
    if (!port) throw std::runtime_error("--listen " + cfg.listen + ": " + port.error().message());
    log.info("frontend.listening", {{"address", sc.address}, {"port", *port}, {"issuer", cfg.oidc_issuer}});
    if (on_listening) on_listening(*port);

    // 5. Run until shutdown: serve, create the topics and follow them, keep the keys fresh.
    auto stopper = [&]() -> awaitable<void> {
        co_await env.shutdown->wait();
        log.info("frontend.stopping", {{"grace_ms", env.shutdown_grace.count()}});
        hub.close_all("shutting down");
        server.stop(env.shutdown_grace);
    };
    auto keys_loop = [&]() -> awaitable<void> {
        co_await (keys.run([&](bool loaded) {
            health->set("keys", loaded, loaded ? "loaded" : "no signing keys from " +
                                                                 (cfg.oidc_jwks_file.empty() ? cfg.oidc_issuer : cfg.oidc_jwks_file));
        }) || env.shutdown->wait());
    };
    // Topics are created here, after listen(): /healthz answers meanwhile and
    // /readyz says what is missing.
    auto create_topics = [&]() -> awaitable<bool> {
        health->set("topics", false, "creating");
        kafka::admin_options ao;
        client_opts(ao, "faasd-frontend-admin");
        ao.request_timeout = std::chrono::seconds(5);
        kafka::admin adm(ex, ao);
        kafka::backoff_policy once;
        once.max_attempts = 1;  // our loop retries, checking shutdown in between
        kafka::backoff_policy backoff;
        bool done = false;
        for (int attempt = 1;; ++attempt) {
            auto created = co_await kafka::ensure_faasd_topics(adm, names, kcfg.topic_partitions, kcfg.topic_replication, once);
            if (created) {
                done = true;
                break;
            }
            if (!created.error().retryable()) throw std::runtime_error("creating topics: " + created.error().message());
            health->set("topics", false, created.error().message());
            if (!co_await pause_unless_shutdown(*env.shutdown, backoff.delay(attempt))) break;
        }
        co_await adm.close();
        if (done) {
            health->set("topics", true, "present");
            log.info("frontend.topics_ready", {{"prefix", kcfg.topic_prefix}});
        }
        co_return done;
    };
    bool caught_up = false;
    auto follow_loop = [&]() -> awaitable<void> {
        if (kcfg.create_topics && !co_await create_topics()) co_return;
        if (!co_await assign_topics(consumer, names, *health, *env.shutdown, log)) co_return;
        auto live = [&] {
            caught_up = true;
            hub.set_live(true);
        };
        co_await (follow_topics(consumer, names, store, observer, *health, log, fm, live) || env.shutdown->wait());
    };
    // The catch-up went through up to queued.max.messages.kbytes (64 MiB) of
    // fetched records, freed by the time it ends but kept by the allocator:
    // hand them back then, and once more when librdkafka has let go of its
    // last fetch buffers (docs/frontend.md, Measurements).
    auto trim_loop = [&]() -> awaitable<void> {
        while (!caught_up)
            if (!co_await pause_unless_shutdown(*env.shutdown, std::chrono::milliseconds(100))) co_return;
        for (int round = 0; round < 2; ++round) {
#ifdef __GLIBC__
            const auto t0 = std::chrono::steady_clock::now();
            ::malloc_trim(0);  // on the loop: a few ms, twice per start
            log.debug("frontend.memory_trimmed",
                      {{"ms", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count()}});
#endif
            if (!co_await pause_unless_shutdown(*env.shutdown, std::chrono::seconds(5))) co_return;
        }
    };
    // Retention (docs/frontend.md): once caught up, sweep every tenth of the
    // retention, but not more often than every second nor less than every 10
    // minutes (a sweep reads the whole view: about 25 µs a job in a Debug build).
    auto sweep_loop = [&]() -> awaitable<void> {
        auto every = std::clamp<std::chrono::milliseconds>(settings.finished_retention / 10, std::chrono::seconds(1),
                                                           std::chrono::minutes(10));
        while (co_await pause_unless_shutdown(*env.shutdown, every)) {
            if (!caught_up) continue;
            // A sweep stuck on Kafka must not hold up shutdown (its spawned erasures end on their own).
            auto outcome = co_await (frontend::sweep_once(app, clk.now()) || env.shutdown->wait());
            if (outcome.index() != 0) break;
            const auto& r = std::get<0>(outcome);
            if (r.erased) fm.retention.with({"job"}).inc(static_cast<double>(r.erased));
            if (r.markers_tombstoned) fm.retention.with({"marker"}).inc(static_cast<double>(r.markers_tombstoned));
            if (r.erased || r.markers_tombstoned || r.failed)
                log.info("frontend.retention_sweep", {{"scanned", r.scanned}, {"erased", r.erased},
                                                      {"markers", r.markers_tombstoned}, {"failed", r.failed}});
        }
    };
    std::exception_ptr failure;
    try {
        co_await (server.run() && stopper() && keys_loop() && follow_loop() && sweep_loop() && trim_loop());
    } catch (...) {
        failure = std::current_exception();
    }
    // Erasures spawned after responses were written still need the producer.
    co_await app.wait_background([&] { return app.background() == 0; }, std::chrono::seconds(5));
    co_await consumer.close();
    co_await producer.close(std::chrono::seconds(5));
    log.info("frontend.stopped");
    if (failure) std::rethrow_exception(failure);
}

}  // namespace faasd::roles
