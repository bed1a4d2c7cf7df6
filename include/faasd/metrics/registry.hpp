#pragma once
// Metrics (pure core: no I/O, no Asio): counters, gauges and histograms with
// label sets, collected in a registry and rendered in the Prometheus text
// exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
//   auto& requests = reg.counter("faasd_http_requests_total", "HTTP requests served.",
//                                {"method", "route", "status"});
//   requests.with({"GET", "/v1/jobs/{id}", "200"}).inc();
//   std::string text = reg.render();
//
// Thread safety: every member of every class here may be called from any
// thread. Children (a metric with one set of label values) live as long as
// the registry, so a reference returned by with() may be cached.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::metrics {

/// A monotonically increasing value.
class counter {
public:
    /// Adds v (must be >= 0; negative values are ignored).
    void inc(double v = 1.0) noexcept;
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0.0};
};

/// A value that goes up and down.
class gauge {
public:
    void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void inc(double v = 1.0) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
    void dec(double v = 1.0) noexcept { value_.fetch_sub(v, std::memory_order_relaxed); }
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0.0};
};

/// Observations counted in cumulative buckets, plus their sum and count.
class histogram {
public:
    /// bounds: strictly increasing upper bounds, without +Inf (always added).
    explicit histogram(std::span<const double> bounds);
    void observe(double v) noexcept;

    struct snapshot {
        std::vector<double> bounds;            ///< upper bounds, without +Inf
        std::vector<std::uint64_t> cumulative; ///< one per bound, then +Inf (== count)
        double sum = 0;
        std::uint64_t count = 0;
    };
    /// A consistent copy (count equals the +Inf bucket).
    snapshot snap() const;

private:
    std::vector<double> bounds_;
    mutable std::mutex mu_;
    std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
    double sum_ = 0;
    std::uint64_t count_ = 0;
};

namespace detail {

// Orders label-value tuples; transparent so lookups by string_view do not allocate.
struct values_less {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
        return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                            [](std::string_view x, std::string_view y) { return x < y; });
    }
};

}  // namespace detail

/// Metrics of one name and one kind, one child per set of label values.
template <class Metric>
class family {
public:
    const std::string& name() const noexcept { return name_; }
    const std::vector<std::string>& label_names() const noexcept { return label_names_; }

    /// The child for these label values, in label_names() order (created on
    /// first use). Throws std::invalid_argument if the number of values is wrong.
    Metric& with(std::initializer_list<std::string_view> values) {
        return with(std::span<const std::string_view>(values.begin(), values.size()));
    }
    Metric& with(std::span<const std::string_view> values);

    /// Visits (label values, child) in label-value order under the family lock.
    template <class F>
    void for_each(F&& f) const {
        std::lock_guard lock(mu_);
        for (const auto& [vals, child] : children_) f(vals, *child);
    }

private:
    friend class registry;
    family(std::string name, std::string help, std::vector<std::string> labels, std::vector<double> bounds);

    std::unique_ptr<Metric> make_child() const;

    std::string name_;
    std::string help_;
    std::vector<std::string> label_names_;
    std::vector<double> bounds_;  // histograms only
    mutable std::mutex mu_;
    std::map<std::vector<std::string>, std::unique_ptr<Metric>, detail::values_less> children_;
};

using counter_family = family<counter>;
using gauge_family = family<gauge>;
using histogram_family = family<histogram>;

/// Default latency buckets in seconds (1 ms .. 10 s).
std::span<const double> default_latency_buckets() noexcept;

/// A set of metric families, rendered together. Thread-safe.
class registry {
public:
    registry();
    ~registry();
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    /// Registers (or returns the already registered) family. Asking again for a
    /// name with a different kind, labels or buckets, or an invalid metric or
    /// label name, throws std::invalid_argument: that is a programming error.
    /// A family without labels has its one child from the start (rendered as 0).
    counter_family& counter(std::string_view name, std::string_view help,
                            std::vector<std::string> label_names = {});
    gauge_family& gauge(std::string_view name, std::string_view help, std::vector<std::string> label_names = {});
    /// bounds: strictly increasing, finite; "le" is reserved as a label name.
    histogram_family& histogram(std::string_view name, std::string_view help, std::span<const double> bounds,
                                std::vector<std::string> label_names = {});

    /// The Prometheus text format (version 0.0.4) of every family, sorted by
    /// name; children sorted by label values.
    std::string render() const;

    /// The Content-Type of render()'s output.
    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

private:
    struct entry;
    mutable std::mutex mu_;
    std::map<std::string, std::unique_ptr<entry>, std::less<>> families_;
};

/// Escaping used by the text format (exposed for tests): HELP text escapes
/// backslash and newline; label values also escape the double quote.
std::string escape_help(std::string_view s);
std::string escape_label_value(std::string_view s);
/// A sample value as the text format writes it: shortest round-trip form,
/// "+Inf", "-Inf", "NaN".
std::string format_value(double v);

}  // namespace faasd::metrics
