// Memory of the frontend's job view with N tracked jobs (default 100,000).
// Prints the view's own estimate and the process RSS growth, for a realistic
// mix: 1,000 users, 50 repositories, 60% queued, 20% running, 20% finished
// with a small result, 30% with an idempotency key, two tags each.
//
//   faasd_bench_frontend_view_memory [jobs] [finished-output-bytes]

#include <faasd/core/id.hpp>
#include <faasd/jobs/view.hpp>

#include <boost/json/parse.hpp>

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

using namespace faasd;
using namespace faasd::jobs;

namespace {

double rss_mib() {
    std::ifstream f("/proc/self/statm");
    long pages_total = 0, pages_rss = 0;
    f >> pages_total >> pages_rss;
    return static_cast<double>(pages_rss) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
    const std::size_t out_bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
    std::mt19937_64 rng(42);
    // Build the inputs first so that their memory is not counted.
    std::vector<job_status> inputs;
    inputs.reserve(n);
    const unix_ms t0 = 1'800'000'000'000;
    for (std::size_t i = 0; i < n; ++i) {
        job_status s;
        std::array<std::uint8_t, 10> r{};
        for (auto& b : r) b = static_cast<std::uint8_t>(rng());
        s.submitted_at = t0 + static_cast<unix_ms>(i);
        s.id = make_job_id(static_cast<std::uint64_t>(s.submitted_at), r);
        auto user = "user-" + std::to_string(rng() % 1000);
        s.owner = {"f1c2a3b4-0000-4000-8000-" + std::to_string(100000000000 + std::stoul(user.substr(5))), user, {"faas-user", "offline_access", "default-roles-faas"}};
        s.repo = {"https://git.example.org/team-" + std::to_string(rng() % 50) + "/function.git", "main", "", ""};
        s.tags = {"batch", "team-" + std::to_string(rng() % 20)};
        s.delivery = delivery_mode::at_least_once;
        s.updated_at = s.submitted_at;
        if (rng() % 10 < 3) s.idempotency_key = "req-" + std::to_string(rng());
        auto kind = rng() % 10;
        if (kind >= 6) {
            s.state = job_state::running;
            s.worker = "worker-" + std::to_string(rng() % 32);
            s.started_at = s.submitted_at + 5;
            s.updated_at = s.started_at;
        }
        if (kind >= 8) {
            s.state = job_state::succeeded;
            s.finished_at = s.started_at + 100;
            s.updated_at = s.finished_at;
            job_result res;
            res.id = s.id;
            res.owner_subject = s.owner.subject;
            res.state = s.state;
            res.worker = s.worker;
            res.exit_code = 0;
            res.output = boost::json::parse("{\"result\": \"" + std::string(out_bytes, 'x') + "\"}");
            res.stdout_text = "done\n";
            res.times = {s.submitted_at, s.started_at, s.started_at + 10, s.finished_at, 5, 10, 80, 0, 105, true};
            s.result = std::move(res);
        }
        inputs.push_back(std::move(s));
    }
    malloc_trim(0);
    auto before = rss_mib();
    auto start = std::chrono::steady_clock::now();
    job_view view;
    for (const auto& s : inputs) view.apply(s);
    auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto after = rss_mib();
    std::printf("jobs=%zu finished_output_bytes=%zu\n", view.size(), out_bytes);
    std::printf("view.memory_bytes=%.1f MiB (%.0f B/job)\n", static_cast<double>(view.memory_bytes()) / (1 << 20),
                static_cast<double>(view.memory_bytes()) / static_cast<double>(n));
    std::printf("rss_before=%.1f MiB rss_after=%.1f MiB growth=%.1f MiB (%.0f B/job)\n", before, after,
                after - before, (after - before) * 1024 * 1024 / static_cast<double>(n));
    std::printf("apply_rate=%.0f snapshots/s\n", static_cast<double>(n) / took);
    // Lookups and paging, to show the indexes work at this size.
    start = std::chrono::steady_clock::now();
    std::size_t found = 0;
    for (std::size_t i = 0; i < n; i += 7) found += view.contains(inputs[i].id);
    auto lookup = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto page = view.list(inputs[0].owner.subject, std::nullopt, 100, "");
    std::printf("lookups=%zu (%.0f ns each) first_page=%zu unfinished(user0)=%zu\n", found,
                lookup * 1e9 / static_cast<double>(found), page.items.size(), view.unfinished(inputs[0].owner.subject));
    return 0;
}
