#pragma once
// Bootstrap of faasd's topics (docs/architecture.md, "Topics"): which topics
// exist, their partitions, cleanup policy and retention.

#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/admin.hpp>
#include <faasd/kafka/mock_cluster.hpp>

#include <boost/asio/awaitable.hpp>

#include <vector>

namespace faasd::kafka {

/// The specs of every faasd topic. `state` and `observer-config` are compacted
/// (cleanup.policy=compact); the others are deleted after their retention:
/// jobs.*, results, dead-letter 7 d; cancel and observer 1 d; heartbeats 1 h.
/// `observer` and `observer-config` have one partition (single key); the
/// others `partitions`. Every topic gets min.insync.replicas = min(2,
/// replication_factor), so that an acks=all write survives a broker's loss
/// whatever the broker default (admin::ensure_topics lowers it with the
/// replication factor when there are fewer brokers). Pure.
std::vector<topic_spec> faasd_topic_specs(const jobs::topic_names& names, int partitions, int replication_factor);

/// Creates every faasd topic that does not exist (admin::ensure_topics).
boost::asio::awaitable<result<void>> ensure_faasd_topics(admin& adm, const jobs::topic_names& names, int partitions,
                                                         int replication_factor, backoff_policy retry = {});

/// The same on the mock cluster (no configs there).
void create_faasd_topics(mock_cluster& cluster, const jobs::topic_names& names, int partitions);

}  // namespace faasd::kafka
