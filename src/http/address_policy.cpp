#include <faasd/http/address_policy.hpp>

#include <array>
#include <charconv>
#include <cstdint>

namespace faasd::http {
namespace {

using boost::asio::ip::address;
using boost::asio::ip::address_v4;
using boost::asio::ip::address_v6;

constexpr std::uint32_t v4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

bool in4(std::uint32_t a, std::uint32_t base, unsigned prefix) {
    std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t(0) << (32 - prefix);
    return (a & mask) == (base & mask);
}

address_class classify4(std::uint32_t a) {
    if (in4(a, v4(0, 0, 0, 0), 8)) return address_class::unspecified;
    if (in4(a, v4(127, 0, 0, 0), 8)) return address_class::loopback;
    if (in4(a, v4(10, 0, 0, 0), 8) || in4(a, v4(172, 16, 0, 0), 12) || in4(a, v4(192, 168, 0, 0), 16))
        return address_class::private_use;
    if (in4(a, v4(100, 64, 0, 0), 10)) return address_class::shared;
    if (in4(a, v4(169, 254, 0, 0), 16)) return address_class::link_local;
    if (in4(a, v4(224, 0, 0, 0), 4)) return address_class::multicast;
    if (in4(a, v4(240, 0, 0, 0), 4) ||       // reserved, includes 255.255.255.255
        in4(a, v4(192, 0, 0, 0), 24) ||      // IETF protocol assignments
        in4(a, v4(192, 0, 2, 0), 24) ||      // TEST-NET-1
        in4(a, v4(198, 51, 100, 0), 24) ||   // TEST-NET-2
        in4(a, v4(203, 0, 113, 0), 24) ||    // TEST-NET-3
        in4(a, v4(198, 18, 0, 0), 15) ||     // benchmarking
        in4(a, v4(192, 88, 99, 0), 24))      // deprecated 6to4 relay anycast
        return address_class::reserved;
    return address_class::global;
}

bool in6(const std::array<unsigned char, 16>& a, std::initializer_list<unsigned char> prefix_bytes, unsigned bits) {
    std::array<unsigned char, 16> base{};
    std::size_t i = 0;
    for (auto b : prefix_bytes) base[i++] = b;
    for (unsigned bit = 0; bit < bits; ++bit) {
        unsigned byte = bit / 8, shift = 7 - bit % 8;
        if (((a[byte] >> shift) & 1) != ((base[byte] >> shift) & 1)) return false;
    }
    return true;
}

std::uint32_t embedded_v4(const std::array<unsigned char, 16>& b, std::size_t offset) {
    return (std::uint32_t(b[offset]) << 24) | (std::uint32_t(b[offset + 1]) << 16) |
           (std::uint32_t(b[offset + 2]) << 8) | std::uint32_t(b[offset + 3]);
}

address_class classify6(const address_v6& a6) {
    auto b = a6.to_bytes();
    if (a6.is_v4_mapped()) return classify4(embedded_v4(b, 12));                  // ::ffff:0:0/96
    if (a6.is_unspecified()) return address_class::unspecified;                   // ::
    if (a6.is_loopback()) return address_class::loopback;                         // ::1
    if (in6(b, {}, 96)) return address_class::reserved;                           // ::/96 IPv4-compatible (deprecated)
    if (in6(b, {0x00, 0x64, 0xff, 0x9b}, 96)) return classify4(embedded_v4(b, 12));  // 64:ff9b::/96 NAT64
    if (in6(b, {0x20, 0x02}, 16)) return classify4(embedded_v4(b, 2));            // 2002::/16 6to4
    if (in6(b, {0xff}, 8)) return address_class::multicast;                       // ff00::/8
    if (in6(b, {0xfe, 0x80}, 10)) return address_class::link_local;               // fe80::/10
    if (in6(b, {0xfe, 0xc0}, 10)) return address_class::private_use;              // fec0::/10 site-local (deprecated)
    if (in6(b, {0xfc}, 7)) return address_class::private_use;                     // fc00::/7 unique local
    if (in6(b, {0x20, 0x01, 0x0d, 0xb8}, 32)) return address_class::reserved;     // documentation
    if (in6(b, {0x20, 0x01, 0x00, 0x00}, 32)) return address_class::reserved;     // Teredo
    if (in6(b, {0x20, 0x01, 0x00}, 23)) return address_class::reserved;           // IETF protocol assignments
    if (in6(b, {0x01, 0x00}, 64)) return address_class::reserved;                 // discard-only
    if (in6(b, {0x3f, 0xff}, 20)) return address_class::reserved;                 // documentation (RFC 9637)
    if (!in6(b, {0x20}, 3)) return address_class::reserved;                       // outside 2000::/3 global unicast
    return address_class::global;
}

}  // namespace

const char* to_string(address_class c) noexcept {
    switch (c) {
        case address_class::global: return "global";
        case address_class::loopback: return "loopback";
        case address_class::private_use: return "private";
        case address_class::shared: return "shared";
        case address_class::link_local: return "link_local";
        case address_class::unspecified: return "unspecified";
        case address_class::multicast: return "multicast";
        case address_class::reserved: return "reserved";
    }
    return "unknown";
}

address_class classify(const address& a) noexcept {
    if (a.is_v4()) return classify4(a.to_v4().to_uint());
    return classify6(a.to_v6());
}

bool network::contains(const address& a) const noexcept {
    // Compare IPv4 networks with IPv4-mapped IPv6 addresses too.
    address x = a;
    if (x.is_v6() && x.to_v6().is_v4_mapped() && base.is_v4())
        x = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, x.to_v6());
    if (x.is_v4() != base.is_v4()) return false;
    if (x.is_v4()) return in4(x.to_v4().to_uint(), base.to_v4().to_uint(), prefix);
    auto xb = x.to_v6().to_bytes(), bb = base.to_v6().to_bytes();
    for (unsigned bit = 0; bit < prefix; ++bit) {
        unsigned byte = bit / 8, shift = 7 - bit % 8;
        if (((xb[byte] >> shift) & 1) != ((bb[byte] >> shift) & 1)) return false;
    }
    return true;
}

