// `faasd frontend` in-process on real Kafka and Keycloak, at the edges:
// a result whose response cannot be written, a queued snapshot Kafka refuses,
// the retention sweep and erased markers, and key discovery through another
// address (--oidc-discovery-url).

#include "frontend_support.hpp"

#include <faasd/frontend/marker.hpp>
#include <faasd/kafka/admin.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <map>
#include <sstream>
#include <mutex>
#include <thread>

using namespace faasd;
using namespace faasd::test::frontend;
using namespace boost::asio::experimental::awaitable_operators;
using tcp = boost::asio::ip::tcp;

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// What a worker writes when a job succeeds.
awaitable<void> finish(frontend_env& fe, const std::string& id, std::int64_t answer) {
    auto m = co_await job_on_topic(fe, id);
    jobs::job_status s;
    s.id = m.id;
    s.owner = m.owner;
    s.state = jobs::job_state::succeeded;
    s.submitted_at = m.submitted_at;
    s.started_at = m.submitted_at + 1;
    s.finished_at = now_ms();
    s.updated_at = s.finished_at;
    s.worker = "itest-worker";
    s.repo = m.spec.repo;
    s.idempotency_key = m.idempotency_key;
    jobs::job_result r;
    r.id = m.id;
    r.owner_subject = m.owner.subject;
    r.worker = s.worker;
    r.exit_code = 0;
    r.output = json::object{{"answer", answer}};
    r.times.submitted_at = s.submitted_at;
    r.times.finished_at = s.finished_at;
    s.result = std::move(r);
    co_await produce(fe, fe.names.state, id, jobs::encode(s));
}

/// The value of one sample of the frontend's /metrics (0 when absent): the
/// first line that starts with `name` and contains every label fragment.
awaitable<double> metric(frontend_env& fe, std::string name, std::vector<std::string> labels = {}) {
    auto m = co_await fe.call("GET", "/metrics");
    std::istringstream in(m.body);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with(name + "{") && !line.starts_with(name + " ")) continue;
        bool all = true;
        for (const auto& l : labels) all = all && line.find(l) != std::string::npos;
        if (all) co_return std::stod(line.substr(line.rfind(' ') + 1));
    }
    co_return 0.0;
}

std::uint16_t port_of(const std::string& base) { return static_cast<std::uint16_t>(std::stoi(base.substr(base.rfind(':') + 1))); }

// Built outside coroutines (GCC 12 rejects braced string-literal initialisers
// inside coroutine bodies).
std::vector<std::string> labels(const std::string& a, const std::string& b = {}) {
    std::vector<std::string> v;
    v.push_back(a);
    if (!b.empty()) v.push_back(b);
    return v;
}
client::header_list keyed_headers(const std::string& token, const std::string& key) {
    client::header_list h;
    h.emplace_back("Authorization", "Bearer " + token);
    h.emplace_back("Content-Type", "application/json");
    h.emplace_back("Idempotency-Key", key);
    return h;
}
std::map<std::string, std::string> tiny_state_topic() {
    std::map<std::string, std::string> c;
    c.emplace("cleanup.policy", "compact");
    c.emplace("max.message.bytes", "120");
    return c;
}

/// POST /v1/jobs with an Idempotency-Key.
awaitable<reply> submit_keyed(frontend_env& fe, std::string token, std::string key) {
    auto r = co_await client::http_request("POST", fe.base + "/v1/jobs", keyed_headers(token, key), job_body(), 20s);
    REQUIRE(r.has_value());
    co_return reply{r->status, r->body, r->headers};
}

awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

}  // namespace

