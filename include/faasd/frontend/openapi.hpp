#pragma once
// The OpenAPI 3.1 document served at GET /openapi.json: src/frontend/openapi.json
// with config/job.schema.json spliced in as components.schemas.JobSubmission,
// both embedded at build time. test/unit/frontend/openapi_test.cpp checks
// every route of route_table() against it.

#include <string_view>

namespace faasd::frontend {

/// The serialised document (built once, on first use).
std::string_view openapi_document();

/// config/job.schema.json as embedded in the binary.
std::string_view job_schema_document();

}  // namespace faasd::frontend
