#include <faasd/jobs/validate.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

using namespace faasd::jobs;
namespace json = boost::json;

namespace {

json::object minimal() {
    return json::parse(R"({"repo": {"url": "https://git.example.org/fn.git", "ref": "main"}})").as_object();
}

validation_result check(const json::object& o, const job_limits& lim = {}) { return validate_job(o, lim); }

// True when the body fails with an issue at `pointer`.
bool fails_at(const json::object& o, const std::string& pointer, const job_limits& lim = {}) {
    auto r = check(o, lim);
    if (r.ok()) return false;
    for (const auto& i : r.issues)
        if (i.pointer == pointer) return true;
    UNSCOPED_INFO("issues: " << r.issues.size() << " first at '" << r.issues.front().pointer << "': "
                             << r.issues.front().message);
    return false;
}

}  // namespace

TEST_CASE("validate: a minimal job gets the defaults", "[jobs][unit]") {
    auto r = check(minimal());
    REQUIRE(r.ok());
    const auto& s = r.job->spec;
    CHECK(s.repo.url == "https://git.example.org/fn.git");
    CHECK(s.repo.ref == "main");
    CHECK(s.repo.commit.empty());
    CHECK(s.timeout_s == 60);
    CHECK(s.retries == 2);
    CHECK(s.delivery == delivery_mode::at_least_once);
    CHECK(s.data.is_null());
    CHECK(s.entry.empty());
    CHECK(r.job->credentials.empty());
}

TEST_CASE("validate: a full job", "[jobs][unit]") {
    auto body = json::parse(R"({
      "repo": {"url": "ssh://git@git.example.org/fn.git", "commit": "0123456789ABCDEF0123456789abcdef01234567", "credential": "deploy"},
      "entry": ["python3", "main.py", ""],
      "data": {"n": [1, 2, 3]},
      "sources": {"in": {"url": "https://data.example.org/in.csv", "headers": {"Accept": "text/csv"}, "credential": "s3"}},
      "sinks": {"out": {"url": "https://data.example.org/out", "method": "post", "credential": "s3"}},
      "credentials": {"deploy": "ssh-key-material", "s3": "tok"},
      "timeout_s": 120, "delivery": "exactly-once", "retries": 0, "retry_on_failure": true,
      "env": {"FN_MODE": "fast", "TZ": "UTC"},
      "tags": ["nightly", "team:a"]
    })");
    auto r = validate_job(body, {});
    REQUIRE(r.ok());
    const auto& s = r.job->spec;
    CHECK(s.repo.commit == "0123456789abcdef0123456789abcdef01234567");
    CHECK(s.repo.credential == "deploy");
    CHECK(s.entry == std::vector<std::string>{"python3", "main.py", ""});
    CHECK(s.data.at("n").as_array().size() == 3);
    CHECK(s.sources.at("in").headers.at("Accept") == "text/csv");
    CHECK(s.sinks.at("out").method == "POST");
    CHECK(s.timeout_s == 120);
    CHECK(s.delivery == delivery_mode::exactly_once);
    CHECK(s.retries == 0);
    CHECK(s.retry_on_failure);
    CHECK(s.env.at("FN_MODE") == "fast");
    CHECK(s.tags.size() == 2);
    CHECK(r.job->credentials.at("s3").as_string() == "tok");
    CHECK(s.credentials.names == std::vector<std::string>{"deploy", "s3"});
    CHECK(s.credentials.ciphertext_b64.empty());  // sealing is the caller's job
}

TEST_CASE("validate: identity-like fields are ignored, unknown fields rejected", "[jobs][unit]") {
    auto o = minimal();
    o["owner"] = json::object{{"sub", "mallory"}};
    o["sub"] = "mallory";
    o["username"] = "root";
    o["roles"] = json::array{"faas-admin"};
    o["id"] = "01ARYZ6S41TSV4RRFFQ69G5FAV";
    o["state"] = "succeeded";
    CHECK(check(o).ok());
    o["timeout"] = 5;  // typo of timeout_s
    CHECK(fails_at(o, "/timeout"));
}