TEST_CASE("frontend: a result whose response cannot be written is not erased", "[frontend][integration]") {
    with_frontend([](frontend_env& fe) -> awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto alice = token_of("alice");
        auto id = id_of(co_await fe.call("POST", "/v1/jobs", alice, job_body()));

        // A client long-polls the result, then vanishes (RST) before the job finishes.
        tcp::socket sock(ex);
        co_await sock.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_of(fe.base)),
                                    asio::use_awaitable);
        std::string req = "GET /v1/jobs/" + id + "/result?wait=30 HTTP/1.1\r\nHost: fe\r\nAuthorization: Bearer " +
                          alice + "\r\n\r\n";
        co_await asio::async_write(sock, asio::buffer(req), asio::use_awaitable);
        // Wait until the frontend is in the handler (this scrape is the other request in flight).
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (co_await metric(fe, "faasd_http_requests_in_flight") < 2 && std::chrono::steady_clock::now() < deadline)
            co_await pause(20ms);
        REQUIRE(co_await metric(fe, "faasd_http_requests_in_flight") >= 2);
        sock.set_option(asio::socket_base::linger(true, 0));
        sock.close();  // RST

        co_await finish(fe, id, 42);
        // The long-poll answered (the write failed).
        deadline = std::chrono::steady_clock::now() + 15s;
        const auto answered = labels("route=\"/v1/jobs/{id}/result\"", "status=\"200\"");
        while (co_await metric(fe, "faasd_http_requests_total", answered) < 1 && std::chrono::steady_clock::now() < deadline)
            co_await pause(20ms);
        REQUIRE(co_await metric(fe, "faasd_http_requests_total", answered) >= 1);
        co_await pause(300ms);  // an erasure, if one had been started, would be done by now

        // Nothing was lost: the job and its result are still there.
        auto job = co_await fe.call("GET", "/v1/jobs/" + id, alice);
        CHECK(job.status == 200);
        auto r = co_await fe.call("GET", "/v1/jobs/" + id + "/result", alice);
        REQUIRE(r.status == 200);
        CHECK(r.json().at("output").at("answer").as_int64() == 42);
        // That response was written: now the job goes.
        auto gone = co_await fe.poll("/v1/jobs/" + id, alice, [](const reply& x) { return x.status == 404; }, 10s);
        CHECK(gone.status == 404);
    });
}

TEST_CASE("frontend: a queued snapshot Kafka refuses does not fail an acknowledged job", "[frontend][integration]") {
    with_frontend(
        [](frontend_env& fe) -> awaitable<void> {
            auto alice = token_of("alice");
            auto r = co_await fe.call("POST", "/v1/jobs", alice, job_body());
            INFO(r.body);
            REQUIRE(r.status == 202);  // the job message was acknowledged
            auto id = std::string(r.json().at("id").as_string());
            auto m = co_await job_on_topic(fe, id);
            CHECK(m.id == id);
            // This replica shows it (read-your-writes) although the state topic refused the snapshot.
            auto s = co_await fe.call("GET", "/v1/jobs/" + id, alice);
            CHECK(s.status == 200);
            CHECK(co_await metric(fe, "faasd_kafka_errors_total", labels("op=\"snapshot\"")) >= 1);
            CHECK(co_await metric(fe, "faasd_jobs_submitted_total") >= 1);
        },
        {},
        [](frontend_env& fe) -> awaitable<void> {
            // The state topic exists already and takes no record as large as a snapshot.
            kafka::admin_options o;
            o.brokers = fe.brokers;
            kafka::admin adm(co_await asio::this_coro::executor, o);
            kafka::topic_spec t;
            t.name = fe.names.state;
            t.partitions = 2;
            t.configs = tiny_state_topic();
            std::vector<kafka::topic_spec> topics;
            topics.push_back(t);
            auto made = co_await adm.ensure_topics(std::move(topics));
            REQUIRE(made.has_value());
            co_await adm.close();
        });
}

