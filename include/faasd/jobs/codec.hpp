#pragma once
// JSON wire format of the job model (docs/job-spec.md, docs/architecture.md).
// Encoding never fails; decoding returns errc::bad_message or
// errc::unsupported_version for input that does not fit.

#include <faasd/core/error.hpp>
#include <faasd/jobs/model.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace faasd::jobs {

boost::json::object to_json(const identity& v);
boost::json::object to_json(const repo_spec& v);
boost::json::object to_json(const job_spec& v);
boost::json::object to_json(const job_message& v);
boost::json::object to_json(const timing& v);
boost::json::object to_json(const job_error& v);
boost::json::object to_json(const job_result& v);
boost::json::object to_json(const job_status& v);

result<identity> identity_from_json(const boost::json::value& v);
result<repo_spec> repo_spec_from_json(const boost::json::value& v);
result<job_spec> job_spec_from_json(const boost::json::value& v);
result<job_message> job_message_from_json(const boost::json::value& v);
result<job_result> job_result_from_json(const boost::json::value& v);
result<job_status> job_status_from_json(const boost::json::value& v);

/// Serialises a message as compact JSON with "v": wire_version.
std::string encode(const job_message& m);
std::string encode(const job_result& r);
std::string encode(const job_status& s);

/// Parses and checks the version: bad_message for malformed JSON or fields,
/// unsupported_version when "v" is not wire_version.
result<job_message> decode_job_message(std::string_view bytes);
result<job_result> decode_job_result(std::string_view bytes);
result<job_status> decode_job_status(std::string_view bytes);

}  // namespace faasd::jobs
