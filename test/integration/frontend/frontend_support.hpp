#pragma once
// A real frontend (run_frontend) on the test's io_context against the real
// Kafka and Keycloak of test/services/services.sh, plus what the tests use to
// talk to it: Keycloak tokens (password grant), HTTP and WebSocket through the
// CLI's transport, and Kafka consumers/producers that play the worker.

#include "client/transport.hpp"
#include "frontend/frontend.hpp"
#include "support/support.hpp"

#include <faasd/crypto/sealing.hpp>
#include <faasd/jobs/codec.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/consumer.hpp>
#include <faasd/kafka/producer.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace faasd::test::frontend {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using namespace std::chrono_literals;

/// An access token of a realm user (password grant on faas-cli), cached per process.
inline std::string token_of(const std::string& user) {
    static std::map<std::string, std::string> cache;
    if (auto it = cache.find(user); it != cache.end()) return it->second;
    auto issuer = require_env("FAASD_TEST_OIDC_ISSUER");
    auto r = run_process({"curl", "-sS", "--max-time", "30", "-X", "POST", issuer + "/protocol/openid-connect/token",
                          "--data-urlencode", "grant_type=password", "--data-urlencode", "client_id=faas-cli",
                          "--data-urlencode", "username=" + user, "--data-urlencode", "password=" + user + "-pw",
                          "--data-urlencode", "scope=openid"},
                         {}, {}, 40s);
    INFO("token endpoint: " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto v = json::parse(r.out);
    REQUIRE(v.as_object().contains("access_token"));
    auto t = std::string(v.at("access_token").as_string());
    cache[user] = t;
    return t;
}

/// A job description in the API form.
inline std::string job_body(const std::string& secret = "SUPER-SECRET-VALUE") {
    return R"({"repo": {"url": "https://git.example.org/fn.git", "ref": "main", "credential": "git"},
               "data": {"n": 3}, "credentials": {"git": ")" +
           secret + R"("},
               "owner": {"sub": "mallory", "username": "mallory", "roles": ["faas-admin"]},
               "tags": ["itest"]})";
}

struct reply {
    int status = 0;
    std::string body;
    client::header_list headers;
    json::value json() const { return json::parse(body); }
    std::optional<std::string> header(std::string_view name) const {
        for (const auto& [k, v] : headers) {
            if (k.size() != name.size()) continue;
            bool eq = true;
            for (std::size_t i = 0; i < k.size(); ++i)
                if (std::tolower(static_cast<unsigned char>(k[i])) != std::tolower(static_cast<unsigned char>(name[i]))) eq = false;
            if (eq) return v;
        }
        return std::nullopt;
    }
};

/// A running frontend and its topics.
struct frontend_env {
    std::string base;  ///< http://127.0.0.1:<port>
    jobs::topic_names names;
    crypto::key_ring ring;
    std::string brokers;
    faasd::runtime::role_env* env = nullptr;

    awaitable<reply> call(std::string method, std::string path, std::optional<std::string> token = std::nullopt,
                          std::string body = {}) {
        client::header_list h;
        if (token) h.emplace_back("Authorization", "Bearer " + *token);
        if (!body.empty()) h.emplace_back("Content-Type", "application/json");
        auto r = co_await client::http_request(std::move(method), base + path, std::move(h), std::move(body), 20s);
        REQUIRE(r.has_value());
        co_return reply{r->status, r->body, r->headers};
    }

    /// Polls GET path until pred(reply) or the deadline.
    awaitable<reply> poll(std::string path, std::string token, std::function<bool(const reply&)> pred,
                          std::chrono::milliseconds within = 20s) {
        auto ex = co_await asio::this_coro::executor;
        auto deadline = std::chrono::steady_clock::now() + within;
        for (;;) {
            auto r = co_await call("GET", path, token);
            if (pred(r) || std::chrono::steady_clock::now() > deadline) co_return r;
            asio::steady_timer t(ex, 50ms);
            co_await t.async_wait(asio::use_awaitable);
        }
    }

    kafka::consumer consumer_on(asio::any_io_executor ex) {
        kafka::consumer_options o;
        o.brokers = brokers;
        o.client_id = "frontend-itest";
        return kafka::consumer(ex, o);
    }
    kafka::producer producer_on(asio::any_io_executor ex) {
        kafka::producer_options o;
        o.brokers = brokers;
        o.client_id = "frontend-itest-worker";
        return kafka::producer(ex, o);
    }

    /// The first message with this key on the topic (from the beginning), within 20 s.
    awaitable<std::optional<kafka::message>> find(std::string topic, std::string key,
                                                  std::function<bool(const kafka::message&)> pred = {}) {
        auto ex = co_await asio::this_coro::executor;
        auto c = consumer_on(ex);
        std::vector<std::string> topics{topic};
        auto assigned = co_await c.assign_topics(topics, kafka::offset_beginning);
        REQUIRE(assigned.has_value());
        auto deadline = std::chrono::steady_clock::now() + 20s;
        std::optional<kafka::message> found;
        while (!found && std::chrono::steady_clock::now() < deadline) {
            for (auto& m : co_await c.poll(256, 500ms))
                if (m.key == key && (!pred || pred(m))) {
                    found = std::move(m);
                    break;
                }
        }
        co_await c.close();
        co_return found;
    }
};

