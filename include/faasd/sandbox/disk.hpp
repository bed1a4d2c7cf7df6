#pragma once
// How much disk a running job uses in its writable directories (blocking:
// run it on a thread pool). The runner samples this during a run and kills
// the job when it passes the disk limit (docs/worker-internals.md, "Limits").

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace faasd::sandbox {

/// The least any file, directory or other entry is charged (its inode and
/// directory entry are not free, and it bounds the work of a scan).
inline constexpr std::uint64_t disk_entry_bytes = 4096;
/// Directories nested deeper than this below a measured root count as over
/// the limit: a scan must stay bounded in open descriptors, and nothing a
/// function delivers lives that deep (only top-level files are outputs).
inline constexpr int disk_max_depth = 32;

struct disk_usage {
    std::uint64_t bytes = 0;        ///< charged so far (stops growing once over the limit)
    std::uint64_t entries = 0;      ///< entries visited
    std::uint64_t unlinked_bytes = 0;  ///< part of bytes: deleted files still held open
    bool over = false;              ///< bytes > limit, or a tree the scan must refuse
    std::string why;                ///< when over: one phrase for the job's error message
};

/// The charge of one entry: its allocated blocks, or for a regular file its
/// size if larger, rounded up to 4 KiB, and at least disk_entry_bytes.
std::uint64_t disk_charge(bool regular, std::uint64_t size, std::uint64_t blocks_512) noexcept;

namespace blocking {

/// Sums disk_charge over everything below each of `roots` (the roots
/// included; symlinks are not followed, other mounts are not entered), plus
/// the deleted regular files on the roots' file systems that the processes
/// `pids` still hold open. Stops as soon as the sum passes `limit`, so a scan
/// visits at most limit / disk_entry_bytes + 1 entries. A directory it cannot
/// open (after trying to give its owner rwx back) or one nested deeper than
/// disk_max_depth makes the result `over`. Missing roots count nothing.
/// Safe against a function changing the tree meanwhile (descriptor-relative
/// walk, no symlinks followed). Never throws for file-system errors.
disk_usage measure_disk(const std::vector<std::filesystem::path>& roots, const std::vector<pid_t>& pids,
                        std::uint64_t limit);

}  // namespace blocking
}  // namespace faasd::sandbox
