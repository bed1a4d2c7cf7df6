#include <faasd/kafka/consumer.hpp>
#include <faasd/kafka/producer.hpp>

#include "detail/client_core.hpp"

#include <boost/system/system_error.hpp>

#include <cctype>

#include <deque>
#include <unordered_map>

namespace faasd::kafka {

using namespace detail;

namespace {

int clamp_ms(std::chrono::steady_clock::duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return static_cast<int>(std::clamp<std::int64_t>(ms, 0, 3'600'000));
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

std::string durability_violation(const std::map<std::string, std::string>& properties) {
    for (const auto& [k, v] : properties) {
        if ((k == "acks" || k == "request.required.acks") && lower(v) != "all" && v != "-1")
            return k + "=" + v + " would weaken acks=all (a delivered record must be on every in-sync replica)";
        if (k == "enable.idempotence" && lower(v) != "true")
            return k + "=" + v + " would turn off idempotence (retries could duplicate or reorder records)";
    }
    return {};
}

class producer::impl final : public client_core {
public:
    impl(asio::any_io_executor loop, producer_options opts)
        : client_core(loop, opts, "producer"),
          transactional_(!opts.transactional_id.empty()),
          max_backlog_(opts.max_backlog),
          backlog_signal_(loop) {
        if (opts.durable)
            if (auto why = durability_violation(opts.properties); !why.empty())
                throw exception(make_error(errc::invalid_arg, "producer: " + why));
        auto props = base_properties();
        props["enable.idempotence"] = "true";
        props["acks"] = "all";
        props["partitioner"] = "murmur2_random";
        props["linger.ms"] = "5";
        if (transactional_) props["transactional.id"] = opts.transactional_id;
        for (auto& [k, v] : opts.properties) props[k] = v;
        drop_consumer_only(props);
        auto conf = make_conf(props);
        // Delivery reports as events on the main queue (served on the loop),
        // so that flush() on the pool only waits and never serves them.
        rd_kafka_conf_set_events(conf.get(), RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_LOG);
        create(RD_KAFKA_PRODUCER, std::move(conf), 0);
    }

    asio::awaitable<result<delivery>> send(record r) {
        auto self = shared_from_this();  // keep alive across the suspension
        throw_if_fatal();
        if (closing_) co_return make_error(errc::destroy, "producer closed");
        auto id = next_id_++;
        auto slot = std::make_shared<oneshot<result<delivery>>>(loop_);
        if (backlog_.empty()) {
            auto e = enqueue(r, id);
            if (e && e->code == errc::queue_full) {
                if (backlog_.size() >= max_backlog_) co_return *e;
                backlog_.push_back({std::move(r), id});
            } else if (e) {
                if (e->fatal()) throw exception(*e);
                co_return *e;
            }
        } else {
            if (backlog_.size() >= max_backlog_) co_return make_error(errc::queue_full, "producer backlog full");
            backlog_.push_back({std::move(r), id});
        }
        sends_.emplace(id, slot);
        auto v = co_await slot->wait();
        if (!v) throw boost::system::system_error(asio::error::operation_aborted);
        if (!*v && v->error().fatal()) throw exception(v->error());
        co_return std::move(*v);
    }

    void post(record r) {
        if (closing_) {
            post_failed(r, make_error(errc::destroy, "producer closed"));
            return;
        }
        if (backlog_.empty()) {
            auto e = enqueue(r, 0);
            if (!e) return;
            if (e->code != errc::queue_full) {
                post_failed(r, *e);
                return;
            }
        }
        if (backlog_.size() >= max_backlog_) {
            post_failed(r, make_error(errc::queue_full, "producer backlog full, record dropped"));
            return;
        }
        backlog_.push_back({std::move(r), 0});
    }

    asio::awaitable<result<void>> flush(std::chrono::milliseconds timeout) {
        auto self = shared_from_this();
        auto deadline = std::chrono::steady_clock::now() + timeout;
        // First let the backlog drain into librdkafka (the pump does it as
        // delivery reports make room).
        while (!backlog_.empty() && !closed_) {
            if (std::chrono::steady_clock::now() >= deadline) co_return make_error(errc::timed_out, "flush: backlog not drained");
            backlog_signal_.expires_at(deadline);
            co_await wait_signal(backlog_signal_);
        }
        if (closed_) co_return make_error(errc::destroy, "producer closed");
        int ms = clamp_ms(deadline - std::chrono::steady_clock::now());
        auto call = [h = holder(), ms] { return rd_kafka_flush(h->rk, ms); };
        auto err = co_await blocking(std::move(call));
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) co_return rd_error(err, "flush: " + std::to_string(in_flight_) + " record(s) outstanding");
        co_return result<void>{};
    }

    // --- transactions --------------------------------------------------------

    using txn_fn = std::function<rd_kafka_error_t*(rd_kafka_t*, int timeout_ms)>;

    // Runs a blocking transactional call on the pool, retrying retryable
    // errors until the deadline; throws on fatal errors.
    asio::awaitable<result<void>> txn_call(const char* what, std::chrono::milliseconds timeout, txn_fn fn) {
        auto self = shared_from_this();
        throw_if_fatal();
        if (!transactional_) co_return make_error(errc::not_configured, std::string(what) + ": no transactional_id");
        if (closing_) co_return make_error(errc::destroy, "producer closed");
        if (txn_busy_) co_return make_error(errc::state, std::string(what) + ": another transactional call is running");
        txn_busy_ = true;
        struct reset {
            bool& b;
            ~reset() { b = false; }
        } guard{txn_busy_};
        auto deadline = std::chrono::steady_clock::now() + timeout;
        asio::steady_timer backoff(loop_);
        auto delay = std::chrono::milliseconds(50);
        for (int attempt = 1;; ++attempt) {
            int ms = std::max(1, clamp_ms(deadline - std::chrono::steady_clock::now()));
            auto call = [h = holder(), fn, ms] { return rd_error_ptr(fn(h->rk, ms)); };
            auto err = co_await blocking(std::move(call));
            if (!err) co_return result<void>{};
            auto e = rd_error(err.get());
            if (e.fatal()) {
                log_.error("kafka.txn_fatal", {{"call", what}, {"error", e.message()}});
                throw exception(e);
            }
            if (e.retryable() && std::chrono::steady_clock::now() + delay < deadline && !closed_) {
                log_.debug("kafka.txn_retry", {{"call", what}, {"attempt", attempt}, {"error", e.message()}});
                co_await sleep_for(backoff, delay);
                delay = std::min(delay * 2, std::chrono::milliseconds(1000));
                continue;
            }
            log_.warn("kafka.txn_failed", {{"call", what}, {"attempt", attempt}, {"error", e.message()}});
            co_return e;
        }
    }

    result<void> begin_transaction() {
        throw_if_fatal();
        if (!transactional_) return make_error(errc::not_configured, "begin_transaction: no transactional_id");
        if (closing_) return make_error(errc::destroy, "producer closed");
        rd_error_ptr err(rd_kafka_begin_transaction(rk()));
        if (!err) return {};
        auto e = rd_error(err.get());
        if (e.fatal()) throw exception(e);
        return e;
    }

    // --- closing -------------------------------------------------------------

    asio::awaitable<void> close(std::chrono::milliseconds flush_timeout) {
        auto self = shared_from_this();
        if (closing_) co_return;
        closing_ = true;
        if (!closed_ && (in_flight_ > 0 || !backlog_.empty())) {
            auto r = co_await flush(flush_timeout);
            if (!r) log_.warn("kafka.close_flush", {{"error", r.error().message()}});
        }
        fail_outstanding("producer closed");
        co_await shutdown_core();
    }

    void abandon() noexcept {
        closing_ = true;
        fail_outstanding("producer destroyed");
        abandon_core();
    }

    producer_stats stats() const noexcept {
        producer_stats s = stats_;
        s.in_flight = in_flight_;
        s.backlog = backlog_.size();
        return s;
    }

protected:
    void on_event(rd_kafka_event_t* ev) override {
        if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_DR) return;
        while (const rd_kafka_message_t* m = rd_kafka_event_message_next(ev)) {
            auto id = reinterpret_cast<std::uintptr_t>(m->_private);
            if (in_flight_ > 0) --in_flight_;
            result<delivery> res = delivery{};
            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                ++stats_.failed;
                error e = rd_error(m->err, std::string(rd_kafka_topic_name(m->rkt)) + "[" +
                                               std::to_string(m->partition) + "]: " + rd_kafka_err2str(m->err));
                if (transactional_ && e.cls != error_class::fatal) e.cls = error_class::abortable;
                res = e;
            } else {
                ++stats_.delivered;
                rd_kafka_timestamp_type_t tt{};
                res = delivery{rd_kafka_topic_name(m->rkt), m->partition, m->offset, rd_kafka_message_timestamp(m, &tt)};
            }
            if (id == 0) {
                if (!res) {
                    ++stats_.post_failed;
                    std::string key = m->key ? std::string(static_cast<const char*>(m->key), m->key_len) : "";
                    log_.warn("kafka.post_failed", {{"topic", rd_kafka_topic_name(m->rkt)}, {"key", key}, {"error", res.error().message()}});
                }
                continue;
            }
            if (auto it = sends_.find(id); it != sends_.end()) {
                auto slot = std::move(it->second);
                sends_.erase(it);
                slot->set(std::move(res));
            }
        }
    }

