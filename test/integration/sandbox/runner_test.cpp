// The function runner with real bubblewrap (and --sandbox=none): isolation,
// every limit, cancellation, and a healthy runner after each adversarial job.

#include "support/support.hpp"

#include <faasd/core/id.hpp>
#include <faasd/sandbox/runner.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace faasd::sandbox;
using namespace std::chrono_literals;

namespace {

fs::path fixture(const std::string& name) { return faasd::test::source_dir() / "test/fixtures/functions" / name; }
fs::path example(const std::string& name) { return faasd::test::source_dir() / "examples/functions" / name; }

// A runner plus a jobs directory and captured logs.
struct bench {
    std::optional<faasd::test::temp_dir> tmp;  // unless the jobs go elsewhere
    fs::path root;                             // where jobs/ goes
    std::vector<std::string> lines;
    std::unique_ptr<function_runner> runner;

    explicit bench(sandbox_config cfg = {}, std::optional<fs::path> jobs_root = {}) {
        if (jobs_root) {
            root = *jobs_root;
        } else {
            root = tmp.emplace("faasd-sandbox").path();
            ::chmod(root.c_str(), 0755);
        }
        faasd::logger log(faasd::log_level::debug, faasd::log_format::text,
                          [this](std::string_view l) { lines.emplace_back(l); }, false);
        runner = std::make_unique<function_runner>(std::move(cfg), log);
    }

    struct job {
        std::unique_ptr<workspace> ws;
        run_request req;
    };

    // A workspace with the function's code copied in (the git module's job in the worker).
    job make(const fs::path& code, const std::string& input = "{}", std::vector<std::string> entry = {},
             const std::string& job_id = faasd::new_job_id()) {
        job j;
        j.ws = std::make_unique<workspace>(root / "jobs", job_id, 1);
        fs::copy(code, j.ws->code_dir(), fs::copy_options::recursive);
        auto cmd = load_function(j.ws->code_dir().string(), entry);
        REQUIRE(cmd.has_value());
        j.ws->write_input(json::parse(input));
        j.req.job_id = j.ws->root().filename().string().substr(0, 26);
        j.req.attempt = 1;
        j.req.ws = j.ws.get();
        j.req.command = *cmd;
        j.req.stdin_data = input;
        return j;
    }

    run_result run(job& j) {
        return faasd::test::run_coroutine<run_result>(
            [&]() -> asio::awaitable<run_result> { co_return co_await runner->run(j.req); }, 120s);
    }

    run_result run(const fs::path& code, const std::string& input = "{}", std::vector<std::string> entry = {},
                   std::optional<limits> lim = {}) {
        auto j = make(code, input, std::move(entry));
        j.req.lim = lim;
        return run(j);
    }

    // The runner still works: a normal job succeeds.
    void check_healthy() {
        auto r = run(example("echo-sh"), R"({"still": "alive"})");
        INFO(r.stderr_text);
        REQUIRE(r.status.outcome == run_outcome::succeeded);
        CHECK(r.result.at("echo").at("still") == "alive");
    }
};

std::string why(const run_result& r) {
    return std::string(to_string(r.status.outcome)) + " (" + r.status.message + ")\nstdout: " + r.stdout_text.substr(0, 2000) +
           "\nstderr: " + r.stderr_text.substr(0, 2000);
}

limits quick_limits() {
    limits l;
    l.timeout = 5s;
    l.kill_grace = 500ms;
    l.cpu = 10s;
    l.memory_bytes = 256ull << 20;
    l.max_processes = 32;
    l.output_bytes = 64 << 10;
    l.output_kill_bytes = 8 << 20;
    l.disk_bytes = 8 << 20;
    return l;
}

// A TCP listener on 127.0.0.1 (the kernel completes handshakes without accept()).
struct listener {
    int fd = -1;
    int port = 0;
    listener() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd, 16) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~listener() { ::close(fd); }
};

sandbox_config none_mode() {
    sandbox_config c;
    c.mode = sandbox_mode::none;
    return c;
}

// This project's machines run the tests as root, with cgroups: there every
// protection must be in place, and a test whose protection is missing fails.
// Elsewhere (a developer's unprivileged account) such a test is skipped, and
// says so.
bool is_root() { return ::geteuid() == 0; }

