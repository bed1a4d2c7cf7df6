#pragma once
// Real git repositories and servers for the git and sandbox integration tests
// and the benchmarks: repositories made with the git CLI, `git daemon` on
// loopback (git://), and git-http-backend behind a small Python HTTP server
// with Basic auth (http://). Self-contained (no Catch2) so bench/ can use it.

#include "support/support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace faasd::test::git {

namespace fs = std::filesystem;

/// Runs a command to completion (argv[0] from PATH) with a quiet, deterministic
/// git environment; throws with its output when it fails.
inline std::string sh(const std::vector<std::string>& argv, const fs::path& cwd = {}, bool check = true) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) {
        std::string s(*e);
        if (s.rfind("GIT_", 0) == 0) continue;
        env_store.push_back(s);
    }
    for (const char* e : {"GIT_AUTHOR_NAME=faasd test", "GIT_AUTHOR_EMAIL=test@faasd.invalid",
                          "GIT_COMMITTER_NAME=faasd test", "GIT_COMMITTER_EMAIL=test@faasd.invalid",
                          "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0"})
        env_store.emplace_back(e);
    std::vector<char*> envp, args;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);
    auto argv_copy = argv;
    for (auto& a : argv_copy) args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out[1], 1);
        ::dup2(out[1], 2);
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
        ::execvpe(args[0], args.data(), envp.data());
        ::_exit(127);
    }
    ::close(out[1]);
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (check && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        std::string cmd;
        for (const auto& a : argv) cmd += a + " ";
        throw std::runtime_error("command failed: " + cmd + "\n" + text);
    }
    return text;
}

inline std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

inline void write_file(const fs::path& p, const std::string& content, bool executable = false) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    if (executable) fs::permissions(p, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
}

inline std::string random_bytes(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        auto v = rng();
        std::memcpy(s.data() + i, &v, 8);
    }
    return s;
}

/// A working repository (branch main) with a bare repository it pushes to.
class repo {
public:
    /// work: a new directory; bare: where the bare repository goes (e.g. <served root>/name.git).
    repo(fs::path work, fs::path bare) : work_(std::move(work)), bare_(std::move(bare)) {
        fs::create_directories(work_);
        sh({"git", "init", "-q", "-b", "main", work_.string()});
        fs::create_directories(bare_.parent_path());
        sh({"git", "init", "-q", "--bare", "-b", "main", bare_.string()});
        sh({"git", "-C", work_.string(), "remote", "add", "origin", bare_.string()});
    }

    /// Copies a directory tree (e.g. examples/functions/echo-sh) into the work tree.
    void add_tree(const fs::path& src) {
        fs::copy(src, work_, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    }
    void write(const std::string& rel, const std::string& content, bool executable = false) {
        write_file(work_ / rel, content, executable);
    }
    /// Commits everything and pushes all branches and tags; returns the commit id.
    std::string commit(const std::string& message) {
        sh({"git", "-C", work_.string(), "add", "-A"});
        sh({"git", "-C", work_.string(), "commit", "-q", "--allow-empty", "-m", message});
        push();
        return head();
    }
    void push() { sh({"git", "-C", work_.string(), "push", "-q", "--all", "--follow-tags", "-f", "origin"}); }
    void tag(const std::string& name, bool annotated) {
        if (annotated) sh({"git", "-C", work_.string(), "tag", "-a", name, "-m", name});
        else sh({"git", "-C", work_.string(), "tag", name});
        sh({"git", "-C", work_.string(), "push", "-q", "origin", name});
    }
    void branch(const std::string& name) { sh({"git", "-C", work_.string(), "checkout", "-q", "-B", name}); }
    std::string head() const { return trimmed(sh({"git", "-C", work_.string(), "rev-parse", "HEAD"})); }

    const fs::path& work() const { return work_; }
    const fs::path& bare() const { return bare_; }
    std::string file_url() const { return "file://" + bare_.string(); }

private:
    fs::path work_, bare_;
};

using faasd::test::free_port;

inline bool can_connect(int port) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
}

using faasd::test::background_process;

inline bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

inline std::size_t count_occurrences(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + needle.size())) ++n;
    return n;
}

/// `git daemon` serving every repository under base (git://127.0.0.1:<port>/<name>.git).
class git_daemon {
public:
    explicit git_daemon(fs::path base, const fs::path& log_dir) : base_(std::move(base)), port_(free_port()) {
        proc_ = std::make_unique<background_process>(
            std::vector<std::string>{"git", "daemon", "--export-all", "--reuseaddr", "--informative-errors",
                                     "--verbose", "--base-path=" + base_.string(), "--listen=127.0.0.1",
                                     "--port=" + std::to_string(port_), base_.string()},
            log_dir / ("git-daemon-" + std::to_string(port_) + ".log"));
        if (!wait_for([&] { return can_connect(port_); }, std::chrono::seconds(10)))
            throw std::runtime_error("git daemon did not start: " + proc_->log());
    }
    std::string url(const std::string& name) const { return "git://127.0.0.1:" + std::to_string(port_) + "/" + name; }
    /// Fetches and clones served so far (one "upload-pack" request each).
    std::size_t upload_packs() const { return count_occurrences(proc_->log(), "Request upload-pack"); }
    void stop() { proc_->stop(); }
    int port() const { return port_; }

private:
    fs::path base_;
    int port_;
    std::unique_ptr<background_process> proc_;
};

