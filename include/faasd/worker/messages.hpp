#pragma once
// The worker's own wire formats (pure; docs/architecture.md "Topics"):
// heartbeats, cancel requests, and the headers of dead-letter records.

#include <faasd/core/error.hpp>
#include <faasd/jobs/model.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace faasd::worker {

enum class worker_state {
    up,        ///< taking jobs
    draining,  ///< shutting down: finishing in-flight jobs, taking no new ones
    down,      ///< gone (the last heartbeat of a clean shutdown)
};

const char* to_string(worker_state s) noexcept;
std::optional<worker_state> parse_worker_state(std::string_view s) noexcept;

/// {"v":1,"worker":…,"slots":n,"busy":k,"at":ms,"state":"up"|"draining"|"down"}, key = worker id.
struct heartbeat {
    std::string worker;
    int slots = 0;
    int busy = 0;
    jobs::unix_ms at = 0;
    worker_state state = worker_state::up;
    friend bool operator==(const heartbeat&, const heartbeat&) = default;
};

std::string encode(const heartbeat& h);
/// bad_message or unsupported_version for input that does not fit.
result<heartbeat> decode_heartbeat(std::string_view bytes);

/// {"v":1,"id":…,"by":sub,"at":ms}, key = job id.
struct cancel_request {
    std::string id;
    std::string by;
    jobs::unix_ms at = 0;
    friend bool operator==(const cancel_request&, const cancel_request&) = default;
};

std::string encode(const cancel_request& c);
/// The id comes from the value, else from the key; `at` defaults to
/// `fallback_at` (the record's timestamp). bad_message when there is no id.
result<cancel_request> decode_cancel(std::optional<std::string_view> key, std::string_view value,
                                     jobs::unix_ms fallback_at);

/// Headers of a dead-letter record (the value and key are the original
/// message's): where it came from and why it is here.
///   faasd-reason   a stable code and a sentence ("bad_message: ...", "retries_exhausted: clone_failed: ...")
///   faasd-topic, faasd-partition, faasd-offset   the original position
///   faasd-worker   the worker id
///   faasd-attempt  the attempt that failed last (when the message decoded)
std::vector<std::pair<std::string, std::string>> dead_letter_headers(std::string_view reason, std::string_view topic,
                                                                     std::int32_t partition, std::int64_t offset,
                                                                     std::string_view worker, int attempt);

}  // namespace faasd::worker