// True when the test can go on; false (after a printed SKIPPED) when it cannot
// apply here; a failed test when `available` is false as root.
bool need(bool available, const std::string& what, const function_runner& r) {
    if (available) return true;
    INFO("sandbox: " << r.capabilities().detail);
    if (is_root()) FAIL("running as root, yet " << what << " is not available: the protection under test is missing");
    WARN("SKIPPED: " << what << " is not available without root (" << r.capabilities().detail << ")");
    return false;
}

// An enabled cgroup controller of this kernel (/proc/cgroups).
bool kernel_has_controller(const std::string& name) {
    std::ifstream f("/proc/cgroups");
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream ls(line);
        std::string sub;
        int hierarchy = 0, count = 0, enabled = 0;
        if (ls >> sub >> hierarchy >> count >> enabled && sub == name) return enabled == 1;
    }
    return false;
}

// Bytes of regular files below dir, and the number of entries (our own count,
// independent of the runner's).
std::pair<std::uint64_t, std::size_t> tree_size(const fs::path& dir) {
    std::uint64_t bytes = 0;
    std::size_t entries = 0;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        ++entries;
        std::error_code ec2;
        if (it->is_regular_file(ec2)) bytes += it->file_size(ec2);
    }
    return {bytes, entries};
}

}  // namespace

TEST_CASE("a function runs in bubblewrap with the documented environment", "[sandbox][integration]") {
    bench b;
    CHECK(b.runner->capabilities().mode == sandbox_mode::bubblewrap);
    auto r = b.run(example("echo-sh"), R"({"hello": "world"})");
    INFO(why(r));
    REQUIRE(r.status.outcome == run_outcome::succeeded);
    CHECK(r.status.exit_code == 0);
    CHECK(r.result_source == "file");
    CHECK(r.result.at("echo").at("hello") == "world");
    CHECK(r.result.at("attempt") == 1);
    CHECK(r.stderr_text == "echo-sh: done\n");
    CHECK_FALSE(r.network);

    auto env = b.run(fixture("misc"), "{}", {"./main", "env"});
    REQUIRE(env.status.outcome == run_outcome::succeeded);
    for (const char* v : {"FAASD_JOB_ID=", "FAASD_ATTEMPT=1", "FAASD_INPUT_DIR=/faasd/input", "FAASD_OUTPUT_DIR=/faasd/output",
                          "FAASD_RESULT_FILE=/faasd/result/result.json",
                          "FAASD_CREDENTIALS_FILE=/faasd/secrets/credentials.json", "FAASD_SANDBOX=bwrap", "HOME=/tmp"})
        CHECK(env.stdout_text.find(v) != std::string::npos);
    auto pwd = b.run(fixture("misc"), "{}", {"./main", "pwd"});
    CHECK(pwd.stdout_text.rfind("/faasd/code\n", 0) == 0);
    auto in = b.run(fixture("misc"), R"({"a": [1, 2, 3]})", {"./main", "stdin"});
    CHECK(in.result.at("a").as_array().size() == 3);  // stdin was the input, echoed as the stdout result
    CHECK(in.result_source == "stdout");
    // The log says how the run went, with the job's id.
    CHECK(std::any_of(b.lines.begin(), b.lines.end(), [](const std::string& l) {
        return l.find("event=sandbox.finished") != std::string::npos && l.find("outcome=succeeded") != std::string::npos;
    }));
}

TEST_CASE("networking is off unless the worker allows it and the function asks", "[sandbox][integration]") {
    listener l;
    const std::string input = R"({"port": )" + std::to_string(l.port) + "}";

    bench sandboxed;  // allow_network = false
    auto off = sandboxed.run(fixture("network-probe"), input);
    INFO(why(off));
    REQUIRE(off.status.outcome == run_outcome::succeeded);
    CHECK(off.result.at("connected") == false);
    CHECK_FALSE(off.network);

    sandbox_config allowed;
    allowed.allow_network = true;
    bench with_net(allowed);
    auto on = with_net.run(fixture("network-probe"), input);
    INFO(why(on));
    REQUIRE(on.status.outcome == run_outcome::succeeded);
    CHECK(on.result.at("connected") == true);  // the same probe does reach the listener
    CHECK(on.network);
    // An entry override keeps the manifest's settings (network asked for).
    auto overridden = with_net.run(fixture("network-probe"), input, {"python3", "probe.py"});
    CHECK(overridden.result.at("connected") == true);
    // Allowed by the worker but not asked for by the function: still off.
    auto j = with_net.make(fixture("network-probe"), input);
    j.req.command.wants_network = false;
    auto not_asked = with_net.run(j);
    INFO(why(not_asked));
    CHECK(not_asked.result.at("connected") == false);

    bench none(none_mode());
    auto plain = none.run(fixture("network-probe"), input);
    INFO(why(plain));
    CHECK(plain.result.at("connected") == true);
}

