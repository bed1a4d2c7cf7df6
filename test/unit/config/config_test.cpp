#include "support/support.hpp"

#include <faasd/config/config.hpp>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>

using namespace faasd;
using namespace std::chrono_literals;

namespace {

struct scoped_env {
    std::string name;
    scoped_env(std::string n, const char* v) : name(std::move(n)) { ::setenv(name.c_str(), v, 1); }
    ~scoped_env() { ::unsetenv(name.c_str()); }
};

struct fixture {
    CLI::App app{"test"};
    CLI::App* worker = nullptr;
    CLI::App* frontend = nullptr;
    std::string brokers = "default:9092";
    std::string level = "info";
    int slots = 1;
    std::string listen = "127.0.0.1:8080";
    std::vector<std::string> props;

    fixture() {
        worker = app.add_subcommand("worker");
        frontend = app.add_subcommand("frontend");
        worker->add_option("--kafka-brokers", brokers);
        worker->add_option("--log-level", level);
        worker->add_option("--slots", slots);
        worker->add_option("--kafka-property", props);
        frontend->add_option("--listen", listen);
        config::bind_env(app);
    }
    void parse(std::vector<std::string> args) {
        std::reverse(args.begin(), args.end());
        app.parse(args);
    }
};

std::string write_file(const test::temp_dir& d, const std::string& text) {
    auto p = d.path() / "faasd.toml";
    std::ofstream(p) << text;
    return p.string();
}

}  // namespace

TEST_CASE("env names derive from long option names", "[config][unit]") {
    CHECK(config::env_name_for("kafka-brokers") == "FAASD_KAFKA_BROKERS");
    CHECK(config::env_name_for("slots") == "FAASD_SLOTS");
}

TEST_CASE("precedence is flag > environment > file > default", "[config][unit]") {
    test::temp_dir dir;
    auto file = write_file(dir, "# comment\nkafka-brokers = file:1\nslots = 3\nlog_level = \"debug\"\n");
    auto entries = config::read_file(file);

    SECTION("default when nothing is given") {
        fixture f;
        f.parse({"worker"});
        CHECK(f.brokers == "default:9092");
        CHECK(f.slots == 1);
    }
    SECTION("file beats default") {
        fixture f;
        f.parse({"worker"});
        config::apply_file(*f.worker, entries, file, config::all_long_names(f.app));
        CHECK(f.brokers == "file:1");
        CHECK(f.slots == 3);
        CHECK(f.level == "debug");
    }
    SECTION("environment beats file") {
        scoped_env e("FAASD_KAFKA_BROKERS", "env:2");
        fixture f;
        f.parse({"worker"});
        config::apply_file(*f.worker, entries, file, config::all_long_names(f.app));
        CHECK(f.brokers == "env:2");
        CHECK(f.slots == 3);  // still from the file
    }
    SECTION("flag beats environment and file") {
        scoped_env e("FAASD_KAFKA_BROKERS", "env:2");
        fixture f;
        f.parse({"worker", "--kafka-brokers", "flag:3"});
        config::apply_file(*f.worker, entries, file, config::all_long_names(f.app));
        CHECK(f.brokers == "flag:3");
    }
    SECTION("a repeated flag takes the last value") {
        fixture f;
        f.parse({"worker", "--slots", "2", "--slots", "5"});
        CHECK(f.slots == 5);
    }
    SECTION("list options take comma-separated file values") {
        auto p = write_file(dir, "kafka-property = a=1, b=2\n");
        fixture f;
        f.parse({"worker"});
        config::apply_file(*f.worker, config::read_file(p), p, config::all_long_names(f.app));
        CHECK(f.props == std::vector<std::string>{"a=1", "b=2"});
    }
}

TEST_CASE("sections apply only to their subcommand", "[config][unit]") {
    test::temp_dir dir;
    auto file = write_file(dir, "listen = 0.0.0.0:9000\n[worker]\nslots = 4\n[frontend]\nlisten = 1.2.3.4:1\n");
    fixture f;
    f.parse({"worker"});
    // "listen" at top level belongs to the frontend: not an error for the worker.
    config::apply_file(*f.worker, config::read_file(file), file, config::all_long_names(f.app));
    CHECK(f.slots == 4);
    CHECK(f.listen == "127.0.0.1:8080");
}

