#include <faasd/sandbox/output.hpp>

namespace faasd::sandbox {

void capped_output::append(std::string_view chunk) {
    total_ += chunk.size();
    if (closed_) return;
    auto room = cap_ - kept_.size();
    if (chunk.size() <= room) {
        kept_.append(chunk);
        return;
    }
    kept_.append(chunk.substr(0, static_cast<std::size_t>(room)));
    closed_ = true;
    // Do not end inside a UTF-8 sequence: drop a trailing incomplete one.
    std::size_t i = kept_.size();
    std::size_t back = 0;
    while (i > 0 && back < 4 && (static_cast<unsigned char>(kept_[i - 1]) & 0xC0) == 0x80) {
        --i;
        ++back;
    }
    if (i > 0) {
        auto lead = static_cast<unsigned char>(kept_[i - 1]);
        std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (need > 1 && back + 1 < need) kept_.resize(i - 1);
    }
}

std::string capped_output::text() const {
    if (!truncated()) return kept_;
    return kept_ + "\n[faasd: output truncated: " + std::to_string(dropped_bytes()) + " of " + std::to_string(total_) +
           " bytes dropped]\n";
}

}  // namespace faasd::sandbox