TEST_CASE("validate: body shape", "[jobs][unit]") {
    CHECK(!validate_job(json::array{}, {}).ok());
    CHECK(!validate_job_text("{not json", {}).ok());
    CHECK(validate_job_text("{not json", {}).issues.front().pointer.empty());
    CHECK(validate_job_text(json::serialize(minimal()), {}).ok());
    CHECK(fails_at(json::object{}, "/repo"));
}

TEST_CASE("validate: repo", "[jobs][unit]") {
    auto with_repo = [](json::value repo) {
        auto o = minimal();
        o["repo"] = std::move(repo);
        return o;
    };
    CHECK(fails_at(with_repo("https://x/y"), "/repo"));
    CHECK(fails_at(with_repo(json::object{{"ref", "main"}}), "/repo/url"));
    CHECK(fails_at(with_repo(json::object{{"url", 5}, {"ref", "main"}}), "/repo/url"));
    CHECK(fails_at(with_repo(json::object{{"url", "https://h/r"}}), "/repo"));  // neither ref nor commit
    CHECK(fails_at(with_repo(json::object{{"url", "https://h/r"}, {"ref", "main"}, {"commit", std::string(40, 'a')}}), "/repo"));
    CHECK(fails_at(with_repo(json::object{{"url", "https://h/r"}, {"ref", "main"}, {"branch", "x"}}), "/repo/branch"));

    SECTION("schemes") {
        auto url = [&](const char* u, const job_limits& lim = {}) {
            return check(with_repo(json::object{{"url", u}, {"ref", "main"}}), lim).ok();
        };
        CHECK(url("https://github.com/a/b.git"));
        CHECK(url("ssh://git@github.com/a/b.git"));
        CHECK(url("git@github.com:a/b.git"));
        CHECK_FALSE(url("http://github.com/a/b.git"));
        CHECK_FALSE(url("file:///srv/git/b.git"));
        CHECK_FALSE(url("ftp://h/b.git"));
        CHECK_FALSE(url("/srv/git/b.git"));
        CHECK_FALSE(url("https://"));
        CHECK_FALSE(url("https://user:pw@github.com/a/b.git"));  // secrets belong in credentials
        CHECK_FALSE(url("https://github.com/a b.git"));
        job_limits dev;
        dev.repo_schemes = {"https", "file"};
        CHECK(url("file:///srv/git/b.git", dev));
        CHECK_FALSE(url("file://relative", dev));
        CHECK_FALSE(url("git@github.com:a/b.git", dev));
        job_limits tiny;
        tiny.max_url_length = 10;
        CHECK_FALSE(url("https://github.com/a/b.git", tiny));
    }
    SECTION("refs") {
        auto ref = [&](const char* r) { return check(with_repo(json::object{{"url", "https://h/r"}, {"ref", r}})).ok(); };
        CHECK(ref("main"));
        CHECK(ref("release/1.2"));
        CHECK(ref("v1.0.0"));
        CHECK_FALSE(ref(""));
        CHECK_FALSE(ref("-rf"));
        CHECK_FALSE(ref("a..b"));
        CHECK_FALSE(ref("a b"));
        CHECK_FALSE(ref("a~1"));
        CHECK_FALSE(ref("x.lock"));
        CHECK_FALSE(ref("a/.hidden"));
        CHECK_FALSE(ref("trailing/"));
        CHECK_FALSE(ref("@"));
        CHECK_FALSE(ref("a@{1}"));
    }
    SECTION("commits") {
        auto commit = [&](std::string c) { return check(with_repo(json::object{{"url", "https://h/r"}, {"commit", c}})).ok(); };
        CHECK(commit(std::string(40, 'a')));
        CHECK(commit(std::string(64, 'f')));
        CHECK_FALSE(commit(std::string(39, 'a')));
        CHECK_FALSE(commit("abc123"));
        CHECK_FALSE(commit(std::string(40, 'g')));
    }
    SECTION("credential reference must exist") {
        auto o = with_repo(json::object{{"url", "https://h/r"}, {"ref", "main"}, {"credential", "git"}});
        CHECK(fails_at(o, "/repo/credential"));
        o["credentials"] = json::object{{"git", "tok"}};
        CHECK(check(o).ok());
        o["repo"].as_object()["credential"] = "bad name!";
        CHECK(fails_at(o, "/repo/credential"));
    }
}

