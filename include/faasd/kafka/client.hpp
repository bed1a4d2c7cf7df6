#pragma once
// Options shared by every Kafka client (producer, consumer, admin), and the
// readiness contract.
//
// Readiness: each client probes the cluster (a cheap metadata request, run on
// the blocking pool) when it starts and whenever librdkafka reports that all
// brokers are down. While the probe fails the client is not ready: it calls
// on_readiness(false, reason) once, logs one `kafka.unreachable` line per
// failed probe (at most one per backoff step, no busy loop) and retries with
// exponential backoff; the first successful probe calls on_readiness(true).
// librdkafka itself keeps reconnecting in the background and its own
// connection-refused chatter is logged at debug level only.

#include <faasd/core/log.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::kafka {

/// Exponential backoff between attempts.
struct backoff_policy {
    std::chrono::milliseconds initial{500};  ///< delay after the first failure
    std::chrono::milliseconds max{15000};    ///< cap of the delay
    int max_attempts = 0;                    ///< 0: retry until cancelled

    /// The delay after `failures` consecutive failures (1 -> initial, doubling, capped). Pure.
    std::chrono::milliseconds delay(int failures) const noexcept;
    /// True when another attempt is allowed after `attempts` attempts.
    bool may_retry(int attempts) const noexcept { return max_attempts <= 0 || attempts < max_attempts; }
};

/// Called on the loop thread whenever the client's readiness changes.
using readiness_fn = std::function<void(bool ready, std::string_view detail)>;

/// Options of every client. Properties are applied in this order, later wins:
/// the adapter's defaults, the role's defaults (e.g. acks=all), `properties`.
struct client_options {
    std::string brokers;                            ///< bootstrap.servers, host:port[,host:port...]
    std::map<std::string, std::string> properties;  ///< extra librdkafka properties (e.g. security.protocol)
    std::string client_id = "faasd";                ///< client.id, also the `client` log field
    faasd::logger log;                              ///< librdkafka logs and adapter events go here
    readiness_fn on_readiness;                      ///< optional, see above
    backoff_policy reconnect{};                     ///< backoff of the readiness probe
    std::chrono::milliseconds probe_timeout{3000};  ///< deadline of one readiness probe
    /// Where blocking librdkafka calls run (flush, transactions, close, watermark
    /// queries, rd_kafka_destroy). Default: a pool shared by all clients of the
    /// process (8 threads, mostly waiting). Never the loop.
    boost::asio::any_io_executor blocking_executor;
};

/// Parses repeated "key=value" strings (--kafka-property) into a map; throws
/// kafka::exception (invalid_arg) on a string without '=' or with an empty key.
std::map<std::string, std::string> parse_properties(const std::vector<std::string>& key_values);

}  // namespace faasd::kafka
