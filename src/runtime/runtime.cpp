#include <faasd/runtime/runtime.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace faasd::runtime {
namespace asio = boost::asio;

void health::set(const std::string& component, bool ready, std::string detail) {
    std::lock_guard lock(mu_);
    components_[component] = entry{ready, std::move(detail)};
}

bool health::ready() const {
    std::lock_guard lock(mu_);
    if (components_.empty()) return false;
    for (const auto& [name, e] : components_)
        if (!e.ready) return false;
    return true;
}

boost::json::object health::report() const {
    std::lock_guard lock(mu_);
    boost::json::object comps;
    bool all = !components_.empty();
    for (const auto& [name, e] : components_) {
        comps[name] = boost::json::object{{"ready", e.ready}, {"detail", e.detail}};
        all = all && e.ready;
    }
    return {{"ready", all}, {"components", std::move(comps)}};
}

shutdown_signal::shutdown_signal(asio::any_io_executor ex) : timer_(std::move(ex)) {
    timer_.expires_at(asio::steady_timer::time_point::max());
}

void shutdown_signal::request() {
    requested_ = true;
    timer_.cancel();
}

asio::awaitable<void> shutdown_signal::wait() {
    while (!requested_) {
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

}  // namespace faasd::runtime
