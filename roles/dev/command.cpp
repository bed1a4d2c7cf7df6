// `faasd dev` and `faasd dev token` (docs/dev.md). Composition root of the
// zero-setup mode: a mock Kafka cluster, a development identity provider, and
// the frontend, an observer and in-process workers on one io_context; the
// observer's decisions start and stop the workers.

#include "common/command.hpp"
#include "common/common.hpp"
#include "dev/dev.hpp"
#include "frontend/frontend.hpp"
#include "observer/observer.hpp"
#include "worker/worker.hpp"

#include <faasd/config/config.hpp>
#include <faasd/crypto/sealing.hpp>
#include <faasd/crypto/signing.hpp>
#include <faasd/jobs/topics.hpp>
#include <faasd/kafka/mock_cluster.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace faasd::roles {
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// Runs argv to completion with stdout/stderr discarded; true on exit status 0.
// Only used before the event loop starts (example preparation, sandbox probe).
bool run_quietly(const std::vector<std::string>& argv, const fs::path& cwd = {}) {
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
        if (FILE* null = std::fopen("/dev/null", "w")) {
            ::dup2(::fileno(null), 1);
            ::dup2(::fileno(null), 2);
        }
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string choose_sandbox(const std::string& wanted, const faasd::logger& log) {
    if (wanted != "auto") return wanted;
    if (run_quietly({"bwrap", "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc",
                     "--dev", "/dev", "true"}))
        return "bwrap";
    log.warn("dev.sandbox_unavailable",
             {{"detail", "bubblewrap is missing or cannot create namespaces here; functions run WITHOUT isolation"}});
    return "none";
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    std::string t = s.str();
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    return t;
}

void write_private(const fs::path& p, const std::string& text) {
    {
        std::ofstream out(p, std::ios::trunc);
        out << text << '\n';
        if (!out) throw std::runtime_error("cannot write " + p.string());
    }
    ::chmod(p.c_str(), 0600);
}

// The credential key ring of this state directory (created on first use).
std::string credentials_keys(const dev_layout& layout) {
    if (fs::exists(layout.credentials_keys())) return read_text(layout.credentials_keys());
    std::string ring = crypto::generate_key("dev1");
    write_private(layout.credentials_keys(), ring);
    return ring;
}

// Each example function directory becomes a bare repository (branch main) under
// the state directory, rebuilt on every start. Returns their file:// URLs.
std::vector<std::string> prepare_examples(const fs::path& from, const dev_layout& layout, const faasd::logger& log) {
    std::vector<std::string> urls;
    if (from.empty()) {
        log.info("dev.examples", {{"detail", "no example functions found (use --examples-dir)"}});
        return urls;
    }
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(from))
        if (e.is_directory()) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& dir : dirs) {
        const std::string name = dir.filename().string();
        fs::path work = layout.examples() / (name + ".work");
        fs::path bare = layout.examples() / (name + ".git");
        fs::remove_all(work);
        fs::remove_all(bare);
        fs::create_directories(work);
        fs::copy(dir, work, fs::copy_options::recursive);
        const std::vector<std::string> id = {"-c", "user.name=faasd dev", "-c", "user.email=dev@faasd.invalid"};
        auto git = [&](std::vector<std::string> args) {
            std::vector<std::string> argv = {"git"};
            argv.insert(argv.end(), id.begin(), id.end());
            argv.insert(argv.end(), args.begin(), args.end());
            return run_quietly(argv, work);
        };
        bool ok = git({"init", "-q", "-b", "main"}) && git({"add", "-A"}) &&
                  git({"commit", "-q", "-m", "example function " + name}) &&
                  git({"clone", "-q", "--bare", work.string(), bare.string()});
        fs::remove_all(work);
        if (!ok) {
            log.warn("dev.example_failed", {{"example", name}, {"detail", "git is missing or failed"}});
            continue;
        }
        urls.push_back("file://" + fs::absolute(bare).lexically_normal().string());
    }
    return urls;
}

// In-process workers, started and stopped to follow the observer's target.
// Loop-thread only.
class worker_pool : public std::enable_shared_from_this<worker_pool> {
public:
    worker_pool(asio::any_io_executor ex, runtime::role_env base, worker_config cfg, kafka_config kafka, int min,
                int max)
        : ex_(std::move(ex)), base_(std::move(base)), cfg_(std::move(cfg)), kafka_(std::move(kafka)), min_(min),
          max_(max), wake_(ex_) {}

    void set_target(int n) {
        int t = std::clamp(n, min_, max_);
        if (t != target_) base_.log.info("dev.workers_target", {{"target", t}, {"asked", n}});
        target_ = t;
        reconcile();
    }

