#include <faasd/jobs/merge.hpp>

namespace faasd::jobs {

int state_rank(job_state s) noexcept {
    switch (s) {
        case job_state::queued: return 0;
        case job_state::running: return 1;
        default: return 2;
    }
}

merge_key key_of(const job_status& s) noexcept {
    return {s.state, s.attempt, s.result.has_value(), s.finished_at, s.updated_at, s.worker};
}

std::strong_ordering precedence(const merge_key& a, const merge_key& b) noexcept {
    const bool ta = is_terminal(a.state), tb = is_terminal(b.state);
    // 1. terminal is final.
    if (ta != tb) return ta <=> tb;
    if (!ta) {
        // 2. (attempt, rank) among live snapshots.
        if (auto c = a.attempt <=> b.attempt; c != 0) return c;
        if (auto c = state_rank(a.state) <=> state_rank(b.state); c != 0) return c;
    } else {
        // 3. result, attempt, first finish among terminal snapshots.
        if (auto c = a.has_result <=> b.has_result; c != 0) return c;
        if (auto c = a.attempt <=> b.attempt; c != 0) return c;
        if (auto c = b.finished_at <=> a.finished_at; c != 0) return c;  // earlier wins
    }
    // 4. deterministic tie-breaks.
    if (auto c = a.updated_at <=> b.updated_at; c != 0) return c;
    if (auto c = a.worker.compare(b.worker); c != 0) return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
    return static_cast<int>(a.state) <=> static_cast<int>(b.state);
}

merge_outcome merge(std::optional<job_status>& current, job_status&& incoming) {
    if (!current) {
        current.emplace(std::move(incoming));
        return merge_outcome::inserted;
    }
    if (supersedes(key_of(incoming), key_of(*current))) {
        *current = std::move(incoming);
        return merge_outcome::replaced;
    }
    return merge_outcome::kept;
}

}  // namespace faasd::jobs
