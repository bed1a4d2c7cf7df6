// The M/M/c formulas against published values and against an independent
// computation (the textbook closed form with factorials, in long double,
// instead of the library's Erlang-B recurrence).

#include <faasd/stats/queueing.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

using namespace faasd::stats;

namespace {

// C(c, a) = (a^c / c!) / (1 - rho) / (sum_{k<c} a^k / k! + (a^c / c!) / (1 - rho)), a = lambda / mu.
long double erlang_c_closed_form(int c, long double lambda, long double mu) {
    const long double a = lambda / mu;
    const long double rho = a / c;
    long double term = 1;  // a^k / k!
    long double sum = 0;
    for (int k = 0; k < c; ++k) {
        sum += term;
        term = term * a / (k + 1);
    }
    const long double top = term / (1 - rho);  // term is now a^c / c!
    return top / (sum + top);
}

}  // namespace

TEST_CASE("Erlang C matches the published table for lambda = 10/s, mean service 1 s", "[stats][unit]") {
    // Reference values computed exactly with rational arithmetic (Python
    // fractions) and rounded to 6 digits; tolerance 1e-5 absolute. The issue's
    // 3-digit values are checked with 0.5% relative tolerance.
    struct row {
        int c;
        double c_exact, wq_exact;  // 6 digits
        double c_issue, wq_issue;  // as published, 3 digits
    };
    const row rows[] = {
        {11, 0.682118, 0.682118, 0.682, 0.682},
        {12, 0.449388, 0.224694, 0.449, 0.225},
        {14, 0.174132, 0.043533, 0.174, 0.0435},
    };
    for (const auto& r : rows) {
        INFO("c = " << r.c);
        CHECK(erlang_c(r.c, 10.0, 1.0) == Approx(r.c_exact).margin(1e-5));
        CHECK(mmc_wq(r.c, 10.0, 1.0) == Approx(r.wq_exact).margin(1e-5));
        CHECK(erlang_c(r.c, 10.0, 1.0) == Approx(r.c_issue).epsilon(0.005));
        CHECK(mmc_wq(r.c, 10.0, 1.0) == Approx(r.wq_issue).epsilon(0.005));
    }
}

TEST_CASE("M/M/1 with lambda = 1/s and mean service 0.5 s waits 0.5 s on average", "[stats][unit]") {
    // rho = 0.5; C = rho; Wq = rho / (mu - lambda) = 0.5 / 1.
    CHECK(erlang_c(1, 1.0, 2.0) == Approx(0.5).margin(1e-12));
    CHECK(mmc_wq(1, 1.0, 2.0) == Approx(0.5).margin(1e-12));
    // P(Wq > t) = rho e^{-(mu - lambda) t}.
    CHECK(p_wait_exceeds(1, 1.0, 2.0, 2.0) == Approx(0.5 * std::exp(-2.0)).margin(1e-12));
    const auto p = predict_mmc(1, 1.0, 2.0, 0.0);
    CHECK(p.stable);
    CHECK(p.rho == Approx(0.5));
    CHECK(p.mean_response_s == Approx(1.0));  // 0.5 wait + 0.5 service
    CHECK(p.mean_in_system == Approx(1.0));   // L = lambda W = rho / (1 - rho)
    CHECK(p.mean_queue == Approx(0.5));       // Lq = rho^2 / (1 - rho)
}

TEST_CASE("Erlang C agrees with the closed form over a grid of sizes and loads", "[stats][unit]") {
    for (int c : {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144}) {
        for (double rho : {0.05, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99}) {
            const double mu = 0.7;
            const double lambda = rho * c * mu;
            INFO("c = " << c << ", rho = " << rho);
            const auto expected = static_cast<double>(erlang_c_closed_form(c, lambda, mu));
            // Relative 1e-9: the two methods differ only by rounding.
            CHECK(erlang_c(c, lambda, mu) == Approx(expected).epsilon(1e-9));
            CHECK(mmc_wq(c, lambda, mu) == Approx(expected / (c * mu - lambda)).epsilon(1e-9));
        }
    }
}

TEST_CASE("Erlang C stays finite for very large systems", "[stats][unit]") {
    // a = 50000: a^c / c! overflows a double; the recurrence does not.
    const double c_val = erlang_c(50'500, 50'000.0, 1.0);
    CHECK(std::isfinite(c_val));
    CHECK(c_val > 0.0);
    CHECK(c_val < 1.0);
    // More servers never make waiting more likely.
    CHECK(erlang_c(50'600, 50'000.0, 1.0) < c_val);
}

