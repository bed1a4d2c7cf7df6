#pragma once
// The frontend's ports (STYLE.md section 6): the small abstract interfaces the
// pure handlers use to reach the world. The role (roles/frontend) implements
// them with Kafka, OpenSSL and Keycloak; unit tests use fakes
// (test/unit/frontend/fakes.hpp).
//
// Every awaitable member completes on the caller's executor (the loop thread).

#include <faasd/core/error.hpp>
#include <faasd/frontend/marker.hpp>
#include <faasd/jobs/model.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace faasd::frontend {

using jobs::unix_ms;

/// Realm roles the frontend understands.
inline constexpr std::string_view role_user = "faas-user";
inline constexpr std::string_view role_admin = "faas-admin";

/// The authenticated caller, from a verified token.
struct caller {
    jobs::identity identity;     ///< subject, username, realm roles
    std::int64_t expires_at = 0;  ///< the token's exp, Unix seconds

    bool has_role(std::string_view r) const noexcept;
    /// May use the job API: faas-user or faas-admin.
    bool is_user() const noexcept { return has_role(role_user) || has_role(role_admin); }
    bool is_admin() const noexcept { return has_role(role_admin); }
    const std::string& subject() const noexcept { return identity.subject; }
};

/// Verifies bearer tokens.
class authenticator {
public:
    virtual ~authenticator() = default;
    /// errc::unauthorized for every kind of bad token (the reason goes to logs
    /// and metrics inside the implementation, never to the client);
    /// errc::unavailable when no keys could be loaded at all.
    virtual boost::asio::awaitable<result<caller>> authenticate(std::string_view token) = 0;
};

/// A cancellation request, as published on the cancel topic.
struct cancel_request {
    std::string id;
    std::string by;  ///< subject of the caller
    unix_ms at = 0;
};

/// Writes to Kafka. Every call completes only when the broker acknowledged
/// the records it promises (acks=all), or fails with errc::unavailable
/// (nothing is promised to the client then).
class job_publisher {
public:
    virtual ~job_publisher() = default;
    /// The job message on its delivery mode's jobs topic and the queued
    /// snapshot on the state topic, both keyed by the job id and sent at once.
    /// Succeeds once the job message is acknowledged: the job is stored and
    /// will run. A queued snapshot that fails is logged and counted, not
    /// returned (the worker's running snapshot makes the job visible to the
    /// other replicas; this replica applies the queued one itself).
    virtual boost::asio::awaitable<result<void>> submit(const jobs::job_message& m, const jobs::job_status& queued) = 0;
    /// The cancel request on the cancel topic and, when given, a cancelled
    /// snapshot on the state topic.
    virtual boost::asio::awaitable<result<void>> cancel(const cancel_request& c,
                                                        const jobs::job_status* cancelled) = 0;
    /// Erases a job from the state topic: `marker` when given (its key may
    /// still be repeated), else a tombstone. Also tombstones markers.
    virtual boost::asio::awaitable<result<void>> erase(std::string_view id, const erased_marker* marker) = 0;
};

/// The observer's side: its latest report and its live parameters.
class observer_port {
public:
    virtual ~observer_port() = default;
    /// The latest report read from the observer topic, if any.
    virtual std::optional<boost::json::value> report() const = 0;
    /// The parameters last published on the observer-config topic, if any.
    virtual std::optional<boost::json::value> config() const = 0;
    /// Publishes new parameters (already validated) to the compacted
    /// observer-config topic and completes on the broker's acknowledgement.
    virtual boost::asio::awaitable<result<void>> publish_config(const boost::json::value& params) = 0;
};

/// Seals credentials for one job (AES-256-GCM, AAD = job id).
class credential_sealer {
public:
    virtual ~credential_sealer() = default;
    /// The sealed form of the credentials object (names left for the caller).
    /// errc::unavailable when no key is loaded.
    virtual result<jobs::sealed_credentials> seal(const boost::json::object& credentials, std::string_view job_id) = 0;
};

/// Wall-clock time (event time): Unix milliseconds.
class clock {
public:
    virtual ~clock() = default;
    virtual unix_ms now() const = 0;
};

/// Fresh job ids (ULIDs).
class id_source {
public:
    virtual ~id_source() = default;
    virtual std::string new_id(unix_ms now) = 0;
};

}  // namespace faasd::frontend