TEST_CASE("frontend: finished jobs nobody reads are swept, an erased key answers 409, also from the topic",
          "[frontend][integration]") {
    with_frontend(
        [](frontend_env& fe) -> awaitable<void> {
            auto alice = token_of("alice");
            auto plain = id_of(co_await fe.call("POST", "/v1/jobs", alice, job_body()));
            auto keyed_reply = co_await submit_keyed(fe, alice, "k1");
            REQUIRE(keyed_reply.status == 202);
            auto keyed = std::string(keyed_reply.json().at("id").as_string());
            auto running = id_of(co_await fe.call("POST", "/v1/jobs", alice, job_body()));
            co_await finish(fe, plain, 1);
            co_await finish(fe, keyed, 2);

            // Within a few seconds of the 2 s retention both finished jobs are gone; the queued one stays.
            for (const auto& id : {plain, keyed}) {
                auto r = co_await fe.poll("/v1/jobs/" + id, alice, [](const reply& x) { return x.status == 404; }, 15s);
                CHECK(r.status == 404);
            }
            CHECK((co_await fe.call("GET", "/v1/jobs/" + running, alice)).status == 200);
            CHECK(co_await metric(fe, "faasd_retention_erased_total", labels("what=\"job\"")) >= 2);
            // On the state topic: a tombstone for the plain job, a marker for the keyed one.
            auto tomb = co_await fe.find(fe.names.state, plain, [](const kafka::message& m) { return m.tombstone(); });
            CHECK(tomb.has_value());
            auto mark = co_await fe.find(fe.names.state, keyed, [](const kafka::message& m) {
                return m.value && frontend::decode_marker(*m.value).has_value();
            });
            REQUIRE(mark.has_value());
            auto marker = frontend::decode_marker(*mark->value);
            CHECK(marker->idempotency_key == "k1");
            // The key is consumed: no second run under the same id.
            auto again = co_await submit_keyed(fe, alice, "k1");
            CHECK(again.status == 409);
            CHECK(again.json().at("type").as_string() == "https://faasd.dev/problems/idempotency-key-consumed");
            CHECK(again.json().at("id").as_string() == keyed);

            // A marker another replica wrote reaches this one through the topic.
            auto other = co_await submit_keyed(fe, alice, "k2");
            REQUIRE(other.status == 202);
            auto other_id = std::string(other.json().at("id").as_string());
            auto m = co_await job_on_topic(fe, other_id);
            frontend::erased_marker remote;
            remote.id = other_id;
            remote.owner = m.owner.subject;
            remote.idempotency_key = std::string("k2");
            remote.submitted_at = m.submitted_at;
            remote.erased_at = now_ms();
            co_await produce(fe, fe.names.state, other_id, frontend::encode_marker(remote));
            auto gone = co_await fe.poll("/v1/jobs/" + other_id, alice, [](const reply& x) { return x.status == 404; });
            CHECK(gone.status == 404);
            CHECK((co_await submit_keyed(fe, alice, "k2")).status == 409);
        },
        [](roles::frontend_config& cfg) { cfg.finished_retention = "2s"; });
}

namespace {

/// A TCP relay on its own thread: another address of the same server, which
/// records what clients sent through it.
class relay {
public:
    explicit relay(tcp::endpoint upstream)
        : upstream_(upstream), acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(ioc_, accept_loop(), asio::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~relay() {
        ioc_.stop();
        thread_.join();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::string sent() const {
        std::lock_guard<std::mutex> l(mutex_);
        return sent_;
    }

private:
    awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, s] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            asio::co_spawn(ioc_, session(std::move(s)), asio::detached);
        }
    }
    awaitable<void> pipe(tcp::socket& from, tcp::socket& to, bool record) {
        std::array<char, 8192> buf{};
        for (;;) {
            auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
            if (ec) break;
            if (record) {
                std::lock_guard<std::mutex> l(mutex_);
                sent_.append(buf.data(), n);
            }
            auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n), asio::as_tuple(asio::use_awaitable));
            (void)wn;
            if (wec) break;
        }
        boost::system::error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
    }
    awaitable<void> session(tcp::socket client) {
        tcp::socket up(ioc_);
        auto [ec] = co_await up.async_connect(upstream_, asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        co_await (pipe(client, up, true) && pipe(up, client, false));
    }

    tcp::endpoint upstream_;
    asio::io_context ioc_;
    tcp::acceptor acceptor_;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::string sent_;
};

}  // namespace

TEST_CASE("frontend: --oidc-discovery-url fetches discovery and keys through another address",
          "[frontend][integration]") {
    // FAASD_TEST_KEYCLOAK is http://127.0.0.1:<port>; its documents always name that address (fixed hostname).
    auto kc = test::require_env("FAASD_TEST_KEYCLOAK");
    auto colon = kc.rfind(':');
    relay internal(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                 static_cast<std::uint16_t>(std::stoi(kc.substr(colon + 1)))));
    auto issuer = test::require_env("FAASD_TEST_OIDC_ISSUER");
    auto path = issuer.substr(kc.size());  // /realms/faas
    auto discovery = "http://127.0.0.1:" + std::to_string(internal.port()) + path;
    with_frontend(
        [&](frontend_env& fe) -> awaitable<void> {
            auto alice = token_of("alice");
            CHECK((co_await fe.call("GET", "/v1/jobs", alice)).status == 200);  // iss is still the public issuer
            auto tampered = alice;
            tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
            CHECK((co_await fe.call("GET", "/v1/jobs", tampered)).status == 401);
        },
        [&](roles::frontend_config& cfg) { cfg.oidc_discovery_url = discovery; });
    auto sent = internal.sent();
    INFO(sent);
    CHECK(sent.find("GET " + path + "/.well-known/openid-configuration ") != std::string::npos);
    CHECK(sent.find("GET " + path + "/protocol/openid-connect/certs ") != std::string::npos);
}
