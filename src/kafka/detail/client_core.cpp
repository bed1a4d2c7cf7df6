#include "detail/client_core.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <cstring>
#include <exception>

namespace faasd::kafka::detail {

void spawn_logged(const asio::any_io_executor& ex, asio::awaitable<void> task, faasd::logger log, const char* what) {
    asio::co_spawn(ex, std::move(task), [log = std::move(log), what](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const boost::system::system_error& se) {
            if (se.code() == asio::error::operation_aborted) return;
            log.error("kafka.task_failed", {{"task", what}, {"error", se.what()}});
        } catch (const std::exception& other) {
            log.error("kafka.task_failed", {{"task", what}, {"error", other.what()}});
        }
    });
}

client_core::client_core(asio::any_io_executor loop, const client_options& opts, const char* kind)
    : loop_(std::move(loop)),
      blocking_ex_(opts.blocking_executor ? opts.blocking_executor : default_blocking_executor()),
      opts_(opts),
      log_(opts.log),
      kind_(kind),
      monitor_timer_(loop_) {
    opts_.properties.clear();  // consumed by the subclass when it builds the configuration
}

client_core::~client_core() {
    // Normally shutdown_core()/abandon_core() ran; this is the last resort
    // (e.g. the io_context was destroyed with our coroutines suspended).
    if (main_q_) main_q_->shutdown();
    if (holder_) {
        try {
            asio::post(blocking_ex_, [h = std::move(holder_)] {});
        } catch (...) {
        }
    }
}

std::map<std::string, std::string> client_core::base_properties() const {
    if (opts_.brokers.empty()) throw exception(make_error(errc::invalid_arg, "no Kafka brokers configured"));
    return {
        {"bootstrap.servers", opts_.brokers},
        {"client.id", opts_.client_id.empty() ? std::string("faasd") : opts_.client_id},
        // Logs are queued and served by our main-queue pump, on the loop thread.
        {"log.queue", "true"},
        {"log_level", opts_.log.enabled(log_level::debug) ? "7" : "6"},
    };
}

void client_core::create(rd_kafka_type_t type, conf_ptr conf, int destroy_flags) {
    rd_kafka_conf_set_opaque(conf.get(), this);
    char value[16];
    std::size_t size = sizeof value;
    bool log_queue = rd_kafka_conf_get(conf.get(), "log.queue", value, &size) == RD_KAFKA_CONF_OK &&
                     std::strcmp(value, "true") == 0;
    char errstr[512];
    rd_kafka_t* rk = nullptr;
    {
        slow_call_guard slow(log_, "rd_kafka_new");
        rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
    }
    if (rk == nullptr) throw exception(make_error(errc::invalid_arg, errstr));
    conf.release();  // owned by rk now
    holder_ = std::make_shared<rk_holder>(rk, destroy_flags);
    log_ = opts_.log.with({{"kafka", rd_kafka_name(rk)}});
    // Logs go to the main queue (NULL), which the pump serves. (With
    // log.queue=false, overridden for debugging, librdkafka prints to stderr.)
    if (log_queue) {
        if (auto err = rd_kafka_set_log_queue(rk, nullptr); err != RD_KAFKA_RESP_ERR_NO_ERROR)
            throw exception(rd_error(err, "rd_kafka_set_log_queue"));
    }
    main_q_ = std::make_unique<queue_watcher>(loop_, rd_kafka_queue_get_main(rk));
}

void client_core::start() {
    set_ready(false, "connecting");
    auto self = shared_from_this();
    spawn_logged(loop_, pump(), log_, "kafka.pump");
    spawn_logged(loop_, monitor(), log_, "kafka.monitor");
}

std::string client_core::name() const { return rk() ? rd_kafka_name(rk()) : std::string(kind_); }

void client_core::throw_if_fatal() const {
    if (fatal_) throw exception(fatal_error_);
}

std::pair<std::uint64_t, std::shared_ptr<oneshot<event_ptr>>> client_core::new_request() {
    auto id = next_request_++;
    auto slot = std::make_shared<oneshot<event_ptr>>(loop_);
    if (closed_)
        slot->set(nullptr);
    else
        requests_.emplace(id, slot);
    return {id, std::move(slot)};
}

asio::awaitable<event_ptr> client_core::wait_request(std::shared_ptr<oneshot<event_ptr>> slot) {
    auto v = co_await slot->wait();
    if (!v) throw boost::system::system_error(asio::error::operation_aborted);
    co_return std::move(*v);
}

void client_core::on_event(rd_kafka_event_t*) {}

bool client_core::serve_main() {
    if (!main_q_ || main_q_->get() == nullptr) return false;
    // A bounded batch keeps the loop fair to other coroutines.
    slow_call_guard guard(log_, "serve_main");
    for (int n = 0; n < 2000; ++n) {
        rd_kafka_event_t* ev = rd_kafka_queue_poll(main_q_->get(), 0);
        if (ev == nullptr) {
            after_serve();
            return false;
        }
        dispatch(ev);
        if (closed_) return false;
    }
    after_serve();
    return true;
}