TEST_CASE("a function cannot read the worker's environment, files or another job", "[sandbox][integration]") {
    ::setenv("FAASD_TEST_WORKER_SECRET", "worker-secret-value-1234", 1);
    bench b;
    // Another job's workspace, with a secret in its output directory.
    auto other = b.make(example("echo-sh"));
    std::ofstream(other.ws->output_dir() / "secret.txt") << "other-job-secret";
    const auto other_file = (other.ws->output_dir() / "secret.txt").string();
    const auto self_binary = fs::read_symlink("/proc/self/exe").string();

    json::object input{{"paths", json::array{json::value(other_file), json::value(other.ws->root().string()),
                                             json::value(self_binary), json::value("/proc/" + std::to_string(::getpid()) + "/environ")}}};
    auto j = b.make(fixture("snoop"), json::serialize(input));
    j.req.credentials_json = R"({"api_token": "tok-123"})";
    j.req.env = {{"GREETING", "hi"}, {"FAASD_JOB_ID", "forged"}, {"1BAD", "x"}};
    auto r = b.run(j);
    INFO(why(r));
    REQUIRE(r.status.outcome == run_outcome::succeeded);
    const auto& out = r.result.as_object();
    const auto& env = out.at("env").as_object();
    CHECK_FALSE(env.contains("FAASD_TEST_WORKER_SECRET"));
    CHECK(r.stdout_text.find("worker-secret-value-1234") == std::string::npos);
    CHECK(env.at("GREETING") == "hi");                  // the job's env is passed
    CHECK(env.at("FAASD_JOB_ID").as_string() == j.req.job_id);      // but cannot override ours
    CHECK_FALSE(env.contains("1BAD"));
    for (const auto& [k, v] : env)
        CHECK((k.starts_with("FAASD_") || k == "PATH" || k == "HOME" || k == "TMPDIR" || k == "LANG" || k == "GREETING" ||
               k == "PWD" || k == "SHLVL" || k == "_"));
    for (const auto& [path, content] : out.at("found").as_object()) {
        INFO(path << " -> " << json::serialize(content));
        if (path == "/proc/1/environ") CHECK(content.as_string() == "PATH=/usr/local/bin:/usr/bin:/bin" + std::string(1, 0));  // bwrap init
        else CHECK(content.is_null());  // none of them exists in the sandbox
    }
    for (const auto& [pid, seen] : out.at("other_environ").as_object()) {
        INFO(pid << " -> " << json::serialize(seen));
        CHECK(pid == "1");  // only the sandbox's own init is visible, with PATH alone
        CHECK(seen.as_string().find("SECRET") == json::string::npos);
    }
    CHECK(out.at("pids_visible").as_array().size() <= 3);  // own pid namespace
    CHECK(out.at("credentials").at("api_token") == "tok-123");
    CHECK(out.at("credentials_mode") == "0o600");
    CHECK(out.at("cwd") == "/faasd/code");
    if (need(b.runner->capabilities().uid_isolation, "per-run uids", *b.runner)) {
        CHECK(out.at("uid").as_int64() >= 1000);
        CHECK(out.at("uid").as_int64() != ::getuid());
    }
    // No capabilities, and no way to gain any (setuid binaries of the host's /usr are inert).
    const auto& status = out.at("status").as_object();
    CHECK(status.at("CapEff") == "0000000000000000");
    CHECK(status.at("CapPrm") == "0000000000000000");
    CHECK(status.at("NoNewPrivs") == "1");
    CHECK(out.at("dev_writable") == false);  // only /dev/shm, a size-limited tmpfs
    if (need(b.runner->capabilities().userns_disabled, "bwrap --disable-userns", *b.runner))
        CHECK(out.at("can_create_userns") == false);
    // The credentials file is wiped after the run, and never logged.
    CHECK_FALSE(fs::exists(j.ws->secrets_dir() / "credentials.json"));
    for (const auto& line : b.lines) CHECK(line.find("tok-123") == std::string::npos);
    ::unsetenv("FAASD_TEST_WORKER_SECRET");
}

