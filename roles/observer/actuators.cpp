// The actuators: `faasd scaler` (runs a command with the target) and the
// worker supervisor (`faasd supervisor`, `faasd observer --supervise`).
// Child processes are started with posix_spawn and reaped by polling
// waitpid(WNOHANG) on a timer: the loop never blocks on a child.

#include "observer/observer.hpp"

#include <faasd/config/config.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/kafka.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace faasd::roles {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace asio::experimental::awaitable_operators;

namespace {

std::chrono::milliseconds duration_or_throw(const std::string& option, const std::string& v) {
    auto d = config::parse_duration(v);
    if (!d || d->count() < 0) throw config::config_error(option + ": '" + v + "' is not a duration (e.g. 1s, 500ms)");
    return *d;
}

// Starts argv; own process group when `new_group`. Returns the pid or -errno.
int spawn_process(const std::vector<std::string>& argv, bool new_group) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    if (new_group) {
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&attr, 0);
    }
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, args[0], nullptr, &attr, args.data(), environ);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? static_cast<int>(pid) : -rc;
}

// waitpid(WNOHANG): the exit status (128+signal for a signal), or nullopt while it runs.
std::optional<int> try_reap(int pid) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == 0) return std::nullopt;
    if (r < 0) return -1;  // not our child any more (already reaped)
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

std::string self_exe() {
    char buf[PATH_MAX];
    const auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return "/proc/self/exe";
    return std::string(buf, static_cast<std::size_t>(n));
}

// Follows the observer topic from its last record and calls fn(target) for every report.
asio::awaitable<void> follow_reports(kafka_config kcfg, runtime::role_env& env, std::string client,
                                     std::function<void(int)> fn) {
    auto ex = co_await asio::this_coro::executor;
    const auto names = jobs::topic_names::with_prefix(kcfg.topic_prefix);
    auto props = kafka::parse_properties(kcfg.properties);
    kafka::admin_options ao;
    ao.brokers = kcfg.brokers;
    ao.properties = props;
    ao.client_id = client + "-admin";
    ao.log = env.log;
    ao.request_timeout = std::chrono::seconds(5);
    kafka::consumer_options co;
    co.brokers = kcfg.brokers;
    co.properties = props;
    co.client_id = client;
    co.log = env.log;
    if (env.health_state)
        co.on_readiness = [h = env.health_state, client](bool r, std::string_view d) {
            h->set(client + ".kafka", r, std::string(d));
        };
    kafka::admin adm(ex, ao);
    kafka::consumer consumer(ex, co);
    std::exception_ptr failure;
    try {
        // Start at each partition's last record: the latest report is the state.
        kafka::backoff_policy retry;
        for (int failures = 0;;) {
            std::vector<std::string> observer_topic{names.observer};
            auto wm = co_await adm.watermarks(std::move(observer_topic));
            if (wm && !wm->empty()) {
                std::vector<kafka::topic_partition> parts;
                for (const auto& p : *wm)
                    parts.push_back({p.topic, p.partition, p.high > p.low ? p.high - 1 : kafka::offset_beginning});
                if (auto r = consumer.assign(parts); r) break;
            }
            ++failures;
            env.log.warn("scaler.waiting_for_topic",
                         {{"topic", names.observer},
                          {"error", wm ? std::string("no partitions") : wm.error().message()},
                          {"attempt", failures}});
            co_await sleep_for(retry.delay(failures));
        }
        env.log.info("scaler.following", {{"topic", names.observer}});
        for (;;) {
            auto batch = co_await consumer.poll(256);
            // Only the newest report of a batch matters.
            for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
                if (it->tombstone() || (it->key && *it->key != "report")) continue;
                if (auto t = target_from_report(*it->value)) {
                    fn(*t);
                    break;
                }
            }
        }
    } catch (...) {
        failure = std::current_exception();
    }
    co_await consumer.close();
    co_await adm.close();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace

std::optional<int> target_from_report(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto& o = v.as_object();
    const json::value* t = o.if_contains("target");
    if (t == nullptr)
        if (const auto* d = o.if_contains("decision"); d && d->is_object()) t = d->as_object().if_contains("target");
    if (t == nullptr || !t->is_int64()) return std::nullopt;
    const auto n = t->as_int64();
    if (n < 0 || n > 1'000'000) return std::nullopt;
    return static_cast<int>(n);
}

