#pragma once
// The deployment model shared by test/unit/deploy and test/integration/deploy
// (header-only so that both test executables can use it):
//
//   * what the binary reads: `faasd --dump-options` parsed into commands and
//     options (the truth every deployment file is checked against);
//   * the faasd processes a compose file describes (`docker-compose config`
//     converted to JSON), and how one becomes a local process (Kafka address,
//     topic prefix, listening ports and service URLs rewritten);
//   * the roles of a Kumori deployment (`cue export` of a deployment with the
//     schema stub) and each role's effective environment;
//   * drift checks: variables no option reads, commands the binary lacks.
//
// Pure functions over Boost.JSON values (no I/O), except process_group at the
// end, which starts and stops local processes for the integration tests.

#include <faasd/config/config.hpp>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::test::deploy {

namespace json = boost::json;

// ---- What the binary reads ---------------------------------------------------

struct option_info {
    std::string name;           ///< long name without dashes ("kafka-brokers")
    std::string env;            ///< FAASD_KAFKA_BROKERS
    std::string default_value;  ///< as CLI11 prints it
    bool takes_value = true;
    bool multi = false;
};

struct command_info {
    std::string path;  ///< "frontend", "dev token"
    bool leaf = true;
    std::vector<option_info> options;

    const option_info* by_env(std::string_view env) const {
        for (const auto& o : options)
            if (o.env == env) return &o;
        return nullptr;
    }
};

struct binary_info {
    std::string version;
    std::vector<command_info> commands;

    const command_info* command(std::string_view path) const {
        for (const auto& c : commands)
            if (c.path == path) return &c;
        return nullptr;
    }
};

/// Parses the output of `faasd --dump-options`; throws std::runtime_error if malformed.
inline binary_info parse_dump(std::string_view text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) throw std::runtime_error("faasd --dump-options: not a JSON object");
    binary_info out;
    const auto& o = v.as_object();
    if (!o.contains("version") || !o.contains("commands"))
        throw std::runtime_error("faasd --dump-options: missing keys");
    out.version = json::value_to<std::string>(o.at("version"));
    for (const auto& c : o.at("commands").as_array()) {
        const auto& co = c.as_object();
        command_info ci;
        ci.path = json::value_to<std::string>(co.at("path"));
        ci.leaf = co.at("leaf").as_bool();
        for (const auto& opt : co.at("options").as_array()) {
            const auto& oo = opt.as_object();
            ci.options.push_back({json::value_to<std::string>(oo.at("name")), json::value_to<std::string>(oo.at("env")),
                                  json::value_to<std::string>(oo.at("default")), oo.at("takes_value").as_bool(),
                                  oo.at("multi").as_bool()});
        }
        out.commands.push_back(std::move(ci));
    }
    return out;
}

/// True for FAASD_* variables that faasd reads directly rather than as options
/// (secrets such as FAASD_CREDENTIALS_KEYS, test harness variables): asks the
/// same function main uses to warn about unknown variables.
inline bool read_directly(const std::string& name) {
    CLI::App empty;
    std::string entry = name + "=x";
    char* env[] = {entry.data(), nullptr};
    return faasd::config::unknown_env(empty, env).empty();
}

/// The roles whose subcommands are still being written (issue #6 was built
/// before them). A deployment file may name a pending role although the binary
/// lacks it; its variables are then checked against the shared options only.
/// Remove a role from this list when it lands: from then on the binary itself
/// is the truth (and the consistency test fails if the role is missing).
inline const std::set<std::string>& pending_roles() {
    static const std::set<std::string> roles{};
    return roles;
}

/// Problems of one FAASD_* environment for a subcommand: variables that no
/// option of `cmd` reads (and that faasd does not read directly). Non-FAASD_
/// variables are not faasd's business and are ignored.
inline std::vector<std::string> env_problems(const std::map<std::string, std::string>& env, const command_info& cmd) {
    std::vector<std::string> out;
    for (const auto& [name, value] : env) {
        if (!name.starts_with("FAASD_")) continue;
        if (cmd.by_env(name) == nullptr && !read_directly(name))
            out.push_back(name + " is read by no option of `faasd " + cmd.path + "`");
    }
    return out;
}

