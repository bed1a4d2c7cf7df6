#include <faasd/kafka/consumer.hpp>

#include "detail/client_core.hpp"

#include <faasd/core/id.hpp>

#include <boost/system/system_error.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>

namespace faasd::kafka {

using namespace detail;

namespace {

using partition_key = std::pair<std::string, std::int32_t>;

std::chrono::milliseconds read_max_poll_interval(rd_kafka_conf_t* conf) {
    char buf[64];
    std::size_t size = sizeof buf;
    if (rd_kafka_conf_get(conf, "max.poll.interval.ms", buf, &size) == RD_KAFKA_CONF_OK) {
        try {
            return std::chrono::milliseconds(std::stoll(buf));
        } catch (...) {
        }
    }
    return std::chrono::milliseconds(300000);
}

}  // namespace

class consumer::impl final : public client_core {
public:
    impl(asio::any_io_executor loop, consumer_options opts)
        : client_core(loop, opts, "consumer"),
          on_assigned_(std::move(opts.on_assigned)),
          on_revoked_(std::move(opts.on_revoked)) {
        group_id_ = opts.group_id;
        assign_only_ = group_id_.empty();
        // librdkafka 2.0.2 refuses assign() without a group.id; an assign-only
        // consumer gets a private id it never joins (no subscribe, no commits).
        if (assign_only_) group_id_ = (opts.client_id.empty() ? std::string("faasd") : opts.client_id) + ".assign." + random_hex(6);
        auto props = base_properties();
        props["group.id"] = group_id_;
        props["enable.auto.commit"] = "false";
        props["enable.auto.offset.store"] = "false";
        props["isolation.level"] = opts.read_committed ? "read_committed" : "read_uncommitted";
        props["auto.offset.reset"] = opts.auto_offset_reset;
        props["partition.assignment.strategy"] = "cooperative-sticky";
        props["enable.partition.eof"] = "true";
        for (auto& [k, v] : opts.properties) props[k] = v;
        auto conf = make_conf(props);
        // Errors and logs come as events on the main queue (not forwarded to
        // the consumer queue), served by the pump whether or not poll() runs.
        rd_kafka_conf_set_events(conf.get(), RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_LOG);
        rd_kafka_conf_set_rebalance_cb(conf.get(), &impl::rebalance_trampoline);
        auto max_poll = read_max_poll_interval(conf.get());
        keepalive_ = std::clamp(max_poll / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(5000));
        create(RD_KAFKA_CONSUMER, std::move(conf), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        cq_ = std::make_unique<queue_watcher>(loop_, rd_kafka_queue_get_consumer(rk()));
    }

    // --- assignment ------------------------------------------------------------

    result<void> subscribe(const std::vector<std::string>& topics) {
        check_open();
        if (assign_only_) return make_error(errc::invalid_arg, "subscribe needs a group_id");
        tpl_ptr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
        for (const auto& t : topics) rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
        slow_call_guard slow(log_, "rd_kafka_subscribe");
        if (auto err = rd_kafka_subscribe(rk(), list.get())) return rd_error(err, "subscribe");
        log_.info("kafka.subscribed", {{"group", group_id_}, {"topics", static_cast<std::int64_t>(topics.size())}});
        return {};
    }

    result<void> assign(const std::vector<topic_partition>& parts) {
        check_open();
        auto list = to_rd_list(parts);
        slow_call_guard slow(log_, "rd_kafka_assign");
        if (auto err = rd_kafka_assign(rk(), parts.empty() ? nullptr : list.get())) return rd_error(err, "assign");
        eof_.clear();
        for (const auto& p : parts) eof_[{p.topic, p.partition}] = false;
        caught_up_ = false;
        log_.info("kafka.assigned", {{"partitions", describe(parts)}, {"mode", "manual"}});
        return {};
    }

    asio::awaitable<result<void>> assign_topics(std::vector<std::string> topics, std::int64_t start) {
        auto self = shared_from_this();
        check_open();
        auto call = [h = holder(), topics, t = opts_.probe_timeout * 3] {
            return blocking_topic_metadata(h->rk, topics, t);
        };
        auto md = co_await blocking(std::move(call));
        if (!md) co_return md.error();
        std::vector<topic_partition> parts;
        for (const auto& t : topics) {
            auto it = std::find_if(md->begin(), md->end(), [&](auto& m) { return m.name == t; });
            if (it == md->end() || it->partitions.empty()) co_return make_error(errc::unknown_topic, "no such topic: " + t);
            for (const auto& p : it->partitions) parts.push_back({t, p.id, start});
        }
        co_return assign(parts);
    }

    result<void> pause_resume(const std::vector<topic_partition>& parts, bool pause) {
        check_open();
        if (parts.empty()) return {};
        auto list = to_rd_list(parts);
        auto err = pause ? rd_kafka_pause_partitions(rk(), list.get()) : rd_kafka_resume_partitions(rk(), list.get());
        if (err) return rd_error(err, pause ? "pause" : "resume");
        for (int i = 0; i < list->cnt; ++i)
            if (list->elems[i].err)
                return rd_error(list->elems[i].err, std::string(pause ? "pause " : "resume ") + list->elems[i].topic);
        return {};
    }

    std::vector<topic_partition> assignment() const {
        rd_kafka_topic_partition_list_t* raw = nullptr;
        if (!rk() || rd_kafka_assignment(rk(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
        tpl_ptr list(raw);
        auto out = from_rd_list(list.get());
        for (auto& p : out) p.offset = offset_invalid;
        std::sort(out.begin(), out.end());
        return out;
    }

    // --- polling ---------------------------------------------------------------

    asio::awaitable<std::vector<message>> poll(std::size_t max_batch, std::optional<std::chrono::milliseconds> max_wait) {
        auto self = shared_from_this();
        std::vector<message> out;
        if (closing_) co_return out;
        throw_if_fatal();
        if (polling_) throw exception(make_error(errc::state, "poll() is already being awaited"));
        polling_ = true;
        struct reset {
            bool& b;
            ~reset() { b = false; }
        } guard{polling_};
        max_batch = std::max<std::size_t>(max_batch, 1);
        auto deadline = max_wait ? std::chrono::steady_clock::now() + *max_wait : std::chrono::steady_clock::time_point::max();
        while (true) {
            bool became_caught_up = drain(out, max_batch);
            if (!out.empty() || became_caught_up || closing_) co_return out;
            auto now = std::chrono::steady_clock::now();
            if (now >= deadline) co_return out;
            auto wait = std::min<std::chrono::steady_clock::duration>(keepalive_, deadline - now);
            try {
                co_await cq_->wait_for(wait);
            } catch (const boost::system::system_error& e) {
                // close() cancels the wait: return what we have (nothing).
                if (closing_ && e.code() == asio::error::operation_aborted) co_return out;
                throw;
            }
        }
    }

    // --- commits and queries ---------------------------------------------------

    asio::awaitable<result<void>> commit(std::vector<topic_partition> positions) {
        auto self = shared_from_this();
        if (positions.empty()) co_return result<void>{};
        if (closed_) co_return make_error(errc::destroy, "consumer closed");
        throw_if_fatal();
        if (assign_only_) co_return make_error(errc::invalid_arg, "commit needs a group_id");
        auto [id, slot] = start_commit(positions);
        if (!slot) co_return rd_error(last_commit_error_, "commit of " + describe(positions));
        auto ev = co_await wait_request(slot);
        co_return commit_result(ev.get(), positions);
    }

    asio::awaitable<result<std::vector<topic_partition>>> committed(std::vector<topic_partition> parts,
                                                                    std::chrono::milliseconds timeout) {
        auto self = shared_from_this();
        check_open();
        std::shared_ptr<rd_kafka_topic_partition_list_t> list(to_rd_list(parts).release(), tpl_deleter{});
        int ms = static_cast<int>(timeout.count());
        auto call = [h = holder(), list, ms] { return rd_kafka_committed(h->rk, list.get(), ms); };
        auto err = co_await blocking(std::move(call));
        if (err) co_return rd_error(err, "committed");
        auto out = from_rd_list(list.get());
        for (auto& p : out)
            if (p.offset < 0) p.offset = offset_invalid;
        std::sort(out.begin(), out.end());
        co_return out;
    }

    asio::awaitable<result<watermarks>> query_watermarks(topic_partition tp, std::chrono::milliseconds timeout) {
        auto self = shared_from_this();
        check_open();
        int ms = static_cast<int>(timeout.count());
        auto call = [h = holder(), tp, ms]() -> result<watermarks> {
            watermarks w;
            auto err = rd_kafka_query_watermark_offsets(h->rk, tp.topic.c_str(), tp.partition, &w.low, &w.high, ms);
            if (err) return rd_error(err, "watermarks of " + tp.topic + "[" + std::to_string(tp.partition) + "]");
            return w;
        };
        auto r = co_await blocking(std::move(call));
        co_return r;
    }

    consumer_group_metadata group_metadata() const {
        if (!rk()) return {};
        rd_kafka_consumer_group_metadata_t* md = rd_kafka_consumer_group_metadata(rk());
        if (md == nullptr) return {};
        return consumer_group_metadata(
            std::shared_ptr<rd_kafka_consumer_group_metadata_s>(md, &rd_kafka_consumer_group_metadata_destroy));
    }

    // --- closing -----------------------------------------------------------------

    asio::awaitable<void> close() {
        auto self = shared_from_this();
        if (closing_) co_return;
        closing_ = true;
        cq_->cancel();  // an outstanding poll() returns an empty batch
        if (!closed_) co_await leave_group();
        cq_->shutdown();
        co_await shutdown_core();
    }

    void abandon() noexcept {
        closing_ = true;
        if (cq_) cq_->shutdown();
        abandon_core();
    }

    bool caught_up() const noexcept { return caught_up_; }
    const std::string& group_id() const noexcept { return group_id_; }

private:
    void check_open() const {
        if (closing_ || closed_) throw exception(make_error(errc::destroy, "consumer closed"));
    }

    // Pulls up to max_batch messages without blocking; handles EOF markers and
    // consumer errors. Returns true if caught_up() turned true.
    bool drain(std::vector<message>& out, std::size_t max_batch) {
        bool became = false;
        for (int guard = 0; out.size() < max_batch && guard < 100000; ++guard) {
            message_ptr m;
            {
                slow_call_guard slow(log_, "rd_kafka_consumer_poll");
                m.reset(rd_kafka_consumer_poll(rk(), 0));
            }
            if (!m) break;
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                out.push_back(to_message(m.get()));
                continue;
            }
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                became = mark_eof(rd_kafka_topic_name(m->rkt), m->partition) || became;
                continue;
            }
            consumer_error(m.get());
        }
        return became;
    }

    bool mark_eof(const std::string& topic, std::int32_t partition) {
        auto it = eof_.find({topic, partition});
        if (it == eof_.end() || it->second) return false;
        it->second = true;
        if (caught_up_) return false;
        for (const auto& [k, done] : eof_)
            if (!done) return false;
        caught_up_ = true;
        log_.info("kafka.caught_up", {{"partitions", static_cast<std::int64_t>(eof_.size())}});
        return true;
    }

    void consumer_error(const rd_kafka_message_t* m) {
        std::string what = rd_kafka_message_errstr(m);
        if (m->rkt) what = std::string(rd_kafka_topic_name(m->rkt)) + "[" + std::to_string(m->partition) + "]: " + what;
        if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            handle_error(m->err, what.c_str(), true);
            throw_if_fatal();
        }
        switch (m->err) {
            case RD_KAFKA_RESP_ERR__TRANSPORT:
            case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
            case RD_KAFKA_RESP_ERR__RESOLVE:
                handle_error(m->err, what.c_str(), false);
                break;
            case RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED:
                log_.warn("kafka.max_poll_exceeded", {{"group", group_id_}, {"detail", what}});
                break;
            default: {
                auto e = rd_error(m->err, what);
                if (e.fatal()) {
                    handle_error(m->err, what.c_str(), true);
                    throw exception(e);
                }
                log_.warn("kafka.consumer_error", {{"error", e.message()}});
            }
        }
    }

    // rebalance_cb: called by librdkafka from rd_kafka_consumer_poll(), i.e. on the loop thread.
    static void rebalance_trampoline(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                                     void* opaque) {
        static_cast<impl*>(opaque)->on_rebalance(err, parts);
    }

    void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
        slow_call_guard slow(log_, "rebalance");
        bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk()), "COOPERATIVE") == 0;
        auto list = from_rd_list(parts);
        for (auto& p : list) p.offset = offset_invalid;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
            apply_assignment(cooperative ? rd_error_ptr(rd_kafka_incremental_assign(rk(), parts))
                                         : assign_error(rd_kafka_assign(rk(), parts)),
                             "assign");
            if (!cooperative) eof_.clear();
            for (const auto& p : list) eof_[{p.topic, p.partition}] = false;
            if (!list.empty()) caught_up_ = false;
            log_.info("kafka.assigned", {{"group", group_id_}, {"partitions", describe(list)}, {"protocol", cooperative ? "cooperative" : "eager"}});
            if (on_assigned_) call_hook([&] { on_assigned_(list); }, "on_assigned");
        } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
            bool lost = rd_kafka_assignment_lost(rk()) != 0;
            log_.info("kafka.revoked", {{"group", group_id_}, {"partitions", describe(list)}, {"lost", lost}});
            std::vector<topic_partition> final_positions;
            if (on_revoked_) call_hook([&] { final_positions = on_revoked_(list, lost); }, "on_revoked");
            if (!lost && !final_positions.empty()) commit_and_log(std::move(final_positions));
            apply_assignment(cooperative ? rd_error_ptr(rd_kafka_incremental_unassign(rk(), parts))
                                         : assign_error(rd_kafka_assign(rk(), nullptr)),
                             "unassign");
            if (!cooperative)
                eof_.clear();
            else
                for (const auto& p : list) eof_.erase({p.topic, p.partition});
        } else {
            log_.warn("kafka.rebalance_error", {{"group", group_id_}, {"error", rd_kafka_err2name(err)}});
            apply_assignment(assign_error(rd_kafka_assign(rk(), nullptr)), "unassign");
            eof_.clear();
        }
    }

    static rd_error_ptr assign_error(rd_kafka_resp_err_t err) {
        return err ? rd_error_ptr(rd_kafka_error_new(err, "%s", rd_kafka_err2str(err))) : nullptr;
    }

    void apply_assignment(rd_error_ptr err, const char* what) {
        if (!err) return;
        auto e = rd_error(err.get());
        log_.error("kafka.assignment_failed", {{"call", what}, {"error", e.message()}});
        if (e.fatal()) handle_error(RD_KAFKA_RESP_ERR__FATAL, e.detail.c_str(), true);
    }

    template <class F>
    void call_hook(F&& f, const char* which) {
        try {
            f();
        } catch (const std::exception& ex) {
            log_.error("kafka.hook_failed", {{"hook", which}, {"error", ex.what()}});
        }
    }

    std::pair<std::uint64_t, std::shared_ptr<oneshot<event_ptr>>> start_commit(const std::vector<topic_partition>& positions) {
        auto [id, slot] = new_request();
        if (closed_) return {id, slot};
        auto list = to_rd_list(positions);
        slow_call_guard slow(log_, "rd_kafka_commit_queue");
        rd_kafka_queue_t* mainq = rd_kafka_queue_get_main(rk());
        auto err = rd_kafka_commit_queue(rk(), list.get(), mainq, nullptr, reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)));
        rd_kafka_queue_destroy(mainq);
        if (err) {
            drop_request(id);
            last_commit_error_ = err;
            return {0, nullptr};
        }
        return {id, slot};
    }

    result<void> commit_result(rd_kafka_event_t* ev, const std::vector<topic_partition>& positions) {
        if (ev == nullptr) return make_error(errc::destroy, "consumer closed before the commit completed");
        if (auto err = rd_kafka_event_error(ev)) {
            auto e = rd_error(err, std::string("commit of ") + describe(positions) + ": " + rd_kafka_event_error_string(ev));
            return e;
        }
        if (const auto* list = rd_kafka_event_topic_partition_list(ev)) {
            for (int i = 0; i < list->cnt; ++i)
                if (list->elems[i].err)
                    return rd_error(list->elems[i].err, std::string("commit of ") + list->elems[i].topic + "[" +
                                                            std::to_string(list->elems[i].partition) + "]");
        }
        return {};
    }

    // A commit started from a rebalance hook: nobody awaits it, the outcome is logged.
    void commit_and_log(std::vector<topic_partition> positions) {
        auto [id, slot] = start_commit(positions);
        if (!slot) {
            log_.warn("kafka.commit_failed", {{"partitions", describe(positions)}, {"error", rd_kafka_err2name(last_commit_error_)}});
            return;
        }
        auto self = std::static_pointer_cast<impl>(shared_from_this());
        spawn_logged(
            loop_,
            [](std::shared_ptr<impl> me, std::shared_ptr<oneshot<event_ptr>> s, std::vector<topic_partition> pos) -> asio::awaitable<void> {
                auto ev = co_await me->wait_request(s);
                auto r = me->commit_result(ev.get(), pos);
                if (r)
                    me->log_.info("kafka.committed_on_revoke", {{"partitions", describe(pos)}});
                else
                    me->log_.warn("kafka.commit_failed", {{"partitions", describe(pos)}, {"error", r.error().message()}});
            }(self, slot, std::move(positions)),
            log_, "kafka.commit_on_revoke");
    }

    void serve_close_queue(rd_kafka_queue_t* q) {
        slow_call_guard slow(log_, "serve_close_queue");
        while (rd_kafka_event_t* raw = rd_kafka_queue_poll(q, 0)) {
            event_ptr ev(raw);
            if (rd_kafka_event_type(raw) == RD_KAFKA_EVENT_REBALANCE)
                on_rebalance(rd_kafka_event_error(raw), rd_kafka_event_topic_partition_list(raw));
            else if (rd_kafka_event_type(raw) == RD_KAFKA_EVENT_ERROR)
                log_.debug("kafka.close_event", {{"error", rd_kafka_event_error_string(raw)}});
        }
    }

    // Leaves the group through rd_kafka_consumer_close_queue(): rebalance
    // events are forwarded to a queue we serve here, on the loop, so the
    // revoke hook runs on the loop thread as usual.
    asio::awaitable<void> leave_group() {
        queue_watcher closeq(loop_, rd_kafka_queue_new(rk()));
        rd_error_ptr err;
        {
            slow_call_guard slow(log_, "rd_kafka_consumer_close_queue");
            err.reset(rd_kafka_consumer_close_queue(rk(), closeq.get()));
        }
        if (err) {
            log_.warn("kafka.close_failed", {{"error", rd_error(err.get()).message()}});
            co_return;
        }
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!rd_kafka_consumer_closed(rk())) {
            serve_close_queue(closeq.get());
            if (rd_kafka_consumer_closed(rk())) break;
            if (std::chrono::steady_clock::now() >= deadline) {
                log_.warn("kafka.close_timeout", {{"group", group_id_}});
                break;
            }
            co_await closeq.wait_for(std::chrono::milliseconds(100));
        }
        log_.info("kafka.consumer_closed", {{"group", group_id_}});
        eof_.clear();
        caught_up_ = false;
    }

    std::function<void(const std::vector<topic_partition>&)> on_assigned_;
    std::function<std::vector<topic_partition>(const std::vector<topic_partition>&, bool)> on_revoked_;
    std::string group_id_;
    bool assign_only_ = false;
    bool closing_ = false;
    bool polling_ = false;
    bool caught_up_ = false;
    std::chrono::milliseconds keepalive_{5000};
    std::map<partition_key, bool> eof_;  // assigned partitions -> reached the end
    rd_kafka_resp_err_t last_commit_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
    std::unique_ptr<queue_watcher> cq_;

    friend class consumer;
};

