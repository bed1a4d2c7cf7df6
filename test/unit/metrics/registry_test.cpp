#include <faasd/metrics/registry.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <thread>

using namespace faasd::metrics;

TEST_CASE("counters and gauges render in the Prometheus text format", "[metrics][unit]") {
    registry reg;
    auto& req = reg.counter("http_requests_total", "Requests served.", {"method", "status"});
    req.with({"GET", "200"}).inc();
    req.with({"GET", "200"}).inc(2);
    req.with({"POST", "201"}).inc(0.5);
    req.with({"GET", "404"}).inc(-3);  // ignored: counters only go up
    auto& conns = reg.gauge("connections", "Open connections.");
    conns.with({}).inc(3);
    conns.with({}).dec();
    reg.counter("a_total", "Comes first.");

    CHECK(reg.render() ==
          "# HELP a_total Comes first.\n"
          "# TYPE a_total counter\n"
          "a_total 0\n"
          "# HELP connections Open connections.\n"
          "# TYPE connections gauge\n"
          "connections 2\n"
          "# HELP http_requests_total Requests served.\n"
          "# TYPE http_requests_total counter\n"
          "http_requests_total{method=\"GET\",status=\"200\"} 3\n"
          "http_requests_total{method=\"GET\",status=\"404\"} 0\n"
          "http_requests_total{method=\"POST\",status=\"201\"} 0.5\n");
}

TEST_CASE("histograms render cumulative buckets, sum and count", "[metrics][unit]") {
    registry reg;
    const double bounds[] = {0.1, 1, 2.5};
    auto& h = reg.histogram("latency_seconds", "Request latency.", bounds, {"route"});
    auto& r = h.with({"/v1/jobs"});
    r.observe(0.05);
    r.observe(0.1);  // le is inclusive
    r.observe(0.7);
    r.observe(30);
    CHECK(reg.render() ==
          "# HELP latency_seconds Request latency.\n"
          "# TYPE latency_seconds histogram\n"
          "latency_seconds_bucket{route=\"/v1/jobs\",le=\"0.1\"} 2\n"
          "latency_seconds_bucket{route=\"/v1/jobs\",le=\"1\"} 3\n"
          "latency_seconds_bucket{route=\"/v1/jobs\",le=\"2.5\"} 3\n"
          "latency_seconds_bucket{route=\"/v1/jobs\",le=\"+Inf\"} 4\n"
          "latency_seconds_sum{route=\"/v1/jobs\"} 30.85\n"
          "latency_seconds_count{route=\"/v1/jobs\"} 4\n");

    registry plain;
    const double one[] = {1};
    plain.histogram("h", "x", one).with({}).observe(2);
    CHECK(plain.render() ==
          "# HELP h x\n# TYPE h histogram\n"
          "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n");
}

TEST_CASE("help text and label values are escaped", "[metrics][unit]") {
    CHECK(escape_help("a\\b\nc\"d") == "a\\\\b\\nc\"d");
    CHECK(escape_label_value("a\\b\nc\"d") == "a\\\\b\\nc\\\"d");
    registry reg;
    reg.gauge("g", "Line one\nline \\two", {"path"}).with({"/a\"b\n"}).set(-1.5);
    CHECK(reg.render() ==
          "# HELP g Line one\\nline \\\\two\n"
          "# TYPE g gauge\n"
          "g{path=\"/a\\\"b\\n\"} -1.5\n");
}

TEST_CASE("sample values use the shortest round-trip form", "[metrics][unit]") {
    CHECK(format_value(0) == "0");
    CHECK(format_value(42) == "42");
    CHECK(format_value(0.005) == "0.005");
    CHECK(format_value(1e21) == "1e+21");
    CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(format_value(std::nan("")) == "NaN");
}

TEST_CASE("registration is idempotent and rejects conflicts and bad names", "[metrics][unit]") {
    registry reg;
    auto& a = reg.counter("x_total", "X.", {"k"});
    CHECK(&reg.counter("x_total", "X.", {"k"}) == &a);
    CHECK(&a.with({"v"}) == &a.with({"v"}));  // children are stable
    CHECK_THROWS_AS(reg.counter("x_total", "X.", {"other"}), std::invalid_argument);
    CHECK_THROWS_AS(reg.gauge("x_total", "X.", {"k"}), std::invalid_argument);
    CHECK_THROWS_AS(reg.counter("1bad", "X."), std::invalid_argument);
    CHECK_THROWS_AS(reg.counter("bad-name", "X."), std::invalid_argument);
    CHECK_THROWS_AS(reg.counter("ok", "X.", {"__reserved"}), std::invalid_argument);
    CHECK_THROWS_AS(reg.counter("ok", "X.", {"a", "a"}), std::invalid_argument);
    const double b[] = {1, 2};
    const double unsorted[] = {2, 1};
    CHECK_THROWS_AS(reg.histogram("h", "H.", b, {"le"}), std::invalid_argument);
    CHECK_THROWS_AS(reg.histogram("h", "H.", unsorted), std::invalid_argument);
    CHECK_THROWS_AS(a.with({}), std::invalid_argument);
    CHECK_THROWS_AS(a.with({"1", "2"}), std::invalid_argument);
    CHECK(reg.counter("ns:sub_total", "Colons are allowed.").name() == "ns:sub_total");
}

TEST_CASE("metrics may be updated from several threads", "[metrics][unit]") {
    registry reg;
    auto& c = reg.counter("c_total", "C.", {"t"});
    auto& h = reg.histogram("h", "H.", default_latency_buckets());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) {
                c.with({"shared"}).inc();
                h.with({}).observe(0.002);
            }
        });
    for (auto& t : threads) t.join();
    CHECK(c.with({"shared"}).value() == 40000);
    auto s = h.with({}).snap();
    CHECK(s.count == 40000);
    CHECK(s.cumulative.back() == 40000);
    CHECK(s.cumulative[0] == 0);      // 0.002 > 0.001
    CHECK(s.cumulative[1] == 40000);  // 0.002 <= 0.0025
}
