#include <faasd/metrics/registry.hpp>

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <variant>

namespace faasd::metrics {
namespace {

bool valid_metric_name(std::string_view s) {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        bool digit = c >= '0' && c <= '9';
        if (!(alpha || (i > 0 && digit))) return false;
    }
    return true;
}

bool valid_label_name(std::string_view s) {
    if (s.empty() || s.starts_with("__")) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (!(alpha || (i > 0 && digit))) return false;
    }
    return true;
}

void check_names(std::string_view name, const std::vector<std::string>& labels, bool histogram) {
    if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name: " + std::string(name));
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (!valid_label_name(labels[i]) || (histogram && labels[i] == "le"))
            throw std::invalid_argument("invalid label name for " + std::string(name) + ": " + labels[i]);
        for (std::size_t j = 0; j < i; ++j)
            if (labels[i] == labels[j])
                throw std::invalid_argument("duplicate label name for " + std::string(name) + ": " + labels[i]);
    }
}

// Appends {a="x",b="y"} (plus an optional extra label, e.g. le) or nothing.
void append_labels(std::string& out, const std::vector<std::string>& names, const std::vector<std::string>& values,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
    if (names.empty() && extra_name.empty()) return;
    out.push_back('{');
    bool first = true;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (!first) out.push_back(',');
        first = false;
        out.append(names[i]).append("=\"").append(escape_label_value(values[i])).push_back('"');
    }
    if (!extra_name.empty()) {
        if (!first) out.push_back(',');
        out.append(extra_name).append("=\"").append(extra_value).push_back('"');
    }
    out.push_back('}');
}

void append_header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
    out.append("# HELP ").append(name).push_back(' ');
    out.append(escape_help(help)).push_back('\n');
    out.append("# TYPE ").append(name).push_back(' ');
    out.append(type).push_back('\n');
}

constexpr double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

std::string escape_help(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '\\') out.append("\\\\");
        else if (c == '\n') out.append("\\n");
        else out.push_back(c);
    }
    return out;
}

std::string escape_label_value(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '\\') out.append("\\\\");
        else if (c == '\n') out.append("\\n");
        else if (c == '"') out.append("\\\"");
        else out.push_back(c);
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

std::span<const double> default_latency_buckets() noexcept { return latency_buckets; }

// ---------------------------------------------------------------------------

void counter::inc(double v) noexcept {
    if (v > 0) value_.fetch_add(v, std::memory_order_relaxed);
}

histogram::histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()), counts_(bounds.size() + 1, 0) {}

void histogram::observe(double v) noexcept {
    // Buckets are few (about a dozen): a linear scan beats a binary search.
    std::size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i]) ++i;
    std::lock_guard lock(mu_);
    ++counts_[i];
    sum_ += v;
    ++count_;
}

histogram::snapshot histogram::snap() const {
    snapshot s;
    s.bounds = bounds_;
    std::lock_guard lock(mu_);
    s.cumulative.resize(counts_.size());
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) s.cumulative[i] = acc += counts_[i];
    s.sum = sum_;
    s.count = count_;
    return s;
}

// ---------------------------------------------------------------------------

template <class Metric>
family<Metric>::family(std::string name, std::string help, std::vector<std::string> labels,
                       std::vector<double> bounds)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(labels)), bounds_(std::move(bounds)) {
    if (label_names_.empty()) children_.emplace(std::vector<std::string>{}, make_child());
}

template <class Metric>
std::unique_ptr<Metric> family<Metric>::make_child() const {
    if constexpr (std::is_same_v<Metric, histogram>)
        return std::make_unique<histogram>(bounds_);
    else
        return std::make_unique<Metric>();
}

