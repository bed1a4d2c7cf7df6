#include <faasd/kafka/topics.hpp>

#include <algorithm>

namespace faasd::kafka {

namespace {
constexpr std::int64_t hour_ms = 3'600'000;
constexpr std::int64_t day_ms = 24 * hour_ms;

// With acks=all a write is acknowledged once min.insync.replicas replicas have
// it: 2 of 3 survives the loss of a broker; never more than the replicas.
std::string min_isr(int rf) { return std::to_string(std::clamp(rf, 1, 2)); }

topic_spec deleted_after(std::string name, int partitions, int rf, std::int64_t retention_ms) {
    return {std::move(name),
            partitions,
            rf,
            {{"cleanup.policy", "delete"}, {"retention.ms", std::to_string(retention_ms)}, {"min.insync.replicas", min_isr(rf)}}};
}

topic_spec compacted(std::string name, int partitions, int rf) {
    return {std::move(name), partitions, rf, {{"cleanup.policy", "compact"}, {"min.insync.replicas", min_isr(rf)}}};
}
}  // namespace

std::vector<topic_spec> faasd_topic_specs(const jobs::topic_names& n, int partitions, int rf) {
    return {
        deleted_after(n.jobs_at_most_once, partitions, rf, 7 * day_ms),
        deleted_after(n.jobs_at_least_once, partitions, rf, 7 * day_ms),
        deleted_after(n.jobs_exactly_once, partitions, rf, 7 * day_ms),
        compacted(n.state, partitions, rf),
        deleted_after(n.results, partitions, rf, 7 * day_ms),
        deleted_after(n.cancel, partitions, rf, day_ms),
        deleted_after(n.heartbeats, partitions, rf, hour_ms),
        deleted_after(n.observer, 1, rf, day_ms),
        compacted(n.observer_config, 1, rf),
        deleted_after(n.dead_letter, partitions, rf, 7 * day_ms),
    };
}

boost::asio::awaitable<result<void>> ensure_faasd_topics(admin& adm, const jobs::topic_names& names, int partitions,
                                                         int replication_factor, backoff_policy retry) {
    co_return co_await adm.ensure_topics(faasd_topic_specs(names, partitions, replication_factor), retry);
}

void create_faasd_topics(mock_cluster& cluster, const jobs::topic_names& names, int partitions) {
    for (const auto& spec : faasd_topic_specs(names, partitions, 1))
        cluster.create_topic(spec.name, spec.partitions, cluster.broker_count());
}

}  // namespace faasd::kafka