std::string scaler_command(std::string_view exec, int workers) {
    std::string out;
    const std::string_view token = "{workers}";
    const std::string value = std::to_string(workers);
    std::size_t i = 0;
    while (i < exec.size()) {
        if (exec.substr(i, token.size()) == token) {
            out += value;
            i += token.size();
        } else {
            out += exec[i++];
        }
    }
    return out;
}

// ---------------------------------------------------------------------------
// scaler

void scaler_config::validate() const {
    if (exec.empty()) throw config::config_error("--exec: required (e.g. 'deploy/kumori/scale.sh {workers}')");
    if (exec.find("{workers}") == std::string::npos)
        throw config::config_error("--exec: must contain {workers}");
    duration_or_throw("--exec-timeout", timeout);
    duration_or_throw("--retry", retry);
    if (min_workers < 0 || max_workers < min_workers)
        throw config::config_error("--min-workers/--max-workers: need 0 <= min <= max");
}

asio::awaitable<void> run_scaler(scaler_config cfg, kafka_config kcfg, runtime::role_env& env) {
    cfg.validate();
    const auto timeout = duration_or_throw("--exec-timeout", cfg.timeout);
    const auto retry = duration_or_throw("--retry", cfg.retry);
    const auto log = env.log;
    std::optional<int> desired, applied;
    auto retry_at = std::chrono::steady_clock::time_point{};
    if (env.health_state) env.health_state->set("scaler", true);

    // Runs one command; true on exit status 0. Kills its process group on timeout or cancellation.
    auto run_command = [&](int target) -> asio::awaitable<bool> {
        const auto cmd = scaler_command(cfg.exec, target);
        const auto t0 = std::chrono::steady_clock::now();
        const int pid = spawn_process({"/bin/sh", "-c", cmd}, true);
        if (pid < 0) {
            log.error("scaler.spawn_failed", {{"target", target}, {"error", std::strerror(-pid)}});
            co_return false;
        }
        log.info("scaler.exec", {{"target", target}, {"command", cmd}, {"pid", pid}});
        bool cancelled = false;
        std::optional<int> status;
        try {
            while (!(status = try_reap(pid))) {
                if (std::chrono::steady_clock::now() - t0 > timeout) {
                    ::kill(-pid, SIGKILL);
                    log.error("scaler.timeout", {{"target", target}, {"timeout_ms", timeout.count()}});
                    while (!(status = try_reap(pid))) co_await sleep_for(std::chrono::milliseconds(20));
                    co_return false;
                }
                co_await sleep_for(std::chrono::milliseconds(50));
            }
        } catch (...) {
            cancelled = true;
        }
        if (cancelled) {
            ::kill(-pid, SIGTERM);  // shutting down: do not leave it behind
            throw boost::system::system_error(asio::error::operation_aborted);
        }
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        if (*status != 0) {
            log.error("scaler.failed", {{"target", target}, {"status", *status}, {"ms", ms}});
            co_return false;
        }
        log.info("scaler.applied", {{"target", target}, {"ms", ms}});
        co_return true;
    };

    auto executor = [&]() -> asio::awaitable<void> {
        for (;;) {
            if (desired && desired != applied && std::chrono::steady_clock::now() >= retry_at) {
                const int t = *desired;
                if (co_await run_command(t))
                    applied = t;
                else
                    retry_at = std::chrono::steady_clock::now() + retry;
                continue;
            }
            co_await sleep_for(std::chrono::milliseconds(100));
        }
    };

    auto on_report = [&](int t) {
        t = std::clamp(t, cfg.min_workers, cfg.max_workers);
        if (desired != t) log.info("scaler.target", {{"target", t}});
        desired = t;
    };
    co_await (follow_reports(kcfg, env, "faasd-scaler", on_report) || executor() || env.shutdown->wait());
    log.info("scaler.stopped", {{"applied", applied ? *applied : -1}});
}

// ---------------------------------------------------------------------------
// supervisor

void supervisor_config::validate() const {
    if (min_workers < 0 || max_workers < min_workers)
        throw config::config_error("--min-workers/--max-workers: need 0 <= min <= max");
    if (!stop_timeout.empty()) duration_or_throw("--stop-timeout", stop_timeout);
    duration_or_throw("--restart-delay", restart_delay);
}

