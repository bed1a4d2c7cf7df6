#include <faasd/worker/delivery_view.hpp>

#include <algorithm>

namespace faasd::worker {

delivery_view::delivery_view(std::size_t max_entries) : max_(std::max<std::size_t>(max_entries, 1)) {}

void delivery_view::apply(const jobs::job_status& s) {
    // Only what a later delivery needs: a running attempt, or a handed-back one.
    const bool keep = s.state == jobs::job_state::running ||
                      (s.state == jobs::job_state::queued && s.deliveries > 0);
    if (!keep) {
        by_id_.erase(s.id);
        return;
    }
    auto [it, inserted] = by_id_.try_emplace(s.id);
    auto& e = it->second;
    e.state = s.state;
    e.attempt = s.attempt;
    e.deliveries = s.deliveries;
    e.worker = s.worker;
    if (inserted) {
        e.seq = next_seq_++;
        order_.emplace_back(e.seq, s.id);
        while (by_id_.size() > max_) forget_oldest();
    }
    if (order_.size() > 2 * max_ + 16) {
        std::erase_if(order_, [&](const auto& p) {
            auto f = by_id_.find(p.second);
            return f == by_id_.end() || f->second.seq != p.first;
        });
    }
}

void delivery_view::forget_oldest() {
    while (!order_.empty()) {
        auto [seq, id] = std::move(order_.front());
        order_.pop_front();
        auto f = by_id_.find(id);
        if (f != by_id_.end() && f->second.seq == seq) {
            by_id_.erase(f);
            return;
        }
    }
}

void delivery_view::erase(std::string_view id) { by_id_.erase(std::string(id)); }

void delivery_view::handed_back(const std::string& id, int attempt) {
    if (!handed_back_.emplace(id, attempt).second) return;
    handed_back_order_.emplace_back(id, attempt);
    while (handed_back_order_.size() > max_) {
        handed_back_.erase(handed_back_order_.front());
        handed_back_order_.pop_front();
    }
}

int delivery_view::prior_deliveries(std::string_view id, int attempt, std::string_view self) const {
    auto it = by_id_.find(std::string(id));
    if (it == by_id_.end() || it->second.attempt != attempt) return 0;
    const auto& e = it->second;
    const int n = std::max(e.deliveries, 1);
    if (e.state == jobs::job_state::queued) return n - 1;  // handed back: that delivery does not count
    if (e.worker == self && handed_back_.count({std::string(id), attempt})) return n - 1;
    return n;  // running: its worker was lost
}

}  // namespace faasd::worker