// A fork bomb is only safe to run where something limits it. As root, the
// limits the configuration asks for must all be there: per-run uids (the
// default range), and the pids cgroup when cgroups are on and the kernel has
// the controller.
bool can_stop_fork_bombs(const function_runner& r) {
    const auto& c = r.capabilities();
    if (is_root()) {
        need(c.uid_isolation, "per-run uids (RLIMIT_NPROC)", r);
        if (r.config().cgroups == "auto" && kernel_has_controller("pids")) need(c.pids_cgroup, "the pids cgroup", r);
    }
    return need(c.pids_cgroup || c.uid_isolation, "a process limit (a pids cgroup or per-run uids)", r);
}

TEST_CASE("a fork bomb ends with pids_limit and the runner keeps serving", "[sandbox][integration]") {
    bench b;
    if (!can_stop_fork_bombs(*b.runner)) return;
    auto l = quick_limits();
    l.timeout = 3s;
    auto r = b.run(fixture("fork-bomb"), "{}", {}, l);
    INFO(why(r));
    CHECK(r.status.outcome == run_outcome::pids_limit);
    CHECK(r.wall < 15s);
    b.check_healthy();
}

TEST_CASE("a memory hog ends with memory_limit and the runner keeps serving", "[sandbox][integration]") {
    bench b;
    auto l = quick_limits();
    l.memory_bytes = 96ull << 20;
    auto r = b.run(fixture("memory-hog"), "{}", {}, l);
    INFO(why(r));
    CHECK(r.status.outcome == run_outcome::memory_limit);
    b.check_healthy();
}

TEST_CASE("an endless loop that ignores SIGTERM is killed at the deadline", "[sandbox][integration]") {
    bench b;
    auto l = quick_limits();
    l.timeout = 1s;
    l.kill_grace = 300ms;
    auto r = b.run(fixture("endless-loop"), "{}", {}, l);
    INFO(why(r));
    CHECK(r.status.outcome == run_outcome::timeout);
    CHECK(r.wall >= 1s);
    CHECK(r.wall < 5s);
    CHECK(faasd::sandbox::to_job_state(r.status.outcome) == faasd::jobs::job_state::timed_out);

    // A function that handles SIGTERM gets it first and can leave cleanly; it is still a timeout.
    auto polite = b.run(fixture("endless-loop"), "{}", {"./main", "polite"}, l);
    INFO(why(polite));
    CHECK(polite.status.outcome == run_outcome::timeout);
    CHECK(polite.stderr_text.find("got SIGTERM, leaving") != std::string::npos);
    CHECK(polite.wall < 1s + 300ms + 1s);
    b.check_healthy();
}

TEST_CASE("the CPU time limit ends a busy function with cpu_limit", "[sandbox][integration]") {
    bench b;
    auto l = quick_limits();
    l.timeout = 30s;
    l.cpu = 1s;
    auto r = b.run(fixture("endless-loop"), "{}", {}, l);
    INFO(why(r));
    CHECK(r.status.outcome == run_outcome::cpu_limit);
    CHECK(r.wall < 10s);
    // Under bwrap only the cgroup sees the function's CPU time.
    if (need(b.runner->capabilities().cpu_cgroup, "cgroup CPU accounting", *b.runner)) CHECK(r.cpu >= 900ms);
    b.check_healthy();
}