TEST_CASE("bad configuration is reported with file and line", "[config][unit]") {
    test::temp_dir dir;
    fixture f;
    f.parse({"worker"});
    auto names = config::all_long_names(f.app);

    SECTION("unknown key") {
        auto file = write_file(dir, "slots = 2\nno-such-option = 1\n");
        auto entries = config::read_file(file);
        CHECK_THROWS_WITH(config::apply_file(*f.worker, entries, file, names),
                          Catch::Contains("line 2") && Catch::Contains("unknown option 'no-such-option'"));
    }
    SECTION("unknown key in a section") {
        auto file = write_file(dir, "[worker]\nlisten = 1:1\n");
        CHECK_THROWS_WITH(config::apply_file(*f.worker, config::read_file(file), file, names),
                          Catch::Contains("unknown option 'listen'"));
    }
    SECTION("bad value type") {
        auto file = write_file(dir, "slots = many\n");
        CHECK_THROWS_WITH(config::apply_file(*f.worker, config::read_file(file), file, names),
                          Catch::Contains("bad value for 'slots'"));
    }
    SECTION("syntax errors") {
        CHECK_THROWS_WITH(config::read_file(write_file(dir, "just words\n")), Catch::Contains("expected key = value"));
        CHECK_THROWS_WITH(config::read_file(write_file(dir, "[worker\n")), Catch::Contains("malformed section"));
        CHECK_THROWS_WITH(config::read_file(write_file(dir, "a = \"open\n")), Catch::Contains("unterminated"));
    }
    SECTION("unreadable file") {
        CHECK_THROWS_WITH(config::read_file(dir.path() / "missing.toml"),
                          Catch::Contains("cannot read config file") && Catch::Contains("missing.toml") &&
                              Catch::Contains("No such file"));
        // An ifstream "opens" a directory and reads nothing: it must not pass as an empty file.
        CHECK_THROWS_WITH(config::read_file(dir.path()), Catch::Contains("cannot read config file " +
                                                                         dir.path().string() + ": it is a directory"));
    }
}

TEST_CASE("broker lists are validated", "[config][unit]") {
    CHECK(config::parse_broker_list("a:1").value() == std::vector<std::string>{"a:1"});
    CHECK(config::parse_broker_list("a:1, b:65535").value() == std::vector<std::string>{"a:1", "b:65535"});
    for (auto bad : {"", "a", "a:", ":9092", "a:0", "a:65536", "a:x", "a:1,,b:2", "a b:1", "http://a:1"}) {
        INFO(bad);
        CHECK_FALSE(config::parse_broker_list(bad).has_value());
    }
}

TEST_CASE("durations, sizes and endpoints parse", "[config][unit]") {
    CHECK(config::parse_duration("250ms").value() == 250ms);
    CHECK(config::parse_duration("30s").value() == 30s);
    CHECK(config::parse_duration("30").value() == 30s);
    CHECK(config::parse_duration("2m").value() == 120s);
    CHECK(config::parse_duration("1h").value() == 3600s);
    CHECK_FALSE(config::parse_duration("1d").has_value());
    CHECK_FALSE(config::parse_duration("-1s").has_value());
    CHECK_FALSE(config::parse_duration("").has_value());

    CHECK(config::parse_size("512").value() == 512);
    CHECK(config::parse_size("64KiB").value() == 64 * 1024);
    CHECK(config::parse_size("1MiB").value() == 1024 * 1024);
    CHECK(config::parse_size("10MB").value() == 10'000'000);
    CHECK_FALSE(config::parse_size("1XB").has_value());
    CHECK_FALSE(config::parse_size("MiB").has_value());

    auto e = config::parse_endpoint(":8080").value();
    CHECK(e.host == "127.0.0.1");
    CHECK(e.port == 8080);
    CHECK(config::parse_endpoint("0.0.0.0:0").value().port == 0);
    CHECK(config::parse_endpoint("[::1]:80").value().host == "::1");
    CHECK_FALSE(config::parse_endpoint("8080").has_value());
    CHECK_FALSE(config::parse_endpoint("h:70000").has_value());
}

TEST_CASE("unknown FAASD_* variables are reported: only exact tooling names are exempt", "[config][unit]") {
    CLI::App app{"test"};
    auto* worker = app.add_subcommand("worker");
    std::string cache_dir, cache_max;
    worker->add_option("--cache-dir", cache_dir);
    worker->add_option("--cache-max-size", cache_max);
    config::bind_env(app);
    std::vector<std::string> entries = {
        "FAASD_CACHE_DIR=/c",           // an option (the worker's --cache-dir)
        "FAASD_CACHE_MAX_SIZE=1GiB",    // an option
        "FAASD_CACHE_MAXSIZE=1GiB",     // a typo: must not hide behind a FAASD_CACHE* prefix
        "FAASD_CACHE=x",                // no such option
        "FAASD_DOWNLOADS_DIR=/d",       // tooling (services.sh, install-cue.sh, ...)
        "FAASD_SERVICES_DIR=/s",        // tooling (services.env)
        "FAASD_SERVICES_DIRX=/s",       // a typo
        "FAASD_CREDENTIALS_KEYS=k1:x",  // read directly by the frontend and worker
        "FAASD_CREDENTIALS_KEY=k1:x",   // a typo
        "FAASD_TEST_KAFKA=h:1",         // the test harness
        "FAASD_CONFIG=/f",              // --config's variable
        "OTHER=1",
    };
    std::vector<char*> env;
    for (auto& e : entries) env.push_back(e.data());
    env.push_back(nullptr);
    auto unknown = config::unknown_env(app, env.data());
    std::sort(unknown.begin(), unknown.end());
    CHECK(unknown == std::vector<std::string>{"FAASD_CACHE", "FAASD_CACHE_MAXSIZE", "FAASD_CREDENTIALS_KEY",
                                              "FAASD_SERVICES_DIRX"});
}
