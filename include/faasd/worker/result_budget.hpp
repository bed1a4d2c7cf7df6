#pragma once
// The size budget of a result (pure; docs/worker.md "Result size").
//
// A result travels as one Kafka record on `results`, and a copy rides in the
// terminal snapshot on `state`. librdkafka refuses records above
// message.max.bytes (1,000,000 by default) and brokers refuse records above
// their own limit, while a function may leave 1 MiB of stdout, 1 MiB of
// stderr and 1 MiB of result.json. fit_result() cuts a result so that its
// encoding (jobs::encode) fits a budget:
//
//   1. nothing changes when it fits;
//   2. the output is kept when it fits together with the other fields and up
//      to 16 KiB of logs; otherwise it is dropped (null) and a marker line on
//      stderr says so;
//   3. stdout and stderr share what is left (half each; a share one stream
//      does not need goes to the other), keeping their first bytes, cut on a
//      UTF-8 boundary and followed by a marker
//      "[faasd: cut to fit the result size limit: N of M bytes dropped]";
//   4. if the rest alone is still too large, the output files list and the
//      error message are shortened.
//
// Every cut sets result.capped ("result_capped": true on the wire) and the
// truncated flag of a cut stream.

#include <faasd/jobs/model.hpp>

#include <cstddef>

namespace faasd::worker {

/// The worker's result budgets (--result-max-size, --snapshot-result-max-size).
struct result_limits {
    std::size_t result_bytes = 512 * 1024;   ///< the record on `results`
    std::size_t snapshot_bytes = 64 * 1024;  ///< the copy inside the terminal snapshot on `state`
    /// The last resort when Kafka refused a record anyway (a broker limit
    /// below the producer's): the result and its copy are cut to this.
    static constexpr std::size_t fallback_bytes = 4 * 1024;
};

/// "" when usable, else the problem.
std::string validate(const result_limits& l);

/// Bytes of jobs::encode(r).
std::size_t encoded_size(const jobs::job_result& r);

/// Cuts r (as described above) so that encoded_size(r) <= max_bytes whenever
/// the fields that are never cut (ids, state, timing, tags) allow it. Returns
/// true when anything was cut.
bool fit_result(jobs::job_result& r, std::size_t max_bytes);

}  // namespace faasd::worker
