#pragma once
// Helpers shared by the Kafka adapter tests (unit and integration).

#include <faasd/core/log.hpp>
#include <faasd/kafka/kafka.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

/// REQUIRE(co_await x) trips GCC 12 (a Catch2 assertion keeps array-typed
/// temporaries alive across the co_await); await first, then assert.
#define CO_REQUIRE(...)                          \
    do {                                         \
        auto&& faasd_co_value_ = (__VA_ARGS__);  \
        REQUIRE(::faasd::kafka::testing::ok(faasd_co_value_)); \
    } while (false)

namespace faasd::kafka::testing {

/// True if the result holds a value; otherwise records the error for the
/// failure message (Catch cannot print every result<T>).
template <class R>
bool ok(const R& r) {
    if (r) return true;
    UNSCOPED_INFO("kafka error: " << r.error().message());
    return false;
}

/// Captures log lines (thread-safe) for assertions.
class log_capture {
public:
    /// FAASD_TEST_LOG=1 echoes the captured lines to stderr.
    faasd::logger logger(log_level level = log_level::debug, bool echo = std::getenv("FAASD_TEST_LOG") != nullptr) const {
        auto st = state_;
        return faasd::logger(level, log_format::text, [st, echo](std::string_view line) {
            std::lock_guard lock(st->mu);
            st->lines.emplace_back(line);
            if (echo) std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
        }, false);
    }
    int count(std::string_view needle) const {
        std::lock_guard lock(state_->mu);
        return static_cast<int>(std::count_if(state_->lines.begin(), state_->lines.end(),
                                              [&](const std::string& l) { return l.find(needle) != std::string::npos; }));
    }
    std::string dump(std::string_view needle = {}) const {
        std::lock_guard lock(state_->mu);
        std::string out;
        for (const auto& l : state_->lines)
            if (needle.empty() || l.find(needle) != std::string::npos) out += l + "\n";
        return out;
    }

private:
    struct state {
        std::mutex mu;
        std::vector<std::string> lines;
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

/// Polls until `n` messages were received or `timeout` passed.
inline boost::asio::awaitable<std::vector<message>> poll_n(consumer& c, std::size_t n, std::chrono::milliseconds timeout) {
    std::vector<message> out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) break;
        auto batch = co_await c.poll(256, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
        for (auto& m : batch) out.push_back(std::move(m));
    }
    co_return out;
}

/// Polls for `d`, returning whatever arrived.
inline boost::asio::awaitable<std::vector<message>> poll_for(consumer& c, std::chrono::milliseconds d) {
    std::vector<message> out;
    auto deadline = std::chrono::steady_clock::now() + d;
    while (true) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) break;
        auto batch = co_await c.poll(256, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
        for (auto& m : batch) out.push_back(std::move(m));
    }
    co_return out;
}

/// Measures how late a 10 ms periodic timer fires on the loop (responsiveness).
class lateness_probe {
public:
    explicit lateness_probe(boost::asio::any_io_executor ex) : timer_(ex) {}
    void start() {
        running_ = true;
        next_ = std::chrono::steady_clock::now() + period_;
        arm();
    }
    void stop() {
        running_ = false;
        timer_.cancel();
    }
    std::chrono::milliseconds max_lateness() const { return std::chrono::duration_cast<std::chrono::milliseconds>(max_); }
    long ticks() const { return ticks_; }

private:
    void arm() {
        timer_.expires_at(next_);
        timer_.async_wait([this](boost::system::error_code ec) {
            if (ec || !running_) return;
            auto late = std::chrono::steady_clock::now() - next_;
            max_ = std::max(max_, late);
            ++ticks_;
            next_ += period_;
            if (next_ < std::chrono::steady_clock::now()) next_ = std::chrono::steady_clock::now() + period_;
            arm();
        });
    }

    boost::asio::steady_timer timer_;
    std::chrono::steady_clock::time_point next_;
    std::chrono::steady_clock::duration period_ = std::chrono::milliseconds(10);
    std::chrono::steady_clock::duration max_{};
    long ticks_ = 0;
    bool running_ = false;
};

inline boost::asio::awaitable<void> sleep(std::chrono::milliseconds d) {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
    co_await t.async_wait(boost::asio::use_awaitable);
}

}  // namespace faasd::kafka::testing
