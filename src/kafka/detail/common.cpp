#include "detail/common.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/system/system_error.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

namespace faasd::kafka::detail {

error rd_error(rd_kafka_resp_err_t err, std::string detail) {
    return make_error(make_error_code_from_rd(static_cast<int>(err)), std::move(detail));
}

error rd_error(const rd_kafka_error_t* e) {
    error out;
    out.code = make_error_code_from_rd(static_cast<int>(rd_kafka_error_code(e)));
    out.detail = rd_kafka_error_string(e);
    if (rd_kafka_error_is_fatal(e))
        out.cls = error_class::fatal;
    else if (rd_kafka_error_txn_requires_abort(e))
        out.cls = error_class::abortable;
    else if (rd_kafka_error_is_retriable(e))
        out.cls = error_class::retryable;
    else
        out.cls = classify(out.code);
    return out;
}

tpl_ptr to_rd_list(const std::vector<topic_partition>& parts) {
    tpl_ptr list(rd_kafka_topic_partition_list_new(static_cast<int>(std::max<std::size_t>(parts.size(), 1))));
    for (const auto& p : parts) rd_kafka_topic_partition_list_add(list.get(), p.topic.c_str(), p.partition)->offset = p.offset;
    return list;
}

std::vector<topic_partition> from_rd_list(const rd_kafka_topic_partition_list_t* list) {
    std::vector<topic_partition> out;
    if (list == nullptr) return out;
    out.reserve(static_cast<std::size_t>(list->cnt));
    for (int i = 0; i < list->cnt; ++i) {
        const auto& e = list->elems[i];
        out.push_back({e.topic, e.partition, e.offset});
    }
    return out;
}

std::string describe(const std::vector<topic_partition>& parts, std::size_t max) {
    std::string s;
    std::size_t n = 0;
    for (const auto& p : parts) {
        if (n == max) {
            s += ",...(" + std::to_string(parts.size()) + ")";
            break;
        }
        if (!s.empty()) s += ',';
        s += p.topic + "[" + std::to_string(p.partition) + "]";
        if (p.offset >= 0) s += "@" + std::to_string(p.offset);
        ++n;
    }
    return s;
}

message to_message(const rd_kafka_message_t* m) {
    message out;
    out.topic = rd_kafka_topic_name(m->rkt);
    out.partition = m->partition;
    out.offset = m->offset;
    if (m->key != nullptr) out.key.emplace(static_cast<const char*>(m->key), m->key_len);
    if (m->payload != nullptr) out.value.emplace(static_cast<const char*>(m->payload), m->len);
    rd_kafka_timestamp_type_t type{};
    out.timestamp_ms = rd_kafka_message_timestamp(m, &type);
    rd_kafka_headers_t* hdrs = nullptr;
    // rd_kafka_message_headers() parses lazily and caches, hence the non-const handle.
    if (rd_kafka_message_headers(const_cast<rd_kafka_message_t*>(m), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        for (std::size_t i = 0;; ++i) {
            const char* name = nullptr;
            const void* val = nullptr;
            std::size_t size = 0;
            if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) break;
            header h{name, std::nullopt};
            if (val != nullptr) h.value.emplace(static_cast<const char*>(val), size);
            out.headers.push_back(std::move(h));
        }
    }
    return out;
}

void drop_consumer_only(std::map<std::string, std::string>& props) {
    static constexpr const char* consumer_only[] = {
        "session.timeout.ms",   "heartbeat.interval.ms",         "fetch.wait.max.ms",
        "fetch.min.bytes",      "fetch.max.bytes",               "max.partition.fetch.bytes",
        "max.poll.interval.ms", "auto.offset.reset",             "enable.auto.commit",
        "auto.commit.interval.ms", "enable.auto.offset.store",   "isolation.level",
        "group.instance.id",    "partition.assignment.strategy", "queued.min.messages",
        "queued.max.messages.kbytes", "group.protocol.type",     "check.crcs"};
    for (const char* k : consumer_only) props.erase(k);
}

conf_ptr make_conf(const std::map<std::string, std::string>& props) {
    conf_ptr conf(rd_kafka_conf_new());
    char errstr[512];
    for (const auto& [k, v] : props) {
        if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            throw exception(make_error(errc::invalid_arg, "property " + k + ": " + errstr));
    }
    return conf;
}

namespace {
struct metadata_deleter {
    void operator()(const rd_kafka_metadata_t* md) const noexcept { rd_kafka_metadata_destroy(md); }
};
using metadata_ptr = std::unique_ptr<const rd_kafka_metadata_t, metadata_deleter>;

int to_ms(std::chrono::milliseconds d) { return static_cast<int>(std::clamp<std::int64_t>(d.count(), 1, 3'600'000)); }
}  // namespace

result<std::vector<topic_metadata>> blocking_topic_metadata(rd_kafka_t* rk, const std::vector<std::string>& topics,
                                                            std::chrono::milliseconds timeout) {
    const rd_kafka_metadata_t* raw = nullptr;
    auto err = rd_kafka_metadata(rk, 1, nullptr, &raw, to_ms(timeout));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return rd_error(err, "metadata request failed");
    metadata_ptr md(raw);
    std::set<std::string> wanted(topics.begin(), topics.end());
    std::vector<topic_metadata> out;
    for (int i = 0; i < md->topic_cnt; ++i) {
        const auto& t = md->topics[i];
        if (!wanted.empty() && !wanted.contains(t.topic)) continue;
        if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) continue;
        topic_metadata tm;
        tm.name = t.topic;
        for (int p = 0; p < t.partition_cnt; ++p) {
            const auto& pm = t.partitions[p];
            partition_metadata x;
            x.id = pm.id;
            x.leader = pm.leader;
            x.replicas.assign(pm.replicas, pm.replicas + pm.replica_cnt);
            x.in_sync_replicas.assign(pm.isrs, pm.isrs + pm.isr_cnt);
            tm.partitions.push_back(std::move(x));
        }
        std::sort(tm.partitions.begin(), tm.partitions.end(), [](auto& a, auto& b) { return a.id < b.id; });
        out.push_back(std::move(tm));
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
    return out;
}

result<std::vector<broker_metadata>> blocking_brokers(rd_kafka_t* rk, std::chrono::milliseconds timeout) {
    const rd_kafka_metadata_t* raw = nullptr;
    auto err = rd_kafka_metadata(rk, 0, nullptr, &raw, to_ms(timeout));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return rd_error(err, "metadata request failed");
    metadata_ptr md(raw);
    std::vector<broker_metadata> out;
    for (int i = 0; i < md->broker_cnt; ++i) out.push_back({md->brokers[i].id, md->brokers[i].host, md->brokers[i].port});
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
    return out;
}

asio::any_io_executor default_blocking_executor() {
    static asio::thread_pool pool(8);
    return pool.get_executor();
}

asio::awaitable<bool> wait_signal(asio::steady_timer& timer) {
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) {
        // Not an awaitable call: reading the state must not throw when cancelled.
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) co_return false;
    }
    co_return true;
}

