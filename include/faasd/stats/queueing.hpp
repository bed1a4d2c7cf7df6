#pragma once
// The M/M/c queueing model (Poisson arrivals at rate lambda, exponential service
// at rate mu per slot, c slots, one FIFO queue). Pure functions of numbers;
// rates are per second, times in seconds. docs/observer.md gives the formulas.
//
// Unstable systems are explicit: when lambda >= c * mu (rho >= 1, or c <= 0, or
// mu <= 0 with lambda > 0) every arrival waits and the mean wait is +infinity.
// With lambda <= 0 nobody waits.

#include <optional>

namespace faasd::stats {

/// Erlang C: the probability that an arrival has to wait, P(Wq > 0). Computed
/// through the Erlang B recurrence, stable for c in the millions. 1 if unstable.
double erlang_c(int c, double lambda, double mu) noexcept;

/// Mean queue wait E[Wq] = C / (c*mu - lambda), seconds; +infinity if unstable.
double mmc_wq(int c, double lambda, double mu) noexcept;

/// P(Wq > t) = C * exp(-(c*mu - lambda) * t) for t >= 0; 1 if unstable.
double p_wait_exceeds(int c, double lambda, double mu, double t) noexcept;

/// Everything the model predicts for one size.
struct mmc_prediction {
    int slots = 0;                ///< c
    double lambda = 0;            ///< arrivals per second
    double mu = 0;                ///< completions per second per slot
    double rho = 0;               ///< lambda / (c mu); +infinity when c mu = 0 < lambda
    bool stable = true;           ///< rho < 1 (or lambda = 0)
    double p_wait = 0;            ///< Erlang C
    double mean_wait_s = 0;       ///< E[Wq]
    double mean_response_s = 0;   ///< E[W] = E[Wq] + 1/mu
    double wait_t_s = 0;          ///< the threshold t of p_wait_exceeds_t
    double p_wait_exceeds_t = 0;  ///< P(Wq > t)
    double mean_queue = 0;        ///< Lq = lambda E[Wq]
    double mean_in_system = 0;    ///< L = lambda E[W]
};

mmc_prediction predict_mmc(int c, double lambda, double mu, double wait_t_s) noexcept;

/// What "good enough" means: every enabled condition must hold.
struct service_target {
    double wait_s = 1.0;             ///< t in P(Wq > t) <= epsilon
    double epsilon = 0.05;           ///< in (0, 1]; 1 disables the tail condition
    double max_mean_response_s = 0;  ///< E[W] bound; 0 disables
};

/// True when the prediction is stable and meets every enabled condition.
bool meets(const mmc_prediction& p, const service_target& t) noexcept;

/// The smallest c in [1, max_slots] whose prediction meets the target (0 when
/// lambda <= 0: no load needs no slot), or nullopt if none does (including
/// when 1/mu alone exceeds the response bound).
/// Costs O(answer) evaluations of one recurrence step each.
std::optional<int> slots_for_target(double lambda, double mu, const service_target& t, int max_slots) noexcept;

/// The smallest c with (c mu - lambda) * drain_s >= backlog: enough capacity to
/// serve new arrivals and empty a queue of `backlog` jobs within drain_s
/// (fluid approximation). 0 when backlog <= 0; requires mu > 0, drain_s > 0.
int slots_to_drain(double lambda, double mu, double backlog, double drain_s) noexcept;

}  // namespace faasd::stats
