#pragma once
// Kafka administration on the io_context: topic creation at start-up, group
// offsets and watermarks (the observer's lag), cluster metadata.
//
// Admin requests are librdkafka events delivered on the handle's main queue,
// watched through its io-event fd like the producer's; metadata and
// watermark queries (blocking calls in librdkafka) run on the blocking pool.
//
// Thread safety: loop thread only; any number of calls may be outstanding.

#include <faasd/kafka/client.hpp>
#include <faasd/kafka/error.hpp>
#include <faasd/kafka/types.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace faasd::kafka {

/// A topic to create.
struct topic_spec {
    std::string name;
    int partitions = 1;
    int replication_factor = 1;                  ///< capped at the number of brokers
    /// e.g. cleanup.policy=compact, retention.ms; a min.insync.replicas above
    /// the (capped) replication factor is lowered to it (else acks=all could never succeed).
    std::map<std::string, std::string> configs;

    friend bool operator==(const topic_spec&, const topic_spec&) = default;
};

struct admin_options : client_options {
    /// Deadline of one admin request (CreateTopics, ListConsumerGroupOffsets...).
    std::chrono::milliseconds request_timeout{10000};
};

class admin {
public:
    /// Throws kafka::exception (invalid_arg) for a bad configuration.
    admin(boost::asio::any_io_executor loop, admin_options opts);
    ~admin();
    admin(admin&&) noexcept;
    admin& operator=(admin&&) noexcept;
    admin(const admin&) = delete;
    admin& operator=(const admin&) = delete;

    /// Creates the topics that do not exist (an existing topic is success; its
    /// settings are not changed) and waits until the metadata shows them with
    /// leaders. Replication factors are capped at the broker count. Failed
    /// attempts (brokers unreachable, controller moving) are retried with
    /// `retry`'s backoff, logging one `kafka.ensure_topics.retry` line each;
    /// after the last attempt the error is returned. Permanent errors (invalid
    /// config, policy violation) are returned at once.
    boost::asio::awaitable<result<void>> ensure_topics(std::vector<topic_spec> topics, backoff_policy retry = {});

    /// The group's committed offsets on every partition of these topics (the
    /// ones the group never committed have offset_invalid), sorted.
    boost::asio::awaitable<result<std::vector<topic_partition>>> committed_offsets(std::string group,
                                                                                  std::vector<std::string> topics);

    /// Low/high watermarks of every partition of these topics, sorted.
    boost::asio::awaitable<result<std::vector<partition_watermarks>>> watermarks(std::vector<std::string> topics);

    /// committed_offsets() joined with watermarks(): the group's lag per partition.
    boost::asio::awaitable<result<std::vector<partition_lag>>> group_lag(std::string group,
                                                                        std::vector<std::string> topics);

    /// Partitions, leaders and replicas of these topics (metadata request).
    boost::asio::awaitable<result<std::vector<topic_metadata>>> describe_topics(std::vector<std::string> topics);

    /// The brokers currently in the cluster metadata; also the cheap readiness probe.
    boost::asio::awaitable<result<std::vector<broker_metadata>>> brokers();
    boost::asio::awaitable<result<int>> broker_count();

    /// The topic's configuration entries (DescribeConfigs), e.g. "cleanup.policy";
    /// with `overrides_only`, only those set on the topic itself (not broker or
    /// built-in defaults).
    boost::asio::awaitable<result<std::map<std::string, std::string>>> topic_configs(std::string topic,
                                                                                     bool overrides_only = false);

    /// Deletes topics (tests and `faasd dev` clean-up); a missing topic is success.
    boost::asio::awaitable<result<void>> delete_topics(std::vector<std::string> topics);

    /// Stops serving and destroys the handle on the pool; outstanding calls
    /// complete with errc::destroy. Idempotent.
    boost::asio::awaitable<void> close();

    bool ready() const noexcept;

    class impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace faasd::kafka
