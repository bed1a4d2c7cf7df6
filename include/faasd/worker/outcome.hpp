#pragma once
// How the steps of an attempt end, mapped to job states, error codes and
// failure kinds (pure; the table is in docs/worker.md "Failure codes"). The
// mappings of the sandbox's outcomes and git's errors, which need those
// modules' types, are in outcome_map.hpp (the shell).

#include <faasd/core/error.hpp>
#include <faasd/jobs/model.hpp>
#include <faasd/worker/retry.hpp>

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::worker {

/// What the function's run produced, as the lifecycle needs it.
struct run_report {
    jobs::job_state state = jobs::job_state::succeeded;  ///< succeeded, failed, timed_out or cancelled
    std::optional<failure> fail;                         ///< set unless succeeded or cancelled
    std::optional<int> exit_code;
    boost::json::value output;  ///< the function's JSON result (null if none)
    std::string stdout_text;
    std::string stderr_text;
    bool stdout_truncated = false;
    bool stderr_truncated = false;
    std::vector<jobs::output_file> outputs;  ///< output files; `sink` set when one matched
};

/// The repository's function convention failed (invalid_manifest, no_entry): permanent.
failure convention_failure(std::string code, std::string message);

/// Opening the sealed credentials failed. A key id this worker lacks
/// (errc::not_found) is an infrastructure failure ("credentials_unavailable":
/// another worker, or this one after a restart with the right ring, may open
/// them); anything else (tampering, wrong job) is permanent ("credentials_invalid").
failure credentials_failure(errc e);

/// A source download or sink upload failed. `client_error` is the HTTP
/// client's error name ("timeout", "connect_failed", "bad_status",
/// "address_forbidden", ...); `http_status` the final status if one was read.
/// Transient conditions (timeouts, refused or reset connections, DNS, 5xx,
/// 408, 429, local file errors) are infrastructure; the rest is permanent.
failure_kind transfer_failure_kind(std::string_view client_error, int http_status) noexcept;

/// A failure of the worker itself (the sandbox could not start, an
/// unexpected exception): infrastructure, code "worker_error".
failure worker_failure(std::string message);

}  // namespace faasd::worker
