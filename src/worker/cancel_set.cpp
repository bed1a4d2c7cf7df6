#include <faasd/worker/cancel_set.hpp>

#include <algorithm>

namespace faasd::worker {

cancel_set::cancel_set(std::size_t max_entries, std::chrono::milliseconds ttl)
    : max_(std::max<std::size_t>(max_entries, 1)), ttl_ms_(ttl.count()) {}

void cancel_set::add(std::string id, jobs::unix_ms at, jobs::unix_ms now) {
    if (at + ttl_ms_ <= now) return;
    auto [it, inserted] = by_id_.try_emplace(id, at);
    if (!inserted) {
        if (it->second >= at) return;
        it->second = at;
    }
    order_.emplace_back(at, std::move(id));
    // Too many: forget the oldest insertions (stale duplicates are skipped).
    while (by_id_.size() > max_ && !order_.empty()) {
        auto& [t, oldest] = order_.front();
        auto f = by_id_.find(oldest);
        if (f != by_id_.end() && f->second == t) by_id_.erase(f);
        order_.pop_front();
    }
    if (order_.size() > 2 * max_ + 16) {
        // Compact duplicates so that order_ stays bounded as well.
        std::deque<std::pair<jobs::unix_ms, std::string>> kept;
        for (auto& e : order_) {
            auto f = by_id_.find(e.second);
            if (f != by_id_.end() && f->second == e.first) kept.push_back(std::move(e));
        }
        order_ = std::move(kept);
    }
}

bool cancel_set::contains(std::string_view id, jobs::unix_ms now) const {
    auto it = by_id_.find(std::string(id));
    return it != by_id_.end() && it->second + ttl_ms_ > now;
}

void cancel_set::expire(jobs::unix_ms now) {
    // Insertion order is roughly time order; expire from the front while old,
    // then sweep the map for stragglers (cheap: the set is bounded).
    while (!order_.empty() && order_.front().first + ttl_ms_ <= now) {
        auto f = by_id_.find(order_.front().second);
        if (f != by_id_.end() && f->second == order_.front().first) by_id_.erase(f);
        order_.pop_front();
    }
    std::erase_if(by_id_, [&](const auto& kv) { return kv.second + ttl_ms_ <= now; });
}

}  // namespace faasd::worker