// ---- Compose -----------------------------------------------------------------

struct port_mapping {
    int published = 0;  ///< 0 when only the container port is given
    int target = 0;
};

struct compose_service {
    std::string name;
    std::string image;
    std::vector<std::string> entrypoint;
    std::vector<std::string> command;
    std::map<std::string, std::string> env;
    std::vector<port_mapping> ports;
    int replicas = 1;
    std::string restart;
    bool healthcheck = false;
    bool container_name = false;
    std::vector<std::string> networks;
    std::vector<std::string> profiles;  ///< non-empty: started only with --profile
};

namespace detail {
inline std::vector<std::string> string_list(const json::value* v) {
    std::vector<std::string> out;
    if (v == nullptr || v->is_null()) return out;
    if (v->is_string()) {  // shell form: split on spaces (good enough for our files)
        std::string s(v->as_string());
        std::size_t i = 0;
        while (i < s.size()) {
            auto j = s.find(' ', i);
            if (j == std::string::npos) j = s.size();
            if (j > i) out.push_back(s.substr(i, j - i));
            i = j + 1;
        }
        return out;
    }
    for (const auto& e : v->as_array()) out.push_back(json::value_to<std::string>(e));
    return out;
}
inline std::string scalar(const json::value& v) {
    if (v.is_string()) return std::string(v.as_string());
    if (v.is_null()) return {};
    return json::serialize(v);
}
}  // namespace detail

/// The services of a resolved compose file (`docker-compose config` as JSON).
inline std::vector<compose_service> parse_compose(const json::value& doc) {
    std::vector<compose_service> out;
    for (const auto& [name, sv] : doc.at("services").as_object()) {
        const auto& s = sv.as_object();
        compose_service c;
        c.name = std::string(name);
        if (auto* p = s.if_contains("image")) c.image = detail::scalar(*p);
        c.entrypoint = detail::string_list(s.if_contains("entrypoint"));
        c.command = detail::string_list(s.if_contains("command"));
        if (auto* e = s.if_contains("environment")) {
            if (e->is_object()) {
                for (const auto& [k, v] : e->as_object()) c.env[std::string(k)] = detail::scalar(v);
            } else {
                for (const auto& kv : e->as_array()) {
                    std::string item(kv.as_string());
                    auto eq = item.find('=');
                    c.env[item.substr(0, eq)] = eq == std::string::npos ? std::string() : item.substr(eq + 1);
                }
            }
        }
        if (auto* ports = s.if_contains("ports")) {
            for (const auto& p : ports->as_array()) {
                port_mapping m;
                if (p.is_object()) {
                    m.target = static_cast<int>(p.at("target").to_number<std::int64_t>());
                    if (auto* pub = p.as_object().if_contains("published"))
                        m.published = pub->is_string() ? std::stoi(std::string(pub->as_string()))
                                                       : static_cast<int>(pub->to_number<std::int64_t>());
                } else {  // "8080:80" or "80"
                    std::string t = detail::scalar(p);
                    auto colon = t.rfind(':');
                    m.target = std::stoi(t.substr(colon == std::string::npos ? 0 : colon + 1));
                    if (colon != std::string::npos) m.published = std::stoi(t.substr(t.rfind(':', colon - 1) + 1));
                }
                c.ports.push_back(m);
            }
        }
        if (auto* d = s.if_contains("deploy"); d && d->as_object().contains("replicas"))
            c.replicas = static_cast<int>(d->at("replicas").to_number<std::int64_t>());
        if (auto* r = s.if_contains("restart")) c.restart = detail::scalar(*r);
        c.healthcheck = s.contains("healthcheck");
        c.container_name = s.contains("container_name");
        c.profiles = detail::string_list(s.if_contains("profiles"));
        if (auto* n = s.if_contains("networks")) {
            if (n->is_object())
                for (const auto& [k, v] : n->as_object()) c.networks.emplace_back(k);
            else
                c.networks = detail::string_list(n);
        }
        out.push_back(std::move(c));
    }
    return out;
}