// --- consumer ------------------------------------------------------------------

consumer::consumer(asio::any_io_executor loop, consumer_options opts)
    : impl_(std::make_shared<impl>(std::move(loop), std::move(opts))) {
    impl_->start();
}

consumer::~consumer() {
    if (impl_) impl_->abandon();
}

consumer::consumer(consumer&&) noexcept = default;
consumer& consumer::operator=(consumer&& o) noexcept {
    if (this != &o) {
        if (impl_) impl_->abandon();
        impl_ = std::move(o.impl_);
    }
    return *this;
}

result<void> consumer::subscribe(const std::vector<std::string>& topics) { return impl_->subscribe(topics); }
result<void> consumer::assign(const std::vector<topic_partition>& partitions) { return impl_->assign(partitions); }
asio::awaitable<result<void>> consumer::assign_topics(std::vector<std::string> topics, std::int64_t start) {
    return impl_->assign_topics(std::move(topics), start);
}
asio::awaitable<std::vector<message>> consumer::poll(std::size_t max_batch) { return impl_->poll(max_batch, std::nullopt); }
asio::awaitable<std::vector<message>> consumer::poll(std::size_t max_batch, std::chrono::milliseconds max_wait) {
    return impl_->poll(max_batch, max_wait);
}
result<void> consumer::pause(const std::vector<topic_partition>& partitions) { return impl_->pause_resume(partitions, true); }
result<void> consumer::resume(const std::vector<topic_partition>& partitions) { return impl_->pause_resume(partitions, false); }
result<void> consumer::pause_all() { return impl_->pause_resume(impl_->assignment(), true); }
result<void> consumer::resume_all() { return impl_->pause_resume(impl_->assignment(), false); }
std::vector<topic_partition> consumer::assignment() const { return impl_->assignment(); }
asio::awaitable<result<void>> consumer::commit(std::vector<topic_partition> positions) {
    return impl_->commit(std::move(positions));
}
asio::awaitable<result<std::vector<topic_partition>>> consumer::committed(std::vector<topic_partition> partitions,
                                                                         std::chrono::milliseconds timeout) {
    return impl_->committed(std::move(partitions), timeout);
}
bool consumer::caught_up() const noexcept { return impl_->caught_up(); }
asio::awaitable<result<watermarks>> consumer::query_watermarks(topic_partition tp, std::chrono::milliseconds timeout) {
    return impl_->query_watermarks(std::move(tp), timeout);
}
consumer_group_metadata consumer::group_metadata() const { return impl_->group_metadata(); }
asio::awaitable<void> consumer::close() { return impl_->close(); }
bool consumer::ready() const noexcept { return impl_->ready(); }
const std::string& consumer::group_id() const noexcept { return impl_->group_id(); }
std::string consumer::name() const { return impl_->name(); }

}  // namespace faasd::kafka
