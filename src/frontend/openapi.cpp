#include <faasd/frontend/openapi.hpp>

#include "embedded_documents.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>

namespace faasd::frontend {

std::string_view openapi_document() {
    static const std::string doc = [] {
        auto api = boost::json::parse(detail::openapi_template).as_object();
        auto schema = boost::json::parse(detail::job_schema).as_object();
        schema.erase("$schema");  // the dialect is the document's (OpenAPI 3.1 = JSON Schema 2020-12)
        api["components"].as_object()["schemas"].as_object()["JobSubmission"] = std::move(schema);
        return boost::json::serialize(api);
    }();
    return doc;
}

std::string_view job_schema_document() { return detail::job_schema; }

}  // namespace faasd::frontend