TEST_CASE("the CPU time limit is the job's: a relay of short-lived processes ends with cpu_limit", "[sandbox][integration]") {
    // Each child exits after 0.4 s of CPU, below the per-process RLIMIT_CPU:
    // only the job's total (its cgroup's CPU time, sampled) can stop it.
    bench b;
    if (!need(b.runner->capabilities().cpu_cgroup, "cgroup CPU accounting", *b.runner)) return;
    auto l = quick_limits();
    l.timeout = 30s;
    l.cpu = 1s;
    auto r = b.run(fixture("endless-loop"), "{}", {"python3", "relay.py"}, l);
    INFO(why(r));
    CHECK(r.status.outcome == run_outcome::cpu_limit);
    CHECK(faasd::sandbox::to_job_state(r.status.outcome) == faasd::jobs::job_state::failed);
    CHECK(r.cpu >= 1s);
    CHECK(r.wall < 15s);  // not the 30 s deadline
    CHECK(std::any_of(b.lines.begin(), b.lines.end(),
                      [](const std::string& x) { return x.find("event=sandbox.cpu_limit") != std::string::npos; }));
    b.check_healthy();
}

TEST_CASE("output is capped: truncation is no failure, an endless flood is killed", "[sandbox][integration]") {
    bench b;
    auto l = quick_limits();
    auto finite = b.run(fixture("output-flood"), "{}", {"./main", "finite", "3000000"}, l);
    INFO(why(finite));
    REQUIRE(finite.status.outcome == run_outcome::succeeded);
    CHECK(finite.stdout_truncated);
    CHECK(finite.stdout_bytes == 3'000'000);
    CHECK(finite.stdout_text.size() < (64 << 10) + 200);
    CHECK(finite.stdout_text.find("[faasd: output truncated") != std::string::npos);
    CHECK(finite.stderr_text == "flood: wrote 3000000 bytes\n");  // stderr has its own cap
    CHECK(finite.result.is_null());  // truncated stdout is never parsed as the result

    auto endless = b.run(fixture("output-flood"), "{}", {}, l);
    INFO(why(endless));
    CHECK(endless.status.outcome == run_outcome::output_limit);
    CHECK(endless.stdout_bytes > (8u << 20));
    CHECK(endless.wall < 5s);
    b.check_healthy();
}

TEST_CASE("disk use is limited per file, in /tmp, in /dev/shm and in total", "[sandbox][integration]") {
    bench b;
    auto l = quick_limits();
    for (const char* mode : {"one", "tmp", "shm", "many"}) {
        auto r = b.run(fixture("disk-hog"), "{}", {"./main", mode}, l);
        INFO(mode << ": " << why(r));
        CHECK(r.status.outcome == run_outcome::disk_limit);
    }
    b.check_healthy();
}

TEST_CASE("the disk limit holds during the run: many small files, deleted open files, deep trees", "[sandbox][integration]") {
    // Each of these functions would wait for its deadline after writing (the
    // fixture stops itself at 512 MiB): only a check during the run ends it
    // early, and the host directory must stay near the limit meanwhile.
    constexpr std::uint64_t limit = 16ull << 20;
    auto l = quick_limits();
    l.timeout = 60s;
    l.disk_bytes = limit;
    for (auto mode : {sandbox_mode::bubblewrap, sandbox_mode::none}) {
        sandbox_config c;
        c.mode = mode;
        bench b(c);
        for (const char* hog : {"flood", "unlinked", "deep"}) {
            auto j = b.make(fixture("disk-hog"), "{}", {"./main", hog});
            j.req.lim = l;
            auto r = b.run(j);
            INFO(to_string(mode) << " " << hog << ": " << why(r));
            CHECK(r.status.outcome == run_outcome::disk_limit);
            CHECK(faasd::sandbox::to_job_state(r.status.outcome) == faasd::jobs::job_state::failed);
            CHECK(r.wall < 20s);
            CHECK(r.stderr_text.find("hog: wrote") == std::string::npos);  // stopped long before 512 MiB
            auto [bytes, entries] = tree_size(j.ws->output_dir());
            INFO("left in the output directory: " << bytes << " bytes in " << entries << " entries");
            CHECK(bytes <= limit + (64ull << 20));
            if (std::string_view(hog) == "unlinked") CHECK(r.status.message.find("deleted files") != std::string::npos);
            if (std::string_view(hog) == "deep") CHECK(r.status.message.find("nested") != std::string::npos);
        }
        CHECK(std::any_of(b.lines.begin(), b.lines.end(),
                          [](const std::string& x) { return x.find("event=sandbox.disk_limit") != std::string::npos; }));
        b.check_healthy();  // the next job runs
    }
}