TEST_CASE("validate: entry", "[jobs][unit]") {
    auto o = minimal();
    o["entry"] = "python3 main.py";
    CHECK(fails_at(o, "/entry"));
    o["entry"] = json::array{};
    CHECK(fails_at(o, "/entry"));
    o["entry"] = json::array{"", "x"};
    CHECK(fails_at(o, "/entry/0"));
    o["entry"] = json::array{"sh", 1};
    CHECK(fails_at(o, "/entry/1"));
    o["entry"] = json::array{"sh", "-c", "echo\nhi"};
    CHECK(fails_at(o, "/entry/2"));
    job_limits lim;
    lim.max_entry_args = 2;
    o["entry"] = json::array{"a", "b", "c"};
    CHECK(fails_at(o, "/entry", lim));
    o["entry"] = json::array{"a", "b"};
    CHECK(check(o, lim).ok());
}

TEST_CASE("validate: data", "[jobs][unit]") {
    auto o = minimal();
    o["data"] = json::array{1, "two", json::object{{"three", 3}}};
    CHECK(check(o).ok());
    job_limits lim;
    lim.max_data_bytes = 8;
    o["data"] = "0123456789";
    CHECK(fails_at(o, "/data", lim));
}

TEST_CASE("validate: sources and sinks", "[jobs][unit]") {
    auto o = minimal();
    o["sources"] = json::object{{"in", json::object{{"url", "https://d/in"}}}};
    o["sinks"] = json::object{{"out", json::object{{"url", "https://d/out"}}}};
    auto r = check(o);
    REQUIRE(r.ok());
    CHECK(r.job->spec.sinks.at("out").method == "PUT");

    SECTION("names") {
        o["sources"] = json::object{{"bad name", json::object{{"url", "https://d/in"}}}};
        CHECK(fails_at(o, "/sources/bad name"));
        o["sources"] = json::object{{"a/b", json::object{{"url", "https://d/in"}}}};
        CHECK(fails_at(o, "/sources/a~1b"));
    }
    SECTION("shape and fields") {
        o["sources"] = json::array{};
        CHECK(fails_at(o, "/sources"));
        o["sources"] = json::object{{"in", "https://d/in"}};
        CHECK(fails_at(o, "/sources/in"));
        o["sources"] = json::object{{"in", json::object{}}};
        CHECK(fails_at(o, "/sources/in/url"));
        o["sources"] = json::object{{"in", json::object{{"url", "https://d/in"}, {"method", "GET"}}}};
        CHECK(fails_at(o, "/sources/in/method"));  // sources have no method
        o["sources"] = json::object{{"in", json::object{{"url", "http://d/in"}}}};
        CHECK(fails_at(o, "/sources/in/url"));  // https only by default
        o.erase("sources");
        o["sinks"] = json::object{{"out", json::object{{"url", "https://d/out"}, {"method", "DELETE"}}}};
        CHECK(fails_at(o, "/sinks/out/method"));
    }
    SECTION("headers") {
        auto hdr = [&](json::object h) {
            o["sources"] = json::object{{"in", json::object{{"url", "https://d/in"}, {"headers", std::move(h)}}}};
        };
        hdr({{"Accept", "text/csv"}, {"X-Trace", ""}});
        CHECK(check(o).ok());
        hdr({{"Authorization", "Bearer secret"}});
        CHECK(fails_at(o, "/sources/in/headers/Authorization"));
        hdr({{"cookie", "a=b"}});
        CHECK(fails_at(o, "/sources/in/headers/cookie"));
        hdr({{"Bad Header", "x"}});
        CHECK(fails_at(o, "/sources/in/headers/Bad Header"));
        hdr({{"X-A", "line\r\nInjected: yes"}});
        CHECK(fails_at(o, "/sources/in/headers/X-A"));
        hdr({{"X-A", 1}});
        CHECK(fails_at(o, "/sources/in/headers/X-A"));
        hdr({{"X-A", "1"}, {"x-a", "2"}});
        CHECK(fails_at(o, "/sources/in/headers/x-a"));
        job_limits lim;
        lim.max_headers = 1;
        hdr({{"X-A", "1"}, {"X-B", "2"}});
        CHECK(fails_at(o, "/sources/in/headers", lim));
        lim = {};
        lim.max_string_length = 3;
        hdr({{"X-A", "1234"}});
        CHECK(fails_at(o, "/sources/in/headers/X-A", lim));
    }
    SECTION("counts") {
        job_limits lim;
        lim.max_sources = 1;
        lim.max_sinks = 1;
        o["sources"].as_object()["in2"] = json::object{{"url", "https://d/in2"}};
        CHECK(fails_at(o, "/sources", lim));
        o["sources"].as_object().erase("in2");
        o["sinks"].as_object()["out2"] = json::object{{"url", "https://d/o2"}};
        CHECK(fails_at(o, "/sinks", lim));
    }
    SECTION("credential references") {
        o["sinks"].as_object()["out"].as_object()["credential"] = "tok";
        CHECK(fails_at(o, "/sinks/out/credential"));
        o["credentials"] = json::object{{"tok", "s3cr3t"}};
        CHECK(check(o).ok());
    }
    SECTION("link schemes are configurable") {
        job_limits lim;
        lim.link_schemes = {"https", "http"};
        o["sources"] = json::object{{"in", json::object{{"url", "http://127.0.0.1:8000/in"}}}};
        CHECK(check(o, lim).ok());
    }
}