    void after_serve() override {
        // Delivery reports made room: move the backlog into librdkafka, in order.
        bool moved = false;
        while (!backlog_.empty()) {
            auto& item = backlog_.front();
            auto e = enqueue(item.r, item.id);
            if (e && e->code == errc::queue_full) break;
            moved = true;
            if (e) fail(item, *e);
            backlog_.pop_front();
        }
        if (moved) backlog_signal_.cancel();
    }

private:
    struct pending {
        record r;
        std::uint64_t id;  // 0: post()
    };

    // Hands a record to librdkafka; nullopt on success.
    std::optional<error> enqueue(const record& r, std::uint64_t id) {
        std::vector<rd_kafka_vu_t> vus;
        vus.reserve(8 + r.headers.size());
        auto add = [&](rd_kafka_vtype_t t) -> rd_kafka_vu_t& {
            vus.emplace_back();
            vus.back().vtype = t;
            return vus.back();
        };
        add(RD_KAFKA_VTYPE_TOPIC).u.cstr = r.topic.c_str();
        if (r.key) {
            auto& v = add(RD_KAFKA_VTYPE_KEY);
            v.u.mem.ptr = const_cast<char*>(r.key->data());
            v.u.mem.size = r.key->size();
        }
        if (r.value) {
            auto& v = add(RD_KAFKA_VTYPE_VALUE);
            // A non-null pointer even for "": an empty value is not a tombstone.
            static char empty = 0;
            v.u.mem.ptr = r.value->empty() ? &empty : const_cast<char*>(r.value->data());
            v.u.mem.size = r.value->size();
        }
        if (r.partition) add(RD_KAFKA_VTYPE_PARTITION).u.i32 = *r.partition;
        if (r.timestamp_ms) add(RD_KAFKA_VTYPE_TIMESTAMP).u.i64 = *r.timestamp_ms;
        for (const auto& h : r.headers) {
            auto& v = add(RD_KAFKA_VTYPE_HEADER);
            v.u.header.name = h.key.c_str();
            v.u.header.val = h.value ? h.value->data() : nullptr;
            v.u.header.size = h.value ? static_cast<ssize_t>(h.value->size()) : -1;
        }
        add(RD_KAFKA_VTYPE_MSGFLAGS).u.i = RD_KAFKA_MSG_F_COPY;
        add(RD_KAFKA_VTYPE_OPAQUE).u.ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(id));
        rd_error_ptr err;
        {
            slow_call_guard slow(log_, "rd_kafka_produceva");
            err.reset(rd_kafka_produceva(rk(), vus.data(), vus.size()));
        }
        if (!err) {
            ++in_flight_;
            return std::nullopt;
        }
        auto e = rd_error(err.get());
        e.detail = r.topic + ": " + e.detail;
        return e;
    }

    void post_failed(const record& r, const error& e) {
        ++stats_.failed;
        ++stats_.post_failed;
        log_.warn("kafka.post_failed", {{"topic", r.topic}, {"key", r.key ? *r.key : std::string()}, {"error", e.message()}});
    }

    void fail(const pending& p, const error& e) {
        if (p.id == 0) {
            post_failed(p.r, e);
            return;
        }
        ++stats_.failed;
        if (auto it = sends_.find(p.id); it != sends_.end()) {
            auto slot = std::move(it->second);
            sends_.erase(it);
            slot->set(e);
        }
    }

    void fail_outstanding(const char* why) {
        auto backlog = std::move(backlog_);
        backlog_.clear();
        for (auto& p : backlog) fail(p, make_error(errc::destroy, why));
        auto sends = std::move(sends_);
        sends_.clear();
        for (auto& [id, slot] : sends) slot->set(make_error(errc::destroy, why));
        backlog_signal_.cancel();
    }

    bool transactional_;
    std::size_t max_backlog_;
    bool closing_ = false;
    bool txn_busy_ = false;
    std::uint64_t next_id_ = 1;
    std::size_t in_flight_ = 0;
    producer_stats stats_;
    std::unordered_map<std::uint64_t, std::shared_ptr<oneshot<result<delivery>>>> sends_;
    std::deque<pending> backlog_;
    asio::steady_timer backlog_signal_;

    friend class producer;
};

