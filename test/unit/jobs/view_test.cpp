#include <faasd/core/id.hpp>
#include <faasd/jobs/view.hpp>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include <set>

using namespace faasd;
using namespace faasd::jobs;
namespace json = boost::json;

namespace {

std::string id_at(std::uint64_t ms, std::uint8_t n) {
    std::array<std::uint8_t, 10> r{};
    r[9] = n;
    return make_job_id(ms, r);
}

job_status queued(const std::string& id, const std::string& sub, unix_ms at) {
    job_status s;
    s.id = id;
    s.owner = {sub, sub + "-name", {"faas-user"}};
    s.state = job_state::queued;
    s.submitted_at = at;
    s.updated_at = at;
    s.repo = {"https://git.example.org/fn.git", "main", "", ""};
    s.tags = {"t1", "t2"};
    return s;
}

job_status finished(job_status s, job_state st, std::string output = "{\"ok\":true}") {
    s.state = st;
    s.worker = "w1";
    s.started_at = s.submitted_at + 10;
    s.finished_at = s.submitted_at + 100;
    s.updated_at = s.finished_at;
    job_result r;
    r.id = s.id;
    r.owner_subject = s.owner.subject;
    r.state = st;
    r.worker = "w1";
    r.exit_code = st == job_state::succeeded ? 0 : 1;
    r.output = json::parse(output);
    r.stdout_text = "hello\n";
    r.times.submitted_at = s.submitted_at;
    r.times.total_ms = 100;
    r.times.run_ms = 80;
    if (st == job_state::failed) r.error = {"exit_nonzero", "exit status 1"};
    s.result = r;
    if (st == job_state::failed) s.error = r.error;
    return s;
}

}  // namespace

TEST_CASE("view: insert, get and round-trip of every field", "[jobs][unit]") {
    job_view v;
    auto s = queued(id_at(1000, 1), "alice", 1000);
    s.idempotency_key = "key-1";
    s.delivery = delivery_mode::exactly_once;
    s.repo = {"https://h/r.git", "", std::string(40, 'a'), ""};
    CHECK(v.apply(s) == apply_outcome::inserted);
    auto got = v.get(s.id);
    REQUIRE(got);
    CHECK(got->id == s.id);
    CHECK(got->owner == s.owner);
    CHECK(got->state == job_state::queued);
    CHECK(got->submitted_at == 1000);
    CHECK(got->repo.commit == std::string(40, 'a'));
    CHECK(got->repo.ref.empty());
    CHECK(got->delivery == delivery_mode::exactly_once);
    CHECK(got->tags == s.tags);
    CHECK(got->idempotency_key == "key-1");
    CHECK_FALSE(got->result);
    CHECK(v.size() == 1);
    CHECK(v.owner_of(s.id) == "alice");
    CHECK(v.state_of(s.id) == job_state::queued);
    CHECK_FALSE(v.get("NOPE"));
    CHECK(v.owner_of("NOPE").empty());
}

TEST_CASE("view: merges snapshots and keeps counters", "[jobs][unit]") {
    job_view v;
    auto q = queued(id_at(1000, 1), "alice", 1000);
    v.apply(q);
    CHECK(v.counts()[static_cast<int>(job_state::queued)] == 1);
    CHECK(v.unfinished("alice") == 1);

    auto running = q;
    running.state = job_state::running;
    running.worker = "w1";
    running.updated_at = 1010;
    CHECK(v.apply(running) == apply_outcome::replaced);
    CHECK(v.apply(q) == apply_outcome::kept);  // older
    CHECK(v.get(q.id)->state == job_state::running);
    CHECK(v.counts()[static_cast<int>(job_state::queued)] == 0);
    CHECK(v.counts()[static_cast<int>(job_state::running)] == 1);

    auto done = finished(q, job_state::failed);
    CHECK(v.apply(done) == apply_outcome::replaced);
    CHECK(v.unfinished("alice") == 0);
    auto got = v.get(q.id);
    CHECK(got->state == job_state::failed);
    CHECK(got->error.code == "exit_nonzero");
    CHECK(got->error.message == "exit status 1");
    CHECK(got->worker == "w1");
    CHECK(v.apply(running) == apply_outcome::kept);
    CHECK(v.counts()[static_cast<int>(job_state::failed)] == 1);
}

TEST_CASE("view: results are served as stored JSON", "[jobs][unit]") {
    job_view v;
    auto q = queued(id_at(1000, 1), "alice", 1000);
    v.apply(q);
    CHECK_FALSE(v.result_json(q.id));
    v.apply(finished(q, job_state::succeeded, R"({"answer": 42})"));
    auto text = v.result_json(q.id);
    REQUIRE(text);
    auto o = json::parse(*text).as_object();
    CHECK(o.at("id").as_string() == q.id);
    CHECK(o.at("state").as_string() == "succeeded");
    CHECK(o.at("exit_code").as_int64() == 0);
    CHECK(o.at("output").at("answer").as_int64() == 42);
    CHECK(o.at("stdout").as_string() == "hello\n");
    CHECK(o.at("timing").at("total_ms").as_int64() == 100);
    CHECK_FALSE(o.contains("result_capped"));
    auto full = v.get_with_result(q.id);
    REQUIRE(full->result);
    CHECK(full->result->output.at("answer").as_int64() == 42);
    CHECK(full->result->times.run_ms == 80);
}

