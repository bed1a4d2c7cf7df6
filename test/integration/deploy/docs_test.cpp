// The documents that describe the build and the commands, against the script and
// the binary they describe: docs/dependencies.md lists exactly the packages of
// scripts/install-deps.sh (by group), and README's roles table names every
// command of `faasd --dump-options`. No services.

#include "deploy_tools.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <set>
#include <sstream>

namespace d = faasd::test::deploy;
using faasd::test::run_process;
using faasd::test::source_dir;

namespace {

std::set<std::string> listed(const std::string& group) {
    auto r = run_process({"/bin/bash", (source_dir() / "scripts/install-deps.sh").string(), "--list", group});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    std::set<std::string> out;
    std::istringstream in(r.out);
    for (std::string p; in >> p;) out.insert(p);
    REQUIRE_FALSE(out.empty());
    return out;
}

}  // namespace

TEST_CASE("docs/dependencies.md lists exactly what scripts/install-deps.sh installs", "[deploy][integration]") {
    // Table rows "| `package` | ..." under headings "## ... (group `name`...".
    std::map<std::string, std::set<std::string>> doc;
    std::istringstream in(d::read_text(source_dir() / "docs/dependencies.md"));
    std::string group;
    const std::regex heading(R"(^## .*\(group `([a-z]+)`)"), row(R"(^\| `([a-z0-9.+-]+)`)");
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (line.starts_with("## ")) group = std::regex_search(line, m, heading) ? m[1].str() : "";
        if (!group.empty() && std::regex_search(line, m, row)) doc[group].insert(m[1]);
    }
    std::set<std::string> all = doc["build"];
    all.insert(doc["test"].begin(), doc["test"].end());
    CHECK(doc["build"] == listed("build"));
    CHECK(all == listed("all"));
    CHECK(doc["image"] == listed("image"));
    CHECK(doc.size() == 3);
    // Unknown groups are refused (exit 2), not taken for "all".
    CHECK(run_process({"/bin/bash", (source_dir() / "scripts/install-deps.sh").string(), "--list", "bogus"})
              .exit_code == 2);
}

TEST_CASE("README's roles table names every command of the binary", "[deploy][integration]") {
    auto readme = d::read_text(source_dir() / "README.md");
    auto begin = readme.find("\n## Roles\n");
    REQUIRE(begin != std::string::npos);
    auto roles = readme.substr(begin, readme.find("\n## ", begin + 1) - begin);
    for (const auto& c : d::binary().commands) {
        auto name = c.path.substr(0, c.path.find(' '));  // "dev token" is described with dev
        INFO("faasd " << name);
        bool named = roles.find("`faasd " + name) != std::string::npos || roles.find("/" + name + "`") != std::string::npos ||
                     roles.find("/" + name + "/") != std::string::npos;
        CHECK(named);
    }
}
