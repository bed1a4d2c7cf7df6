#include <faasd/worker/offset_tracker.hpp>

#include <algorithm>

namespace faasd::worker {

bool offset_tracker::track(const partition_id& p, std::int64_t offset) {
    auto& s = parts_[p];
    if (offset < s.next || offset < s.committed) return false;
    s.open.insert(offset);
    s.next = offset + 1;
    return true;
}

bool offset_tracker::release(const partition_id& p, std::int64_t offset) {
    auto it = parts_.find(p);
    if (it == parts_.end()) return false;
    return it->second.open.erase(offset) > 0;
}

std::optional<std::int64_t> offset_tracker::watermark(const partition_id& p) const {
    auto it = parts_.find(p);
    if (it == parts_.end() || it->second.next < 0) return std::nullopt;
    const auto& s = it->second;
    return s.open.empty() ? s.next : *s.open.begin();
}

std::vector<commit_position> offset_tracker::pending() const {
    std::vector<commit_position> out;
    for (const auto& [p, s] : parts_) {
        if (s.next < 0) continue;
        std::int64_t w = s.open.empty() ? s.next : *s.open.begin();
        if (w > s.committed) out.push_back({p, w});
    }
    return out;
}

void offset_tracker::committed(const partition_id& p, std::int64_t position) {
    auto it = parts_.find(p);
    if (it == parts_.end()) return;  // forgotten meanwhile (revoked): nothing to record
    it->second.committed = std::max(it->second.committed, position);
}

std::int64_t offset_tracker::committed_position(const partition_id& p) const {
    auto it = parts_.find(p);
    return it == parts_.end() ? -1 : it->second.committed;
}

bool offset_tracker::covered(const partition_id& p, std::int64_t offset) const {
    return committed_position(p) > offset;
}

void offset_tracker::forget(const partition_id& p) { parts_.erase(p); }

std::size_t offset_tracker::outstanding(const partition_id& p) const {
    auto it = parts_.find(p);
    return it == parts_.end() ? 0 : it->second.open.size();
}

std::size_t offset_tracker::outstanding() const {
    std::size_t n = 0;
    for (const auto& [p, s] : parts_) n += s.open.size();
    return n;
}

std::vector<partition_id> offset_tracker::partitions() const {
    std::vector<partition_id> out;
    for (const auto& [p, s] : parts_) out.push_back(p);
    return out;
}

}  // namespace faasd::worker
