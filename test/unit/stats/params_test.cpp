// Live observer parameters: validation, JSON round trip, keeping the last good set.

#include <faasd/stats/params.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <functional>
#include <limits>
#include <string>

using namespace faasd::stats;
namespace json = boost::json;

namespace {

bool has_error_on(const std::vector<param_error>& errors, const std::string& field) {
    for (const auto& e : errors)
        if (e.field == field && !e.reason.empty()) return true;
    return false;
}

}  // namespace

TEST_CASE("the default parameters are valid", "[stats][unit]") { CHECK(validate(observer_params{}).empty()); }

TEST_CASE("every bad field is rejected with a reason naming it", "[stats][unit]") {
    struct bad {
        const char* field;
        std::function<void(observer_params&)> spoil;
    };
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    constexpr double inf = std::numeric_limits<double>::infinity();
    const bad cases[] = {
        {"tick_ms", [](auto& p) { p.tick_ms = 99; }},
        {"tick_ms", [](auto& p) { p.tick_ms = 60'001; }},
        {"short_window_ms", [](auto& p) { p.short_window_ms = 999; }},
        {"short_window_ms", [](auto& p) { p.tick_ms = 5'000, p.short_window_ms = 4'000; }},
        {"long_window_ms", [](auto& p) { p.long_window_ms = 9'999; }},  // below short (10 s)
        {"long_window_ms", [](auto& p) { p.long_window_ms = 86'400'001; }},
        {"stale_after_ms", [](auto& p) { p.stale_after_ms = 500; }},  // below tick (1 s)
        {"settle_ms", [](auto& p) { p.settle_ms = -1; }},
        {"settle_ms", [](auto& p) { p.settle_ms = 5'001; }},  // over half the short window
        {"target_wait_ms", [](auto& p) { p.target_wait_ms = -1; }},
        {"epsilon", [](auto& p) { p.epsilon = 0; }},
        {"epsilon", [](auto& p) { p.epsilon = 1.5; }},
        {"epsilon", [nan](auto& p) { p.epsilon = nan; }},
        {"epsilon", [](auto& p) { p.epsilon = 1.0, p.max_mean_response_ms = 0; }},  // no target at all
        {"max_mean_response_ms", [](auto& p) { p.max_mean_response_ms = -5; }},
        {"max_arrival_rate", [](auto& p) { p.max_arrival_rate = -1; }},
        {"max_arrival_rate", [inf](auto& p) { p.max_arrival_rate = inf; }},
        {"max_arrival_rate", [nan](auto& p) { p.max_arrival_rate = nan; }},
        {"drain_time_ms", [](auto& p) { p.drain_time_ms = 0; }},
        {"min_workers", [](auto& p) { p.min_workers = -1; }},
        {"max_workers", [](auto& p) { p.max_workers = 0; }},
        {"max_workers", [](auto& p) { p.min_workers = 5, p.max_workers = 4; }},
        {"max_workers", [](auto& p) { p.max_workers = 10'000, p.slots_per_worker = 1'024; }},
        {"slots_per_worker", [](auto& p) { p.slots_per_worker = 0; }},
        {"slots_per_worker", [](auto& p) { p.slots_per_worker = 1'025; }},
        {"max_step_up", [](auto& p) { p.max_step_up = 0; }},
        {"max_step_down", [](auto& p) { p.max_step_down = 0; }},
        {"up_cooldown_ms", [](auto& p) { p.up_cooldown_ms = -1; }},
        {"down_cooldown_ms", [](auto& p) { p.down_cooldown_ms = 3'600'001; }},
        {"up_confidence_z", [](auto& p) { p.up_confidence_z = 5.5; }},
        {"down_confidence_z", [](auto& p) { p.down_confidence_z = -0.1; }},
    };
    for (const auto& c : cases) {
        observer_params p;
        c.spoil(p);
        const auto errors = validate(p);
        INFO("field " << c.field << ": " << to_string(errors));
        CHECK(has_error_on(errors, c.field));
        // The same set arriving as JSON is refused, and the last good set stays.
        const observer_params last_good;
        auto update = apply_params_update(last_good, to_json(p));
        CHECK_FALSE(update.accepted);
        CHECK(update.params == last_good);
        CHECK(has_error_on(update.errors, c.field));
    }
}

TEST_CASE("several errors are all reported", "[stats][unit]") {
    observer_params p;
    p.epsilon = 2;
    p.min_workers = -3;
    p.slots_per_worker = 0;
    const auto errors = validate(p);
    CHECK(errors.size() == 3);
    const auto text = to_string(errors);
    CHECK(text.find("epsilon: must be in (0, 1]") != std::string::npos);
    CHECK(text.find("min_workers: must be in [0, 10000], got -3") != std::string::npos);
    CHECK(text.find("slots_per_worker") != std::string::npos);
}

TEST_CASE("parameters survive a JSON round trip", "[stats][unit]") {
    observer_params p;
    p.tick_ms = 500;
    p.short_window_ms = 5'000;
    p.long_window_ms = 120'000;
    p.stale_after_ms = 7'000;
    p.settle_ms = 250;
    p.target_wait_ms = 250;
    p.epsilon = 0.01;
    p.max_mean_response_ms = 3'000;
    p.max_arrival_rate = 42.5;
    p.drain_time_ms = 15'000;
    p.min_workers = 2;
    p.max_workers = 64;
    p.slots_per_worker = 8;
    p.max_step_up = 4;
    p.max_step_down = 1;
    p.up_cooldown_ms = 2'000;
    p.down_cooldown_ms = 90'000;
    p.up_confidence_z = 1.5;
    p.down_confidence_z = 3;
    REQUIRE(validate(p).empty());

    const auto text = json::serialize(to_json(p));
    const auto back = params_from_json(std::string_view(text));
    INFO(text << " -> " << to_string(back.errors));
    REQUIRE(back.ok());
    CHECK(back.params == p);

    const auto o = to_json(p);
    CHECK(o.at("v").as_int64() == 1);
    CHECK(o.at("tick_ms").as_int64() == 500);
    CHECK(o.at("epsilon").as_double() == 0.01);
    CHECK(o.size() == 20);  // "v" and every field
}

TEST_CASE("parsing parameters from JSON", "[stats][unit]") {
    SECTION("missing fields take their defaults") {
        auto r = params_from_json(std::string_view(R"({"epsilon": 0.1, "max_workers": 3})"));
        REQUIRE(r.ok());
        observer_params expected;
        expected.epsilon = 0.1;
        expected.max_workers = 3;
        CHECK(r.params == expected);
    }
    SECTION("integral doubles are integers") {
        auto r = params_from_json(std::string_view(R"({"max_workers": 7.0, "max_arrival_rate": 3})"));
        REQUIRE(r.ok());
        CHECK(r.params.max_workers == 7);
        CHECK(r.params.max_arrival_rate == 3.0);
    }
    SECTION("rejections") {
        struct row {
            const char* text;
            const char* field;
        };
        const row rows[] = {
            {R"({"max_workers": 7.5})", "max_workers"},
            {R"({"max_workers": "7"})", "max_workers"},
            {R"({"max_workers": 1e12})", "max_workers"},
            {R"({"epsilon": "small"})", "epsilon"},
            {R"({"max_worker": 7})", "max_worker"},  // a typo is not silently ignored
            {R"({"v": 2})", "v"},
            {R"([1, 2])", ""},
            {R"({"epsilon": )", ""},
            {R"({"min_workers": 9, "max_workers": 3})", "max_workers"},
        };
        for (const auto& r : rows) {
            INFO(r.text);
            auto parsed = params_from_json(std::string_view(r.text));
            CHECK_FALSE(parsed.ok());
            CHECK(has_error_on(parsed.errors, r.field));
        }
    }
}

TEST_CASE("a live update replaces the parameters only when valid", "[stats][unit]") {
    observer_params current;
    current.max_workers = 8;

    auto good = apply_params_update(current, json::parse(R"({"max_workers": 12, "min_workers": 2})"));
    CHECK(good.accepted);
    CHECK(good.errors.empty());
    CHECK(good.params.max_workers == 12);
    CHECK(good.params.min_workers == 2);

    auto bad = apply_params_update(good.params, json::parse(R"({"max_workers": 12, "epsilon": -1})"));
    CHECK_FALSE(bad.accepted);
    CHECK(bad.params == good.params);
    REQUIRE(bad.errors.size() == 1);
    CHECK(bad.errors[0].field == "epsilon");
}

TEST_CASE("the service target follows the parameters", "[stats][unit]") {
    observer_params p;
    p.target_wait_ms = 2'500;
    p.epsilon = 0.02;
    p.max_mean_response_ms = 4'000;
    const auto t = p.target();
    CHECK(t.wait_s == 2.5);
    CHECK(t.epsilon == 0.02);
    CHECK(t.max_mean_response_s == 4.0);
}