TEST_CASE("exit codes, signals, results and outputs are reported", "[sandbox][integration]") {
    bench b;
    auto nz = b.run(fixture("misc"), "{}", {"./main", "exit", "3"});
    CHECK(nz.status.outcome == run_outcome::exit_nonzero);
    CHECK(nz.status.exit_code == 3);
    CHECK(nz.stderr_text == "exiting with 3\n");

    auto segv = b.run(fixture("misc"), "{}", {"./main", "segv"});
    INFO(why(segv));
    CHECK(segv.status.outcome == run_outcome::killed_by_signal);
    CHECK(segv.status.signal == SIGSEGV);

    auto res = b.run(fixture("misc"), "{}", {"./main", "result"});
    CHECK(res.result.at("from") == "file");  // result.json wins over stdout
    CHECK(res.result_source == "file");
    auto bad = b.run(fixture("misc"), "{}", {"./main", "badresult"});
    CHECK(bad.result.at("from") == "stdout");
    CHECK(bad.result_error.find("not valid JSON") != std::string::npos);
    auto text = b.run(fixture("misc"), "{}", {"./main", "text"});
    CHECK(text.result.is_null());
    CHECK(text.stdout_text == "plain text, not JSON\n");

    auto outs = b.run(fixture("misc"), "{}", {"./main", "outputs"});
    INFO(why(outs));
    REQUIRE(outs.status.outcome == run_outcome::succeeded);
    REQUIRE(outs.outputs.size() == 1);  // not the symlink, not the directory
    CHECK(outs.outputs[0].name == "report.csv");
    CHECK(outs.outputs[0].bytes == 7);

    auto missing = b.run(fixture("misc"), "{}", {"no-such-program"});
    CHECK(missing.status.outcome == run_outcome::exit_nonzero);
}