stop_rule resolve_stop_rule(const supervisor_config& cfg, std::chrono::milliseconds own_grace) {
    using namespace std::chrono_literals;
    stop_rule r;
    std::optional<std::chrono::milliseconds> configured;
    if (!cfg.stop_timeout.empty()) configured = duration_or_throw("--stop-timeout", cfg.stop_timeout);
    if (!cfg.worker_command.empty()) {
        r.stop_timeout = configured.value_or(60s);
        return r;
    }
    // The workers' own --shutdown-grace, as --shutdown-grace=X or --shutdown-grace X.
    const std::string name = "--shutdown-grace";
    for (std::size_t i = 0; i < cfg.worker_args.size(); ++i) {
        const auto& a = cfg.worker_args[i];
        if (a.rfind(name + "=", 0) == 0)
            r.worker_grace = duration_or_throw("--worker-arg " + name, a.substr(name.size() + 1));
        else if (a == name && i + 1 < cfg.worker_args.size())
            r.worker_grace = duration_or_throw("--worker-arg " + name, cfg.worker_args[i + 1]);
    }
    if (!r.worker_grace) {
        r.worker_grace = std::max<std::chrono::milliseconds>(own_grace - 2s, 1s);
        r.grace_arg = name + "=" + std::to_string(r.worker_grace->count()) + "ms";
    }
    const auto minimum = *r.worker_grace + 2s;
    r.raised = configured && *configured < minimum;
    r.stop_timeout = configured ? std::max(*configured, minimum) : minimum;
    r.exceeds_own_grace = minimum > own_grace;
    return r;
}

supervisor_config apply_stop_rule(supervisor_config cfg, std::chrono::milliseconds own_grace, const faasd::logger& log) {
    const auto rule = resolve_stop_rule(cfg, own_grace);
    if (rule.grace_arg) cfg.inherited_args.push_back(*rule.grace_arg);
    if (rule.raised)
        log.warn("supervisor.stop_timeout_raised", {{"configured", cfg.stop_timeout},
                                                    {"stop_timeout_ms", rule.stop_timeout.count()},
                                                    {"worker_grace_ms", rule.worker_grace->count()}});
    if (rule.exceeds_own_grace)
        log.warn("supervisor.grace_too_short",
                 {{"worker_grace_ms", rule.worker_grace->count()},
                  {"shutdown_grace_ms", own_grace.count()},
                  {"detail", "on the supervisor's own shutdown, workers still draining after its grace are killed "
                             "(their unfinished at-least-once jobs run again elsewhere); give it a --shutdown-grace "
                             "of at least the workers' + 2s"}});
    cfg.stop_timeout = std::to_string(rule.stop_timeout.count()) + "ms";
    return cfg;
}

worker_supervisor::worker_supervisor(asio::any_io_executor ex, supervisor_config cfg, faasd::logger log)
    : ex_(std::move(ex)), cfg_(std::move(cfg)), log_(std::move(log)) {
    cfg_.validate();
    stop_timeout_ = cfg_.stop_timeout.empty() ? std::chrono::milliseconds(60000)
                                              : duration_or_throw("--stop-timeout", cfg_.stop_timeout);
    restart_delay_ = duration_or_throw("--restart-delay", cfg_.restart_delay);
    target_ = cfg_.min_workers;
}

worker_supervisor::~worker_supervisor() {
    // Only reached with children left if run() was abandoned: do not leak them.
    for (auto& c : children_) {
        ::kill(c.pid, SIGKILL);
        int status = 0;
        ::waitpid(c.pid, &status, 0);  // killed: returns at once
    }
}

std::vector<std::string> kafka_args(const kafka_config& k) {
    std::vector<std::string> out{"--kafka-brokers=" + k.brokers, "--topic-prefix=" + k.topic_prefix,
                                 "--topic-partitions=" + std::to_string(k.topic_partitions),
                                 "--topic-replication=" + std::to_string(k.topic_replication),
                                 std::string("--create-topics=") + (k.create_topics ? "true" : "false")};
    for (const auto& p : k.properties) out.push_back("--kafka-property=" + p);
    return out;
}

std::vector<std::string> worker_supervisor::command() const {
    if (!cfg_.worker_command.empty()) return cfg_.worker_command;
    std::vector<std::string> argv{cfg_.executable.empty() ? self_exe() : cfg_.executable, "worker"};
    // An inherited option is dropped when worker_args sets it (CLI11 rejects a repeated single option).
    auto name_of = [](const std::string& a) { return a.substr(0, a.find('=')); };
    for (const auto& a : cfg_.inherited_args) {
        const auto name = name_of(a);
        const bool overridden = std::any_of(cfg_.worker_args.begin(), cfg_.worker_args.end(),
                                            [&](const std::string& w) { return name_of(w) == name; });
        if (!overridden) argv.push_back(a);
    }
    argv.insert(argv.end(), cfg_.worker_args.begin(), cfg_.worker_args.end());
    return argv;
}

