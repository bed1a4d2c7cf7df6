#include <faasd/sandbox/bwrap.hpp>
#include <faasd/sandbox/limits.hpp>
#include <faasd/sandbox/output.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>

using namespace faasd::sandbox;
using namespace std::chrono_literals;

TEST_CASE("limit configuration is validated", "[sandbox][unit]") {
    limits l;
    CHECK(validate(l).empty());
    auto bad = [&](auto mutate) {
        limits x;
        mutate(x);
        return !validate(x).empty();
    };
    CHECK(bad([](limits& x) { x.timeout = 10ms; }));
    CHECK(bad([](limits& x) { x.timeout = 25h; }));
    CHECK(bad([](limits& x) { x.kill_grace = -1ms; }));
    CHECK(bad([](limits& x) { x.cpu = 0s; }));
    CHECK(bad([](limits& x) { x.memory_bytes = 1 << 20; }));
    CHECK(bad([](limits& x) { x.max_processes = 0; }));
    CHECK(bad([](limits& x) { x.output_bytes = 10; }));
    CHECK(bad([](limits& x) { x.output_kill_bytes = x.output_bytes - 1; }));
    CHECK_FALSE(bad([](limits& x) { x.output_kill_bytes = 0; }));
    CHECK(bad([](limits& x) { x.disk_bytes = 1000; }));
    CHECK(bad([](limits& x) { x.open_files = 3; }));
}

TEST_CASE("outcome codes are stable and map to job states", "[sandbox][unit]") {
    for (auto o : {run_outcome::succeeded, run_outcome::exit_nonzero, run_outcome::killed_by_signal, run_outcome::timeout,
                   run_outcome::cpu_limit, run_outcome::memory_limit, run_outcome::pids_limit, run_outcome::disk_limit,
                   run_outcome::output_limit, run_outcome::cancelled})
        CHECK(parse_run_outcome(to_string(o)) == o);
    CHECK(std::string(to_string(run_outcome::timeout)) == "timeout");
    CHECK(std::string(to_string(run_outcome::pids_limit)) == "pids_limit");
    CHECK_FALSE(parse_run_outcome("oom"));
    CHECK(to_job_state(run_outcome::succeeded) == faasd::jobs::job_state::succeeded);
    CHECK(to_job_state(run_outcome::timeout) == faasd::jobs::job_state::timed_out);
    CHECK(to_job_state(run_outcome::cancelled) == faasd::jobs::job_state::cancelled);
    CHECK(to_job_state(run_outcome::memory_limit) == faasd::jobs::job_state::failed);
}

namespace {
exit_observation exited(int code) {
    exit_observation o;
    o.exited = true;
    o.exit_code = code;
    return o;
}
exit_observation signalled(int sig) {
    exit_observation o;
    o.exited = false;
    o.signal = sig;
    return o;
}
}  // namespace