TEST_CASE("cancelling a run terminates the function", "[sandbox][integration]") {
    bench b;
    auto j = b.make(fixture("endless-loop"));
    auto l = quick_limits();
    l.timeout = 60s;
    j.req.lim = l;
    asio::io_context ioc;
    asio::cancellation_signal cancel;
    std::optional<run_result> result;
    asio::co_spawn(ioc, b.runner->run(j.req), asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr ep, run_result r) {
                       if (ep) std::rethrow_exception(ep);
                       result = std::move(r);
                   }));
    asio::steady_timer t(ioc, 500ms);
    t.async_wait([&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    auto started = std::chrono::steady_clock::now();
    ioc.run_for(30s);
    REQUIRE(result.has_value());
    INFO(why(*result));
    CHECK(result->status.outcome == run_outcome::cancelled);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    CHECK(faasd::sandbox::to_job_state(result->status.outcome) == faasd::jobs::job_state::cancelled);
    b.check_healthy();
}

TEST_CASE("a cancellation that arrives while the run starts is not lost", "[sandbox][integration]") {
    // Early cancellations land while the workspace is chowned, the process is
    // started or its exec status is read, where no wait for the process is
    // pending yet: the run must still end promptly as cancelled.
    bench b;
    for (auto delay : {0ms, 2ms, 10ms, 30ms}) {
        auto j = b.make(fixture("endless-loop"));
        auto l = quick_limits();
        l.timeout = 60s;
        l.kill_grace = 200ms;
        j.req.lim = l;
        asio::io_context ioc;
        asio::cancellation_signal cancel;
        std::optional<run_result> result;
        asio::co_spawn(ioc, b.runner->run(j.req),
                       asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr ep, run_result r) {
                           if (ep) std::rethrow_exception(ep);
                           result = std::move(r);
                       }));
        asio::steady_timer t(ioc, delay);
        t.async_wait([&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
        auto started = std::chrono::steady_clock::now();
        ioc.run_for(30s);
        INFO("cancelled after " << delay.count() << " ms");
        REQUIRE(result.has_value());
        INFO(why(*result));
        CHECK(result->status.outcome == run_outcome::cancelled);
        CHECK(std::chrono::steady_clock::now() - started < 5s);
    }
    b.check_healthy();
}

TEST_CASE("sandbox mode none still clears the environment, applies limits and kills the group", "[sandbox][integration]") {
    ::setenv("FAASD_TEST_WORKER_SECRET", "worker-secret-value-1234", 1);
    bench b(none_mode());
    CHECK(b.runner->capabilities().mode == sandbox_mode::none);
    CHECK(std::any_of(b.lines.begin(), b.lines.end(),
                      [](const std::string& l) { return l.find("event=sandbox.disabled") != std::string::npos; }));
    auto env = b.run(fixture("misc"), "{}", {"./main", "env"});
    INFO(why(env));
    REQUIRE(env.status.outcome == run_outcome::succeeded);
    CHECK(env.stdout_text.find("worker-secret-value-1234") == std::string::npos);
    CHECK(env.stdout_text.find("FAASD_SANDBOX=none") != std::string::npos);

    // A background process left behind is killed with the process group.
    auto bg = b.run(fixture("misc"), "{}", {"./main", "background"});
    REQUIRE(bg.status.outcome == run_outcome::succeeded);
    pid_t child = std::stoi(bg.stdout_text);
    CHECK(faasd::test::wait_until([&] { return ::kill(child, 0) != 0; }, 5s));

    auto l = quick_limits();
    l.timeout = 1s;
    l.kill_grace = 200ms;
    CHECK(b.run(fixture("endless-loop"), "{}", {}, l).status.outcome == run_outcome::timeout);
    auto mem = b.run(fixture("memory-hog"), "{}", {}, [] {
        auto m = quick_limits();
        m.memory_bytes = 96ull << 20;
        return m;
    }());
    CHECK(mem.status.outcome == run_outcome::memory_limit);
    if (can_stop_fork_bombs(*b.runner)) {
        auto bomb = quick_limits();
        bomb.timeout = 3s;
        CHECK(b.run(fixture("fork-bomb"), "{}", {}, bomb).status.outcome == run_outcome::pids_limit);
    }
    b.check_healthy();
    ::unsetenv("FAASD_TEST_WORKER_SECRET");
}

TEST_CASE("with --sandbox=none a job still cannot read the worker's environment or another job's directory",
          "[sandbox][integration]") {
    ::setenv("FAASD_TEST_WORKER_SECRET", "worker-secret-value-1234", 1);
    bench b(none_mode());
    auto other = b.make(example("echo-sh"));
    std::ofstream(other.ws->output_dir() / "secret.txt") << "other-job-secret";
    const std::vector<std::string> forbidden{(other.ws->output_dir() / "secret.txt").string(), other.ws->output_dir().string(),
                                             other.ws->secrets_dir().string(),
                                             "/proc/" + std::to_string(::getpid()) + "/environ"};
    json::array paths;
    for (const auto& p : forbidden) paths.emplace_back(p);
    auto r = b.run(fixture("snoop"), json::serialize(json::object{{"paths", paths}}));
    INFO(why(r));
    REQUIRE(r.status.outcome == run_outcome::succeeded);
    // Without namespaces only a uid of its own keeps a job out of the worker's files and other jobs.
    if (need(b.runner->capabilities().uid_isolation, "per-run uids", *b.runner)) {
        const auto& found = r.result.at("found").as_object();
        for (const auto& p : forbidden) {
            INFO(p);
            CHECK(found.at(p).is_null());
        }
    }
    CHECK(r.stdout_text.find("worker-secret-value-1234") == std::string::npos);
    CHECK(r.stdout_text.find("other-job-secret") == std::string::npos);
    CHECK(r.result.at("status").at("NoNewPrivs") == "1");  // set by the runner in this mode
    ::unsetenv("FAASD_TEST_WORKER_SECRET");
}

// Pids of the processes whose command line contains `marker` (a process may
// exit while we read it).
std::vector<pid_t> marked(const std::string& marker) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
        const auto name = e.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        int fd = ::open((e.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        std::string cmd(4096, '\0');
        auto n = ::read(fd, cmd.data(), cmd.size());
        ::close(fd);
        if (n > 0 && cmd.substr(0, static_cast<std::size_t>(n)).find(marker) != std::string::npos)
            out.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
}
std::size_t count_marked(const std::string& marker) { return marked(marker).size(); }

TEST_CASE("(helper) a runner in a process of its own, killed by the test", "[.][sandbox_host]") {
    const char* marker = std::getenv("FAASD_TEST_SANDBOX_HOST_MARKER");
    const char* dir = std::getenv("FAASD_TEST_SANDBOX_HOST_DIR");
    const char* job = std::getenv("FAASD_TEST_SANDBOX_HOST_JOB");
    const char* mode = std::getenv("FAASD_TEST_SANDBOX_HOST_MODE");
    REQUIRE((marker && dir && job && mode));
    bench b(std::string(mode) == "none" ? none_mode() : sandbox_config{}, fs::path(dir));
    // Three processes carrying the marker: a shell and two sleeps (one in the background).
    auto j = b.make(fixture("misc"), "{}", {"sh", "-c", "sleep $0 & sleep $0 & exec sleep $0", marker}, job);
    auto l = quick_limits();
    l.timeout = 120s;
    j.req.lim = l;
    b.run(j);  // the test kills this process long before
}

TEST_CASE("the function dies with the worker", "[sandbox][integration]") {
    // The helper above hosts a runner; the test SIGKILLs it mid-run. With
    // bwrap, every process of the job must go (bwrap has PDEATHSIG, its pid 1
    // --die-with-parent, and the pid namespace dies with its pid 1). With
    // --sandbox=none only the top process has PDEATHSIG: its background
    // processes survive (documented), so only the top process is checked.
    for (const std::string mode : {"bwrap", "none"}) {
        faasd::test::temp_dir dir("faasd-sandbox-host");
        ::chmod(dir.path().c_str(), 0755);
        const std::string job = faasd::new_job_id();
        const std::string marker = "3599." + std::to_string(100000 + std::random_device{}() % 899999);
        auto self = fs::read_symlink("/proc/self/exe").string();
        faasd::test::background_process host({self, "[sandbox_host]"}, dir.path() / "host.log",
                                             {"FAASD_TEST_SANDBOX_HOST_MARKER=" + marker,
                                              "FAASD_TEST_SANDBOX_HOST_DIR=" + dir.path().string(),
                                              "FAASD_TEST_SANDBOX_HOST_JOB=" + job, "FAASD_TEST_SANDBOX_HOST_MODE=" + mode});
        INFO(mode << "; helper log: " << host.log());
        REQUIRE(faasd::test::wait_until([&] { return count_marked(marker) >= 3; }, 30s));
        REQUIRE(host.running());
        host.stop();  // SIGKILL to the helper's process group: the job's processes have groups of their own
        if (mode == "bwrap") {
            CHECK(faasd::test::wait_until([&] { return count_marked(marker) == 0; }, 10s));
        } else {
            // The shell's own pid is gone; at most its two background sleeps remain. Clean them up.
            CHECK(faasd::test::wait_until([&] { return count_marked(marker) <= 2; }, 10s));
            for (pid_t p : marked(marker)) ::kill(p, SIGKILL);
        }
        // The killed runner could not remove its job cgroups: the test does.
        for (const char* h : {"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/unified"}) {
            std::error_code ec;
            for (const auto& e : fs::directory_iterator(fs::path(h) / "faasd", ec))
                if (e.path().filename().string().starts_with("job-" + job))
                    faasd::test::wait_until([&] { return ::rmdir(e.path().c_str()) == 0 || errno == ENOENT; }, 5s);
        }
    }
}

TEST_CASE("without cgroups a per-run uid and RLIMIT_NPROC stop a fork bomb", "[sandbox][integration]") {
    sandbox_config c;
    c.cgroups = "off";
    bench b(c);
    const auto& caps = b.runner->capabilities();
    CHECK(caps.cgroup_version == 0);
    if (!need(caps.uid_isolation, "per-run uids (RLIMIT_NPROC)", *b.runner)) return;
    auto l = quick_limits();
    l.timeout = 3s;
    auto r = b.run(fixture("fork-bomb"), "{}", {}, l);
    INFO(why(r));
    CHECK(r.status.outcome == run_outcome::pids_limit);
    // RLIMIT_AS instead of the memory cgroup.
    auto mem = b.run(fixture("memory-hog"), "{}", {}, [] {
        auto m = quick_limits();
        m.memory_bytes = 96ull << 20;
        return m;
    }());
    INFO(why(mem));
    CHECK(mem.status.outcome == run_outcome::memory_limit);
    b.check_healthy();
}
