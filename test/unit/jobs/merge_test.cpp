#include <faasd/jobs/merge.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

using namespace faasd::jobs;

namespace {

job_status snap(job_state s, int attempt, unix_ms updated, std::string worker = {}) {
    job_status st;
    st.id = "01ARYZ6S41TSV4RRFFQ69G5FAV";
    st.owner = {"sub-1", "alice", {"faas-user"}};
    st.state = s;
    st.attempt = attempt;
    st.updated_at = updated;
    st.worker = std::move(worker);
    if (is_terminal(s)) st.finished_at = updated;
    return st;
}

job_status with_result(job_status s) {
    job_result r;
    r.id = s.id;
    r.state = s.state;
    r.attempt = s.attempt;
    s.result = r;
    return s;
}

// Folds the snapshots in the given order and returns the survivor.
job_status fold(std::vector<job_status> v) {
    std::optional<job_status> cur;
    for (auto& s : v) merge(cur, std::move(s));
    return *cur;
}

}  // namespace

TEST_CASE("merge: step by step through a normal lifecycle", "[jobs][unit]") {
    std::optional<job_status> cur;
    auto q = snap(job_state::queued, 1, 100);
    CHECK(merge(cur, std::move(q)) == merge_outcome::inserted);
    CHECK(cur->state == job_state::queued);

    auto r = snap(job_state::running, 1, 200, "w1");
    CHECK(merge(cur, std::move(r)) == merge_outcome::replaced);
    CHECK(cur->state == job_state::running);
    CHECK(cur->worker == "w1");

    auto done = with_result(snap(job_state::succeeded, 1, 300, "w1"));
    CHECK(merge(cur, std::move(done)) == merge_outcome::replaced);
    CHECK(cur->state == job_state::succeeded);
    REQUIRE(cur->result);

    SECTION("a late running snapshot does not reopen a finished job") {
        auto late = snap(job_state::running, 1, 400, "w2");
        CHECK(merge(cur, std::move(late)) == merge_outcome::kept);
        CHECK(cur->state == job_state::succeeded);
    }
    SECTION("a late queued retry of a higher attempt does not reopen it either") {
        auto late = snap(job_state::queued, 2, 400);
        CHECK(merge(cur, std::move(late)) == merge_outcome::kept);
        CHECK(cur->state == job_state::succeeded);
    }
    SECTION("an exact duplicate is kept, not replaced") {
        auto dup = with_result(snap(job_state::succeeded, 1, 300, "w1"));
        CHECK(merge(cur, std::move(dup)) == merge_outcome::kept);
    }
}

TEST_CASE("merge: out-of-order queued after running", "[jobs][unit]") {
    std::optional<job_status> cur;
    merge(cur, snap(job_state::running, 1, 200, "w1"));
    CHECK(merge(cur, snap(job_state::queued, 1, 100)) == merge_outcome::kept);
    CHECK(cur->state == job_state::running);
}

TEST_CASE("merge: retries move to a higher attempt", "[jobs][unit]") {
    std::optional<job_status> cur;
    merge(cur, snap(job_state::running, 1, 200, "w1"));
    // Infrastructure failure: the worker re-queues attempt 2.
    CHECK(merge(cur, snap(job_state::queued, 2, 300)) == merge_outcome::replaced);
    CHECK(cur->attempt == 2);
    CHECK(cur->state == job_state::queued);
    // A stale running snapshot of attempt 1 is older.
    CHECK(merge(cur, snap(job_state::running, 1, 400, "w1")) == merge_outcome::kept);
    CHECK(merge(cur, snap(job_state::running, 2, 500, "w2")) == merge_outcome::replaced);
    CHECK(cur->worker == "w2");
}

TEST_CASE("merge: cancelled wins over any non-terminal state", "[jobs][unit]") {
    std::optional<job_status> cur;
    merge(cur, snap(job_state::running, 3, 500, "w1"));
    // The frontend's cancelled snapshot still describes attempt 1.
    CHECK(merge(cur, snap(job_state::cancelled, 1, 400)) == merge_outcome::replaced);
    CHECK(cur->state == job_state::cancelled);
    CHECK(merge(cur, snap(job_state::running, 4, 900, "w2")) == merge_outcome::kept);
    CHECK(merge(cur, snap(job_state::queued, 5, 900)) == merge_outcome::kept);
}

TEST_CASE("merge: between terminal snapshots", "[jobs][unit]") {
    SECTION("a worker's result beats the frontend's result-less cancel") {
        std::optional<job_status> cur;
        merge(cur, snap(job_state::cancelled, 1, 100));
        CHECK(merge(cur, with_result(snap(job_state::succeeded, 1, 200, "w1"))) == merge_outcome::replaced);
        CHECK(cur->state == job_state::succeeded);
        // and the other order gives the same survivor
        std::optional<job_status> cur2;
        merge(cur2, with_result(snap(job_state::succeeded, 1, 200, "w1")));
        CHECK(merge(cur2, snap(job_state::cancelled, 1, 100)) == merge_outcome::kept);
        CHECK(cur2->state == job_state::succeeded);
    }
    SECTION("the first finish stays final") {
        std::optional<job_status> cur;
        merge(cur, with_result(snap(job_state::failed, 1, 200, "w1")));
        // a redelivered attempt finishing later
        CHECK(merge(cur, with_result(snap(job_state::succeeded, 1, 300, "w2"))) == merge_outcome::kept);
        CHECK(cur->state == job_state::failed);
        CHECK(cur->worker == "w1");
    }
    SECTION("a higher attempt's result wins") {
        std::optional<job_status> cur;
        merge(cur, with_result(snap(job_state::failed, 1, 300, "w1")));
        CHECK(merge(cur, with_result(snap(job_state::succeeded, 2, 200, "w2"))) == merge_outcome::replaced);
        CHECK(cur->attempt == 2);
    }
}

TEST_CASE("merge: the survivor does not depend on the order", "[jobs][unit]") {
    std::vector<job_status> all{
        snap(job_state::queued, 1, 100),
        snap(job_state::running, 1, 200, "w1"),
        snap(job_state::queued, 2, 300),
        snap(job_state::running, 2, 400, "w2"),
        snap(job_state::cancelled, 1, 350),
        with_result(snap(job_state::cancelled, 2, 450, "w2")),
        with_result(snap(job_state::succeeded, 2, 460, "w3")),
    };
    std::vector<std::size_t> order(all.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto expected = fold(all);
    int permutations = 0;
    do {
        std::vector<job_status> v;
        for (auto i : order) v.push_back(all[i]);
        auto got = fold(v);
        REQUIRE(got.state == expected.state);
        REQUIRE(got.attempt == expected.attempt);
        REQUIRE(got.worker == expected.worker);
        REQUIRE(got.updated_at == expected.updated_at);
        ++permutations;
    } while (std::next_permutation(order.begin(), order.end()));
    CHECK(permutations == 5040);
    // the earlier finish of attempt 2 with a result
    CHECK(expected.state == job_state::cancelled);
    CHECK(expected.worker == "w2");
}

TEST_CASE("merge: precedence is a strict total order on distinct keys", "[jobs][unit]") {
    merge_key a{job_state::running, 1, false, 0, 10, "w1"};
    merge_key b = a;
    CHECK(precedence(a, b) == std::strong_ordering::equal);
    b.worker = "w2";
    CHECK(precedence(a, b) == std::strong_ordering::less);
    CHECK(precedence(b, a) == std::strong_ordering::greater);
    CHECK(state_rank(job_state::queued) < state_rank(job_state::running));
    CHECK(state_rank(job_state::running) < state_rank(job_state::timed_out));
}
