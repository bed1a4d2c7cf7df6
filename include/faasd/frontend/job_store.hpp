#pragma once
// The job view plus change notification: what the state-topic feed, the
// handlers' own writes (read-your-writes), the WebSocket hub and long-polls
// share. Loop-thread only.

#include <faasd/jobs/view.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
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

    /// Folds a snapshot in; on inserted/replaced, tells listeners and wakes waiters.
    jobs::apply_outcome apply(const jobs::job_status& s);
    /// Drops the job (tombstone); tells listeners and wakes waiters.
    bool erase(std::string_view id);

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
    std::uint64_t changes_ = 0;
};

}  // namespace faasd::frontend
