#pragma once
// What every role gets from main: a logger, a health registry (liveness and
// readiness, served by HTTP endpoints), and a shutdown signal. Several roles
// can share one runtime in one process (faasd dev, end-to-end tests).

#include <faasd/core/log.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace faasd::runtime {

/// Readiness of named components ("kafka", "jwks", "state"). Thread-safe.
class health {
public:
    void set(const std::string& component, bool ready, std::string detail = {});
    /// True when every registered component is ready (and at least one is registered).
    bool ready() const;
    /// {"ready": bool, "components": {"kafka": {"ready": true, "detail": "..."}}}
    boost::json::object report() const;

private:
    struct entry {
        bool ready = false;
        std::string detail;
    };
    mutable std::mutex mu_;
    std::map<std::string, entry> components_;
};

/// A one-shot broadcast: request() wakes every wait(). Loop-thread only.
class shutdown_signal {
public:
    explicit shutdown_signal(boost::asio::any_io_executor ex);
    void request();
    bool requested() const noexcept { return requested_; }
    /// Completes when request() has been called (at once if it already was).
    boost::asio::awaitable<void> wait();

private:
    bool requested_ = false;
    boost::asio::steady_timer timer_;
};

/// Shared by the roles of one process.
struct role_env {
    faasd::logger log;
    std::shared_ptr<health> health_state;
    std::shared_ptr<shutdown_signal> shutdown;
    /// Upper bound on graceful shutdown; main forces termination after it.
    std::chrono::milliseconds shutdown_grace{std::chrono::seconds(20)};
};

}  // namespace faasd::runtime