    // Runs until shutdown; then stops every worker (they drain) and waits for them.
    asio::awaitable<void> run(runtime::role_env& env) {
        set_target(min_);
        co_await env.shutdown->wait();
        stopping_ = true;
        for (auto& m : members_) m->env.shutdown->request();
        while (!members_.empty()) {  // finished() wakes us as each worker ends
            wake_.expires_at(asio::steady_timer::time_point::max());
            boost::system::error_code ec;
            co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
    }

private:
    struct member {
        int number = 0;
        runtime::role_env env;
        bool stopping = false;
    };

    void reconcile() {
        if (stopping_) return;
        int live = 0;
        for (auto& m : members_) live += m->stopping ? 0 : 1;
        while (live < target_) start(), ++live;
        for (auto it = members_.rbegin(); it != members_.rend() && live > target_; ++it)
            if (!(*it)->stopping) {
                (*it)->stopping = true;
                (*it)->env.shutdown->request();
                base_.log.info("dev.worker_stopping", {{"worker", (*it)->number}});
                --live;
            }
    }

    void start() {
        auto m = std::make_shared<member>();
        m->number = ++started_;
        m->env = base_;
        m->env.shutdown = std::make_shared<runtime::shutdown_signal>(ex_);
        m->env.log = base_.log.with({{"worker", m->number}});
        members_.push_back(m);
        worker_config cfg = cfg_;
        cfg.worker_id = "dev-w" + std::to_string(m->number);
        base_.log.info("dev.worker_starting", {{"worker", m->number}, {"worker_id", cfg.worker_id}});
        asio::co_spawn(ex_, run_worker(std::move(cfg), kafka_, m->env),
                       [self = shared_from_this(), m](std::exception_ptr e) { self->finished(m, e); });
    }

    void finished(const std::shared_ptr<member>& m, std::exception_ptr e) {
        std::erase(members_, m);
        if (stopping_) wake_.cancel();
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                base_.log.error("dev.worker_failed", {{"worker", m->number}, {"error", ex.what()}});
            }
            if (!stopping_) {
                // Try again later, not in a tight loop.
                auto t = std::make_shared<asio::steady_timer>(ex_, std::chrono::seconds(5));
                t->async_wait([self = shared_from_this(), t](boost::system::error_code) { self->reconcile(); });
            }
            return;
        }
        base_.log.info("dev.worker_stopped", {{"worker", m->number}});
        reconcile();
    }

    asio::any_io_executor ex_;
    runtime::role_env base_;
    worker_config cfg_;
    kafka_config kafka_;
    int min_, max_;
    int target_ = 0;
    int started_ = 0;
    bool stopping_ = false;
    std::vector<std::shared_ptr<member>> members_;
    asio::steady_timer wake_;
};

struct dev_state {
    common_config common;
    dev_config dev;
    dev_token_config token;
};

int run_dev(dev_state& st) {
    auto log = st.common.make_logger();
    dev_layout layout{fs::absolute(st.dev.state_dir).lexically_normal()};
    // Development identity provider and credential keys, kept across runs.
    auto key = crypto::load_or_create_signing_key(layout.root);
    // Traversable, not listable: sandboxed functions run as other uids and must
    // reach their workspace under jobs/; the key files themselves are 0600.
    ::chmod(layout.root.c_str(), 0711);
    fs::create_directories(layout.examples());
    write_private(layout.jwks(), key.jwks_json());
    const std::string keys = credentials_keys(layout);

    const std::string sandbox = choose_sandbox(st.dev.sandbox, log);
    const auto example_urls = prepare_examples(find_examples(st.dev.examples_dir), layout, log);

    // The embedded broker and every topic (the mock has no CreateTopics).
    kafka::mock_cluster cluster(1);
    const auto topics = jobs::topic_names::with_prefix(st.dev.topic_prefix);
    for (const auto& t : topics.all()) cluster.create_topic(t, topics.compacted(t) ? 1 : st.dev.partitions, 1);
    const std::string bootstrap = cluster.bootstrap_servers();
    write_private(layout.bootstrap(), bootstrap);

    kafka_config kafka;
    kafka.brokers = bootstrap;
    kafka.topic_prefix = st.dev.topic_prefix;
    kafka.topic_partitions = st.dev.partitions;
    kafka.topic_replication = 1;
    kafka.create_topics = false;
    for (const auto& [k, v] : kafka::mock_cluster::recommended_consumer_properties())
        kafka.properties.push_back(k + "=" + v);
    kafka.validate();

    frontend_config fe;
    fe.listen = st.dev.listen;
    fe.oidc_issuer = dev_issuer;
    fe.oidc_jwks_file = layout.jwks().string();
    fe.allow_file_repos = true;
    fe.link_schemes = "http,https";
    fe.credentials_keys = keys;
    fe.validate();

    worker_config wk;
    wk.slots = st.dev.slots;
    wk.cache_dir = layout.cache().string();
    wk.jobs_dir = layout.jobs().string();
    wk.sandbox = sandbox;
    wk.allowed_schemes = "https,ssh,http,git,file";
    wk.allow_private_sources = true;
    wk.credentials_keys = keys;
    wk.worker_id = "dev-w0";
    wk.validate();

    observer_config ob;
    ob.min_workers = st.dev.min_workers;
    ob.max_workers = st.dev.max_workers;
    ob.slots_per_worker = st.dev.slots;
    ob.initial_workers = st.dev.min_workers;
    ob.validate();

    std::vector<std::pair<std::string, role_fn>> roles;
    roles.emplace_back("frontend", [fe, kafka, bootstrap, sandbox, example_urls,
                                    dir = layout.root.string()](runtime::role_env& env) -> asio::awaitable<void> {
        return run_frontend(fe, env, kafka, [=](std::uint16_t port) {
            std::string host = fe.listen.substr(0, fe.listen.rfind(':'));
            std::error_code ec;
            auto exe = fs::read_symlink("/proc/self/exe", ec);
            std::fputs(dev_banner("http://" + host + ":" + std::to_string(port), bootstrap, dir, sandbox, example_urls,
                                  ec ? "faasd" : exe.string())
                           .c_str(),
                       stderr);
        });
    });
    auto pool = std::make_shared<std::shared_ptr<worker_pool>>();
    roles.emplace_back("workers", [pool, wk, kafka, st](runtime::role_env& env) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        *pool = std::make_shared<worker_pool>(ex, env, wk, kafka, st.dev.min_workers, st.dev.max_workers);
        auto p = *pool;
        co_await p->run(env);
    });
    roles.emplace_back("observer", [pool, ob, kafka](runtime::role_env& env) -> asio::awaitable<void> {
        return run_observer(ob, kafka, env, [pool](int target) {
            if (*pool) (*pool)->set_target(target);
        });
    });
    return run_roles(st.common, std::move(roles));
}

