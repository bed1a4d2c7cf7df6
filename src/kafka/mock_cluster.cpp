#include <faasd/kafka/mock_cluster.hpp>

#include "detail/common.hpp"

#include <librdkafka/rdkafka_mock.h>

namespace faasd::kafka {

using namespace detail;

struct mock_cluster::state {
    rd_kafka_t* rk = nullptr;
    rd_kafka_mock_cluster_t* mc = nullptr;
    ~state() {
        if (mc) rd_kafka_mock_cluster_destroy(mc);
        if (rk) rd_kafka_destroy(rk);
    }
};

namespace {
// The handle that owns the mock cluster never connects anywhere; its own
// chatter (no bootstrap.servers) is of no interest.
void silent_log(const rd_kafka_t*, int, const char*, const char*) {}
}  // namespace

mock_cluster::mock_cluster(int brokers) : state_(std::make_unique<state>()), brokers_(brokers) {
    if (brokers < 1) throw exception(make_error(errc::invalid_arg, "mock_cluster needs at least one broker"));
    auto conf = make_conf({{"log_level", "3"}});
    rd_kafka_conf_set_log_cb(conf.get(), &silent_log);
    char errstr[512];
    state_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr);
    if (state_->rk == nullptr) throw exception(make_error(errc::invalid_arg, errstr));
    conf.release();
    state_->mc = rd_kafka_mock_cluster_new(state_->rk, brokers);
    if (state_->mc == nullptr) throw exception(make_error(errc::fatal, "rd_kafka_mock_cluster_new failed"));
}

mock_cluster::~mock_cluster() = default;

std::string mock_cluster::bootstrap_servers() const { return rd_kafka_mock_cluster_bootstraps(state_->mc); }

void mock_cluster::create_topic(const std::string& name, int partitions, int replication_factor) {
    int rf = std::max(1, std::min(replication_factor, brokers_));
    auto err = rd_kafka_mock_topic_create(state_->mc, name.c_str(), partitions, rf);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        throw exception(rd_error(err, "mock topic " + name));
}

void mock_cluster::set_broker_down(int broker_id) {
    if (auto err = rd_kafka_mock_broker_set_down(state_->mc, broker_id)) throw exception(rd_error(err, "mock broker down"));
}

void mock_cluster::set_broker_up(int broker_id) {
    if (auto err = rd_kafka_mock_broker_set_up(state_->mc, broker_id)) throw exception(rd_error(err, "mock broker up"));
}

std::map<std::string, std::string> mock_cluster::recommended_consumer_properties() {
    return {
        {"fetch.wait.max.ms", "5"},
        // The mock's first join of a group waits 3 s without heartbeats, and
        // it drops members silent for session.timeout.ms: keep it above 3 s.
        // Later rebalances wait session.timeout.ms - 1 s.
        {"session.timeout.ms", "4000"},
        {"heartbeat.interval.ms", "500"},
    };
}

}  // namespace faasd::kafka