/// The faasd image: "faasd:<tag>" or "<registry>/.../faasd:<tag>".
inline bool is_faasd_image(std::string_view image) {
    auto slash = image.rfind('/');
    auto base = slash == std::string_view::npos ? image : image.substr(slash + 1);
    return base.starts_with("faasd:") || base == "faasd";
}

/// How a compose service becomes a local process.
struct local_rewrite {
    std::string kafka_brokers;                      ///< the test's Kafka
    std::string topic_prefix;                       ///< fresh per test
    std::map<std::string, std::string> host_ports;  ///< "keycloak:8080" -> "127.0.0.1:18080"
    std::function<std::uint16_t()> free_port;       ///< for listening options
    /// Directories of the container ("/var/lib/faasd", "/tmp/faasd"): a value that
    /// is one of them or below one moves under the process's own HOME.
    std::vector<std::string> container_dirs;
};

struct local_process {
    std::string name;                        ///< "worker-2"
    std::string service;                     ///< "worker"
    std::vector<std::string> args;           ///< after the program (the compose command)
    std::map<std::string, std::string> env;  ///< the complete environment
    std::map<int, int> ports;                ///< container port -> local port
};

/// "0.0.0.0:8080", ":8080", "[::]:8080" -> 8080; otherwise nullopt.
inline std::optional<int> wildcard_listen_port(std::string_view v) {
    for (std::string_view host : {"0.0.0.0:", "[::]:", ":"}) {
        if (!v.starts_with(host)) continue;
        auto rest = v.substr(host.size());
        if (rest.empty() || rest.size() > 5 ||
            !std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
        return std::stoi(std::string(rest));
    }
    return std::nullopt;
}

/// The local processes for the faasd services of a compose file that a plain
/// `up` starts (services with profiles are left out): one per replica, each with exactly the service's environment (plus PATH, HOME and
/// HOSTNAME, which an engine provides), rewritten for the test: the Kafka
/// bootstrap list and the topic prefix, every wildcard listening address to
/// 127.0.0.1 and a free port, known service host:ports (e.g. Keycloak), and
/// container directories to directories under the process's HOME.
inline std::vector<local_process> to_local(const std::vector<compose_service>& services, const local_rewrite& rw,
                                           const std::string& home_root) {
    std::vector<local_process> out;
    for (const auto& s : services) {
        if (!is_faasd_image(s.image) || !s.profiles.empty()) continue;
        for (int i = 1; i <= s.replicas; ++i) {
            local_process p;
            p.service = s.name;
            p.name = s.name + "-" + std::to_string(i);
            p.args = s.command;
            for (auto [k, v] : s.env) {
                if (k == "FAASD_KAFKA_BROKERS")
                    v = rw.kafka_brokers;
                else if (k == "FAASD_TOPIC_PREFIX")
                    v = rw.topic_prefix;
                else if (auto port = wildcard_listen_port(v)) {
                    auto [it, fresh] = p.ports.try_emplace(*port, 0);
                    if (fresh) it->second = rw.free_port ? rw.free_port() : 0;
                    v = "127.0.0.1:" + std::to_string(it->second);
                } else if (auto dir = std::find_if(rw.container_dirs.begin(), rw.container_dirs.end(),
                                                   [&](const std::string& d) {
                                                       return v == d || (v.starts_with(d) && v[d.size()] == '/');
                                                   });
                           dir != rw.container_dirs.end()) {
                    v = home_root + "/" + p.name + "/root" + v;
                } else {
                    for (const auto& [from, to] : rw.host_ports)
                        for (auto pos = v.find(from); pos != std::string::npos; pos = v.find(from, pos + to.size()))
                            v.replace(pos, from.size(), to);
                }
                p.env[k] = v;
            }
            p.env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
            p.env["HOME"] = home_root + "/" + p.name;
            p.env["HOSTNAME"] = p.name;
            out.push_back(std::move(p));
        }
    }
    return out;
}

// ---- Kumori ------------------------------------------------------------------

struct kumori_env {
    enum kind_t { value, parameter, secret } kind = value;
    std::string ref;        ///< the literal, the parameter name or the secret name
    std::string effective;  ///< the value the container sees (secrets: "<secret NAME>")
};

struct kumori_container {
    std::string name;
    std::string image;  ///< hub name + "/" + tag (hub omitted when empty)
    std::vector<std::string> entrypoint, cmd;
    std::map<std::string, kumori_env> env;
};

struct kumori_role {
    std::string name;
    bool builtin = false;
    std::string artifact;                       ///< ref.name of the role's artifact
    int hsize = -1;                             ///< from the deployment's scale (-1: not listed)
    std::map<std::string, int> server, duplex;  ///< channel -> port
    std::set<std::string> client;
    std::vector<kumori_container> containers;
    json::object parameters;  ///< the artifact's effective parameters
};

struct kumori_connector {
    std::string name, as;
    std::map<std::string, std::string> from;          ///< role -> channel
    std::map<std::string, std::set<std::string>> to;  ///< role -> channels
};

struct kumori_deployment {
    std::string name;
    std::string service;  ///< the service artifact's ref.name
    std::map<std::string, int> server, duplex;
    std::set<std::string> client;
    std::vector<kumori_role> roles;
    std::vector<kumori_connector> connectors;
    json::object parameters;

    const kumori_role* role(std::string_view n) const {
        for (const auto& r : roles)
            if (r.name == n) return &r;
        return nullptr;
    }
};

namespace detail {
inline void channels(const json::object& srv, std::map<std::string, int>& server, std::map<std::string, int>& duplex,
                     std::set<std::string>& client) {
    if (auto* s = srv.if_contains("server"))
        for (const auto& [k, v] : s->as_object())
            server[std::string(k)] = static_cast<int>(v.at("port").to_number<std::int64_t>());
    if (auto* s = srv.if_contains("duplex"))
        for (const auto& [k, v] : s->as_object())
            duplex[std::string(k)] = static_cast<int>(v.at("port").to_number<std::int64_t>());
    if (auto* s = srv.if_contains("client"))
        for (const auto& [k, v] : s->as_object()) client.insert(std::string(k));
}
}  // namespace detail

/// Reads `cue export <deployment> -e '#Deployment' --out json` (schema stub).
inline kumori_deployment parse_kumori(const json::value& doc) {
    kumori_deployment d;
    const auto& o = doc.as_object();
    d.name = json::value_to<std::string>(o.at("name"));
    const auto& art = o.at("artifact").as_object();
    d.service = json::value_to<std::string>(art.at("ref").at("name"));
    const auto& desc = art.at("description").as_object();
    if (auto* srv = desc.if_contains("srv")) detail::channels(srv->as_object(), d.server, d.duplex, d.client);
    if (auto* p = desc.at("config").as_object().if_contains("parameter")) d.parameters = p->as_object();
    const auto* scale = o.at("config").as_object().if_contains("scale");
    for (const auto& [rname, rv] : desc.at("role").as_object()) {
        kumori_role r;
        r.name = std::string(rname);
        const auto& ra = rv.at("artifact").as_object();
        const auto& rd = ra.at("description").as_object();
        r.artifact = json::value_to<std::string>(ra.at("ref").at("name"));
        r.builtin = rd.contains("builtin") && rd.at("builtin").as_bool();
        if (scale) {
            const auto& det = scale->at("detail").as_object();
            if (auto* h = det.if_contains(rname)) r.hsize = static_cast<int>(h->at("hsize").to_number<std::int64_t>());
        }
        if (auto* srv = rd.if_contains("srv")) detail::channels(srv->as_object(), r.server, r.duplex, r.client);
        if (auto* p = rd.at("config").as_object().if_contains("parameter")) r.parameters = p->as_object();
        if (auto* code = rd.if_contains("code")) {
            for (const auto& [cname, cv] : code->as_object()) {
                kumori_container c;
                c.name = std::string(cname);
                const auto& img = cv.at("image").as_object();
                std::string hub = json::value_to<std::string>(img.at("hub").at("name"));
                c.image = (hub.empty() ? std::string() : hub + "/") + json::value_to<std::string>(img.at("tag"));
                c.entrypoint = detail::string_list(cv.as_object().if_contains("entrypoint"));
                c.cmd = detail::string_list(cv.as_object().if_contains("cmd"));
                const auto* mapping = cv.as_object().if_contains("mapping");
                const auto* env = mapping ? mapping->as_object().if_contains("env") : nullptr;
                if (env) {
                    for (const auto& [ename, ev] : env->as_object()) {
                        kumori_env e;
                        const auto& eo = ev.as_object();
                        if (auto* v = eo.if_contains("value")) {
                            e.kind = kumori_env::value;
                            e.ref = e.effective = detail::scalar(*v);
                        } else if (auto* p = eo.if_contains("parameter")) {
                            e.kind = kumori_env::parameter;
                            e.ref = detail::scalar(*p);
                            if (auto* pv = r.parameters.if_contains(e.ref)) e.effective = detail::scalar(*pv);
                        } else {
                            e.kind = kumori_env::secret;
                            e.ref = detail::scalar(eo.at("secret"));
                            e.effective = "<secret " + e.ref + ">";
                        }
                        c.env[std::string(ename)] = std::move(e);
                    }
                }
                r.containers.push_back(std::move(c));
            }
        }
        d.roles.push_back(std::move(r));
    }
    for (const auto& [cname, cv] : desc.at("connect").as_object()) {
        kumori_connector k;
        k.name = std::string(cname);
        k.as = json::value_to<std::string>(cv.at("as"));
        for (const auto& [role, ch] : cv.at("from").as_object()) k.from[std::string(role)] = detail::scalar(ch);
        for (const auto& [role, chs] : cv.at("to").as_object())
            for (const auto& [ch, _] : chs.as_object()) k.to[std::string(role)].insert(std::string(ch));
        d.connectors.push_back(std::move(k));
    }
    return d;
}

/// Problems of a deployment's wiring: connectors that name unknown roles or
/// channels of the wrong direction, client channels no connector serves,
/// non-builtin roles without an instance count.
inline std::vector<std::string> topology_problems(const kumori_deployment& d) {
    std::vector<std::string> out;
    std::set<std::pair<std::string, std::string>> used_clients;
    for (const auto& k : d.connectors) {
        if (k.as != "lb" && k.as != "full") out.push_back("connector " + k.name + ": as must be lb or full");
        for (const auto& [role, ch] : k.from) {
            if (role == "self") {
                if (!d.server.count(ch)) out.push_back("connector " + k.name + ": self has no server channel " + ch);
                continue;
            }
            const auto* r = d.role(role);
            if (r == nullptr)
                out.push_back("connector " + k.name + ": no role " + role);
            else if (!r->client.count(ch) && !r->duplex.count(ch))
                out.push_back("connector " + k.name + ": role " + role + " has no client or duplex channel " + ch);
            used_clients.insert({role, ch});
        }
        for (const auto& [role, chs] : k.to) {
            for (const auto& ch : chs) {
                if (role == "self") {
                    if (!d.client.count(ch))
                        out.push_back("connector " + k.name + ": self has no client channel " + ch);
                    continue;
                }
                const auto* r = d.role(role);
                if (r == nullptr)
                    out.push_back("connector " + k.name + ": no role " + role);
                else if (!r->server.count(ch) && !r->duplex.count(ch))
                    out.push_back("connector " + k.name + ": role " + role + " has no server or duplex channel " + ch);
                else if (r->duplex.count(ch) && k.as != "full")
                    out.push_back("connector " + k.name + ": duplex channels need a full connector");
            }
        }
    }
    for (const auto& r : d.roles) {
        for (const auto& ch : r.client)
            if (!used_clients.count({r.name, ch}))
                out.push_back("role " + r.name + ": client channel " + ch + " is linked to no connector");
        if (!r.builtin && r.hsize < 0) out.push_back("role " + r.name + ": no scale.detail hsize in the deployment");
        if (r.builtin && r.hsize >= 0) out.push_back("role " + r.name + ": builtin roles take no hsize");
    }
    for (const auto& ch : d.server) {
        bool used = false;
        for (const auto& k : d.connectors) used = used || (k.from.count("self") && k.from.at("self") == ch.first);
        if (!used) out.push_back("service server channel " + ch.first + " is linked to no connector");
    }
    for (const auto& ch : d.client) {
        bool used = false;
        for (const auto& k : d.connectors) used = used || (k.to.count("self") && k.to.at("self").count(ch));
        if (!used) out.push_back("service client channel " + ch + " is linked to no connector");
    }
    return out;
}

// ---- Local processes (integration tests) ---------------------------------------

/// Starts programs with exactly the given environment (nothing inherited, as in
/// a container), output to files, and stops them: SIGTERM, then SIGKILL after
/// the grace period. The destructor kills whatever still runs.
class process_group {
public:
    struct entry {
        std::string name;
        pid_t pid = -1;
        std::optional<int> status;  ///< exit code, or 128+signal
        std::filesystem::path out, err;
    };

    explicit process_group(std::filesystem::path log_dir) : log_dir_(std::move(log_dir)) {
        std::filesystem::create_directories(log_dir_);
    }
    ~process_group() {
        for (auto& e : entries_)
            if (!e.status) {
                ::kill(e.pid, SIGKILL);
                int st = 0;
                ::waitpid(e.pid, &st, 0);
            }
    }
    process_group(const process_group&) = delete;
    process_group& operator=(const process_group&) = delete;

    /// Starts argv[0] (an absolute path) with env; returns its index.
    std::size_t start(const std::string& name, const std::vector<std::string>& argv,
                      const std::map<std::string, std::string>& env) {
        entry e{name, -1, std::nullopt, log_dir_ / (name + ".out"), log_dir_ / (name + ".err")};
        std::vector<std::string> env_store, arg_store = argv;
        for (const auto& [k, v] : env) env_store.push_back(k + "=" + v);
        std::vector<char*> envp, args;
        for (auto& s : env_store) envp.push_back(s.data());
        envp.push_back(nullptr);
        for (auto& s : arg_store) args.push_back(s.data());
        args.push_back(nullptr);
        if (auto* h = env.count("HOME") ? &env.at("HOME") : nullptr) std::filesystem::create_directories(*h);
        pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) {
            int out = ::open(e.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int err = ::open(e.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int in = ::open("/dev/null", O_RDONLY);
            if (out < 0 || err < 0 || in < 0) ::_exit(126);
            ::dup2(in, 0);
            ::dup2(out, 1);
            ::dup2(err, 2);
            ::execve(args[0], args.data(), envp.data());
            ::_exit(127);
        }
        e.pid = pid;
        entries_.push_back(std::move(e));
        return entries_.size() - 1;
    }

    /// Reaps finished processes; true if entry i is still running.
    bool running(std::size_t i) {
        auto& e = entries_.at(i);
        if (e.status) return false;
        int st = 0;
        if (::waitpid(e.pid, &st, WNOHANG) == e.pid) e.status = decode(st);
        return !e.status;
    }

    /// SIGTERM to all, wait up to grace, then SIGKILL the rest; all reaped after.
    void stop_all(std::chrono::milliseconds grace) {
        for (auto& e : entries_)
            if (!e.status) ::kill(e.pid, SIGTERM);
        auto deadline = std::chrono::steady_clock::now() + grace;
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            while (running(i) && std::chrono::steady_clock::now() < deadline) ::usleep(20'000);
            if (running(i)) {
                ::kill(entries_[i].pid, SIGKILL);
                int st = 0;
                ::waitpid(entries_[i].pid, &st, 0);
                entries_[i].status = decode(st);
            }
        }
    }

    const std::vector<entry>& entries() const { return entries_; }

    static std::string slurp(const std::filesystem::path& p) {
        std::string s;
        if (FILE* f = std::fopen(p.c_str(), "rb")) {
            char buf[4096];
            std::size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
            std::fclose(f);
        }
        return s;
    }

private:
    static int decode(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }
    std::filesystem::path log_dir_;
    std::vector<entry> entries_;
};

}  // namespace faasd::test::deploy