int run_token(const dev_token_config& t) {
    auto lifetime = config::parse_duration(t.lifetime);
    auto key = crypto::load_or_create_signing_key(fs::absolute(t.state_dir));
    auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    auto req = crypto::dev_user(t.user, t.admin, dev_issuer, now);
    req.lifetime = std::chrono::duration_cast<std::chrono::seconds>(*lifetime);
    std::cout << crypto::mint_access_token(key, req) << '\n';
    return 0;
}

}  // namespace

void add_dev_commands(CLI::App& app, command_list& out) {
    auto st = std::make_shared<dev_state>();
    auto* dev = app.add_subcommand(
        "dev",
        "Zero-setup development mode: frontend, observer and workers in one process on an embedded Kafka "
        "(librdkafka's mock cluster) with a development identity provider. NOT FOR PRODUCTION.");
    dev->require_subcommand(0, 1);
    add_common_options(*dev, st->common);
    dev->add_option("--state-dir", st->dev.state_dir,
                    "Directory for the dev IdP key, credential keys, repository cache, job workspaces and examples")
        ->capture_default_str();
    dev->add_option("--listen", st->dev.listen, "Frontend address host:port (port 0: any free port)")
        ->capture_default_str();
    dev->add_option("--min-workers", st->dev.min_workers, "In-process workers the observer keeps at least")
        ->capture_default_str();
    dev->add_option("--max-workers", st->dev.max_workers, "In-process workers the observer may start at most")
        ->capture_default_str();
    dev->add_option("--slots", st->dev.slots, "Jobs at once per worker")->capture_default_str();
    dev->add_option("--sandbox", st->dev.sandbox, "auto|bwrap|none (auto: bubblewrap when it works on this host)")
        ->capture_default_str();
    dev->add_option("--examples-dir", st->dev.examples_dir,
                    "Example functions to publish as file:// repositories (default: the installed examples, "
                    "or the source tree's examples/functions)");
    dev->add_option("--topic-prefix", st->dev.topic_prefix, "Prefix of every topic name")->capture_default_str();
    dev->add_option("--partitions", st->dev.partitions, "Partitions of each embedded topic")->capture_default_str();
    out.push_back({dev,
                   [st] {
                       st->common.validate();
                       st->dev.validate();
                   },
                   [st] { return run_dev(*st); }});

    auto* token = dev->add_subcommand(
        "token", "Print an access token from the development identity provider (for any user: DEVELOPMENT ONLY)");
    token->add_option("--state-dir", st->token.state_dir, "The state directory of `faasd dev`")
        ->capture_default_str();
    token->add_option("--user", st->token.user, "User name (preferred_username; sub is derived from it)")
        ->capture_default_str();
    token->add_flag("--admin", st->token.admin, "Also grant the faas-admin role (default off)");
    token->add_option("--lifetime", st->token.lifetime, "Token lifetime")->capture_default_str();
    out.push_back({token,
                   [st] {
                       if (st->token.user.empty()) throw config::config_error("--user: must not be empty");
                       auto d = config::parse_duration(st->token.lifetime);
                       if (!d || *d < std::chrono::seconds(1) || *d > std::chrono::hours(24 * 30))
                           throw config::config_error("--lifetime: '" + st->token.lifetime +
                                                      "' is not a duration from 1s to 30 days");
                   },
                   [st] { return run_token(st->token); }});
}

}  // namespace faasd::roles
