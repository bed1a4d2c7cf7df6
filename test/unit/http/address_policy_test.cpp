#include <faasd/http/address_policy.hpp>
#include <faasd/http/client.hpp>

#include <catch2/catch.hpp>

using namespace faasd::http;
using boost::asio::ip::make_address;

TEST_CASE("addresses are classified by range", "[http][unit]") {
    struct row {
        const char* addr;
        address_class cls;
    };
    const row table[] = {
        // IPv4
        {"8.8.8.8", address_class::global},
        {"1.1.1.1", address_class::global},
        {"0.0.0.0", address_class::unspecified},
        {"0.1.2.3", address_class::unspecified},
        {"127.0.0.1", address_class::loopback},
        {"127.255.255.254", address_class::loopback},
        {"10.0.0.1", address_class::private_use},
        {"172.16.0.1", address_class::private_use},
        {"172.31.255.255", address_class::private_use},
        {"172.32.0.1", address_class::global},
        {"192.168.1.1", address_class::private_use},
        {"100.64.0.1", address_class::shared},
        {"100.127.255.255", address_class::shared},
        {"100.128.0.1", address_class::global},
        {"169.254.169.254", address_class::link_local},  // cloud metadata
        {"224.0.0.1", address_class::multicast},
        {"239.255.255.255", address_class::multicast},
        {"240.0.0.1", address_class::reserved},
        {"255.255.255.255", address_class::reserved},
        {"192.0.2.1", address_class::reserved},
        {"198.51.100.7", address_class::reserved},
        {"203.0.113.9", address_class::reserved},
        {"198.18.0.1", address_class::reserved},
        {"192.0.0.8", address_class::reserved},
        // IPv6
        {"::", address_class::unspecified},
        {"::1", address_class::loopback},
        {"2001:4860:4860::8888", address_class::global},
        {"2606:4700:4700::1111", address_class::global},
        {"fe80::1", address_class::link_local},
        {"febf::1", address_class::link_local},
        {"fc00::1", address_class::private_use},
        {"fd12:3456::1", address_class::private_use},
        {"fec0::1", address_class::private_use},
        {"ff02::1", address_class::multicast},
        {"2001:db8::1", address_class::reserved},
        {"2001::1", address_class::reserved},  // Teredo
        {"100::1", address_class::reserved},
        {"4000::1", address_class::reserved},  // outside 2000::/3
        // IPv6 forms that embed IPv4
        {"::ffff:127.0.0.1", address_class::loopback},
        {"::ffff:10.1.2.3", address_class::private_use},
        {"::ffff:169.254.169.254", address_class::link_local},
        {"::ffff:8.8.8.8", address_class::global},
        {"64:ff9b::7f00:1", address_class::loopback},    // NAT64 of 127.0.0.1
        {"64:ff9b::808:808", address_class::global},     // NAT64 of 8.8.8.8
        {"2002:7f00:1::1", address_class::loopback},     // 6to4 of 127.0.0.1
        {"2002:c0a8:101::1", address_class::private_use},  // 6to4 of 192.168.1.1
        {"2002:808:808::1", address_class::global},
        {"::127.0.0.1", address_class::reserved},        // deprecated IPv4-compatible
    };
    for (const auto& r : table) {
        INFO(r.addr);
        CHECK(to_string(classify(make_address(r.addr))) == std::string(to_string(r.cls)));
    }
}

