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
    if (auto m = markers_.find(s.id); m != markers_.end()) {
        if (s.submitted_at <= m->second.submitted_at) return jobs::apply_outcome::ignored;  // a late copy
        markers_.erase(m);
    }
    auto outcome = view_.apply(s);
    if (outcome == jobs::apply_outcome::inserted && !owners_.contains(s.owner.subject)) owners_.emplace(s.owner.subject);
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

bool job_store::erase(std::string_view id, std::optional<erased_marker> marker) {
    if (marker) {
        auto key = std::string(id);
        markers_.insert_or_assign(std::move(key), std::move(*marker));
    } else if (auto m = markers_.find(id); m != markers_.end()) {
        markers_.erase(m);
    }
    std::string owner(view_.owner_of(id));
    if (!view_.erase(id)) return false;
    notify(id, nullptr, owner);
    return true;
}

const erased_marker* job_store::marker(std::string_view id) const {
    auto it = markers_.find(id);
    return it == markers_.end() ? nullptr : &it->second;
}

std::size_t job_store::markers_memory_bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& [id, m] : markers_) {
        n += 64 + sizeof(erased_marker) + sizeof(std::string);  // map node
        for (const auto* str : {&id, &m.id, &m.owner, &m.idempotency_key})
            if (str->size() > 15) n += str->capacity() + 1;
    }
    return n;
}

void job_store::forget_owner(std::string_view subject) {
    if (auto it = owners_.find(subject); it != owners_.end()) owners_.erase(it);
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
