// test/services/services.sh against the services it already runs (issue #2:
// "a second start must not download again"). Maven, the only way the script
// downloads, is replaced by a stand-in that records being called and fails:
// re-running `up kafka` on the running single node, and `fetch` of every
// artifact, must succeed without it, and add no line to downloads.log.

#include "support/support.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using faasd::test::run_process;

namespace {

std::uintmax_t size_or_zero(const fs::path& p) {
    std::error_code ec;
    auto n = fs::file_size(p, ec);
    return ec ? 0 : n;
}

}  // namespace

TEST_CASE("services.sh: a second up of a running service, and a fetch, download nothing", "[services][integration]") {
    const auto state = faasd::test::require_env("FAASD_SERVICES_DIR");  // from services.env
    faasd::test::temp_dir tmp("faasd-services");
    const auto bin = tmp.path() / "bin";
    const auto called = tmp.path() / "mvn-called";
    fs::create_directories(bin);
    {
        std::ofstream mvn(bin / "mvn");
        mvn << "#!/bin/sh\necho \"$*\" >> '" << called.string() << "'\necho 'mvn: no downloads allowed here' >&2\nexit 1\n";
    }
    fs::permissions(bin / "mvn", fs::perms::owner_all);
    const char* home = std::getenv("HOME");
    const char* downloads = std::getenv("FAASD_DOWNLOADS_DIR");
    const fs::path cache = downloads && *downloads ? fs::path(downloads) : fs::path(home ? home : "/root") / ".cache/faasd";
    const auto log_before = size_or_zero(cache / "downloads.log");

    const std::string script = (faasd::test::source_dir() / "test/services/services.sh").string();
    const std::vector<std::string> env{"PATH=" + bin.string() + ":" + std::getenv("PATH"), "FAASD_SERVICES_DIR=" + state};

    auto up = run_process({"/bin/bash", script, "up", "kafka"}, env, {}, std::chrono::seconds(120));
    INFO("services.sh up kafka: " << up.err);
    CHECK(up.exit_code == 0);
    CHECK(up.err.find("kafka already up") != std::string::npos);

    auto fetch = run_process({"/bin/bash", script, "fetch", "all"}, env, {}, std::chrono::seconds(120));
    INFO("services.sh fetch all: " << fetch.err);
    CHECK(fetch.exit_code == 0);

    CHECK_FALSE(fs::exists(called));
    CHECK(up.err.find("downloading") == std::string::npos);
    CHECK(fetch.err.find("downloading") == std::string::npos);
    CHECK(size_or_zero(cache / "downloads.log") == log_before);
}