TEST_CASE("the default policy allows only global addresses", "[http][unit]") {
    auto p = address_policy::public_only();
    CHECK(p.allows(make_address("93.184.216.34")));
    CHECK(p.allows(make_address("2606:2800:220:1::1")));
    for (const char* bad : {"127.0.0.1", "::1", "::ffff:127.0.0.1", "10.0.0.1", "100.64.1.1", "169.254.169.254",
                            "fe80::1", "fd00::1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "64:ff9b::a00:1"}) {
        INFO(bad);
        CHECK_FALSE(p.allows(make_address(bad)));
    }
}

TEST_CASE("policy flags and networks widen or narrow what is allowed", "[http][unit]") {
    address_policy p;
    p.allow_loopback = true;
    CHECK(p.allows(make_address("127.0.0.1")));
    CHECK(p.allows(make_address("::ffff:127.0.0.1")));
    CHECK_FALSE(p.allows(make_address("10.0.0.1")));
    p.allow_private = true;
    CHECK(p.allows(make_address("10.0.0.1")));
    CHECK(p.allows(make_address("100.64.0.1")));
    CHECK(p.allows(make_address("fd00::1")));
    CHECK_FALSE(p.allows(make_address("169.254.169.254")));
    p.allow_link_local = true;
    CHECK(p.allows(make_address("169.254.169.254")));
    // Deny beats everything.
    p.denied.push_back(*network::parse("169.254.169.254/32"));
    CHECK_FALSE(p.allows(make_address("169.254.169.254")));
    CHECK_FALSE(p.allows(make_address("::ffff:169.254.169.254")));
    CHECK(p.allows(make_address("169.254.1.1")));

    address_policy q;
    q.allowed.push_back(*network::parse("127.0.0.2"));
    q.allowed.push_back(*network::parse("fd00:1::/32"));
    CHECK(q.allows(make_address("127.0.0.2")));
    CHECK_FALSE(q.allows(make_address("127.0.0.1")));
    CHECK(q.allows(make_address("fd00:1:2::3")));
    CHECK_FALSE(q.allows(make_address("fd00:2::3")));
    q.denied.push_back(*network::parse("8.8.8.0/24"));
    CHECK_FALSE(q.allows(make_address("8.8.8.8")));
    CHECK(q.allows(make_address("8.8.4.4")));

    auto all = address_policy::allow_all();
    CHECK(all.allows(make_address("0.0.0.0")));
    CHECK(all.allows(make_address("ff02::1")));
}

TEST_CASE("networks parse as CIDR blocks", "[http][unit]") {
    auto n = network::parse("10.1.0.0/16");
    REQUIRE(n.has_value());
    CHECK(n->contains(make_address("10.1.255.1")));
    CHECK_FALSE(n->contains(make_address("10.2.0.1")));
    CHECK_FALSE(n->contains(make_address("::1")));
    CHECK(network::parse("0.0.0.0/0")->contains(make_address("1.2.3.4")));
    CHECK(network::parse("::/0")->contains(make_address("::1")));
    CHECK_FALSE(network::parse("10.0.0.1/8").has_value());  // host bits set
    CHECK_FALSE(network::parse("10.0.0.0/33").has_value());
    CHECK_FALSE(network::parse("fd00::/129").has_value());
    CHECK_FALSE(network::parse("10.0.0.0/").has_value());
    CHECK_FALSE(network::parse("example.com/8").has_value());
}

TEST_CASE("client URLs are parsed strictly", "[http][unit]") {
    auto u = parse_url("https://Example.COM/a/b?x=1#frag");
    REQUIRE(u.has_value());
    CHECK(u->https);
    CHECK(u->host == "example.com");
    CHECK(u->port == 443);
    CHECK(u->target == "/a/b?x=1");
    CHECK(u->authority() == "example.com");
    CHECK(u->origin() == "https://example.com");

    u = parse_url("http://127.0.0.1:8080");
    REQUIRE(u.has_value());
    CHECK(u->host_is_ip);
    CHECK(u->port == 8080);
    CHECK(u->target == "/");
    CHECK(u->authority() == "127.0.0.1:8080");

    u = parse_url("http://[::1]:81/x");
    REQUIRE(u.has_value());
    CHECK(u->host == "::1");
    CHECK(u->authority() == "[::1]:81");

    CHECK_FALSE(parse_url("ftp://example.com/").has_value());
    CHECK_FALSE(parse_url("http://user:pw@example.com/").has_value());
    CHECK_FALSE(parse_url("/relative").has_value());
    CHECK_FALSE(parse_url("http:///nohost").has_value());
    CHECK_FALSE(parse_url("http://example.com:99999/").has_value());
    CHECK(parse_url("ftp://x/").error() == make_error_code(client_errc::invalid_url));
}