asio::awaitable<bool> sleep_for(asio::steady_timer& timer, std::chrono::steady_clock::duration d) {
    timer.expires_after(d);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return !ec;
}

queue_watcher::queue_watcher(const asio::any_io_executor& ex, rd_kafka_queue_t* queue) : queue_(queue), sd_(ex) {
    fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd_ < 0) {
        rd_kafka_queue_destroy(queue_);
        queue_ = nullptr;
        throw exception(make_error(errc::fatal, std::string("eventfd: ") + std::strerror(errno)));
    }
    sd_.assign(fd_);
    // An eventfd takes 8-byte writes; librdkafka copies the payload.
    static const std::uint64_t one = 1;
    rd_kafka_queue_io_event_enable(queue_, fd_, &one, sizeof one);
}

queue_watcher::~queue_watcher() { shutdown(); }

void queue_watcher::clear() noexcept {
    std::uint64_t v = 0;
    while (::read(fd_, &v, sizeof v) > 0) {
    }
}

asio::awaitable<bool> queue_watcher::wait_for(std::chrono::steady_clock::duration timeout) {
    // A timer that cancels the fd wait, rather than awaitable operators:
    // `a || b` throws multiple_exceptions when both are cancelled together
    // (a cancelled poll), and we want plain operation_aborted.
    struct state {
        bool active = true;
        bool timed_out = false;
    };
    auto st = std::make_shared<state>();
    asio::steady_timer timer(sd_.get_executor(), timeout);
    timer.async_wait([st, this](boost::system::error_code ec) {
        if (ec || !st->active) return;
        st->timed_out = true;
        cancel();
    });
    auto [ec] = co_await sd_.async_wait(asio::posix::descriptor_base::wait_read, asio::as_tuple(asio::use_awaitable));
    st->active = false;
    timer.cancel();
    if (!ec) {
        clear();
        co_return true;
    }
    if (st->timed_out) co_return false;
    throw boost::system::system_error(ec);
}

asio::awaitable<void> queue_watcher::wait() {
    co_await sd_.async_wait(asio::posix::descriptor_base::wait_read, asio::use_awaitable);
    clear();
}

void queue_watcher::cancel() {
    boost::system::error_code ec;
    if (sd_.is_open()) sd_.cancel(ec);
}

void queue_watcher::shutdown() {
    if (queue_ != nullptr) {
        rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
        rd_kafka_queue_destroy(queue_);
        queue_ = nullptr;
    }
    boost::system::error_code ec;
    if (sd_.is_open()) sd_.close(ec);  // closes fd_
    fd_ = -1;
}

}  // namespace faasd::kafka::detail
