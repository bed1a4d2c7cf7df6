#include <faasd/kafka/admin.hpp>

#include "detail/client_core.hpp"

#include <boost/system/system_error.hpp>

#include <algorithm>
#include <charconv>
#include <set>
#include <system_error>

namespace faasd::kafka {

using namespace detail;

class admin::impl final : public client_core {
public:
    impl(asio::any_io_executor loop, admin_options opts) : client_core(loop, opts, "admin"), timeout_(opts.request_timeout) {
        auto props = base_properties();
        for (auto& [k, v] : opts.properties) props[k] = v;
        drop_consumer_only(props);
        auto conf = make_conf(props);
        rd_kafka_conf_set_events(conf.get(), RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_LOG);
        create(RD_KAFKA_PRODUCER, std::move(conf), 0);
    }

    // Starts an admin request whose result event arrives on the main queue,
    // and waits for it. Top-level errors of the event are returned.
    template <class Start>
    asio::awaitable<result<event_ptr>> request(rd_kafka_admin_op_t op, Start start) {
        auto self = shared_from_this();
        if (closed_) co_return make_error(errc::destroy, "admin closed");
        auto [id, slot] = new_request();
        options_ptr o(rd_kafka_AdminOptions_new(rk(), op));
        char errstr[256];
        int ms = static_cast<int>(timeout_.count());
        rd_kafka_AdminOptions_set_request_timeout(o.get(), ms, errstr, sizeof errstr);
        if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS)
            rd_kafka_AdminOptions_set_operation_timeout(o.get(), ms, errstr, sizeof errstr);
        rd_kafka_AdminOptions_set_opaque(o.get(), reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)));
        rd_kafka_queue_t* q = rd_kafka_queue_get_main(rk());
        start(rk(), o.get(), q);
        rd_kafka_queue_destroy(q);
        auto ev = co_await wait_request(slot);
        if (!ev) co_return make_error(errc::destroy, "admin closed before the request completed");
        if (auto err = rd_kafka_event_error(ev.get())) co_return rd_error(err, rd_kafka_event_error_string(ev.get()));
        co_return std::move(ev);
    }

    asio::awaitable<result<std::vector<topic_metadata>>> describe_topics(std::vector<std::string> topics) {
        auto self = shared_from_this();
        if (closed_) co_return make_error(errc::destroy, "admin closed");
        auto call = [h = holder(), topics = std::move(topics), t = timeout_] {
            return blocking_topic_metadata(h->rk, topics, t);
        };
        co_return co_await blocking(std::move(call));
    }

    asio::awaitable<result<std::vector<broker_metadata>>> brokers() {
        auto self = shared_from_this();
        if (closed_) co_return make_error(errc::destroy, "admin closed");
        auto call = [h = holder(), t = timeout_] { return blocking_brokers(h->rk, t); };
        co_return co_await blocking(std::move(call));
    }

    asio::awaitable<result<void>> ensure_topics(std::vector<topic_spec> topics, backoff_policy retry) {
        auto self = shared_from_this();
        asio::steady_timer timer(loop_);
        for (int attempt = 1;; ++attempt) {
            auto r = co_await try_ensure(topics);
            if (r) {
                log_.info("kafka.topics_ready", {{"topics", static_cast<std::int64_t>(topics.size())}, {"attempts", attempt}});
                co_return r;
            }
            const auto& e = r.error();
            if (e.cls != error_class::retryable || !retry.may_retry(attempt) || closed_) {
                log_.error("kafka.ensure_topics.failed", {{"attempt", attempt}, {"error", e.message()}});
                co_return e;
            }
            auto delay = retry.delay(attempt);
            log_.warn("kafka.ensure_topics.retry", {{"brokers", opts_.brokers},
                                                    {"attempt", attempt},
                                                    {"error", e.message()},
                                                    {"retry_in_ms", static_cast<std::int64_t>(delay.count())}});
            if (!co_await sleep_for(timer, delay)) throw boost::system::system_error(asio::error::operation_aborted);
        }
    }

    asio::awaitable<result<std::vector<topic_partition>>> committed_offsets(std::string group, std::vector<std::string> topics) {
        auto self = shared_from_this();
        auto md = co_await describe_topics(topics);
        if (!md) co_return md.error();
        std::vector<topic_partition> parts;
        for (const auto& t : *md)
            for (const auto& p : t.partitions) parts.push_back({t.name, p.id, offset_invalid});
        if (parts.empty()) co_return parts;
        auto list = to_rd_list(parts);
        rd_kafka_ListConsumerGroupOffsets_t* req = rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), list.get());
        auto start = [&](rd_kafka_t* rk, auto* o, auto* q) {
            rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, o, q);
        };
        auto ev = co_await request(RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, start);
        rd_kafka_ListConsumerGroupOffsets_destroy(req);
        if (!ev) co_return ev.error();
        const auto* res = rd_kafka_event_ListConsumerGroupOffsets_result(ev->get());
        std::size_t cnt = 0;
        const rd_kafka_group_result_t** groups = rd_kafka_ListConsumerGroupOffsets_result_groups(res, &cnt);
        std::vector<topic_partition> out;
        for (std::size_t i = 0; i < cnt; ++i) {
            if (const rd_kafka_error_t* gerr = rd_kafka_group_result_error(groups[i])) co_return rd_error(gerr);
            const auto* gparts = rd_kafka_group_result_partitions(groups[i]);
            for (int j = 0; gparts && j < gparts->cnt; ++j) {
                const auto& e = gparts->elems[j];
                if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR && e.err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                    co_return rd_error(e.err, std::string("committed offset of ") + e.topic + "[" + std::to_string(e.partition) + "]");
                out.push_back({e.topic, e.partition, e.offset >= 0 ? e.offset : offset_invalid});
            }
        }
        std::sort(out.begin(), out.end());
        co_return out;
    }

    asio::awaitable<result<std::vector<partition_watermarks>>> watermarks(std::vector<std::string> topics) {
        auto self = shared_from_this();
        auto md = co_await describe_topics(topics);
        if (!md) co_return md.error();
        std::vector<partition_watermarks> parts;
        for (const auto& t : *md)
            for (const auto& p : t.partitions) parts.push_back({t.name, p.id, offset_invalid, offset_invalid});
        int ms = static_cast<int>(timeout_.count());
        auto call = [h = holder(), parts = std::move(parts), ms]() mutable -> result<std::vector<partition_watermarks>> {
            for (auto& p : parts) {
                auto err = rd_kafka_query_watermark_offsets(h->rk, p.topic.c_str(), p.partition, &p.low, &p.high, ms);
                if (err) return rd_error(err, "watermarks of " + p.topic + "[" + std::to_string(p.partition) + "]");
            }
            return parts;
        };
        co_return co_await blocking(std::move(call));
    }

    asio::awaitable<result<std::vector<partition_lag>>> group_lag(std::string group, std::vector<std::string> topics) {
        auto self = shared_from_this();
        auto committed = co_await committed_offsets(group, topics);
        if (!committed) co_return committed.error();
        auto marks = co_await watermarks(topics);
        if (!marks) co_return marks.error();
        std::vector<partition_lag> out;
        for (const auto& w : *marks) {
            partition_lag l{w.topic, w.partition, offset_invalid, w.high, 0};
            auto it = std::find_if(committed->begin(), committed->end(),
                                   [&](auto& c) { return c.topic == w.topic && c.partition == w.partition; });
            if (it != committed->end()) l.committed = it->offset;
            auto from = l.committed >= 0 ? l.committed : w.low;
            l.lag = std::max<std::int64_t>(0, w.high - std::max<std::int64_t>(from, 0));
            out.push_back(std::move(l));
        }
        co_return out;
    }

    asio::awaitable<result<std::map<std::string, std::string>>> topic_configs(std::string topic, bool overrides_only) {
        auto self = shared_from_this();
        rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
        auto start = [&](rd_kafka_t* rk, auto* o, auto* q) {
            rd_kafka_DescribeConfigs(rk, &res, 1, o, q);
        };
        auto ev = co_await request(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, start);
        rd_kafka_ConfigResource_destroy(res);
        if (!ev) co_return ev.error();
        std::size_t cnt = 0;
        const auto** resources = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev->get()), &cnt);
        std::map<std::string, std::string> out;
        for (std::size_t i = 0; i < cnt; ++i) {
            if (auto err = rd_kafka_ConfigResource_error(resources[i]))
                co_return rd_error(err, rd_kafka_ConfigResource_error_string(resources[i]));
            std::size_t n = 0;
            const auto** entries = rd_kafka_ConfigResource_configs(resources[i], &n);
            for (std::size_t j = 0; j < n; ++j) {
                if (overrides_only && rd_kafka_ConfigEntry_source(entries[j]) != RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG)
                    continue;
                const char* v = rd_kafka_ConfigEntry_value(entries[j]);
                out[rd_kafka_ConfigEntry_name(entries[j])] = v ? v : "";
            }
        }
        co_return out;
    }

    asio::awaitable<result<void>> delete_topics(std::vector<std::string> topics) {
        auto self = shared_from_this();
        if (topics.empty()) co_return result<void>{};
        std::vector<rd_kafka_DeleteTopic_t*> dts;
        for (const auto& t : topics) dts.push_back(rd_kafka_DeleteTopic_new(t.c_str()));
        auto start = [&](rd_kafka_t* rk, auto* o, auto* q) {
            rd_kafka_DeleteTopics(rk, dts.data(), dts.size(), o, q);
        };
        auto ev = co_await request(RD_KAFKA_ADMIN_OP_DELETETOPICS, start);
        rd_kafka_DeleteTopic_destroy_array(dts.data(), dts.size());
        if (!ev) co_return ev.error();
        std::size_t cnt = 0;
        const auto** res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev->get()), &cnt);
        for (std::size_t i = 0; i < cnt; ++i) {
            auto err = rd_kafka_topic_result_error(res[i]);
            if (err && err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                co_return rd_error(err, std::string(rd_kafka_topic_result_name(res[i])) + ": " +
                                            (rd_kafka_topic_result_error_string(res[i]) ? rd_kafka_topic_result_error_string(res[i]) : ""));
        }
        co_return result<void>{};
    }

    asio::awaitable<void> close() {
        auto self = shared_from_this();
        co_await shutdown_core();
    }

    void abandon() noexcept { abandon_core(); }