void worker_supervisor::set_target(int target) {
    if (stopped_) return;
    target = std::clamp(target, cfg_.min_workers, cfg_.max_workers);
    if (target != target_) log_.info("supervisor.target", {{"from", target_}, {"to", target}});
    target_ = target;
    reconcile();
}

int worker_supervisor::running() const noexcept {
    return static_cast<int>(std::count_if(children_.begin(), children_.end(), [](const child& c) { return !c.stopping; }));
}

int worker_supervisor::stopping() const noexcept { return static_cast<int>(children_.size()) - running(); }

std::vector<int> worker_supervisor::pids() const {
    std::vector<int> out;
    for (const auto& c : children_)
        if (!c.stopping) out.push_back(c.pid);
    return out;
}

void worker_supervisor::spawn() {
    const int pid = spawn_process(command(), false);
    if (pid < 0) {
        log_.error("supervisor.spawn_failed", {{"error", std::strerror(-pid)}});
        next_spawn_ = std::chrono::steady_clock::now() + restart_delay_;
        return;
    }
    children_.push_back({pid, false, {}});
    log_.info("supervisor.started", {{"pid", pid}, {"running", running()}, {"target", target_}});
}

void worker_supervisor::reconcile() {
    const auto now = std::chrono::steady_clock::now();
    // Reap what exited; escalate stops that take too long.
    for (auto it = children_.begin(); it != children_.end();) {
        if (auto status = try_reap(it->pid)) {
            if (it->stopping) {
                log_.info("supervisor.stopped", {{"pid", it->pid}, {"status", *status}});
            } else {
                log_.warn("supervisor.worker_exited", {{"pid", it->pid}, {"status", *status}});
                next_spawn_ = now + restart_delay_;
            }
            it = children_.erase(it);
            continue;
        }
        if (it->stopping && now - it->stop_sent > stop_timeout_) {
            log_.warn("supervisor.kill", {{"pid", it->pid}, {"after_ms", stop_timeout_.count()}});
            ::kill(it->pid, SIGKILL);
            it->stop_sent = now + std::chrono::hours(24);  // once
        }
        ++it;
    }
    const int want = stopped_ ? 0 : target_;
    int have = running();
    // Stop the newest first (the oldest have warm caches).
    for (auto it = children_.rbegin(); it != children_.rend() && have > want; ++it) {
        if (it->stopping) continue;
        ::kill(it->pid, SIGTERM);
        it->stopping = true;
        it->stop_sent = now;
        --have;
        log_.info("supervisor.stopping", {{"pid", it->pid}, {"running", have}, {"target", want}});
    }
    while (have < want && now >= next_spawn_) {
        spawn();
        have = running();
        if (next_spawn_ > now) break;  // a spawn failed
    }
}

asio::awaitable<void> worker_supervisor::run() {
    bool cancelled = false;
    try {
        while (!(stopped_ && children_.empty())) {
            reconcile();
            co_await sleep_for(std::chrono::milliseconds(100));
        }
    } catch (...) {
        cancelled = true;
    }
    if (cancelled) {
        for (auto& c : children_) ::kill(c.pid, SIGKILL);
        for (auto& c : children_) {
            int status = 0;
            ::waitpid(c.pid, &status, 0);  // killed: returns at once
        }
        children_.clear();
        throw boost::system::system_error(asio::error::operation_aborted);
    }
}

void worker_supervisor::stop() {
    if (stopped_) return;
    stopped_ = true;
    log_.info("supervisor.stopping_all", {{"running", running()}});
    reconcile();
}

asio::awaitable<void> run_supervisor(supervisor_config cfg, kafka_config kcfg, runtime::role_env& env) {
    auto ex = co_await asio::this_coro::executor;
    if (cfg.inherited_args.empty()) cfg.inherited_args = kafka_args(kcfg);
    cfg = apply_stop_rule(std::move(cfg), env.shutdown_grace, env.log);
    worker_supervisor sup(ex, cfg, env.log);
    auto control = [&]() -> asio::awaitable<void> {
        co_await (follow_reports(kcfg, env, "faasd-supervisor", [&](int t) { sup.set_target(t); }) ||
                  env.shutdown->wait());
        sup.stop();
    };
    co_await (control() && sup.run());
}

}  // namespace faasd::roles
