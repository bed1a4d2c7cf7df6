#include <faasd/core/error.hpp>
#include <faasd/core/id.hpp>
#include <faasd/core/log.hpp>

#include <catch2/catch.hpp>

#include <set>

using namespace faasd;

TEST_CASE("job ids are ULIDs that encode their time", "[core][unit]") {
    std::array<std::uint8_t, 10> zero{};
    CHECK(make_job_id(0, zero) == "00000000000000000000000000");
    std::array<std::uint8_t, 10> ones;
    ones.fill(0xff);
    // The largest ULID: 48 bits of time and 80 bits of randomness all set.
    CHECK(make_job_id(0xffffffffffffULL, ones) == "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    // A known value from the ULID spec's example timestamp.
    CHECK(make_job_id(1469918176385ULL, zero).substr(0, 10) == "01ARYZ6S41");

    auto id = make_job_id(1'700'000'000'123ULL, zero);
    CHECK(is_job_id(id));
    CHECK(job_id_time_ms(id) == 1'700'000'000'123ULL);

    CHECK_FALSE(is_job_id(""));
    CHECK_FALSE(is_job_id("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"));  // overflows 128 bits
    CHECK_FALSE(is_job_id("01ARYZ6S41000000000000000U"));  // U is not in the alphabet
    CHECK_FALSE(is_job_id("01aryz6s410000000000000000"));  // lower case is not canonical
}

TEST_CASE("new job ids are unique and sort by time", "[core][unit]") {
    std::set<std::string> seen;
    std::string prev;
    for (int i = 0; i < 1000; ++i) {
        auto id = new_job_id();
        REQUIRE(is_job_id(id));
        CHECK(seen.insert(id).second);
        CHECK(job_id_time_ms(id) >= job_id_time_ms(prev.empty() ? id : prev));
        prev = id;
    }
}

TEST_CASE("errc has a category and stable names", "[core][unit]") {
    boost::system::error_code ec = errc::not_found;
    CHECK(ec.category().name() == std::string("faasd"));
    CHECK(ec.message() == "not_found");
    CHECK(std::string(to_string(errc::rate_limited)) == "rate_limited");
}

TEST_CASE("logger writes one key=value line per event", "[core][unit]") {
    std::vector<std::string> lines;
    logger log(log_level::info, log_format::text, [&](std::string_view l) { lines.emplace_back(l); }, false);
    auto child = log.with({{"role", "worker"}});
    child.info("job.started", {{"job", "01ABC"}, {"attempt", 2}, {"note", "two words"}});
    child.debug("hidden");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "level=info role=worker event=job.started job=01ABC attempt=2 note=\"two words\"");

    lines.clear();
    logger json(log_level::debug, log_format::json, [&](std::string_view l) { lines.emplace_back(l); }, false);
    json.with({{"role", "frontend"}}).warn("x", {{"quote", "a\"b"}, {"ok", true}, {"n", 1.5}});
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == R"({"level":"warn","role":"frontend","event":"x","quote":"a\"b","ok":true,"n":1.5})");
}

TEST_CASE("log levels and formats parse", "[core][unit]") {
    CHECK(parse_log_level("debug") == log_level::debug);
    CHECK_FALSE(parse_log_level("verbose"));
    CHECK(parse_log_format("json") == log_format::json);
    CHECK_FALSE(parse_log_format("xml"));
}
