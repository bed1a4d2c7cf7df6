#pragma once
// The job view plus change notification: what the state-topic feed, the
// handlers' own writes (read-your-writes), the WebSocket hub and long-polls
// share; plus the erased markers of idempotent jobs (marker.hpp) and the
// owners the retention sweep walks. Loop-thread only.

#include <faasd/frontend/marker.hpp>
#include <faasd/jobs/view.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::frontend {

/// A visible change of one job.
struct job_change {
    std::string_view id;
    const jobs::job_status* status;  ///< the job after the change; nullptr when erased
    std::string_view owner;          ///< the owner's subject (also for erasures)
};

class job_store {
public:
    using listener = std::function<void(const job_change&)>;

    job_store(boost::asio::any_io_executor ex, jobs::view_limits limits = {});
    job_store(const job_store&) = delete;
    job_store& operator=(const job_store&) = delete;

    const jobs::job_view& view() const noexcept { return view_; }

    /// Folds a snapshot in; on inserted/replaced, tells listeners and wakes
    /// waiters. A snapshot of a job that left a marker is ignored unless it
    /// was submitted later than the marked job (a new job under the same id).
    jobs::apply_outcome apply(const jobs::job_status& s);
    /// Drops the job (a tombstone, or `marker` when given, which is then kept
    /// until a tombstone for the id); tells listeners and wakes waiters when
    /// the job was in the view. A tombstone also drops the id's marker.
    /// Returns whether the job was in the view.
    bool erase(std::string_view id, std::optional<erased_marker> marker = std::nullopt);

    /// The marker an erased idempotent job left, if any.
    const erased_marker* marker(std::string_view id) const;
    const std::map<std::string, erased_marker, std::less<>>& markers() const noexcept { return markers_; }
    /// Heap bytes of the markers (an estimate, for metrics and docs).
    std::size_t markers_memory_bytes() const noexcept;

    /// Subjects that own (or owned) jobs in the view: the retention sweep
    /// walks their job lists. forget_owner drops one whose list is empty.
    const std::set<std::string, std::less<>>& owners() const noexcept { return owners_; }
    void forget_owner(std::string_view subject);

    boost::asio::any_io_executor executor() const { return ex_; }

    /// Listeners run synchronously inside apply/erase; they must not call back
    /// into the store. Returns a handle for remove_listener.
    std::uint64_t add_listener(listener l);
    void remove_listener(std::uint64_t handle);

    /// Completes when the job changes (true) or after `max` (false), or at
    /// once (false) when `max` is zero. Cancellation completes it with false.
    boost::asio::awaitable<bool> wait_change(std::string id, std::chrono::milliseconds max);

    std::uint64_t changes() const noexcept { return changes_; }

private:
    struct waiter;
    void notify(std::string_view id, const jobs::job_status* s, std::string_view owner);

    boost::asio::any_io_executor ex_;
    jobs::job_view view_;
    std::map<std::uint64_t, listener> listeners_;
    std::uint64_t next_listener_ = 1;
    std::multimap<std::string, waiter*, std::less<>> waiters_;
    std::map<std::string, erased_marker, std::less<>> markers_;
    std::set<std::string, std::less<>> owners_;
    std::uint64_t changes_ = 0;
};

}  // namespace faasd::frontend
