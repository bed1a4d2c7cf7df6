#pragma once
// Helpers shared by the Kafka adapter tests (unit and integration).

#include <faasd/core/log.hpp>
#include <faasd/kafka/kafka.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
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
        }, /*timestamps=*/echo);
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

/// This thread's time on a CPU and time runnable but waiting for one
/// (/proc/thread-self/schedstat), in ns; {-1, -1} if unavailable.
struct sched_times {
    std::int64_t on_cpu = -1;
    std::int64_t waiting = -1;
};
inline sched_times thread_sched_times() {
    std::FILE* f = std::fopen("/proc/thread-self/schedstat", "r");
    if (!f) return {};
    long long on_cpu = 0, waiting = 0;
    int n = std::fscanf(f, "%lld %lld", &on_cpu, &waiting);
    std::fclose(f);
    return n == 2 ? sched_times{on_cpu, waiting} : sched_times{};
}

/// Measures how late a 10 ms periodic timer fires on the loop (responsiveness).
/// Besides the raw lateness it reports the lateness *not* explained by the
/// loop thread waiting for a CPU (run-queue delay from schedstat): on an
/// oversubscribed machine the raw figure measures the machine, the other one
/// measures whether the loop blocked or computed for too long.
class lateness_probe {
public:
    explicit lateness_probe(boost::asio::any_io_executor ex) : timer_(ex) {}
    void start() {
        running_ = true;
        next_ = std::chrono::steady_clock::now() + period_;
        last_ = thread_sched_times();
        arm();
    }
    void stop() {
        running_ = false;
        timer_.cancel();
    }
    std::chrono::milliseconds max_lateness() const { return std::chrono::duration_cast<std::chrono::milliseconds>(max_); }
    /// The largest lateness minus the CPU wait of the loop thread during it.
    std::chrono::milliseconds max_unexplained() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(max_unexplained_);
    }
    bool schedstat_available() const { return last_.waiting >= 0; }
    /// For the tick with the largest unexplained lateness: how much of the
    /// interval since the previous tick the loop thread ran, and waited.
    std::chrono::milliseconds worst_on_cpu() const { return std::chrono::duration_cast<std::chrono::milliseconds>(worst_cpu_); }
    std::chrono::milliseconds worst_waiting() const { return std::chrono::duration_cast<std::chrono::milliseconds>(worst_wait_); }
    /// When the worst tick was due.
    std::chrono::steady_clock::time_point max_at() const { return max_at_; }
    long ticks() const { return ticks_; }
    /// Ticks more than 50 ms late.
    long late_ticks() const { return late_; }

private:
    void arm() {
        timer_.expires_at(next_);
        timer_.async_wait([this](boost::system::error_code ec) {
            if (ec || !running_) return;
            auto now = std::chrono::steady_clock::now();
            auto late = now - next_;
            auto st = thread_sched_times();
            bool valid = last_.waiting >= 0 && st.waiting >= 0;
            auto waited = std::chrono::nanoseconds(valid ? st.waiting - last_.waiting : 0);
            auto ran = std::chrono::nanoseconds(valid ? st.on_cpu - last_.on_cpu : 0);
            last_ = st;
            if (late > max_) {
                max_ = late;
                max_at_ = next_;
            }
            if (late - waited > max_unexplained_) {
                max_unexplained_ = late - waited;
                worst_cpu_ = ran;
                worst_wait_ = waited;
            }
            if (late > std::chrono::milliseconds(50)) ++late_;
            ++ticks_;
            next_ += period_;
            if (next_ < now) next_ = now + period_;
            arm();
        });
    }

    boost::asio::steady_timer timer_;
    std::chrono::steady_clock::time_point next_;
    std::chrono::steady_clock::duration period_ = std::chrono::milliseconds(10);
    std::chrono::steady_clock::duration max_{};
    std::chrono::steady_clock::duration max_unexplained_{};
    std::chrono::steady_clock::time_point max_at_{};
    sched_times last_{};
    std::chrono::steady_clock::duration worst_cpu_{};
    std::chrono::steady_clock::duration worst_wait_{};
    long ticks_ = 0;
    long late_ = 0;
    bool running_ = false;
};

/// The same probe on its own thread and io_context, doing nothing else: how
/// late timers fire on this machine anyway (CPU starvation, not our loop).
class control_probe {
public:
    control_probe() : probe_(ioc_.get_executor()) {
        probe_.start();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~control_probe() { stop(); }
    void stop() {
        if (!thread_.joinable()) return;
        boost::asio::post(ioc_, [this] { probe_.stop(); });
        thread_.join();
    }
    const lateness_probe& probe() const { return probe_; }

private:
    boost::asio::io_context ioc_;
    lateness_probe probe_;
    std::thread thread_;
};

inline boost::asio::awaitable<void> sleep(std::chrono::milliseconds d) {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
    co_await t.async_wait(boost::asio::use_awaitable);
}

}  // namespace faasd::kafka::testing
