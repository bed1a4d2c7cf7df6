#pragma once
// SSRF protection for outgoing requests (pure: no I/O). The client resolves a
// host once, keeps only the addresses this policy allows, and connects to
// those: there is no second resolution between the check and the connect.
// Every redirect target is resolved and checked the same way.
//
// By default only globally routable unicast addresses are allowed. Loopback,
// private (RFC 1918, CGNAT 100.64.0.0/10, unique-local fc00::/7), link-local
// (169.254.0.0/16 including cloud metadata endpoints, fe80::/10),
// unspecified, multicast and reserved/documentation ranges are refused unless
// the configuration allows them. IPv4-mapped (::ffff:a.b.c.d), NAT64
// (64:ff9b::/96) and 6to4 (2002::/16) IPv6 addresses are judged by the IPv4
// address they embed.

#include <faasd/core/error.hpp>

#include <boost/asio/ip/address.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace faasd::http {

enum class address_class {
    global,        ///< globally routable unicast
    loopback,      ///< 127.0.0.0/8, ::1
    private_use,   ///< 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10
    shared,        ///< 100.64.0.0/10 (carrier-grade NAT)
    link_local,    ///< 169.254.0.0/16, fe80::/10
    unspecified,   ///< 0.0.0.0/8, ::
    multicast,     ///< 224.0.0.0/4, ff00::/8
    reserved,      ///< documentation, benchmarking, 240/4, broadcast, IETF special purpose, Teredo, ...
};

const char* to_string(address_class c) noexcept;

/// The class of an address (IPv6 forms that embed IPv4 are judged by the IPv4 address).
address_class classify(const boost::asio::ip::address& a) noexcept;

/// A CIDR block, "10.1.0.0/16" or "fd00::/8" (a bare address means /32 or /128).
struct network {
    boost::asio::ip::address base;
    unsigned prefix = 0;

    bool contains(const boost::asio::ip::address& a) const noexcept;
    /// errc::invalid_argument when malformed or when host bits are set.
    static result<network> parse(std::string_view cidr);
};

struct address_policy {
    bool allow_loopback = false;
    bool allow_private = false;     ///< private_use and shared
    bool allow_link_local = false;
    std::vector<network> allowed;   ///< always allowed (after `denied`), whatever their class
    std::vector<network> denied;    ///< never allowed; checked first

    bool allows(const boost::asio::ip::address& a) const noexcept;

    /// Only global addresses (the default).
    static address_policy public_only() { return {}; }
    /// Everything (tests, or a deployment that trusts its configuration).
    static address_policy allow_all();
};

}  // namespace faasd::http
