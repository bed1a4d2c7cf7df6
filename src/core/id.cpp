#include <faasd/core/id.hpp>

#include <chrono>
#include <mutex>
#include <random>

namespace faasd {
namespace {

constexpr char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int decode_char(char c) noexcept {
    for (int i = 0; i < 32; ++i)
        if (alphabet[i] == c) return i;
    return -1;
}

std::mt19937_64& generator() {
    thread_local std::mt19937_64 gen = [] {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
        return std::mt19937_64(seq);
    }();
    return gen;
}

}  // namespace

std::string make_job_id(std::uint64_t unix_ms, const std::array<std::uint8_t, 10>& random) noexcept {
    // 128 bits: 48 bits of time, 80 bits of randomness, written as 26 base32 digits
    // (the first digit carries only 3 bits).
    std::array<std::uint8_t, 16> bytes{};
    for (int i = 0; i < 6; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(unix_ms >> (8 * (5 - i)));
    for (std::size_t i = 0; i < 10; ++i) bytes[6 + i] = random[i];
    std::string out(job_id_length, '0');
    // Walk the 130-bit big-endian number (2 leading zero bits) five bits at a time.
    for (std::size_t d = 0; d < job_id_length; ++d) {
        int bit = static_cast<int>(d) * 5 - 2;  // bit offset of this digit within the 128 bits
        unsigned v = 0;
        for (int b = 0; b < 5; ++b) {
            int pos = bit + b;
            unsigned x = 0;
            if (pos >= 0) x = (bytes[static_cast<std::size_t>(pos / 8)] >> (7 - pos % 8)) & 1u;
            v = (v << 1) | x;
        }
        out[d] = alphabet[v];
    }
    return out;
}

std::string new_job_id() {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    std::array<std::uint8_t, 10> r{};
    auto& g = generator();
    std::uint64_t a = g(), b = g();
    for (std::size_t i = 0; i < 8; ++i) r[i] = static_cast<std::uint8_t>(a >> (8 * i));
    r[8] = static_cast<std::uint8_t>(b);
    r[9] = static_cast<std::uint8_t>(b >> 8);
    return make_job_id(static_cast<std::uint64_t>(ms), r);
}

bool is_job_id(std::string_view s) noexcept {
    if (s.size() != job_id_length) return false;
    if (s[0] > '7') return false;  // first digit holds only 3 bits
    for (char c : s)
        if (decode_char(c) < 0) return false;
    return true;
}

std::uint64_t job_id_time_ms(std::string_view id) noexcept {
    if (!is_job_id(id)) return 0;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 10; ++i) v = (v << 5) | static_cast<std::uint64_t>(decode_char(id[i]));
    return v;  // 10 digits = 50 bits, of which the top 2 are zero
}

std::string random_hex(std::size_t bytes) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes * 2);
    auto& g = generator();
    for (std::size_t i = 0; i < bytes; ++i) {
        auto v = static_cast<unsigned>(g() & 0xff);
        out.push_back(hex[v >> 4]);
        out.push_back(hex[v & 15]);
    }
    return out;
}

}  // namespace faasd