// --- producer ------------------------------------------------------------------

producer::producer(asio::any_io_executor loop, producer_options opts)
    : impl_(std::make_shared<impl>(std::move(loop), std::move(opts))) {
    impl_->start();
}

producer::~producer() {
    if (impl_) impl_->abandon();
}

producer::producer(producer&&) noexcept = default;
producer& producer::operator=(producer&& o) noexcept {
    if (this != &o) {
        if (impl_) impl_->abandon();
        impl_ = std::move(o.impl_);
    }
    return *this;
}

asio::awaitable<result<delivery>> producer::send(record r) { return impl_->send(std::move(r)); }
void producer::post(record r) { impl_->post(std::move(r)); }
asio::awaitable<result<void>> producer::flush(std::chrono::milliseconds timeout) { return impl_->flush(timeout); }

asio::awaitable<result<void>> producer::init_transactions(std::chrono::milliseconds timeout) {
    return impl_->txn_call("init_transactions", timeout,
                           [](rd_kafka_t* rk, int ms) { return rd_kafka_init_transactions(rk, ms); });
}

result<void> producer::begin_transaction() { return impl_->begin_transaction(); }

asio::awaitable<result<void>> producer::send_offsets_to_transaction(std::vector<topic_partition> offsets,
                                                                    const consumer& source,
                                                                    std::chrono::milliseconds timeout) {
    auto md = source.group_metadata();
    std::shared_ptr<rd_kafka_topic_partition_list_t> list(to_rd_list(offsets).release(), tpl_deleter{});
    return impl_->txn_call("send_offsets_to_transaction", timeout, [md, list](rd_kafka_t* rk, int ms) {
        return rd_kafka_send_offsets_to_transaction(rk, list.get(), md.get(), ms);
    });
}

asio::awaitable<result<void>> producer::commit_transaction(std::chrono::milliseconds timeout) {
    return impl_->txn_call("commit_transaction", timeout,
                           [](rd_kafka_t* rk, int ms) { return rd_kafka_commit_transaction(rk, ms); });
}

asio::awaitable<result<void>> producer::abort_transaction(std::chrono::milliseconds timeout) {
    return impl_->txn_call("abort_transaction", timeout,
                           [](rd_kafka_t* rk, int ms) { return rd_kafka_abort_transaction(rk, ms); });
}

asio::awaitable<void> producer::close(std::chrono::milliseconds flush_timeout) { return impl_->close(flush_timeout); }

producer_stats producer::stats() const noexcept { return impl_->stats(); }
bool producer::ready() const noexcept { return impl_->ready(); }
std::string producer::name() const { return impl_->name(); }

}  // namespace faasd::kafka