private:
    asio::awaitable<result<void>> try_ensure(const std::vector<topic_spec>& topics) {
        auto b = co_await brokers();
        if (!b) co_return b.error();
        if (b->empty()) co_return make_error(errc::all_brokers_down, "no brokers in metadata");
        int broker_count = static_cast<int>(b->size());

        std::vector<rd_kafka_NewTopic_t*> nts;
        struct cleanup {
            std::vector<rd_kafka_NewTopic_t*>& v;
            ~cleanup() { rd_kafka_NewTopic_destroy_array(v.data(), v.size()); }
        } guard{nts};
        char errstr[512];
        for (const auto& t : topics) {
            int rf = std::max(1, std::min(t.replication_factor, broker_count));
            rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, rf, errstr, sizeof errstr);
            if (nt == nullptr) co_return make_error(errc::invalid_arg, t.name + ": " + errstr);
            nts.push_back(nt);
            for (auto [k, v] : t.configs) {
                // More in-sync replicas required than there are replicas: no
                // acks=all write could ever succeed (e.g. a one-broker dev cluster).
                if (int isr = 0; k == "min.insync.replicas" && std::from_chars(v.data(), v.data() + v.size(), isr).ec ==
                                                                   std::errc() && isr > rf)
                    v = std::to_string(rf);
                if (auto err = rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str()))
                    co_return rd_error(err, t.name + ": config " + k);
            }
        }
        auto start = [&](rd_kafka_t* rk, auto* o, auto* q) {
            rd_kafka_CreateTopics(rk, nts.data(), nts.size(), o, q);
        };
        auto ev = co_await request(RD_KAFKA_ADMIN_OP_CREATETOPICS, start);
        if (!ev) co_return ev.error();
        std::size_t cnt = 0;
        const auto** res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev->get()), &cnt);
        std::optional<error> first;
        int created = 0;
        for (std::size_t i = 0; i < cnt; ++i) {
            auto err = rd_kafka_topic_result_error(res[i]);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                ++created;
                continue;
            }
            if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
            const char* es = rd_kafka_topic_result_error_string(res[i]);
            auto e = rd_error(err, std::string(rd_kafka_topic_result_name(res[i])) + ": " + (es ? es : rd_kafka_err2str(err)));
            // Report a non-retryable error in preference to a retryable one.
            if (!first || (first->retryable() && !e.retryable())) first = e;
        }
        if (first) co_return *first;
        if (created > 0) log_.info("kafka.topics_created", {{"created", created}, {"brokers", broker_count}});
        co_return co_await wait_for_topics(topics);
    }

    // CreateTopics returns once the controller accepted the topics; wait until
    // the metadata shows every partition with a leader.
    asio::awaitable<result<void>> wait_for_topics(const std::vector<topic_spec>& topics) {
        std::vector<std::string> names;
        for (const auto& t : topics) names.push_back(t.name);
        auto deadline = std::chrono::steady_clock::now() + timeout_;
        asio::steady_timer timer(loop_);
        std::string missing;
        while (true) {
            auto md = co_await describe_topics(names);
            if (md) {
                missing.clear();
                for (const auto& t : topics) {
                    auto it = std::find_if(md->begin(), md->end(), [&](auto& m) { return m.name == t.name; });
                    bool ok = it != md->end() && !it->partitions.empty() &&
                              std::all_of(it->partitions.begin(), it->partitions.end(), [](auto& p) { return p.leader >= 0; });
                    if (!ok) missing += (missing.empty() ? "" : ",") + t.name;
                }
                if (missing.empty()) co_return result<void>{};
            }
            if (std::chrono::steady_clock::now() >= deadline)
                co_return make_error(errc::timed_out, "topics not visible in metadata: " + missing);
            if (!co_await sleep_for(timer, std::chrono::milliseconds(100)))
                throw boost::system::system_error(asio::error::operation_aborted);
        }
    }

    std::chrono::milliseconds timeout_;
};

