#include <faasd/frontend/job_store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace faasd::frontend {
namespace asio = boost::asio;

struct job_store::waiter {
    asio::steady_timer timer;
    bool fired = false;
};

job_store::job_store(asio::any_io_executor ex, jobs::view_limits limits) : ex_(std::move(ex)), view_(limits) {}

jobs::apply_outcome job_store::apply(const jobs::job_status& s) {
    auto outcome = view_.apply(s);
    if (outcome == jobs::apply_outcome::inserted || outcome == jobs::apply_outcome::replaced) {
        if (listeners_.empty()) {
            notify(s.id, nullptr, {});
        } else {
            auto now = view_.get(s.id);
            notify(s.id, &*now, now->owner.subject);
        }
    }
    return outcome;
}

bool job_store::erase(std::string_view id) {
    std::string owner(view_.owner_of(id));
    if (!view_.erase(id)) return false;
    notify(id, nullptr, owner);
    return true;
}

void job_store::notify(std::string_view id, const jobs::job_status* s, std::string_view owner) {
    ++changes_;
    if (!listeners_.empty()) {
        job_change c{id, s, owner};
        // Copy the handles: a listener may remove itself.
        std::vector<std::uint64_t> handles;
        handles.reserve(listeners_.size());
        for (const auto& [h, l] : listeners_) handles.push_back(h);
        for (auto h : handles)
            if (auto it = listeners_.find(h); it != listeners_.end()) it->second(c);
    }
    auto [b, e] = waiters_.equal_range(id);
    for (auto it = b; it != e; ++it) {
        it->second->fired = true;
        it->second->timer.cancel();
    }
}

std::uint64_t job_store::add_listener(listener l) {
    auto h = next_listener_++;
    listeners_.emplace(h, std::move(l));
    return h;
}

void job_store::remove_listener(std::uint64_t handle) { listeners_.erase(handle); }

asio::awaitable<bool> job_store::wait_change(std::string id, std::chrono::milliseconds max) {
    if (max.count() <= 0) co_return false;
    waiter w{asio::steady_timer(ex_, max)};
    auto it = waiters_.emplace(id, &w);
    co_await w.timer.async_wait(asio::as_tuple(asio::use_awaitable));
    waiters_.erase(it);
    co_return w.fired;
}

}  // namespace faasd::frontend