TEST_CASE("view: large results are capped", "[jobs][unit]") {
    view_limits lim;
    lim.max_result_bytes = 1024;
    job_view v(lim);
    auto q = queued(id_at(1000, 1), "alice", 1000);
    auto done = finished(q, job_state::succeeded, "\"" + std::string(5000, 'x') + "\"");
    done.result->stdout_text = std::string(3000, 'a') + "THE-END";
    done.result->stderr_text = std::string(3000, 'e');
    done.result->outputs.push_back({"out.csv", 123, "out", 201});
    v.apply(done);
    auto o = json::parse(*v.result_json(q.id)).as_object();
    CHECK(o.at("result_capped").as_bool());
    CHECK(o.at("output").is_null());
    CHECK(o.at("stdout_truncated").as_bool());
    CHECK(o.at("stderr_truncated").as_bool());
    auto so = std::string(o.at("stdout").as_string());
    CHECK(so.size() < 1024);
    CHECK(so.ends_with("THE-END"));  // the end of the output is what matters most
    CHECK(o.at("outputs").as_array().size() == 1);
    CHECK(v.memory_bytes() < 64 * 1024);

    auto capped = json::parse(capped_result_json(*done.result, 1024)).as_object();
    CHECK(capped.at("result_capped").as_bool());
    auto small = json::parse(capped_result_json(*finished(q, job_state::succeeded).result, 1024)).as_object();
    CHECK_FALSE(small.contains("result_capped"));
}

TEST_CASE("view: erase drops the job and ignores late duplicates", "[jobs][unit]") {
    job_view v;
    auto q = queued(id_at(1000, 1), "alice", 1000);
    v.apply(q);
    auto done = finished(q, job_state::succeeded);
    v.apply(done);
    CHECK(v.erase(q.id));
    CHECK_FALSE(v.erase(q.id));
    CHECK_FALSE(v.get(q.id));
    CHECK(v.size() == 0);
    CHECK(v.unfinished("alice") == 0);
    CHECK(v.list("alice", std::nullopt, 10, "").items.empty());
    for (auto c : v.counts()) CHECK(c == 0);
    // A redelivered attempt's snapshots arrive after the tombstone.
    auto late = q;
    late.state = job_state::running;
    late.updated_at = 5000;
    CHECK(v.apply(late) == apply_outcome::ignored);
    CHECK(v.apply(done) == apply_outcome::ignored);
    CHECK_FALSE(v.get(q.id));
    // A new job under the same id (an idempotency key reused after erasure) is accepted.
    auto again = queued(q.id, "alice", 9000);
    CHECK(v.apply(again) == apply_outcome::inserted);
    CHECK(v.get(q.id)->submitted_at == 9000);
}

TEST_CASE("view: erased-id memory is bounded", "[jobs][unit]") {
    view_limits lim;
    lim.remember_erased = 2;
    job_view v(lim);
    std::vector<job_status> jobs;
    for (std::uint8_t i = 0; i < 3; ++i) {
        jobs.push_back(queued(id_at(1000 + i, i), "alice", 1000 + i));
        v.apply(jobs.back());
        v.erase(jobs.back().id);
    }
    CHECK(v.apply(jobs[0]) == apply_outcome::inserted);  // forgotten
    CHECK(v.apply(jobs[2]) == apply_outcome::ignored);   // remembered
}

TEST_CASE("view: rejects malformed ids", "[jobs][unit]") {
    job_view v;
    CHECK(v.apply(queued("", "alice", 1)) == apply_outcome::ignored);
    CHECK(v.apply(queued(std::string(27, 'A'), "alice", 1)) == apply_outcome::ignored);
    CHECK(v.apply(queued("a/b", "alice", 1)) == apply_outcome::ignored);
    CHECK(v.apply(queued("short-id_1", "alice", 1)) == apply_outcome::inserted);
}