admin::admin(asio::any_io_executor loop, admin_options opts) : impl_(std::make_shared<impl>(std::move(loop), std::move(opts))) {
    impl_->start();
}
admin::~admin() {
    if (impl_) impl_->abandon();
}
admin::admin(admin&&) noexcept = default;
admin& admin::operator=(admin&& o) noexcept {
    if (this != &o) {
        if (impl_) impl_->abandon();
        impl_ = std::move(o.impl_);
    }
    return *this;
}

asio::awaitable<result<void>> admin::ensure_topics(std::vector<topic_spec> topics, backoff_policy retry) {
    return impl_->ensure_topics(std::move(topics), retry);
}
asio::awaitable<result<std::vector<topic_partition>>> admin::committed_offsets(std::string group, std::vector<std::string> topics) {
    return impl_->committed_offsets(std::move(group), std::move(topics));
}
asio::awaitable<result<std::vector<partition_watermarks>>> admin::watermarks(std::vector<std::string> topics) {
    return impl_->watermarks(std::move(topics));
}
asio::awaitable<result<std::vector<partition_lag>>> admin::group_lag(std::string group, std::vector<std::string> topics) {
    return impl_->group_lag(std::move(group), std::move(topics));
}
asio::awaitable<result<std::vector<topic_metadata>>> admin::describe_topics(std::vector<std::string> topics) {
    return impl_->describe_topics(std::move(topics));
}
asio::awaitable<result<std::vector<broker_metadata>>> admin::brokers() { return impl_->brokers(); }
asio::awaitable<result<int>> admin::broker_count() {
    auto b = co_await impl_->brokers();
    if (!b) co_return b.error();
    co_return static_cast<int>(b->size());
}
asio::awaitable<result<std::map<std::string, std::string>>> admin::topic_configs(std::string topic,
                                                                                  bool overrides_only) {
    return impl_->topic_configs(std::move(topic), overrides_only);
}
asio::awaitable<result<void>> admin::delete_topics(std::vector<std::string> topics) {
    return impl_->delete_topics(std::move(topics));
}
asio::awaitable<void> admin::close() { return impl_->close(); }
bool admin::ready() const noexcept { return impl_->ready(); }

}  // namespace faasd::kafka
