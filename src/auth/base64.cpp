#include <faasd/auth/base64.hpp>

#include <array>
#include <cstdint>

namespace faasd::auth {
namespace {

constexpr std::string_view std_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view url_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_table(std::string_view alphabet) {
    std::array<std::int8_t, 256> t{};
    for (auto& v : t) v = -1;
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return t;
}

constexpr auto std_table = make_table(std_alphabet);
constexpr auto url_table = make_table(url_alphabet);

std::string encode(std::string_view in, std::string_view alphabet, bool pad) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[k])); };
    for (; i + 3 <= in.size(); i += 3) {
        std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
        out.push_back(alphabet[v >> 18 & 63]);
        out.push_back(alphabet[v >> 12 & 63]);
        out.push_back(alphabet[v >> 6 & 63]);
        out.push_back(alphabet[v & 63]);
    }
    std::size_t rest = in.size() - i;
    if (rest == 1) {
        std::uint32_t v = byte(i) << 16;
        out.push_back(alphabet[v >> 18 & 63]);
        out.push_back(alphabet[v >> 12 & 63]);
        if (pad) out.append("==");
    } else if (rest == 2) {
        std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
        out.push_back(alphabet[v >> 18 & 63]);
        out.push_back(alphabet[v >> 12 & 63]);
        out.push_back(alphabet[v >> 6 & 63]);
        if (pad) out.push_back('=');
    }
    return out;
}

// Decodes unpadded text with the given table; rejects bad characters, 4k+1
// lengths and non-zero unused bits in the last character.
result<std::string> decode(std::string_view in, const std::array<std::int8_t, 256>& table) {
    if (in.size() % 4 == 1) return errc::invalid_argument;
    std::string out;
    out.reserve(in.size() / 4 * 3 + 2);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        auto v = table[static_cast<unsigned char>(c)];
        if (v < 0) return errc::invalid_argument;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    // 2 or 4 bits are left over after a partial group; they must be zero.
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return errc::invalid_argument;
    return out;
}

}  // namespace

std::string base64_encode(std::string_view bytes) { return encode(bytes, std_alphabet, true); }

std::string base64url_encode(std::string_view bytes) { return encode(bytes, url_alphabet, false); }

result<std::string> base64_decode(std::string_view text) {
    if (auto pos = text.find('='); pos != std::string_view::npos) {
        // Padding: only at the end, at most two, and only to complete a group of four.
        auto body = text.substr(0, pos);
        auto padding = text.substr(pos);
        if (padding.size() > 2 || padding.find_first_not_of('=') != std::string_view::npos) return errc::invalid_argument;
        if (text.size() % 4 != 0 || (body.size() % 4) + padding.size() != 4) return errc::invalid_argument;
        return decode(body, std_table);
    }
    return decode(text, std_table);
}

result<std::string> base64url_decode(std::string_view text) { return decode(text, url_table); }

}  // namespace faasd::auth
