#include <faasd/auth/base64.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace faasd;
using namespace faasd::auth;

TEST_CASE("base64 encodes the RFC 4648 test vectors", "[auth][unit]") {
    struct row {
        std::string in, std64, url64;
    };
    auto rows = GENERATE(values<row>({
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
        {"\xfb\xff\xfe", "+//+", "-__-"},
    }));
    CHECK(base64_encode(rows.in) == rows.std64);
    CHECK(base64url_encode(rows.in) == rows.url64);
    CHECK(base64_decode(rows.std64).value() == rows.in);
    CHECK(base64url_decode(rows.url64).value() == rows.in);
}

TEST_CASE("base64 round-trips every byte value", "[auth][unit]") {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    for (std::size_t n = 0; n <= all.size(); n += 37) {
        auto s = all.substr(0, n);
        CHECK(base64_decode(base64_encode(s)).value() == s);
        CHECK(base64url_decode(base64url_encode(s)).value() == s);
    }
}

TEST_CASE("base64 decoding is strict", "[auth][unit]") {
    SECTION("standard: padding is optional but must be right") {
        CHECK(base64_decode("Zg").value() == "f");
        CHECK(base64_decode("Zg==").value() == "f");
        CHECK_FALSE(base64_decode("Zg=").has_value());
        CHECK_FALSE(base64_decode("Zg===").has_value());
        CHECK_FALSE(base64_decode("Z===").has_value());
        CHECK_FALSE(base64_decode("Zg==Zg==").has_value());
        CHECK_FALSE(base64_decode("=").has_value());
    }
    SECTION("characters of the other alphabet and whitespace are refused") {
        CHECK_FALSE(base64_decode("-__-").has_value());
        CHECK_FALSE(base64url_decode("+//+").has_value());
        CHECK_FALSE(base64url_decode("Zm9v YmFy").has_value());
        CHECK_FALSE(base64_decode("Zm9v\nYmFy").has_value());
    }
    SECTION("base64url refuses padding") {
        CHECK_FALSE(base64url_decode("Zg==").has_value());
        CHECK_FALSE(base64url_decode("Zm8=").has_value());
    }
    SECTION("a length of 4k+1 is impossible") {
        CHECK_FALSE(base64url_decode("Z").has_value());
        CHECK_FALSE(base64url_decode("Zm9vY").has_value());
    }
    SECTION("non-zero unused bits make a second spelling of the same bytes: refused") {
        CHECK(base64url_decode("Zg").has_value());
        CHECK_FALSE(base64url_decode("Zh").has_value());
        CHECK(base64url_decode("Zm8").has_value());
        CHECK_FALSE(base64url_decode("Zm9").has_value());
        CHECK_FALSE(base64_decode("Zh==").has_value());
    }
    SECTION("errors are invalid_argument") {
        CHECK(base64url_decode("!").error() == errc::invalid_argument);
    }
}