TEST_CASE("validate: credentials", "[jobs][unit]") {
    auto o = minimal();
    o["credentials"] = json::object{{"a", "secret-value"}};
    REQUIRE(check(o).ok());
    o["credentials"] = json::object{{"a", 42}};
    CHECK(fails_at(o, "/credentials/a"));
    o["credentials"] = json::object{{"a", ""}};
    CHECK(fails_at(o, "/credentials/a"));
    o["credentials"] = "x";
    CHECK(fails_at(o, "/credentials"));
    job_limits lim;
    lim.max_secret_length = 4;
    o["credentials"] = json::object{{"a", "secret-value"}};
    auto r = check(o, lim);
    REQUIRE_FALSE(r.ok());
    // Messages never echo the secret.
    for (const auto& i : r.issues) CHECK(i.message.find("secret-value") == std::string::npos);
    lim = {};
    lim.max_credentials = 1;
    o["credentials"] = json::object{{"a", "1"}, {"b", "2"}};
    CHECK(fails_at(o, "/credentials", lim));
}

TEST_CASE("validate: timeout, retries, delivery", "[jobs][unit]") {
    auto o = minimal();
    auto at = [&](const char* k, json::value v) {
        o[k] = std::move(v);
        return check(o);
    };
    CHECK(at("timeout_s", 1).ok());
    CHECK(at("timeout_s", 3600).ok());
    CHECK(at("timeout_s", 30.0).ok());
    CHECK_FALSE(at("timeout_s", 0).ok());
    CHECK_FALSE(at("timeout_s", 3601).ok());
    CHECK_FALSE(at("timeout_s", 1.5).ok());
    CHECK_FALSE(at("timeout_s", "60").ok());
    CHECK_FALSE(at("timeout_s", -5).ok());
    CHECK_FALSE(at("timeout_s", 1e300).ok());
    o.erase("timeout_s");
    CHECK(at("retries", 0).ok());
    CHECK(at("retries", 10).ok());
    CHECK_FALSE(at("retries", 11).ok());
    CHECK_FALSE(at("retries", -1).ok());
    o.erase("retries");
    CHECK(at("retry_on_failure", false).ok());
    CHECK_FALSE(at("retry_on_failure", "yes").ok());
    o.erase("retry_on_failure");
    CHECK(at("delivery", "at-most-once").ok());
    CHECK(at("delivery", "at-least-once").ok());
    CHECK(at("delivery", "exactly-once").ok());
    CHECK_FALSE(at("delivery", "exactly_once").ok());
    CHECK_FALSE(at("delivery", 1).ok());
    job_limits lim;
    lim.min_timeout_s = 5;
    lim.max_timeout_s = 10;
    lim.default_timeout_s = 7;
    o.erase("delivery");
    auto r = check(minimal(), lim);
    REQUIRE(r.ok());
    CHECK(r.job->spec.timeout_s == 7);
    o["timeout_s"] = 4;
    CHECK(fails_at(o, "/timeout_s", lim));
}