TEST_CASE("rho >= 1 means every arrival waits forever, explicitly", "[stats][unit]") {
    constexpr double inf = std::numeric_limits<double>::infinity();
    SECTION("rho = 1") {
        CHECK(erlang_c(10, 10.0, 1.0) == 1.0);
        CHECK(mmc_wq(10, 10.0, 1.0) == inf);
        CHECK(p_wait_exceeds(10, 10.0, 1.0, 5.0) == 1.0);
        const auto p = predict_mmc(10, 10.0, 1.0, 1.0);
        CHECK_FALSE(p.stable);
        CHECK(p.rho == Approx(1.0));
        CHECK(p.mean_response_s == inf);
        CHECK(p.mean_queue == inf);
    }
    SECTION("rho > 1") {
        CHECK(erlang_c(3, 10.0, 1.0) == 1.0);
        CHECK(mmc_wq(3, 10.0, 1.0) == inf);
        CHECK_FALSE(predict_mmc(3, 10.0, 1.0, 1.0).stable);
    }
    SECTION("no servers, or no service") {
        CHECK(mmc_wq(0, 1.0, 1.0) == inf);
        CHECK(mmc_wq(4, 1.0, 0.0) == inf);
        CHECK(predict_mmc(0, 1.0, 1.0, 1.0).rho == inf);
        CHECK(mmc_wq(4, std::numeric_limits<double>::quiet_NaN(), 1.0) == inf);
    }
    SECTION("no load waits for nothing") {
        CHECK(erlang_c(0, 0.0, 1.0) == 0.0);
        CHECK(mmc_wq(3, 0.0, 1.0) == 0.0);
        CHECK(p_wait_exceeds(3, 0.0, 1.0, 0.0) == 0.0);
        CHECK(predict_mmc(3, 0.0, 1.0, 1.0).stable);
    }
}

TEST_CASE("P(Wq > t) decays exponentially from Erlang C", "[stats][unit]") {
    // c = 12, lambda = 10, mu = 1: C = 0.449388, decay rate c mu - lambda = 2.
    CHECK(p_wait_exceeds(12, 10.0, 1.0, 0.0) == Approx(0.449388).margin(1e-5));
    CHECK(p_wait_exceeds(12, 10.0, 1.0, 1.0) == Approx(0.0608181).margin(1e-6));
    CHECK(p_wait_exceeds(13, 10.0, 1.0, 1.0) == Approx(0.0142028).margin(1e-6));
}

TEST_CASE("slots_for_target finds the smallest sufficient size", "[stats][unit]") {
    service_target tail;  // P(Wq > 1 s) <= 0.05
    tail.wait_s = 1.0;
    tail.epsilon = 0.05;
    // c = 12 gives 0.0608 > 0.05, c = 13 gives 0.0142.
    CHECK(slots_for_target(10.0, 1.0, tail, 1000) == 13);
    CHECK(slots_for_target(10.0, 1.0, tail, 12) == std::nullopt);
    CHECK(slots_for_target(0.0, 1.0, tail, 10) == 0);

    service_target mean;  // E[W] bound only
    mean.epsilon = 1.0;
    mean.max_mean_response_s = 1.1;  // Wq <= 0.1: c = 12 waits 0.2247, c = 13 waits 0.0951
    CHECK(slots_for_target(10.0, 1.0, mean, 1000) == 13);
    mean.max_mean_response_s = 1.25;  // c = 12 suffices
    CHECK(slots_for_target(10.0, 1.0, mean, 1000) == 12);
    mean.max_mean_response_s = 0.9;  // the service alone takes 1 s
    CHECK(slots_for_target(10.0, 1.0, mean, 1000) == std::nullopt);

    SECTION("the answer meets the target and one less does not") {
        for (double lambda : {0.3, 2.0, 37.0, 500.0, 20'000.0}) {
            INFO("lambda = " << lambda);
            const auto c = slots_for_target(lambda, 1.0, tail, 1'000'000);
            REQUIRE(c);
            CHECK(meets(predict_mmc(*c, lambda, 1.0, tail.wait_s), tail));
            if (*c > 1) CHECK_FALSE(meets(predict_mmc(*c - 1, lambda, 1.0, tail.wait_s), tail));
        }
    }
}

TEST_CASE("slots_to_drain covers arrivals plus the backlog over the drain time", "[stats][unit]") {
    CHECK(slots_to_drain(10.0, 1.0, 0.0, 30.0) == 0);
    CHECK(slots_to_drain(10.0, 1.0, 60.0, 30.0) == 12);  // (10 + 60/30) / 1, exactly
    CHECK(slots_to_drain(10.0, 1.0, 61.0, 30.0) == 13);
    CHECK(slots_to_drain(10.0, 0.5, 60.0, 30.0) == 24);
    CHECK(slots_to_drain(0.0, 1.0, 1.0, 30.0) == 1);
    CHECK(slots_to_drain(1.0, 0.0, 5.0, 30.0) == std::numeric_limits<int>::max());
}