void client_core::dispatch(rd_kafka_event_t* raw) {
    event_ptr ev(raw);
    switch (rd_kafka_event_type(raw)) {
        case RD_KAFKA_EVENT_LOG: {
            const char* fac = "";
            const char* str = "";
            int level = 6;
            if (rd_kafka_event_log(raw, &fac, &str, &level) == 0) handle_log(level, fac, str);
            return;
        }
        case RD_KAFKA_EVENT_ERROR:
            handle_error(rd_kafka_event_error(raw), rd_kafka_event_error_string(raw), rd_kafka_event_error_is_fatal(raw) != 0);
            return;
        case RD_KAFKA_EVENT_DR:
            on_event(raw);
            return;
        default: break;
    }
    auto id = reinterpret_cast<std::uintptr_t>(rd_kafka_event_opaque(raw));
    if (id != 0) {
        if (auto it = requests_.find(id); it != requests_.end()) {
            auto slot = std::move(it->second);
            requests_.erase(it);
            slot->set(std::move(ev));
            return;
        }
    }
    on_event(raw);
}

void client_core::handle_log(int level, const char* fac, const char* msg) {
    log_level l = level <= 3 ? log_level::error : level == 4 ? log_level::warn : level <= 6 ? log_level::info : log_level::debug;
    // Connection failures and disconnects are reported through readiness
    // (kafka.unreachable / kafka.brokers_down); librdkafka repeats them on
    // every reconnect attempt, so they are debug noise here.
    if (std::strcmp(fac, "FAIL") == 0 || std::strcmp(fac, "ERROR") == 0 || std::strcmp(fac, "BROKERFAIL") == 0)
        l = log_level::debug;
    log_.log(l, "kafka.log", {{"fac", fac}, {"msg", msg}});
}

void client_core::handle_error(rd_kafka_resp_err_t err, const char* reason, bool fatal) {
    if (fatal || err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512] = {0};
        rd_kafka_resp_err_t ferr = rk() ? rd_kafka_fatal_error(rk(), buf, sizeof buf) : RD_KAFKA_RESP_ERR_NO_ERROR;
        error e = rd_error(ferr != RD_KAFKA_RESP_ERR_NO_ERROR ? ferr : err, buf[0] ? buf : reason);
        e.cls = error_class::fatal;
        if (!fatal_) log_.error("kafka.fatal", {{"error", error_name(e.code)}, {"detail", e.detail}});
        fatal_ = true;
        fatal_error_ = e;
        set_ready(false, "fatal: " + e.detail);
        return;
    }
    switch (err) {
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
            if (ready_) log_.warn("kafka.brokers_down", {{"brokers", opts_.brokers}, {"detail", reason}});
            set_ready(false, reason);
            report_trouble();
            break;
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__RESOLVE:
            log_.debug("kafka.transport", {{"detail", reason}});
            break;
        default:
            log_.warn("kafka.error", {{"error", rd_kafka_err2name(err)}, {"detail", reason}});
    }
}

void client_core::set_ready(bool ready, std::string_view detail) {
    if (ready_reported_ && ready == ready_) return;
    ready_ = ready;
    ready_reported_ = true;
    if (opts_.on_readiness) opts_.on_readiness(ready, detail);
}

void client_core::report_trouble() {
    trouble_ = true;
    monitor_timer_.cancel();
}

asio::awaitable<void> client_core::pump() {
    auto self = shared_from_this();
    while (!closed_) {
        if (serve_main()) {
            co_await asio::post(loop_, asio::use_awaitable);  // more queued: yield, then continue
            continue;
        }
        if (closed_) break;
        try {
            co_await main_q_->wait();
        } catch (const boost::system::system_error& e) {
            if (closed_ || e.code() == asio::error::operation_aborted) break;
            throw;
        }
    }
}

asio::awaitable<void> client_core::monitor() {
    auto self = shared_from_this();
    int failures = 0;
    while (!closed_) {
        trouble_ = false;
        auto probe = [h = holder_, t = opts_.probe_timeout] { return blocking_brokers(h->rk, t); };
        auto r = co_await blocking(std::move(probe));
        if (closed_) break;
        if (r && !r->empty()) {
            if (failures > 0) log_.info("kafka.reachable", {{"brokers", static_cast<std::int64_t>(r->size())}});
            failures = 0;
            set_ready(true, std::to_string(r->size()) + " broker(s)");
            if (!trouble_) {
                monitor_timer_.expires_at(asio::steady_timer::time_point::max());
                if (!co_await wait_signal(monitor_timer_)) break;
            }
            continue;
        }
        ++failures;
        error e = r ? make_error(errc::all_brokers_down, "no brokers in metadata") : r.error();
        set_ready(false, e.message());
        auto delay = opts_.reconnect.delay(failures);
        log_.warn("kafka.unreachable", {{"brokers", opts_.brokers},
                                        {"attempt", failures},
                                        {"error", e.message()},
                                        {"retry_in_ms", static_cast<std::int64_t>(delay.count())}});
        if (!co_await sleep_for(monitor_timer_, delay) && closed_) break;
    }
}

void client_core::stop_loop_side() noexcept {
    slow_call_guard slow(log_, "stop_loop_side");
    closed_ = true;
    monitor_timer_.cancel();
    if (main_q_) {
        main_q_->cancel();
        main_q_->shutdown();
    }
    auto reqs = std::move(requests_);
    requests_.clear();
    for (auto& [id, slot] : reqs) slot->set(nullptr);
}

asio::awaitable<void> client_core::shutdown_core() {
    if (!holder_) co_return;
    stop_loop_side();
    auto h = std::move(holder_);
    auto call = [h = std::move(h)]() mutable { h.reset(); };
    co_await blocking(std::move(call));
}

void client_core::abandon_core() noexcept {
    if (!holder_) return;
    stop_loop_side();
    try {
        asio::post(blocking_ex_, [h = std::move(holder_)] {});
    } catch (...) {
    }
}

}  // namespace faasd::kafka::detail
