#include <faasd/kafka/error.hpp>

#include <faasd/core/error.hpp>

#include <librdkafka/rdkafka.h>

#include <ostream>

namespace faasd::kafka {
namespace {

#define FAASD_SAME(name, rd) static_assert(static_cast<int>(errc::name) == static_cast<int>(RD_KAFKA_RESP_ERR_##rd))
FAASD_SAME(no_error, NO_ERROR);
FAASD_SAME(destroy, _DESTROY);
FAASD_SAME(transport, _TRANSPORT);
FAASD_SAME(msg_timed_out, _MSG_TIMED_OUT);
FAASD_SAME(partition_eof, _PARTITION_EOF);
FAASD_SAME(unknown_partition, _UNKNOWN_PARTITION);
FAASD_SAME(unknown_topic, _UNKNOWN_TOPIC);
FAASD_SAME(all_brokers_down, _ALL_BROKERS_DOWN);
FAASD_SAME(invalid_arg, _INVALID_ARG);
FAASD_SAME(timed_out, _TIMED_OUT);
FAASD_SAME(queue_full, _QUEUE_FULL);
FAASD_SAME(state, _STATE);
FAASD_SAME(purge_queue, _PURGE_QUEUE);
FAASD_SAME(fatal, _FATAL);
FAASD_SAME(max_poll_exceeded, _MAX_POLL_EXCEEDED);
FAASD_SAME(not_configured, _NOT_CONFIGURED);
FAASD_SAME(assignment_lost, _ASSIGNMENT_LOST);
FAASD_SAME(unknown_topic_or_part, UNKNOWN_TOPIC_OR_PART);
FAASD_SAME(msg_size_too_large, MSG_SIZE_TOO_LARGE);
FAASD_SAME(not_enough_replicas, NOT_ENOUGH_REPLICAS);
FAASD_SAME(illegal_generation, ILLEGAL_GENERATION);
FAASD_SAME(unknown_member_id, UNKNOWN_MEMBER_ID);
FAASD_SAME(rebalance_in_progress, REBALANCE_IN_PROGRESS);
FAASD_SAME(topic_already_exists, TOPIC_ALREADY_EXISTS);
FAASD_SAME(invalid_replication_factor, INVALID_REPLICATION_FACTOR);
FAASD_SAME(invalid_config, INVALID_CONFIG);
FAASD_SAME(invalid_txn_state, INVALID_TXN_STATE);
FAASD_SAME(producer_fenced, PRODUCER_FENCED);
#undef FAASD_SAME

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "kafka"; }
    std::string message(int ev) const override { return rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(ev)); }
};

error_class classify_rd(rd_kafka_resp_err_t e) noexcept {
    switch (e) {
        // The client instance is unusable, or the deployment is misconfigured
        // in a way no retry fixes.
        case RD_KAFKA_RESP_ERR__FATAL:
        case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        case RD_KAFKA_RESP_ERR__SSL:
        case RD_KAFKA_RESP_ERR__FENCED:
        case RD_KAFKA_RESP_ERR__NOT_CONFIGURED:
        case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
        case RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE:
        case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
        case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
        case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
        case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
        case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
        case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
        case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
        case RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT:
        case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
        case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
            return error_class::fatal;

        // The unit of work is void: abort it and redo it from the start.
        case RD_KAFKA_RESP_ERR__DESTROY:
        case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
        case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
        case RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED:
        case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
        case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
        case RD_KAFKA_RESP_ERR_INVALID_TXN_STATE:
        case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
        case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
        case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING:
            return error_class::abortable;

        // Transient: the same request may succeed later.
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__RESOLVE:
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        case RD_KAFKA_RESP_ERR__ISR_INSUFF:
        case RD_KAFKA_RESP_ERR__NODE_UPDATE:
        case RD_KAFKA_RESP_ERR__WAIT_COORD:
        case RD_KAFKA_RESP_ERR__IN_PROGRESS:
        case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
        case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
        case RD_KAFKA_RESP_ERR__WAIT_CACHE:
        case RD_KAFKA_RESP_ERR__RETRY:
        case RD_KAFKA_RESP_ERR__INTR:
        case RD_KAFKA_RESP_ERR__OUTDATED:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
        case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
        case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
        case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
        case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
        case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
        case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
        case RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND:
        case RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH:
        case RD_KAFKA_RESP_ERR_LISTENER_NOT_FOUND:
        case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
        case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
        case RD_KAFKA_RESP_ERR_REASSIGNMENT_IN_PROGRESS:
            return error_class::retryable;

        default:
            // Everything else (message too large, invalid config, unknown
            // topic, invalid argument, bad state...) cannot succeed as asked.
            return error_class::permanent;
    }
}

}  // namespace

const char* to_string(error_class c) noexcept {
    switch (c) {
        case error_class::retryable: return "retryable";
        case error_class::abortable: return "abortable";
        case error_class::permanent: return "permanent";
        case error_class::fatal: return "fatal";
    }
    return "?";
}

const boost::system::error_category& kafka_category() noexcept {
    static const category instance;
    return instance;
}

error_class classify(boost::system::error_code ec) noexcept {
    if (ec.category() == kafka_category()) return classify_rd(static_cast<rd_kafka_resp_err_t>(ec.value()));
    if (ec.category() == faasd_category()) {
        switch (static_cast<faasd::errc>(ec.value())) {
            case faasd::errc::timeout:
            case faasd::errc::unavailable:
            case faasd::errc::rate_limited: return error_class::retryable;
            case faasd::errc::cancelled: return error_class::abortable;
            default: return error_class::permanent;
        }
    }
    return error_class::permanent;
}

std::string error_name(boost::system::error_code ec) {
    if (ec.category() == kafka_category()) return rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(ec.value()));
    return ec.category().name() + std::string(":") + std::to_string(ec.value());
}

std::string error::message() const {
    std::string m = error_name(code);
    m += " (";
    m += to_string(cls);
    m += ")";
    if (!detail.empty()) {
        m += ": ";
        m += detail;
    } else {
        m += ": ";
        m += code.message();
    }
    return m;
}

std::ostream& operator<<(std::ostream& os, const error& e) { return os << e.message(); }

error make_error(boost::system::error_code code, std::string detail) {
    return error{code, classify(code), std::move(detail)};
}

exception::exception(error e) : std::runtime_error("kafka: " + e.message()), err_(std::move(e)) {}

void throw_exception_from_error(const error& e, const boost::source_location&) { throw exception(e); }

}  // namespace faasd::kafka
