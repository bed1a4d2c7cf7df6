#include <faasd/frontend/retention.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <string>
#include <vector>

namespace faasd::frontend {
namespace asio = boost::asio;
using asio::awaitable;

awaitable<result<void>> erase_job(frontend_app& app, const jobs::job_status& s, unix_ms now) {
    auto& svc = app.svc();
    auto marker = marker_for(s, now, app.settings().idempotency_window);
    auto r = co_await svc.publisher.erase(s.id, marker ? &*marker : nullptr);
    if (!r) co_return r;
    svc.store.erase(s.id, std::move(marker));
    co_return result<void>{};
}

namespace {

// One sweep's outcomes across its concurrent erasures, and how many still run.
struct sweep_tally {
    sweep_result r;
    std::size_t in_flight = 0;
};

// Decrements the tally's in-flight count however the task ends.
struct flight_end {
    std::shared_ptr<sweep_tally> t;
    ~flight_end() { --t->in_flight; }
};

awaitable<void> erase_counted(frontend_app& app, jobs::job_status s, unix_ms now, std::shared_ptr<sweep_tally> t) {
    flight_end end{t};
    // Still there and still expired? (A reader may have erased it meanwhile.)
    auto current = app.svc().store.view().get(s.id);
    if (!current || !retention_expired(*current, now, app.settings().finished_retention)) co_return;
    auto r = co_await erase_job(app, *current, now);
    if (r) ++t->r.erased;
    else ++t->r.failed;
}

awaitable<void> tombstone_counted(frontend_app& app, std::string id, std::shared_ptr<sweep_tally> t) {
    flight_end end{t};
    auto r = co_await app.svc().publisher.erase(id, nullptr);
    if (!r) {
        ++t->r.failed;
        co_return;
    }
    app.svc().store.erase(id);
    ++t->r.markers_tombstoned;
}

}  // namespace

awaitable<sweep_result> sweep_once(frontend_app& app, unix_ms now, std::size_t page, std::size_t concurrency) {
    auto ex = co_await asio::this_coro::executor;
    auto& store = app.svc().store;
    const auto& set = app.settings();
    auto tally = std::make_shared<sweep_tally>();
    if (concurrency == 0) concurrency = 1;
    // Before each erasure: wait for a free slot, then take it.
    auto throttle = [&]() -> awaitable<void> {
        co_await app.wait_background([&] { return tally->in_flight < concurrency; }, std::chrono::minutes(1));
        ++tally->in_flight;
    };

    // 1. Markers whose idempotency window has passed.
    std::vector<std::string> due;
    for (const auto& [id, m] : store.markers())
        if (marker_expired(m, now, set.idempotency_window)) due.push_back(id);
    for (auto& id : due) {
        co_await throttle();
        app.spawn(tombstone_counted(app, std::move(id), tally));
    }

    // 2. Finished jobs past their retention, owner by owner, a page at a time.
    std::vector<std::string> owners(store.owners().begin(), store.owners().end());
    for (const auto& owner : owners) {
        std::string cursor;
        bool any = false;
        do {
            auto p = store.view().list(owner, std::nullopt, page, cursor);
            any = any || !p.items.empty();
            tally->r.scanned += p.items.size();
            cursor = std::move(p.next_cursor);
            for (auto& s : p.items) {
                if (!retention_expired(s, now, set.finished_retention)) continue;
                co_await throttle();
                app.spawn(erase_counted(app, std::move(s), now, tally));
            }
            co_await asio::post(ex, asio::use_awaitable);  // let requests in between pages
        } while (!cursor.empty());
        if (!any) store.forget_owner(owner);
    }
    co_await app.wait_background([&] { return tally->in_flight == 0; }, std::chrono::minutes(1));
    co_return tally->r;
}

}  // namespace faasd::frontend