TEST_CASE("validate: env", "[jobs][unit]") {
    auto o = minimal();
    o["env"] = json::object{{"FN_X", "1"}, {"LANG", "C.UTF-8"}};
    CHECK(check(o).ok());
    o["env"] = json::object{{"LD_PRELOAD", "/tmp/x.so"}};
    CHECK(fails_at(o, "/env/LD_PRELOAD"));
    o["env"] = json::object{{"PATH", "/tmp"}};
    CHECK(fails_at(o, "/env/PATH"));
    o["env"] = json::object{{"FN_X", 1}};
    CHECK(fails_at(o, "/env/FN_X"));
    o["env"] = json::object{{"FN-X", "1"}};
    CHECK(fails_at(o, "/env/FN-X"));
    job_limits lim;
    lim.env_allow = {"*"};
    o["env"] = json::object{{"ANYTHING", "1"}};
    CHECK(check(o, lim).ok());
    lim.env_allow = {};
    CHECK(fails_at(o, "/env/ANYTHING", lim));
    lim = {};
    lim.max_env = 1;
    o["env"] = json::object{{"FN_A", "1"}, {"FN_B", "2"}};
    CHECK(fails_at(o, "/env", lim));
    CHECK(env_name_allowed("FN_", {"FN_*"}));
    CHECK_FALSE(env_name_allowed("1FN", {"*"}));
}

TEST_CASE("validate: tags", "[jobs][unit]") {
    auto o = minimal();
    o["tags"] = json::array{"a", "b"};
    CHECK(check(o).ok());
    o["tags"] = json::array{"a", "a"};
    CHECK(fails_at(o, "/tags/1"));
    o["tags"] = json::array{"a b"};
    CHECK(fails_at(o, "/tags/0"));
    o["tags"] = json::array{""};
    CHECK(fails_at(o, "/tags/0"));
    o["tags"] = "a";
    CHECK(fails_at(o, "/tags"));
    job_limits lim;
    lim.max_tags = 1;
    o["tags"] = json::array{"a", "b"};
    CHECK(fails_at(o, "/tags", lim));
    lim = {};
    lim.max_name_length = 3;
    o["tags"] = json::array{"abcd"};
    CHECK(fails_at(o, "/tags/0", lim));
}

TEST_CASE("validate: several issues are reported at once, capped", "[jobs][unit]") {
    auto o = minimal();
    o["timeout_s"] = 0;
    o["retries"] = 99;
    o["delivery"] = "maybe";
    auto r = check(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.issues.size() == 3);
    json::object many;
    for (int i = 0; i < 50; ++i) many["unknown" + std::to_string(i)] = 1;
    CHECK(check(many).issues.size() == max_reported_issues);
}

TEST_CASE("validate: limits are checked for consistency", "[jobs][unit]") {
    CHECK_FALSE(check_limits({}).has_value());
    job_limits l;
    l.default_timeout_s = 0;
    CHECK(check_limits(l).has_value());
    l = {};
    l.max_timeout_s = 0;
    CHECK(check_limits(l).has_value());
    l = {};
    l.repo_schemes = {"gopher"};
    CHECK(check_limits(l).has_value());
    l = {};
    l.repo_schemes = {};
    CHECK(check_limits(l).has_value());
    l = {};
    l.default_retries = 11;
    CHECK(check_limits(l).has_value());
}

TEST_CASE("validate: url_scheme", "[jobs][unit]") {
    CHECK(url_scheme("HTTPS://x") == "https");
    CHECK(url_scheme("git@github.com:a/b") == "ssh");
    CHECK(url_scheme("github.com:a/b").empty());
    CHECK(url_scheme("/a/b").empty());
    CHECK(url_scheme("1http://x").empty());
}
