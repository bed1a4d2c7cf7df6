#include "dev/dev.hpp"

#include <faasd/config/config.hpp>

#include "support/support.hpp"

#include <catch2/catch.hpp>

using faasd::roles::dev_config;

TEST_CASE("dev options are validated with a message naming the option", "[dev][unit]") {
    dev_config ok;
    CHECK_NOTHROW(ok.validate());

    auto fails_with = [](dev_config c, const std::string& option) {
        try {
            c.validate();
        } catch (const faasd::config::config_error& e) {
            return std::string(e.what()).find(option) != std::string::npos;
        }
        return false;
    };
    dev_config c;
    c.listen = "nowhere";
    CHECK(fails_with(c, "--listen"));
    c = {};
    c.min_workers = 5;
    c.max_workers = 2;
    CHECK(fails_with(c, "--min-workers"));
    c = {};
    c.sandbox = "docker";
    CHECK(fails_with(c, "--sandbox"));
    c = {};
    c.slots = 0;
    CHECK(fails_with(c, "--slots"));
    c = {};
    c.examples_dir = "/nonexistent/examples";
    CHECK(fails_with(c, "--examples-dir"));
}

TEST_CASE("the dev banner says it is not for production and gives the addresses", "[dev][unit]") {
    auto b = faasd::roles::dev_banner("http://127.0.0.1:8080", "127.0.0.1:39001", "/tmp/s", "none",
                                      {"file:///tmp/s/examples/echo-sh.git"});
    CHECK(b.find("NOT FOR PRODUCTION") != std::string::npos);
    CHECK(b.find("http://127.0.0.1:8080") != std::string::npos);
    CHECK(b.find("--kafka-brokers 127.0.0.1:39001") != std::string::npos);
    CHECK(b.find("NO ISOLATION") != std::string::npos);
    CHECK(b.find("--repo file:///tmp/s/examples/echo-sh.git") != std::string::npos);
    auto sandboxed = faasd::roles::dev_banner("http://h:1", "b:2", "/s", "bwrap", {});
    CHECK(sandboxed.find("NO ISOLATION") == std::string::npos);
    CHECK(sandboxed.find("faasd submit") == std::string::npos);
}

TEST_CASE("dev finds the example functions of the source tree unless told otherwise", "[dev][unit]") {
    auto found = faasd::roles::find_examples("");
    REQUIRE(!found.empty());
    CHECK(std::filesystem::exists(found / "echo-sh" / "main"));
    CHECK(faasd::roles::find_examples("/some/where") == std::filesystem::path("/some/where"));
}
