#include <faasd/http/health.hpp>
#include <faasd/http/server.hpp>
#include <faasd/metrics/registry.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>

namespace faasd::http {

namespace asio = boost::asio;

void add_health_routes(router& r, std::shared_ptr<const runtime::health> health,
                       std::shared_ptr<const metrics::registry> metrics) {
    r.add("GET", "/healthz", [](const request&, const route_params&) -> asio::awaitable<response> {
        co_return response::json(200, boost::json::object{{"status", "alive"}});
    });
    r.add("GET", "/readyz", [health](const request&, const route_params&) -> asio::awaitable<response> {
        boost::json::object report = health ? health->report() : boost::json::object{{"ready", false}};
        bool ready = report.contains("ready") && report.at("ready").is_bool() && report.at("ready").as_bool();
        co_return response::json(ready ? 200 : 503, report);
    });
    r.add("GET", "/metrics", [metrics](const request&, const route_params&) -> asio::awaitable<response> {
        co_return response::text(200, metrics ? metrics->render() : std::string(),
                                 std::string(metrics::registry::content_type));
    });
}

asio::awaitable<void> serve_health(runtime::role_env& env, std::string listen,
                                   std::shared_ptr<metrics::registry> metrics,
                                   std::function<void(std::uint16_t)> on_listening) {
    auto addr = parse_listen_address(listen);
    if (!addr) throw std::invalid_argument("invalid health listen address: " + listen);
    server_config cfg;
    cfg.address = addr->first;
    cfg.port = addr->second;
    cfg.access_log_level = log_level::debug;
    cfg.handler_timeout = std::chrono::milliseconds(0);  // the handlers do not wait for anything
    router r;
    add_health_routes(r, env.health_state, metrics);
    auto ex = co_await asio::this_coro::executor;
    auto srv = std::make_shared<server>(ex, cfg, std::move(r), env.log.with({{"component", "health"}}), metrics);
    auto port = srv->listen();
    if (!port) throw boost::system::system_error(port.error(), "health endpoint cannot listen on " + listen);
    if (on_listening) on_listening(*port);

    // Stop when the process shuts down; run() then drains and returns.
    asio::co_spawn(
        ex,
        [srv, shutdown = env.shutdown, grace = env.shutdown_grace]() -> asio::awaitable<void> {
            co_await shutdown->wait();
            srv->stop(grace);
        },
        [log = env.log](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& err) {
                log.error("health.watcher_failed", {{"error", err.what()}});
            }
        });
    co_await srv->run();
}

}  // namespace faasd::http
