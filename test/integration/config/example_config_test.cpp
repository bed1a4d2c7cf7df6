// config/faasd.example.toml is generated from the binary's own options
// (scripts/gen-config-example.py): it must be up to date, and every server
// role must accept it.

#include "support/support.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using faasd::test::faasd_binary;
using faasd::test::run_process;
using faasd::test::source_dir;

namespace {
const std::string keys = "FAASD_CREDENTIALS_KEYS=k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
}

TEST_CASE("config/faasd.example.toml matches the options the binary reads", "[config][integration]") {
    auto r = run_process({"python3", (source_dir() / "scripts/gen-config-example.py").string(), faasd_binary(),
                          "--check"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
}

TEST_CASE("every server role accepts the example configuration", "[config][integration]") {
    const std::string file = (source_dir() / "config/faasd.example.toml").string();
    for (std::vector<std::string> extra :
         {std::vector<std::string>{"frontend", "--oidc-issuer", "http://127.0.0.1:8180/realms/faas"},
          {"worker"}, {"observer"}, {"supervisor"}, {"scaler", "--exec", "echo {workers}"}}) {
        std::vector<std::string> argv = {faasd_binary(), "--check-config", extra[0], "--config", file};
        argv.insert(argv.end(), extra.begin() + 1, extra.end());
        auto r = run_process(argv, {keys});
        INFO(extra[0] << ": " << r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.err.find("is valid") != std::string::npos);
    }
}

TEST_CASE("a config file with an unknown key or a bad value is refused with one line and status 2",
          "[config][integration]") {
    faasd::test::temp_dir tmp;
    const auto file = tmp.path() / "bad.toml";
    {
        std::ofstream(file) << "[worker]\nslots = 2\nslotz = 3\n";
    }
    auto r = run_process({faasd_binary(), "worker", "--config", file.string()}, {keys});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("slotz") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    {
        std::ofstream(file) << "[worker]\nslots = many\n";
    }
    r = run_process({faasd_binary(), "worker", "--config", file.string()}, {keys});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("slots") != std::string::npos);
}