template <class Metric>
Metric& family<Metric>::with(std::span<const std::string_view> values) {
    if (values.size() != label_names_.size())
        throw std::invalid_argument("metric " + name_ + " takes " + std::to_string(label_names_.size()) +
                                    " label values, got " + std::to_string(values.size()));
    std::lock_guard lock(mu_);
    auto it = children_.find(values);
    if (it == children_.end())
        it = children_.emplace(std::vector<std::string>(values.begin(), values.end()), make_child()).first;
    return *it->second;
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

// ---------------------------------------------------------------------------

struct registry::entry {
    std::variant<std::unique_ptr<counter_family>, std::unique_ptr<gauge_family>, std::unique_ptr<histogram_family>>
        fam;
};

registry::registry() = default;
registry::~registry() = default;

counter_family& registry::counter(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names) {
    check_names(name, label_names, false);
    std::lock_guard lock(mu_);
    if (auto it = families_.find(name); it != families_.end()) {
        auto* f = std::get_if<std::unique_ptr<counter_family>>(&it->second->fam);
        if (f == nullptr || (*f)->label_names() != label_names)
            throw std::invalid_argument("metric " + std::string(name) + " is already registered differently");
        return **f;
    }
    auto e = std::make_unique<entry>();
    auto* f = new counter_family(std::string(name), std::string(help), std::move(label_names), {});
    e->fam = std::unique_ptr<counter_family>(f);
    families_.emplace(std::string(name), std::move(e));
    return *f;
}

gauge_family& registry::gauge(std::string_view name, std::string_view help, std::vector<std::string> label_names) {
    check_names(name, label_names, false);
    std::lock_guard lock(mu_);
    if (auto it = families_.find(name); it != families_.end()) {
        auto* f = std::get_if<std::unique_ptr<gauge_family>>(&it->second->fam);
        if (f == nullptr || (*f)->label_names() != label_names)
            throw std::invalid_argument("metric " + std::string(name) + " is already registered differently");
        return **f;
    }
    auto e = std::make_unique<entry>();
    auto* f = new gauge_family(std::string(name), std::string(help), std::move(label_names), {});
    e->fam = std::unique_ptr<gauge_family>(f);
    families_.emplace(std::string(name), std::move(e));
    return *f;
}

histogram_family& registry::histogram(std::string_view name, std::string_view help, std::span<const double> bounds,
                                      std::vector<std::string> label_names) {
    check_names(name, label_names, true);
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            throw std::invalid_argument("histogram " + std::string(name) +
                                        " needs strictly increasing finite bucket bounds");
    }
    std::vector<double> b(bounds.begin(), bounds.end());
    std::lock_guard lock(mu_);
    if (auto it = families_.find(name); it != families_.end()) {
        auto* f = std::get_if<std::unique_ptr<histogram_family>>(&it->second->fam);
        if (f == nullptr || (*f)->label_names() != label_names || (*f)->bounds_ != b)
            throw std::invalid_argument("metric " + std::string(name) + " is already registered differently");
        return **f;
    }
    auto e = std::make_unique<entry>();
    auto* f = new histogram_family(std::string(name), std::string(help), std::move(label_names), std::move(b));
    e->fam = std::unique_ptr<histogram_family>(f);
    families_.emplace(std::string(name), std::move(e));
    return *f;
}

std::string registry::render() const {
    std::string out;
    std::lock_guard lock(mu_);
    for (const auto& [name, e] : families_) {
        if (auto* c = std::get_if<std::unique_ptr<counter_family>>(&e->fam)) {
            const auto& f = **c;
            append_header(out, name, f.help_, "counter");
            f.for_each([&](const std::vector<std::string>& vals, const metrics::counter& m) {
                out.append(name);
                append_labels(out, f.label_names(), vals);
                out.append(" ").append(format_value(m.value())).push_back('\n');
            });
        } else if (auto* g = std::get_if<std::unique_ptr<gauge_family>>(&e->fam)) {
            const auto& f = **g;
            append_header(out, name, f.help_, "gauge");
            f.for_each([&](const std::vector<std::string>& vals, const metrics::gauge& m) {
                out.append(name);
                append_labels(out, f.label_names(), vals);
                out.append(" ").append(format_value(m.value())).push_back('\n');
            });
        } else if (auto* h = std::get_if<std::unique_ptr<histogram_family>>(&e->fam)) {
            const auto& f = **h;
            append_header(out, name, f.help_, "histogram");
            f.for_each([&](const std::vector<std::string>& vals, const metrics::histogram& m) {
                auto s = m.snap();
                for (std::size_t i = 0; i <= s.bounds.size(); ++i) {
                    out.append(name).append("_bucket");
                    std::string le = i < s.bounds.size() ? format_value(s.bounds[i]) : "+Inf";
                    append_labels(out, f.label_names(), vals, "le", le);
                    out.append(" ").append(std::to_string(s.cumulative[i])).push_back('\n');
                }
                out.append(name).append("_sum");
                append_labels(out, f.label_names(), vals);
                out.append(" ").append(format_value(s.sum)).push_back('\n');
                out.append(name).append("_count");
                append_labels(out, f.label_names(), vals);
                out.append(" ").append(std::to_string(s.count)).push_back('\n');
            });
        }
    }
    return out;
}

}  // namespace faasd::metrics