/// Starts run_frontend with a fresh topic prefix, waits until /readyz is 200,
/// runs body, then shuts the frontend down and waits for it to stop.
/// `prepare`, if given, runs before the frontend starts (e.g. to create a
/// topic with special settings); `log`, if given, receives the role's log lines.
inline void with_frontend(std::function<awaitable<void>(frontend_env&)> body,
                          std::function<void(roles::frontend_config&)> tweak = {},
                          std::function<awaitable<void>(frontend_env&)> prepare = {},
                          std::shared_ptr<std::string> log = {}) {
    run_coroutine(
        [&]() -> awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            frontend_env fe;
            fe.brokers = require_env("FAASD_TEST_KAFKA");
            auto prefix = unique_name("fe") + ".";
            fe.names = jobs::topic_names::with_prefix(prefix);
            auto key = crypto::generate_key("k1");
            fe.ring = *crypto::key_ring::parse(key);

            roles::frontend_config cfg;
            cfg.listen = "127.0.0.1:0";
            cfg.oidc_issuer = require_env("FAASD_TEST_OIDC_ISSUER");
            cfg.credentials_keys = key;
            cfg.rate_limit = 0;
            if (tweak) tweak(cfg);
            if (prepare) co_await prepare(fe);
            roles::kafka_config kc;
            kc.brokers = fe.brokers;
            kc.topic_prefix = prefix;
            kc.topic_partitions = 2;
            kc.topic_replication = 1;

            auto sink = stderr_sink();
            auto level = std::getenv("FAASD_TEST_FRONTEND_DEBUG") ? log_level::debug : log_level::warn;
            if (log) {
                level = log_level::debug;
                sink = [log](std::string_view line) {
                    log->append(line);
                    log->push_back('\n');
                };
            }
            faasd::runtime::role_env env{faasd::logger(level, log_format::text, sink),
                                         std::make_shared<faasd::runtime::health>(),
                                         std::make_shared<faasd::runtime::shutdown_signal>(ex), 5s};
            fe.env = &env;
            std::uint16_t port = 0;
            bool stopped = false;
            std::exception_ptr role_error;
            asio::co_spawn(ex, roles::run_frontend(cfg, env, kc, [&](std::uint16_t p) { port = p; }),
                           [&](std::exception_ptr e) {
                               role_error = e;
                               stopped = true;
                           });
            auto wait_for = [&](std::function<bool()> pred, std::chrono::milliseconds within) -> awaitable<bool> {
                auto deadline = std::chrono::steady_clock::now() + within;
                while (!pred()) {
                    if (std::chrono::steady_clock::now() > deadline) co_return false;
                    asio::steady_timer t(ex, 20ms);
                    co_await t.async_wait(asio::use_awaitable);
                }
                co_return true;
            };
            REQUIRE(co_await wait_for([&] { return port != 0 || stopped; }, 60s));
            if (role_error) std::rethrow_exception(role_error);
            REQUIRE(port != 0);
            fe.base = "http://127.0.0.1:" + std::to_string(port);
            auto ready = co_await fe.poll("/readyz", "", [](const reply& r) { return r.status == 200; }, 60s);
            INFO("readyz: " << ready.body);
            REQUIRE(ready.status == 200);

            std::exception_ptr body_error;
            try {
                co_await body(fe);
            } catch (...) {
                body_error = std::current_exception();
            }
            env.shutdown->request();
            bool done = co_await wait_for([&] { return stopped; }, 30s);
            if (body_error) std::rethrow_exception(body_error);
            REQUIRE(done);
            if (role_error) std::rethrow_exception(role_error);
        },
        std::chrono::minutes(3));
}

/// A job id from a 202 answer.
/// The job message the frontend put on the at-least-once jobs topic for `id`.
inline awaitable<jobs::job_message> job_on_topic(frontend_env& fe, const std::string& id) {
    auto m = co_await fe.find(fe.names.jobs_at_least_once, id);
    REQUIRE(m.has_value());
    REQUIRE(m->value.has_value());
    auto decoded = jobs::decode_job_message(*m->value);
    REQUIRE(decoded.has_value());
    co_return *decoded;
}

/// Produces one record (a tombstone when `value` is empty), as a worker or another replica would.
inline awaitable<void> produce(frontend_env& fe, std::string topic, std::string key, std::optional<std::string> value) {
    auto p = fe.producer_on(co_await asio::this_coro::executor);
    kafka::record r;
    r.topic = std::move(topic);
    r.key = std::move(key);
    r.value = std::move(value);
    auto d = co_await p.send(std::move(r));
    REQUIRE(d.has_value());
    co_await p.close();
}

inline std::string id_of(const reply& r) {
    INFO("submit answered " << r.status << ": " << r.body);
    REQUIRE(r.status == 202);
    return std::string(r.json().at("id").as_string());
}

}  // namespace faasd::test::frontend