/// git-http-backend behind test/integration/git/git_http_server.py: repositories
/// under base, those under base/private/ need Basic auth user:password.
class git_http_server {
public:
    git_http_server(fs::path base, const fs::path& script, const fs::path& log_dir, const std::string& user,
                    const std::string& password)
        : base_(std::move(base)) {
        auto port_file = log_dir / ("http-port-" + std::to_string(::getpid()) + "-" + std::to_string(free_port()));
        request_log_ = port_file.string() + ".requests";
        proc_ = std::make_unique<background_process>(
            std::vector<std::string>{"python3", script.string(), "--root", base_.string(), "--port-file",
                                     port_file.string(), "--user", user, "--password", password, "--request-log",
                                     request_log_.string()},
            port_file.string() + ".log");
        if (!wait_for([&] { return fs::exists(port_file) && fs::file_size(port_file) > 0; }, std::chrono::seconds(15)))
            throw std::runtime_error("git http server did not start: " + proc_->log());
        std::ifstream(port_file) >> port_;
        if (!wait_for([&] { return can_connect(port_); }, std::chrono::seconds(10)))
            throw std::runtime_error("git http server is not listening: " + proc_->log());
    }
    std::string url(const std::string& name) const { return "http://127.0.0.1:" + std::to_string(port_) + "/" + name; }
    /// Requests served so far (one line each: "METHOD path status").
    std::string requests() const {
        std::ifstream f(request_log_);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    std::string log() const { return proc_->log(); }
    void stop() { proc_->stop(); }

private:
    fs::path base_;
    fs::path request_log_;
    int port_ = 0;
    std::unique_ptr<background_process> proc_;
};

/// OpenSSH's sshd on loopback serving repositories over ssh:// to one client key, as the
/// current user, with its own host key (generated, like the client key, into `dir`).
class ssh_server {
public:
    explicit ssh_server(const fs::path& dir) : dir_(dir), port_(free_port()) {
        fs::create_directories(dir_);
        sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "faasd-test-host", "-f", (dir_ / "host_key").string()});
        sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "faasd-test-client", "-f", (dir_ / "client_key").string()});
        fs::copy_file(dir_ / "client_key.pub", dir_ / "authorized_keys", fs::copy_options::overwrite_existing);
        write_file(dir_ / "sshd_config",
                   "Port " + std::to_string(port_) + "\nListenAddress 127.0.0.1\nHostKey " + (dir_ / "host_key").string() +
                       "\nAuthorizedKeysFile " + (dir_ / "authorized_keys").string() +
                       "\nPubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                       "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile none\n"
                       "LogLevel VERBOSE\n");
        fs::create_directories("/run/sshd");  // sshd's privilege separation directory
        proc_ = std::make_unique<background_process>(
            std::vector<std::string>{"/usr/sbin/sshd", "-D", "-e", "-f", (dir_ / "sshd_config").string()},
            dir_ / "sshd.log");
        if (!wait_for([&] { return can_connect(port_); }, std::chrono::seconds(10)))
            throw std::runtime_error("sshd did not start: " + proc_->log());
    }
    /// ssh://<user>@127.0.0.1:<port><absolute path>
    std::string url(const fs::path& repo) const {
        return "ssh://" + user() + "@127.0.0.1:" + std::to_string(port_) + repo.string();
    }
    int port() const { return port_; }
    std::string client_key() const { return slurp(dir_ / "client_key"); }
    /// The host's public key line ("ssh-ed25519 AAAA... comment").
    std::string host_public_key() const { return trimmed(slurp(dir_ / "host_key.pub")); }
    /// `ssh-keygen -l` of the host key: "SHA256:...".
    std::string host_fingerprint() const {
        auto line = sh({"ssh-keygen", "-l", "-E", "sha256", "-f", (dir_ / "host_key.pub").string()});
        auto a = line.find("SHA256:");
        return a == std::string::npos ? line : line.substr(a, line.find(' ', a) - a);
    }
    std::string log() const { return proc_->log(); }
    static std::string user() {
        const passwd* pw = ::getpwuid(::geteuid());
        return pw && pw->pw_name ? pw->pw_name : "root";
    }

private:
    static std::string slurp(const fs::path& p) {
        std::ifstream f(p, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(f)), {});
    }
    fs::path dir_;
    int port_;
    std::unique_ptr<background_process> proc_;
};

}  // namespace faasd::test::git
