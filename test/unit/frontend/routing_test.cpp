#include <faasd/frontend/app.hpp>
#include <faasd/frontend/limits.hpp>
#include <faasd/frontend/openapi.hpp>
#include <faasd/frontend/problems.hpp>
#include <faasd/core/id.hpp>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>

#ifndef FAASD_SOURCE_DIR
#define FAASD_SOURCE_DIR "."
#endif

using namespace faasd;
using namespace faasd::frontend;
namespace json = boost::json;

TEST_CASE("frontend: path matching", "[frontend][unit]") {
    std::map<std::string, std::string, std::less<>> p;
    CHECK(match_path("/v1/jobs", "/v1/jobs", p));
    CHECK(p.empty());
    CHECK(match_path("/v1/jobs/{id}", "/v1/jobs/ABC", p));
    CHECK(p.at("id") == "ABC");
    CHECK(match_path("/v1/jobs/{id}/result", "/v1/jobs/X/result", p));
    CHECK(p.at("id") == "X");
    CHECK_FALSE(match_path("/v1/jobs/{id}", "/v1/jobs/", p));
    CHECK_FALSE(match_path("/v1/jobs/{id}", "/v1/jobs", p));
    CHECK_FALSE(match_path("/v1/jobs/{id}", "/v1/jobs/a/b", p));
    CHECK_FALSE(match_path("/v1/jobs", "/v1/jobs/", p));
    CHECK_FALSE(match_path("/v1/jobs", "/v1/job", p));
    CHECK_FALSE(match_path("/healthz", "", p));
}

TEST_CASE("frontend: every route is in the OpenAPI document and vice versa", "[frontend][unit]") {
    auto doc = json::parse(openapi_document()).as_object();
    CHECK(doc.at("openapi").as_string().starts_with("3."));
    const auto& paths = doc.at("paths").as_object();
    std::set<std::pair<std::string, std::string>> in_table, in_doc;
    for (const auto& r : route_table()) {
        std::string method(r.method);
        for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        in_table.emplace(std::string(r.pattern), method);
        INFO(r.method << " " << r.pattern);
        REQUIRE(paths.contains(r.pattern));
        const auto& item = paths.at(r.pattern).as_object();
        REQUIRE(item.contains(method));
        const auto& op = item.at(method).as_object();
        CHECK(op.at("operationId").as_string() == r.name);
        // Public routes say so; protected ones inherit the bearer requirement and document 401.
        bool declared_public = op.contains("security") && op.at("security").as_array().empty();
        CHECK(declared_public == (r.who == access::public_));
        if (r.who != access::public_) CHECK(op.at("responses").as_object().contains("401"));
        // Path parameters are declared.
        if (std::string_view(r.pattern).find("{id}") != std::string_view::npos) CHECK(item.contains("parameters"));
    }
    for (const auto& [path, item] : paths)
        for (const auto& [method, op] : item.as_object())
            if (method != "parameters") in_doc.emplace(std::string(path), std::string(method));
    CHECK(in_doc == in_table);
    // Every $ref resolves.
    std::function<void(const json::value&)> walk = [&](const json::value& v) {
        if (v.is_object()) {
            for (const auto& [k, x] : v.get_object()) {
                if (k == "$ref" && x.is_string() && x.get_string().starts_with("#/components/")) {
                    std::string_view ref = x.get_string();
                    ref.remove_prefix(2);
                    const json::value* cur = &doc.at("components");
                    ref.remove_prefix(std::string_view("components/").size());
                    while (!ref.empty()) {
                        auto slash = ref.find('/');
                        auto key = ref.substr(0, slash);
                        INFO("unresolved $ref " << x.get_string());
                        REQUIRE(cur->as_object().contains(key));
                        cur = &cur->as_object().at(key);
                        ref = slash == std::string_view::npos ? std::string_view() : ref.substr(slash + 1);
                    }
                }
                walk(x);
            }
        } else if (v.is_array()) {
            for (const auto& x : v.get_array()) walk(x);
        }
    };
    walk(doc);
}