TEST_CASE("run outcomes are classified with a fixed precedence", "[sandbox][unit]") {
    CHECK(classify(exited(0)).outcome == run_outcome::succeeded);
    CHECK(classify(exited(0)).exit_code == 0);
    auto nz = classify(exited(3));
    CHECK(nz.outcome == run_outcome::exit_nonzero);
    CHECK(nz.exit_code == 3);
    CHECK(nz.message == "the function exited with status 3");

    auto sig = classify(signalled(SIGSEGV));
    CHECK(sig.outcome == run_outcome::killed_by_signal);
    CHECK(sig.signal == SIGSEGV);
    CHECK(sig.message.find("SIGSEGV") != std::string::npos);

    // bwrap reports a signal as 128+n; a plain process exiting 139 is just an exit status.
    auto via = exited(128 + SIGSEGV);
    via.via_bwrap = true;
    CHECK(classify(via).outcome == run_outcome::killed_by_signal);
    CHECK(classify(via).signal == SIGSEGV);
    CHECK(classify(exited(128 + SIGSEGV)).outcome == run_outcome::exit_nonzero);

    auto t = signalled(SIGKILL);
    t.timed_out = true;
    CHECK(classify(t).outcome == run_outcome::timeout);
    auto graceful = exited(0);
    graceful.timed_out = true;  // exited 0 on SIGTERM: still a timeout
    CHECK(classify(graceful).outcome == run_outcome::timeout);
    auto bomb = t;
    bomb.pids_max_hits = 100;
    CHECK(classify(bomb).outcome == run_outcome::pids_limit);

    auto c = t;
    c.cancelled = true;
    c.oom_kills = 1;
    CHECK(classify(c).outcome == run_outcome::cancelled);  // cancellation wins over everything

    auto oom = signalled(SIGKILL);
    oom.oom_kills = 1;
    CHECK(classify(oom).outcome == run_outcome::memory_limit);
    auto oom_late = oom;
    oom_late.timed_out = true;
    CHECK(classify(oom_late).outcome == run_outcome::memory_limit);

    CHECK(classify(signalled(SIGXCPU)).outcome == run_outcome::cpu_limit);
    auto hard_cpu = signalled(SIGKILL);
    hard_cpu.cpu_exceeded = true;
    CHECK(classify(hard_cpu).outcome == run_outcome::cpu_limit);
    CHECK(classify(signalled(SIGKILL)).outcome == run_outcome::killed_by_signal);

    CHECK(classify(signalled(SIGXFSZ)).outcome == run_outcome::disk_limit);
    auto disk = exited(0);
    disk.disk_exceeded = true;
    CHECK(classify(disk).outcome == run_outcome::disk_limit);

    auto flood = signalled(SIGKILL);
    flood.output_exceeded = true;
    CHECK(classify(flood).outcome == run_outcome::output_limit);

    auto forks = exited(1);
    forks.pids_max_hits = 3;
    CHECK(classify(forks).outcome == run_outcome::pids_limit);
    auto handled = exited(0);
    handled.pids_max_hits = 3;  // it coped with a failed fork and succeeded
    CHECK(classify(handled).outcome == run_outcome::succeeded);
}

TEST_CASE("without cgroups, stderr tells memory and process limits apart", "[sandbox][unit]") {
    auto mem = exited(1);
    mem.stderr_tail = "Traceback ...\nMemoryError\n";
    CHECK(classify(mem).outcome == run_outcome::memory_limit);
    mem.memory_by_cgroup = true;  // with a cgroup only an OOM kill counts
    CHECK(classify(mem).outcome == run_outcome::exit_nonzero);

    auto fork = exited(254);
    fork.stderr_tail = "sh: fork: retry: Resource temporarily unavailable";
    CHECK(classify(fork).outcome == run_outcome::pids_limit);
    fork.pids_by_cgroup = true;
    CHECK(classify(fork).outcome == run_outcome::exit_nonzero);
    auto bomb = signalled(SIGKILL);  // a fork bomb under RLIMIT_NPROC, killed at the deadline
    bomb.timed_out = true;
    bomb.stderr_tail = "bash: fork: retry: Resource temporarily unavailable\n";
    CHECK(classify(bomb).outcome == run_outcome::pids_limit);

    auto disk = exited(1);
    disk.stderr_tail = "write error: No space left on device";
    CHECK(classify(disk).outcome == run_outcome::disk_limit);
}

TEST_CASE("captured output is capped, counted and marked", "[sandbox][unit]") {
    capped_output c(10);
    c.append("hello ");
    c.append("world");
    c.append("!!!");
    CHECK(c.truncated());
    CHECK(c.kept() == "hello worl");
    CHECK(c.total_bytes() == 14);
    CHECK(c.dropped_bytes() == 4);
    CHECK(c.text() == "hello worl\n[faasd: output truncated: 4 of 14 bytes dropped]\n");

    capped_output exact(5);
    exact.append("12345");
    CHECK_FALSE(exact.truncated());
    CHECK(exact.text() == "12345");
    exact.append("");
    CHECK_FALSE(exact.truncated());

    // Never cut a UTF-8 sequence in two: "é" is 2 bytes, "€" is 3.
    capped_output utf(4);
    utf.append("ab\xc3\xa9\xe2\x82\xac");
    CHECK(utf.kept() == "ab\xc3\xa9");
    capped_output utf2(5);
    utf2.append("ab\xc3\xa9\xe2\x82\xac");
    CHECK(utf2.kept() == "ab\xc3\xa9");
    CHECK(utf2.dropped_bytes() == 3);

    capped_output big(1024);
    for (int i = 0; i < 1000; ++i) big.append(std::string(1000, 'x'));
    CHECK(big.kept().size() == 1024);
    CHECK(big.total_bytes() == 1'000'000);
}

