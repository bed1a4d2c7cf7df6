#pragma once
// Runs a blocking function on a thread pool and completes on the initiator's
// executor (STYLE.md section 4, after asio's operations/callback_wrapper.cpp).
// The handler's cancellation slot, if connected, sets an atomic flag that the
// function polls (libgit2 callbacks return a negative value once it is set).

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>

namespace faasd::git::detail {

template <class R, class Token>
auto async_on_pool(boost::asio::thread_pool& pool, const std::function<R(const std::atomic<bool>&)>& fn, Token&& token) {
    namespace asio = boost::asio;
    return asio::async_initiate<Token, void(std::exception_ptr, R)>(
        [&pool](auto handler, std::function<R(const std::atomic<bool>&)> f) {
            auto flag = std::make_shared<std::atomic<bool>>(false);
            auto slot = asio::get_associated_cancellation_slot(handler);
            if (slot.is_connected())
                slot.assign([flag](asio::cancellation_type) { flag->store(true, std::memory_order_relaxed); });
            auto work = asio::make_work_guard(asio::get_associated_executor(handler));
            asio::post(pool, [h = std::move(handler), f = std::move(f), flag, work = std::move(work)]() mutable {
                std::exception_ptr ep;
                R r{};
                try {
                    r = f(*flag);
                } catch (...) {
                    ep = std::current_exception();
                }
                auto ex = work.get_executor();
                asio::dispatch(ex, [h = std::move(h), ep, r = std::move(r), w = std::move(work)]() mutable {
                    asio::get_associated_cancellation_slot(h).clear();
                    std::move(h)(ep, std::move(r));
                });
            });
        },
        token, fn);
}

}  // namespace faasd::git::detail