TEST_CASE("frontend: the OpenAPI job schema is config/job.schema.json", "[frontend][unit]") {
    std::ifstream f(std::string(FAASD_SOURCE_DIR) + "/config/job.schema.json");
    REQUIRE(f);
    std::stringstream ss;
    ss << f.rdbuf();
    auto file = json::parse(ss.str()).as_object();
    auto embedded = json::parse(job_schema_document()).as_object();
    CHECK(file == embedded);
    auto doc = json::parse(openapi_document()).as_object();
    auto sub = doc.at("components").at("schemas").at("JobSubmission").as_object();
    file.erase("$schema");
    CHECK(sub == file);
    // Every field the validator knows is in the schema.
    for (auto f2 : {"repo", "entry", "data", "sources", "sinks", "credentials", "timeout_s", "delivery", "retries",
                    "retry_on_failure", "env", "tags"})
        CHECK(sub.at("properties").as_object().contains(f2));
    // Schema defaults match the validator's.
    jobs::job_limits lim;
    CHECK(sub.at("properties").at("timeout_s").at("default").as_int64() == lim.default_timeout_s);
    CHECK(sub.at("properties").at("timeout_s").at("maximum").as_int64() == lim.max_timeout_s);
    CHECK(sub.at("properties").at("retries").at("default").as_int64() == lim.default_retries);
    CHECK(sub.at("properties").at("retries").at("maximum").as_int64() == lim.max_retries);
    CHECK(static_cast<std::size_t>(sub.at("properties").at("sources").at("maxProperties").as_int64()) == lim.max_sources);
    CHECK(static_cast<std::size_t>(sub.at("properties").at("tags").at("maxItems").as_int64()) == lim.max_tags);
}

TEST_CASE("frontend: rate limiter", "[frontend][unit]") {
    rate_limiter rl(10, 3);  // 10/s, burst 3
    std::int64_t t = 1000;
    CHECK_FALSE(rl.take("a", t));
    CHECK_FALSE(rl.take("a", t));
    CHECK_FALSE(rl.take("a", t));
    auto wait = rl.take("a", t);
    REQUIRE(wait);
    CHECK(wait->count() == 100);
    CHECK_FALSE(rl.take("b", t));  // per key
    CHECK(rl.take("a", t + 50));
    CHECK_FALSE(rl.take("a", t + 100));
    CHECK(rl.take("a", t + 100));
    // Idle buckets are forgotten.
    CHECK(rl.tracked() == 2);
    rl.take("c", t + 100'000);
    CHECK(rl.tracked() == 1);
    rate_limiter off(0, 0);
    for (int i = 0; i < 1000; ++i) CHECK_FALSE(off.take("a", 0));
}

TEST_CASE("frontend: idempotent job ids", "[frontend][unit]") {
    using namespace std::chrono;
    const auto day = duration_cast<milliseconds>(hours(24));
    const std::int64_t t = 1'800'000'000'000;
    auto a = idempotent_job_id("alice", "k", t, day);
    CHECK(is_job_id(a));
    CHECK(a == idempotent_job_id("alice", "k", t + 1000, day));  // same bucket
    CHECK(a != idempotent_job_id("bob", "k", t, day));
    CHECK(a != idempotent_job_id("alice", "k2", t, day));
    CHECK(idempotent_job_id("ali", "ce\x01k", t, day) != idempotent_job_id("alice", "\x01k", t, day));
    auto bucket_start = (t / day.count()) * day.count();
    CHECK(job_id_time_ms(a) == static_cast<std::uint64_t>(bucket_start));
    CHECK(a != idempotent_job_id("alice", "k", bucket_start + day.count(), day));
    CHECK(is_valid_idempotency_key("abc-123_~!"));
    CHECK_FALSE(is_valid_idempotency_key(""));
    CHECK_FALSE(is_valid_idempotency_key("a b"));
    CHECK_FALSE(is_valid_idempotency_key("ünï"));
    CHECK(sha256("abc").size() == 32);
}

TEST_CASE("frontend: job ids come from a CSPRNG and keep the ULID shape", "[frontend][unit]") {
    random_ids ids(4);  // small batches: several refills
    const std::int64_t now = 1'800'000'000'000;
    std::set<std::string> seen;
    std::set<std::string> tails;
    for (int i = 0; i < 1000; ++i) {
        auto id = ids.next(now + i);
        CHECK(is_job_id(id));
        CHECK(job_id_time_ms(id) == static_cast<std::uint64_t>(now + i));
        seen.insert(id);
        tails.insert(id.substr(10));  // the 80 random bits
    }
    CHECK(seen.size() == 1000);
    CHECK(tails.size() == 1000);
    // Two sources do not share a sequence (a seeded PRNG with a guessable seed would).
    random_ids other(4);
    CHECK(other.next(now).substr(10) != random_ids(4).next(now).substr(10));
}