TEST_CASE("the bubblewrap command isolates by default", "[sandbox][unit]") {
    bwrap_plan p;
    p.bwrap = "/usr/bin/bwrap";
    p.system = {{"/usr", ""}, {"/bin", "usr/bin"}};
    p.etc_files = {"/etc/ssl"};
    p.code_dir = "/w/code";
    p.input_dir = "/w/input";
    p.output_dir = "/w/output";
    p.result_dir = "/w/result";
    p.secrets_dir = "/w/secrets";
    p.tmp_bytes = 1024;
    p.env = {{"PATH", "/usr/bin"}, {"FAASD_JOB_ID", "J"}};
    p.argv = {"python3", "main.py"};
    auto a = build_bwrap_argv(p);
    auto has_seq = [&](std::vector<std::string> seq) {
        return std::search(a.begin(), a.end(), seq.begin(), seq.end()) != a.end();
    };
    CHECK(a.front() == "/usr/bin/bwrap");
    CHECK(has_seq({"--unshare-all"}));
    CHECK_FALSE(has_seq({"--share-net"}));
    CHECK(has_seq({"--die-with-parent"}));
    CHECK(has_seq({"--new-session"}));
    CHECK(has_seq({"--clearenv"}));
    CHECK(has_seq({"--ro-bind", "/usr", "/usr"}));
    CHECK(has_seq({"--symlink", "usr/bin", "/bin"}));
    CHECK(has_seq({"--ro-bind", "/etc/ssl", "/etc/ssl"}));
    CHECK(has_seq({"--size", "1024", "--tmpfs", "/tmp"}));
    CHECK(has_seq({"--dev", "/dev", "--remount-ro", "/dev", "--size", "1024", "--tmpfs", "/dev/shm"}));
    CHECK_FALSE(has_seq({"--disable-userns"}));
    CHECK(has_seq({"--ro-bind", "/w/code", "/faasd/code"}));
    CHECK(has_seq({"--bind", "/w/output", "/faasd/output"}));
    CHECK(has_seq({"--bind", "/w/result", "/faasd/result"}));
    CHECK(has_seq({"--ro-bind", "/w/secrets", "/faasd/secrets"}));
    CHECK(has_seq({"--chdir", "/faasd/code"}));
    CHECK(has_seq({"--setenv", "FAASD_JOB_ID", "J"}));
    CHECK(has_seq({"--", "python3", "main.py"}));
    CHECK(std::find(a.begin(), a.end(), "/w") == a.end());  // never the whole workspace
    // --clearenv comes before the variables it must not erase.
    CHECK(std::find(a.begin(), a.end(), "--clearenv") < std::find(a.begin(), a.end(), "--setenv"));

    p.network = true;
    p.map_to_nobody = true;
    a = build_bwrap_argv(p);
    CHECK(has_seq({"--unshare-all", "--share-net"}));
    CHECK(has_seq({"--unshare-user", "--uid", "65534", "--gid", "65534"}));

    // Nested user namespaces off (bwrap 0.8+): needs an explicit --unshare-user.
    p.disable_userns = true;
    a = build_bwrap_argv(p);
    CHECK(has_seq({"--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"}));
    p.map_to_nobody = false;
    a = build_bwrap_argv(p);
    CHECK(has_seq({"--unshare-user", "--disable-userns"}));
}