TEST_CASE("view: per-owner listing, newest first, with cursor paging", "[jobs][unit]") {
    job_view v;
    // 25 jobs for alice, 5 for bob, inserted out of order.
    std::vector<std::string> alice_ids;
    for (int i = 0; i < 25; ++i) {
        int k = (i * 7) % 25;  // a permutation of 0..24
        auto id = id_at(1000 + static_cast<unsigned>(k), static_cast<std::uint8_t>(k));
        v.apply(queued(id, "alice", 1000 + k));
    }
    for (int k = 0; k < 25; ++k) alice_ids.push_back(id_at(1000 + static_cast<unsigned>(k), static_cast<std::uint8_t>(k)));
    for (int k = 0; k < 5; ++k) v.apply(queued(id_at(2000 + static_cast<unsigned>(k), static_cast<std::uint8_t>(100 + k)), "bob", 2000 + k));

    std::vector<std::string> seen;
    std::string cursor;
    int pages = 0;
    do {
        auto page = v.list("alice", std::nullopt, 10, cursor);
        for (auto& s : page.items) {
            CHECK(s.owner.subject == "alice");
            seen.push_back(s.id);
        }
        cursor = page.next_cursor;
        ++pages;
    } while (!cursor.empty());
    CHECK(pages == 3);
    REQUIRE(seen.size() == 25);
    for (int k = 0; k < 25; ++k) CHECK(seen[static_cast<std::size_t>(k)] == alice_ids[static_cast<std::size_t>(24 - k)]);

    CHECK(v.list("bob", std::nullopt, 100, "").items.size() == 5);
    CHECK(v.list("carol", std::nullopt, 100, "").items.empty());
    CHECK(v.list("", std::nullopt, 100, "").items.empty());

    SECTION("jobs inserted between pages do not disturb the next page") {
        auto first = v.list("alice", std::nullopt, 10, "");
        v.apply(queued(id_at(5000, 200), "alice", 5000));  // newer than everything
        auto second = v.list("alice", std::nullopt, 10, first.next_cursor);
        CHECK(second.items.front().id == alice_ids[14]);
    }
    SECTION("erasing the cursor's job does not break paging") {
        auto first = v.list("alice", std::nullopt, 10, "");
        v.erase(first.items.back().id);
        auto second = v.list("alice", std::nullopt, 10, first.next_cursor);
        CHECK(second.items.front().id == alice_ids[14]);
    }
    SECTION("state filter and bounded scanning") {
        // finish every third job
        for (int k = 0; k < 25; k += 3) {
            auto id = alice_ids[static_cast<std::size_t>(k)];
            v.apply(finished(queued(id, "alice", 1000 + k), job_state::succeeded));
        }
        auto page = v.list("alice", job_state::succeeded, 100, "");
        CHECK(page.items.size() == 9);
        for (auto& s : page.items) CHECK(s.state == job_state::succeeded);
        CHECK(page.next_cursor.empty());
        // at most 5 jobs examined per call: pages may be short but the cursor goes on
        std::size_t total = 0;
        std::string c;
        int calls = 0;
        do {
            auto p = v.list("alice", job_state::succeeded, 100, c, 5);
            total += p.items.size();
            c = p.next_cursor;
            ++calls;
        } while (!c.empty());
        CHECK(total == 9);
        CHECK(calls == 5);
    }
    SECTION("malformed cursors") {
        CHECK(job_view::is_valid_cursor(""));
        CHECK_FALSE(job_view::is_valid_cursor("!!!"));
        CHECK_FALSE(job_view::is_valid_cursor("YWJj"));  // "abc"
        CHECK(v.list("alice", std::nullopt, 10, "!!!").items.empty());
        auto p = v.list("alice", std::nullopt, 10, "");
        CHECK(job_view::is_valid_cursor(p.next_cursor));
    }
}

TEST_CASE("view: interned strings are released", "[jobs][unit]") {
    view_limits lim;
    lim.remember_erased = 0;  // measured separately
    job_view v(lim);
    auto base = v.memory_bytes();
    std::vector<std::string> ids;
    for (int i = 0; i < 1000; ++i) {
        auto s = queued(id_at(1000 + static_cast<unsigned>(i), static_cast<std::uint8_t>(i)), "user-" + std::to_string(i % 10), 1000 + i);
        s.repo.url = "https://git.example.org/repo-" + std::to_string(i % 7) + "-with-a-long-name.git";
        ids.push_back(s.id);
        v.apply(s);
    }
    auto full = v.memory_bytes();
    CHECK(full > base);
    CHECK(full < 1000 * 200);  // compact: well under 200 bytes per job here
    for (auto& id : ids) v.erase(id);
    CHECK(v.size() == 0);
    // Records and hash tables keep their capacity; strings are freed.
    for (int i = 0; i < 1000; ++i) {
        auto s = queued(id_at(9000 + static_cast<unsigned>(i), static_cast<std::uint8_t>(i)), "user-" + std::to_string(i % 10), 9000 + i);
        v.apply(s);
    }
    CHECK(v.memory_bytes() <= full + 64 * 1024);
}

TEST_CASE("view: owner and submitted_at changes keep the index consistent", "[jobs][unit]") {
    job_view v;
    auto q = queued(id_at(1000, 1), "alice", 1000);
    v.apply(q);
    auto r = q;
    r.state = job_state::running;
    r.submitted_at = 1;  // a worker with a different idea of submitted_at
    v.apply(r);
    auto page = v.list("alice", std::nullopt, 10, "");
    REQUIRE(page.items.size() == 1);
    CHECK(page.items[0].submitted_at == 1);
    CHECK(v.erase(q.id));
    CHECK(v.list("alice", std::nullopt, 10, "").items.empty());
}
