// The example functions end to end: each examples/functions/<name> directory
// becomes a real git repository, is prepared by the repository cache into a
// job workspace, and runs in the sandbox.

#include "../git/git_fixtures.hpp"

#include "support/support.hpp"

#include <faasd/core/id.hpp>
#include <faasd/git/cache.hpp>
#include <faasd/sandbox/runner.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <openssl/hmac.h>
#include <sys/stat.h>

#include <fstream>

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace tg = faasd::test::git;
using namespace std::chrono_literals;

namespace {

struct world {
    faasd::test::temp_dir tmp{"faasd-examples"};
    faasd::git::repo_cache cache;
    faasd::sandbox::function_runner runner;

    static faasd::git::cache_config cache_cfg(const fs::path& dir) {
        faasd::git::cache_config c;
        c.dir = dir;
        c.schemes = faasd::git::scheme_policy::development();
        return c;
    }
    world() : cache(cache_cfg(tmp.path() / "cache"), faasd::logger::null()), runner({}, faasd::logger::null()) {
        ::chmod(tmp.path().c_str(), 0755);
    }

    // Publishes examples/functions/<name> as a repository; returns its file:// URL.
    std::string publish(const std::string& name) {
        if (auto it = published.find(name); it != published.end()) return it->second;
        tg::repo r(tmp.path() / "work" / name, tmp.path() / "served" / (name + ".git"));
        r.add_tree(faasd::test::source_dir() / "examples/functions" / name);
        r.commit("example " + name);
        return published[name] = r.file_url();
    }
    std::map<std::string, std::string> published;

    struct outcome {
        faasd::git::prepare_result prepared;
        faasd::sandbox::run_result run;
        std::unique_ptr<faasd::sandbox::workspace> ws;
    };

    // What a worker does with a job: workspace, checkout, inputs, run.
    outcome run_job(const std::string& url, const std::string& input, std::map<std::string, std::string> sources = {},
                    std::string credentials = "{}") {
        outcome o;
        auto id = faasd::new_job_id();
        o.ws = std::make_unique<faasd::sandbox::workspace>(tmp.path() / "jobs", id, 1);
        faasd::git::prepare_request pr;
        pr.url = url;
        pr.ref = "main";
        pr.destination = o.ws->code_dir();
        o.prepared = faasd::test::run_coroutine<faasd::git::prepare_result>(
            [&]() -> asio::awaitable<faasd::git::prepare_result> { co_return co_await cache.prepare(pr); }, 60s);
        REQUIRE(o.prepared.has_value());
        auto cmd = faasd::sandbox::load_function(o.ws->code_dir().string(), {});
        REQUIRE(cmd.has_value());
        o.ws->write_input(json::parse(input));
        for (const auto& [name, content] : sources) std::ofstream(*o.ws->source_path(name), std::ios::binary) << content;
        faasd::sandbox::run_request rr;
        rr.job_id = id;
        rr.ws = o.ws.get();
        rr.command = *cmd;
        rr.stdin_data = input;
        rr.credentials_json = std::move(credentials);
        o.run = faasd::test::run_coroutine<faasd::sandbox::run_result>(
            [&]() -> asio::awaitable<faasd::sandbox::run_result> { co_return co_await runner.run(rr); }, 60s);
        return o;
    }
};

std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
    unsigned char out[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out, &len);
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; ++i) {
        s.push_back(hex[out[i] >> 4]);
        s.push_back(hex[out[i] & 15]);
    }
    return s;
}

}  // namespace

TEST_CASE("example echo-sh: an executable main returns its input", "[sandbox][integration]") {
    world w;
    auto o = w.run_job(w.publish("echo-sh"), R"({"hello": "world", "n": 42})");
    INFO(o.run.stderr_text);
    REQUIRE(o.run.status.outcome == faasd::sandbox::run_outcome::succeeded);
    CHECK(o.run.result.at("echo").at("n") == 42);
    CHECK(o.prepared->cloned);
}

TEST_CASE("example wordcount-py: a Python function with faasd.json", "[sandbox][integration]") {
    world w;
    auto url = w.publish("wordcount-py");
    auto o = w.run_job(url, R"({"text": "the cat and the hat and the bat", "top": 2})");
    INFO(o.run.stderr_text);
    REQUIRE(o.run.status.outcome == faasd::sandbox::run_outcome::succeeded);
    CHECK(o.run.result_source == "stdout");
    CHECK(o.run.result.at("words") == 8);
    CHECK(o.run.result.at("unique") == 5);
    CHECK(o.run.result.at("top").at(0).at(0) == "the");
    CHECK(o.run.result.at("top").at(0).at(1) == 3);

    // From a source file instead, and the second job is a cache hit.
    auto from_source = w.run_job(url, "{}", {{"text", "a b a"}});
    REQUIRE(from_source.run.status.outcome == faasd::sandbox::run_outcome::succeeded);
    CHECK(from_source.run.result.at("words") == 3);
    CHECK(from_source.prepared->cache_hit);

    auto missing = w.run_job(url, "{}");
    CHECK(missing.run.status.outcome == faasd::sandbox::run_outcome::exit_nonzero);
    CHECK(missing.run.status.exit_code == 2);
}

TEST_CASE("example fetch-transform-put: source in, credential used, output for a sink", "[sandbox][integration]") {
    world w;
    const std::string sales = "region,amount\neu,10.5\nus,3\neu,4.5\n";
    auto o = w.run_job(w.publish("fetch-transform-put"), "{}", {{"sales", sales}}, R"({"signing_key": "k-789"})");
    INFO(o.run.stderr_text);
    REQUIRE(o.run.status.outcome == faasd::sandbox::run_outcome::succeeded);
    REQUIRE(o.run.outputs.size() == 1);
    CHECK(o.run.outputs[0].name == "report.csv");
    std::ifstream f(o.run.outputs[0].path, std::ios::binary);
    std::string report((std::istreambuf_iterator<char>(f)), {});
    CHECK(report == "region,total\neu,15.00\nus,3.00\n");
    CHECK(o.run.result.at("rows") == 3);
    CHECK(o.run.result.at("signature").as_string() == hmac_sha256_hex("k-789", report));
    CHECK(o.run.stdout_text.find("k-789") == std::string::npos);
    CHECK(o.run.stderr_text.find("k-789") == std::string::npos);

    // The manifest maps the sink "report" to report.csv.
    auto cmd = faasd::sandbox::load_function(o.ws->code_dir().string(), {});
    REQUIRE(cmd.has_value());
    auto m = faasd::sandbox::match_outputs({"report.csv"}, {"report"}, cmd->outputs);
    CHECK(m[0].sink == "report");

    auto no_key = w.run_job(w.publish("fetch-transform-put"), "{}", {{"sales", sales}});  // cached repository, no credential
    CHECK(no_key.run.status.outcome == faasd::sandbox::run_outcome::exit_nonzero);
    CHECK(no_key.run.status.exit_code == 3);
}