result<network> network::parse(std::string_view cidr) {
    auto slash = cidr.find('/');
    boost::system::error_code ec;
    auto base = boost::asio::ip::make_address(std::string(cidr.substr(0, slash)), ec);
    if (ec) return make_error_code(errc::invalid_argument);
    unsigned max = base.is_v4() ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string_view::npos) {
        auto p = cidr.substr(slash + 1);
        auto [end, pec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || pec != std::errc() || end != p.data() + p.size() || prefix > max)
            return make_error_code(errc::invalid_argument);
    }
    network n{base, prefix};
    // Host bits must be zero: "10.0.0.1/8" is a typo more often than not.
    if (base.is_v4()) {
        std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t(0) << (32 - prefix);
        if ((base.to_v4().to_uint() & ~mask) != 0) return make_error_code(errc::invalid_argument);
    } else {
        auto b = base.to_v6().to_bytes();
        for (unsigned bit = prefix; bit < 128; ++bit)
            if ((b[bit / 8] >> (7 - bit % 8)) & 1) return make_error_code(errc::invalid_argument);
    }
    return n;
}

bool address_policy::allows(const address& a) const noexcept {
    for (const auto& n : denied)
        if (n.contains(a)) return false;
    for (const auto& n : allowed)
        if (n.contains(a)) return true;
    switch (classify(a)) {
        case address_class::global: return true;
        case address_class::loopback: return allow_loopback;
        case address_class::private_use:
        case address_class::shared: return allow_private;
        case address_class::link_local: return allow_link_local;
        case address_class::unspecified:
        case address_class::multicast:
        case address_class::reserved: return false;
    }
    return false;
}

address_policy address_policy::allow_all() {
    address_policy p;
    p.allow_loopback = p.allow_private = p.allow_link_local = true;
    p.allowed.push_back(*network::parse("0.0.0.0/0"));
    p.allowed.push_back(*network::parse("::/0"));
    return p;
}

}  // namespace faasd::http
