// docs/worker-internals.md "Configuration" is generated from `faasd worker
// --help`: this test fails when an option is added, removed or changes its
// default without the table following.

#include "support/support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

namespace {

// --name -> default ("" when none), from CLI11's help text.
std::map<std::string, std::string> options_of_help(const std::string& help) {
    std::map<std::string, std::string> out;
    static const std::regex line(R"(^  (--[a-z0-9-]+)(?: [A-Z]+(?:=(\S+))?(?: \.\.\.)?)? \(Env:\w+\)$)");
    std::istringstream in(help);
    std::string l;
    while (std::getline(in, l)) {
        std::smatch m;
        if (std::regex_match(l, m, line)) out[m[1]] = m[2];
    }
    return out;
}

// --name -> default, from the generated table of the document.
std::map<std::string, std::string> options_of_doc(const std::string& doc) {
    std::map<std::string, std::string> out;
    const auto begin = doc.find("<!-- worker-options:begin -->");
    const auto end = doc.find("<!-- worker-options:end -->");
    if (begin == std::string::npos || end == std::string::npos) return out;
    static const std::regex row(R"(^\| `(--[a-z0-9-]+)` \| (?:`([^`]*)`)? *\|)");
    std::istringstream in(doc.substr(begin, end - begin));
    std::string l;
    while (std::getline(in, l)) {
        std::smatch m;
        if (std::regex_search(l, m, row)) out[m[1]] = m[2];
    }
    return out;
}

}  // namespace

TEST_CASE("docs/worker-internals.md lists exactly the options of faasd worker --help", "[worker][integration]") {
    auto r = faasd::test::run_process({faasd::test::faasd_binary(), "worker", "--help"});
    REQUIRE(r.exit_code == 0);
    auto help = options_of_help(r.out + r.err);
    REQUIRE(help.size() > 40);
    REQUIRE(help.count("--slots"));
    std::ifstream f(faasd::test::source_dir() / "docs/worker-internals.md");
    std::stringstream doc;
    doc << f.rdbuf();
    auto documented = options_of_doc(doc.str());
    for (const auto& [name, def] : help) {
        INFO(name);
        REQUIRE(documented.count(name));
        CHECK(documented.at(name) == def);
    }
    for (const auto& [name, def] : documented) {
        INFO(name << " is documented but not an option of faasd worker");
        CHECK(help.count(name));
    }
    // The options that an older version of the document invented.
    for (const char* gone : {"--repo-cache-dir", "--ref-staleness", "--job-timeout", "--max-processes", "--sandbox-uids",
                             "--cgroup-parent", "--git-retries"})
        CHECK(doc.str().find(gone) == std::string::npos);
}
