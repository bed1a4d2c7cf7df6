#pragma once
// Health endpoints every role can serve (workers and observers with
// --health-listen; the frontend adds the routes to its API router):
//
//   GET /healthz   200 {"status":"alive"} while the process runs its loop
//   GET /readyz    200 or 503 with runtime::health::report() as JSON
//   GET /metrics   the metrics registry in the Prometheus text format 0.0.4

#include <faasd/http/router.hpp>
#include <faasd/runtime/runtime.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace faasd::metrics {
class registry;
}

namespace faasd::http {

/// Adds the three routes. `metrics` may be null (then /metrics is empty).
void add_health_routes(router& r, std::shared_ptr<const runtime::health> health,
                       std::shared_ptr<const metrics::registry> metrics);

/// Serves the health routes on `listen` ("host:port", see parse_listen_address)
/// until env.shutdown is requested, then stops gracefully (env.shutdown_grace)
/// and returns. Access lines are logged at debug level. Throws
/// std::invalid_argument for a malformed address and boost::system::system_error
/// if it cannot listen. `on_listening`, if set, gets the bound port (tests, port 0).
boost::asio::awaitable<void> serve_health(runtime::role_env& env, std::string listen,
                                          std::shared_ptr<metrics::registry> metrics,
                                          std::function<void(std::uint16_t)> on_listening = {});

}  // namespace faasd::http
