#pragma once
// Capped capture of a process's output stream (pure).

#include <cstdint>
#include <string>
#include <string_view>

namespace faasd::sandbox {

/// Keeps the first `cap` bytes of a stream and counts the rest. The kept
/// text never ends inside a UTF-8 sequence when truncated.
class capped_output {
public:
    explicit capped_output(std::uint64_t cap) : cap_(cap) {}

    void append(std::string_view chunk);

    bool truncated() const noexcept { return total_ > kept_.size(); }
    std::uint64_t total_bytes() const noexcept { return total_; }
    std::uint64_t dropped_bytes() const noexcept { return total_ - kept_.size(); }
    const std::string& kept() const noexcept { return kept_; }

    /// The kept text, followed by "\n[faasd: output truncated: N of M bytes dropped]\n" when truncated.
    std::string text() const;

private:
    std::uint64_t cap_;
    std::uint64_t total_ = 0;
    std::string kept_;
    bool closed_ = false;  // cap reached: nothing more is kept
};

}  // namespace faasd::sandbox
