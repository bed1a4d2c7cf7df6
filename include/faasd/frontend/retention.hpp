#pragma once
// Erasing jobs, and the retention sweep that bounds the job view
// (docs/frontend.md, "Retention"). A finished job whose result nobody reads
// would otherwise stay in every replica and in the compacted state topic
// forever; the sweep erases finished jobs --finished-retention after they
// finished, and tombstones erased markers once their idempotency window has
// passed. Every replica sweeps: the writes are idempotent (the same tombstone
// or the same marker for the same job), so replicas racing each other, or a
// replica repeating a sweep that another one did, change nothing.
//
// Loop-thread only, like frontend_app.

#include <faasd/frontend/app.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>

namespace faasd::frontend {

/// Erases a job everywhere: a marker (marker_for) or a tombstone on the state
/// topic, then this replica's view. errc::unavailable when Kafka did not
/// acknowledge (the job stays).
boost::asio::awaitable<result<void>> erase_job(frontend_app& app, const jobs::job_status& s, unix_ms now);

/// What one sweep did.
struct sweep_result {
    std::size_t scanned = 0;             ///< jobs looked at
    std::size_t erased = 0;              ///< finished jobs erased (tombstone or marker)
    std::size_t markers_tombstoned = 0;  ///< markers whose window had passed
    std::size_t failed = 0;              ///< writes Kafka did not acknowledge (retried next sweep)
};

/// One pass over the view at `now`: tombstones expired markers, then erases
/// every finished job that finished at least settings().finished_retention
/// ago. Yields to the loop between pages of `page` jobs and keeps at most
/// `concurrency` erasures in flight.
boost::asio::awaitable<sweep_result> sweep_once(frontend_app& app, unix_ms now, std::size_t page = 512,
                                                std::size_t concurrency = 64);

}  // namespace faasd::frontend
