#pragma once
// Erased markers (docs/frontend.md, "Idempotency" and "Retention"). When a job
// with an Idempotency-Key is erased (its result read, or the retention sweep)
// while its key could still be repeated, the state topic gets a small marker
// instead of a tombstone. Every replica keeps the markers it reads; a repeat of
// the key then answers 409 idempotency-key-consumed instead of running the job
// again under the same id (which the worker's cancel set, keyed by id, would
// also misjudge). Once the key's window has passed the sweep tombstones the
// marker. Pure: no I/O, time is an input.

#include <faasd/jobs/model.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace faasd::frontend {

/// What stays of an erased job whose idempotency key may still be repeated.
struct erased_marker {
    std::string id;
    std::string owner;            ///< the owner's subject
    std::string idempotency_key;
    jobs::unix_ms submitted_at = 0;
    jobs::unix_ms erased_at = 0;
    friend bool operator==(const erased_marker&, const erased_marker&) = default;
};

/// The marker's state-topic value:
/// {"v":1,"erased":true,"id","owner","idempotency_key","submitted_at","erased_at"}.
std::string encode_marker(const erased_marker& m);

/// The marker in a state-topic value; nullopt for anything else (a job_status
/// snapshot, garbage).
std::optional<erased_marker> decode_marker(std::string_view text);

/// What erasing `s` at `now` leaves on the state topic: a marker while its
/// idempotency key can still be repeated (the job has a key and
/// now < submitted_at + window), else nothing (a tombstone).
std::optional<erased_marker> marker_for(const jobs::job_status& s, jobs::unix_ms now, std::chrono::milliseconds window);

/// Whether a marker has outlived its key's window at `now` (then it is tombstoned).
bool marker_expired(const erased_marker& m, jobs::unix_ms now, std::chrono::milliseconds window) noexcept;

/// Whether the retention sweep erases a job at `now`: it is finished and
/// finished (finished_at, else updated_at) at least `retention` ago.
bool retention_expired(const jobs::job_status& s, jobs::unix_ms now, std::chrono::milliseconds retention) noexcept;

}  // namespace faasd::frontend
