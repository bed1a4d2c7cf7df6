#pragma once
// librdkafka's in-process mock cluster (rdkafka_mock.h), for `faasd dev` and
// quick unit tests of the adapters. Its brokers listen on 127.0.0.1 with
// kernel-chosen ports, so other processes can use it too.
//
// What it does not do (librdkafka 2.0.2): CreateTopics/DeleteTopics/
// DescribeConfigs (create topics here with create_topic()), compaction, topic
// configs; transactions are protocol-level only (read_committed consumers
// also see aborted records, send_offsets_to_transaction does not move the
// group's offsets): never test exactly-once on it. The first join of a group
// waits 3 s; later rebalances wait session.timeout.ms - 1 s. Each fetch is
// held for the consumer's whole fetch.wait.max.ms: use
// recommended_consumer_properties().
//
// Thread safety: all members may be called from any thread. Construction and
// destruction block briefly (they start and join the mock's threads).

#include <faasd/kafka/error.hpp>

#include <map>
#include <memory>
#include <string>

namespace faasd::kafka {

class mock_cluster {
public:
    /// Starts `brokers` mock brokers. Throws kafka::exception on failure.
    explicit mock_cluster(int brokers = 1);
    ~mock_cluster();
    mock_cluster(const mock_cluster&) = delete;
    mock_cluster& operator=(const mock_cluster&) = delete;

    /// "127.0.0.1:port[,127.0.0.1:port...]"
    std::string bootstrap_servers() const;
    int broker_count() const noexcept { return brokers_; }

    /// Creates a topic (the mock has no CreateTopics). An existing topic is
    /// left as it is. Throws kafka::exception on failure.
    void create_topic(const std::string& name, int partitions, int replication_factor = 1);

    /// Takes a broker (1-based id) down or up again: its connections are closed
    /// and new ones refused. For tests of broker loss.
    void set_broker_down(int broker_id);
    void set_broker_up(int broker_id);

    /// Consumer properties that make the mock responsive: fetch.wait.max.ms=5
    /// (the mock holds a fetch that long even when data is there) and
    /// session.timeout.ms=4000 (its rebalances wait session.timeout.ms - 1 s;
    /// below ~3.5 s the first join, which waits 3 s, times the member out).
    static std::map<std::string, std::string> recommended_consumer_properties();

private:
    struct state;
    std::unique_ptr<state> state_;
    int brokers_ = 0;
};

}  // namespace faasd::kafka
