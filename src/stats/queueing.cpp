#include <faasd/stats/queueing.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace faasd::stats {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

bool usable(double x) noexcept { return std::isfinite(x); }

// True when c slots at rate mu cannot keep up with lambda (or the input is not a number).
bool unstable(int c, double lambda, double mu) noexcept {
    if (!usable(lambda) || !usable(mu)) return true;
    if (lambda <= 0) return false;
    if (c <= 0 || mu <= 0) return true;
    return lambda >= static_cast<double>(c) * mu;
}

// Erlang B by the recurrence B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)); every
// term is in (0, 1], so nothing overflows however large c and a are.
double erlang_b_step(double b_prev, int k, double a) noexcept {
    return a * b_prev / (static_cast<double>(k) + a * b_prev);
}

// Erlang C from Erlang B at the same c: C = B / (1 - rho (1 - B)).
double c_from_b(double b, double rho) noexcept { return b / (1.0 - rho * (1.0 - b)); }

}  // namespace

double erlang_c(int c, double lambda, double mu) noexcept {
    if (unstable(c, lambda, mu)) return 1.0;
    if (lambda <= 0) return 0.0;
    const double a = lambda / mu;
    double b = 1.0;
    for (int k = 1; k <= c; ++k) b = erlang_b_step(b, k, a);
    return c_from_b(b, a / c);
}

double mmc_wq(int c, double lambda, double mu) noexcept {
    if (unstable(c, lambda, mu)) return inf;
    if (lambda <= 0) return 0.0;
    return erlang_c(c, lambda, mu) / (static_cast<double>(c) * mu - lambda);
}

double p_wait_exceeds(int c, double lambda, double mu, double t) noexcept {
    if (unstable(c, lambda, mu)) return 1.0;
    if (lambda <= 0) return 0.0;
    const double cq = erlang_c(c, lambda, mu);
    if (t <= 0) return cq;
    return cq * std::exp(-(static_cast<double>(c) * mu - lambda) * t);
}

mmc_prediction predict_mmc(int c, double lambda, double mu, double wait_t_s) noexcept {
    mmc_prediction p;
    p.slots = c;
    p.lambda = lambda;
    p.mu = mu;
    p.wait_t_s = wait_t_s;
    if (lambda <= 0 && usable(lambda)) {
        p.rho = 0;
    } else if (c > 0 && mu > 0) {
        p.rho = lambda / (static_cast<double>(c) * mu);
    } else {
        p.rho = inf;
    }
    p.stable = !unstable(c, lambda, mu);
    p.p_wait = erlang_c(c, lambda, mu);
    p.mean_wait_s = mmc_wq(c, lambda, mu);
    p.mean_response_s = p.stable ? p.mean_wait_s + (mu > 0 ? 1.0 / mu : 0.0) : inf;
    p.p_wait_exceeds_t = p_wait_exceeds(c, lambda, mu, wait_t_s);
    p.mean_queue = p.stable ? std::max(lambda, 0.0) * p.mean_wait_s : inf;
    p.mean_in_system = p.stable ? std::max(lambda, 0.0) * p.mean_response_s : inf;
    return p;
}

bool meets(const mmc_prediction& p, const service_target& t) noexcept {
    if (!p.stable) return false;
    if (t.epsilon < 1.0 && !(p.p_wait_exceeds_t <= t.epsilon)) return false;
    if (t.max_mean_response_s > 0 && !(p.mean_response_s <= t.max_mean_response_s)) return false;
    return true;
}

std::optional<int> slots_for_target(double lambda, double mu, const service_target& t, int max_slots) noexcept {
    if (max_slots < 1 || !usable(lambda) || !usable(mu)) return std::nullopt;
    if (lambda <= 0) return 0;  // no load: no capacity needed
    if (mu <= 0) return std::nullopt;
    if (t.max_mean_response_s > 0 && 1.0 / mu > t.max_mean_response_s) return std::nullopt;
    const double a = lambda / mu;
    // Walk c upwards carrying Erlang B, so the search costs O(answer).
    double b = 1.0;
    for (int c = 1; c <= max_slots; ++c) {
        b = erlang_b_step(b, c, a);
        const double cmu = static_cast<double>(c) * mu;
        if (lambda >= cmu) continue;
        const double rho = a / c;
        const double cq = c_from_b(b, rho);
        const double wq = cq / (cmu - lambda);
        if (t.epsilon < 1.0) {
            const double tail = t.wait_s > 0 ? cq * std::exp(-(cmu - lambda) * t.wait_s) : cq;
            if (!(tail <= t.epsilon)) continue;
        }
        if (t.max_mean_response_s > 0 && !(wq + 1.0 / mu <= t.max_mean_response_s)) continue;
        return c;
    }
    return std::nullopt;
}

int slots_to_drain(double lambda, double mu, double backlog, double drain_s) noexcept {
    if (!(backlog > 0)) return 0;
    if (!(mu > 0) || !(drain_s > 0)) return std::numeric_limits<int>::max();
    const double need = (std::max(lambda, 0.0) + backlog / drain_s) / mu;
    // A tiny tolerance keeps exact integers (e.g. 12.000000000000002) from rounding up.
    const double c = std::ceil(need - 1e-9);
    if (!(c < static_cast<double>(std::numeric_limits<int>::max()))) return std::numeric_limits<int>::max();
    return std::max(1, static_cast<int>(c));
}

}  // namespace faasd::stats
