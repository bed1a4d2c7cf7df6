#include <faasd/core/log.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace faasd {
namespace {

bool needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    for (char c : v)
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return true;
    return false;
}

void append_escaped(std::string& out, std::string_view v, bool always_quote) {
    if (!always_quote && !needs_quotes(v)) {
        out.append(v);
        return;
    }
    out.push_back('"');
    for (char c : v) {
        switch (c) {
            case '"': out.append("\\\""); break;
            case '\\': out.append("\\\\"); break;
            case '\n': out.append("\\n"); break;
            case '\r': out.append("\\r"); break;
            case '\t': out.append("\\t"); break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                    out.append(buf);
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

std::string value_text(const log_field::value_type& v) {
    struct visitor {
        std::string operator()(std::string_view s) const { return std::string(s); }
        std::string operator()(std::int64_t i) const { return std::to_string(i); }
        std::string operator()(bool b) const { return b ? "true" : "false"; }
        std::string operator()(double d) const {
            char buf[32];
            auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::general, 6);
            return std::string(buf, r.ptr);
        }
    };
    return std::visit(visitor{}, v);
}

// Appends a value in JSON syntax.
void append_json_value(std::string& out, const log_field::value_type& v) {
    if (auto s = std::get_if<std::string_view>(&v)) {
        append_escaped(out, *s, true);
    } else {
        out.append(value_text(v));
    }
}

std::string timestamp_now() {
    using namespace std::chrono;
    auto now = system_clock::now();
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::time_t t = system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[128];  // large enough for any int values, so -Wformat-truncation is satisfied
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

}  // namespace

std::optional<log_level> parse_log_level(std::string_view s) noexcept {
    if (s == "trace") return log_level::trace;
    if (s == "debug") return log_level::debug;
    if (s == "info") return log_level::info;
    if (s == "warn") return log_level::warn;
    if (s == "error") return log_level::error;
    if (s == "off") return log_level::off;
    return std::nullopt;
}

std::optional<log_format> parse_log_format(std::string_view s) noexcept {
    if (s == "text") return log_format::text;
    if (s == "json") return log_format::json;
    return std::nullopt;
}

const char* to_string(log_level l) noexcept {
    switch (l) {
        case log_level::trace: return "trace";
        case log_level::debug: return "debug";
        case log_level::info: return "info";
        case log_level::warn: return "warn";
        case log_level::error: return "error";
        case log_level::off: return "off";
    }
    return "?";
}

logger::sink_fn stderr_sink() {
    static std::mutex mu;
    return [](std::string_view line) {
        std::lock_guard lock(mu);
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::fputc('\n', stderr);
        std::fflush(stderr);
    };
}

logger::logger() : logger(log_level::info, log_format::text, stderr_sink()) {}

logger::logger(log_level level, log_format format, sink_fn sink, bool timestamps)
    : level_(level), format_(format), timestamps_(timestamps),
      sink_(std::make_shared<const sink_fn>(std::move(sink))) {}

logger logger::null() { return logger(log_level::off, log_format::text, [](std::string_view) {}); }

logger logger::with(std::initializer_list<log_field> fields) const {
    logger child = *this;
    for (const auto& f : fields) {
        child.context_.push_back(' ');
        child.context_.append(f.key);
        child.context_.push_back('=');
        append_escaped(child.context_, value_text(f.value), false);
        std::string jv;
        append_json_value(jv, f.value);
        child.context_json_.emplace_back(std::string(f.key), std::move(jv));
    }
    return child;
}

std::string logger::format_line(log_level l, std::string_view event, std::initializer_list<log_field> fields) const {
    std::string line;
    line.reserve(128);
    if (format_ == log_format::text) {
        if (timestamps_) {
            line.append("ts=").append(timestamp_now()).push_back(' ');
        }
        line.append("level=").append(to_string(l));
        line.append(context_);
        line.append(" event=");
        append_escaped(line, event, false);
        for (const auto& f : fields) {
            line.push_back(' ');
            line.append(f.key);
            line.push_back('=');
            append_escaped(line, value_text(f.value), false);
        }
    } else {
        line.push_back('{');
        if (timestamps_) line.append("\"ts\":\"").append(timestamp_now()).append("\",");
        line.append("\"level\":\"").append(to_string(l)).append("\"");
        for (const auto& [k, v] : context_json_) {
            line.append(",");
            append_escaped(line, k, true);
            line.append(":").append(v);
        }
        line.append(",\"event\":");
        append_escaped(line, event, true);
        for (const auto& f : fields) {
            line.append(",");
            append_escaped(line, f.key, true);
            line.append(":");
            append_json_value(line, f.value);
        }
        line.push_back('}');
    }
    return line;
}

void logger::log(log_level l, std::string_view event, std::initializer_list<log_field> fields) const {
    if (!enabled(l)) return;
    (*sink_)(format_line(l, event, fields));
}

}  // namespace faasd
