// config/faasd.example.toml is generated from the binary's own options
// (scripts/gen-config-example.py): it must be up to date, and every server
// role must accept it.

#include "support/support.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <set>

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

TEST_CASE("every server role and dev accept the example configuration", "[config][integration]") {
    const std::string file = (source_dir() / "config/faasd.example.toml").string();
    for (std::vector<std::string> extra :
         {std::vector<std::string>{"frontend", "--oidc-issuer", "http://127.0.0.1:8180/realms/faas"},
          {"worker"}, {"observer"}, {"supervisor"}, {"scaler", "--exec", "echo {workers}"}, {"dev"}}) {
        std::vector<std::string> argv = {faasd_binary(), "--check-config", extra[0], "--config", file};
        argv.insert(argv.end(), extra.begin() + 1, extra.end());
        auto r = run_process(argv, {keys});
        INFO(extra[0] << ": " << r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.err.find("is valid") != std::string::npos);
    }
}

TEST_CASE("the example shows booleans as true|false and has a section per server role and dev",
          "[config][integration]") {
    // The boolean options, from the binary's own metadata.
    auto dump = run_process({faasd_binary(), "--dump-options"});
    REQUIRE(dump.exit_code == 0);
    std::set<std::string> bools;
    const auto doc = boost::json::parse(dump.out);
    for (const auto& c : doc.at("commands").as_array())
        for (const auto& o : c.at("options").as_array())
            if (o.at("bool").as_bool()) bools.insert(std::string(o.at("name").as_string()));
    CHECK(bools.count("create-topics") == 1);
    CHECK(bools.count("allow-network") == 1);

    std::ifstream in(source_dir() / "config/faasd.example.toml");
    REQUIRE(in);
    std::set<std::string> sections;
    int bool_lines = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("[")) sections.insert(line);
        auto eq = line.find(" = ");
        if (line.starts_with("#") || eq == std::string::npos || !bools.count(line.substr(0, eq))) continue;
        INFO(line);
        CHECK((line.ends_with(" = true") || line.ends_with(" = false")));
        ++bool_lines;
    }
    CHECK(bool_lines >= 5);
    CHECK(sections == std::set<std::string>{"[frontend]", "[worker]", "[observer]", "[scaler]", "[supervisor]", "[dev]"});
    // --help says the same as the example.
    auto r = run_process({faasd_binary(), "worker", "--help"});
    CHECK(r.out.find("--create-topics BOOLEAN=true") != std::string::npos);
    CHECK(r.out.find("--allow-network BOOLEAN=false") != std::string::npos);
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
