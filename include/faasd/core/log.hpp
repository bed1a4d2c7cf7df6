#pragma once
// Structured logging (STYLE.md section 7): the logger is a value holding a
// level, a format, context fields and a sink. One line per event:
//
//   ts=2026-11-27T17:20:35.123Z level=info role=worker event=job.started job=01J... attempt=1
//
// or the same as one JSON object per line. Never pass tokens, credentials or
// request bodies as fields: nothing here can tell a secret from a job id.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace faasd {

enum class log_level { trace, debug, info, warn, error, off };
enum class log_format { text, json };

/// Parses "trace|debug|info|warn|error|off" (case-sensitive).
std::optional<log_level> parse_log_level(std::string_view s) noexcept;
std::optional<log_format> parse_log_format(std::string_view s) noexcept;
const char* to_string(log_level l) noexcept;

/// One key=value pair. Values are copied into the line when it is formatted.
struct log_field {
    using value_type = std::variant<std::string_view, std::int64_t, double, bool>;

    std::string_view key;
    value_type value;

    log_field(std::string_view k, std::string_view v) : key(k), value(v) {}
    log_field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
    log_field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
    log_field(std::string_view k, bool v) : key(k), value(v) {}
    log_field(std::string_view k, double v) : key(k), value(v) {}
    template <class I>
        requires(std::is_integral_v<I> && !std::is_same_v<I, bool>)
    log_field(std::string_view k, I v) : key(k), value(static_cast<std::int64_t>(v)) {}
};

/// A copyable logging handle. Thread-safe as long as the sink is.
class logger {
public:
    using sink_fn = std::function<void(std::string_view line)>;

    /// Logs at info level, text format, to stderr.
    logger();
    logger(log_level level, log_format format, sink_fn sink, bool timestamps = true);

    /// A logger that discards everything (for tests that do not look at logs).
    static logger null();

    /// A child logger that adds the given fields to every line (e.g. role=worker).
    logger with(std::initializer_list<log_field> fields) const;

    bool enabled(log_level l) const noexcept { return l >= level_ && level_ != log_level::off; }
    log_level level() const noexcept { return level_; }

    void log(log_level l, std::string_view event, std::initializer_list<log_field> fields = {}) const;
    void trace(std::string_view event, std::initializer_list<log_field> f = {}) const { log(log_level::trace, event, f); }
    void debug(std::string_view event, std::initializer_list<log_field> f = {}) const { log(log_level::debug, event, f); }
    void info(std::string_view event, std::initializer_list<log_field> f = {}) const { log(log_level::info, event, f); }
    void warn(std::string_view event, std::initializer_list<log_field> f = {}) const { log(log_level::warn, event, f); }
    void error(std::string_view event, std::initializer_list<log_field> f = {}) const { log(log_level::error, event, f); }

    /// Formats one line without emitting it (exposed for tests).
    std::string format_line(log_level l, std::string_view event, std::initializer_list<log_field> fields) const;

private:
    log_level level_;
    log_format format_;
    bool timestamps_;
    std::shared_ptr<const sink_fn> sink_;
    std::string context_;  // pre-formatted context fields
    std::vector<std::pair<std::string, std::string>> context_json_;
};

/// A sink that writes whole lines to stderr under a mutex.
logger::sink_fn stderr_sink();

}  // namespace faasd
