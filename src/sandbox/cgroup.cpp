#include "cgroup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

namespace faasd::sandbox::detail {
namespace fs = std::filesystem;
namespace {

bool write_file(const fs::path& p, const std::string& value) {
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    auto n = ::write(fd, value.data(), value.size());
    ::close(fd);
    return n == static_cast<ssize_t>(value.size());
}

std::string read_file(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// "key value" lines (memory.events, pids.events, memory.oom_control).
std::uint64_t read_key(const fs::path& p, const std::string& key) {
    std::ifstream f(p);
    std::string k;
    std::uint64_t v = 0;
    while (f >> k >> v)
        if (k == key) return v;
    return 0;
}

struct mount_info {
    fs::path cgroup2;
    fs::path v1_memory;
    fs::path v1_pids;
    fs::path v1_cpuacct;
};

mount_info find_mounts() {
    mount_info m;
    std::ifstream f("/proc/self/mountinfo");
    std::string line;
    while (std::getline(f, line)) {
        auto sep = line.find(" - ");
        if (sep == std::string::npos) continue;
        std::istringstream pre(line.substr(0, sep)), post(line.substr(sep + 3));
        std::string id, parent, dev, root, mountpoint, fstype, source, superopts;
        pre >> id >> parent >> dev >> root >> mountpoint;
        post >> fstype >> source >> superopts;
        if (root != "/") continue;  // a bind of a sub-tree: not the hierarchy root
        if (fstype == "cgroup2" && m.cgroup2.empty()) m.cgroup2 = mountpoint;
        if (fstype == "cgroup") {
            std::string opt;
            std::istringstream os(superopts);
            while (std::getline(os, opt, ',')) {
                if (opt == "memory" && m.v1_memory.empty()) m.v1_memory = mountpoint;
                if (opt == "pids" && m.v1_pids.empty()) m.v1_pids = mountpoint;
                if (opt == "cpuacct" && m.v1_cpuacct.empty()) m.v1_cpuacct = mountpoint;
            }
        }
    }
    return m;
}

bool has_word(const std::string& text, const std::string& word) {
    std::istringstream s(text);
    std::string w;
    while (s >> w)
        if (w == word) return true;
    return false;
}

// mkdir -p below a hierarchy root, enabling controllers on the way (v2).
bool make_parent(const fs::path& mount, const std::string& parent, bool v2) {
    fs::path dir = mount;
    for (const auto& part : fs::path(parent)) {
        if (part.empty() || part == "/") continue;
        if (v2 && !write_file(dir / "cgroup.subtree_control", "+memory +pids")) return false;
        dir /= part;
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return false;
    }
    if (v2 && !write_file(dir / "cgroup.subtree_control", "+memory +pids")) return false;
    return true;
}

// Creates and removes a probe child with a limit written: proves the parent is usable.
bool probe(const fs::path& parent, const std::string& limit_file, const std::string& value) {
    auto dir = parent / ("probe-" + std::to_string(::getpid()));
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return false;
    bool ok = write_file(dir / limit_file, value) && fs::exists(dir / "cgroup.procs");
    ::rmdir(dir.c_str());
    return ok;
}

}  // namespace

std::unique_ptr<cgroup_manager> cgroup_manager::detect(const std::string& parent, std::string& detail) {
    auto m = find_mounts();
    auto mgr = std::unique_ptr<cgroup_manager>(new cgroup_manager());
    mgr->parent_ = parent;
    if (!m.cgroup2.empty()) {
        auto controllers = read_file(m.cgroup2 / "cgroup.controllers");
        if (has_word(controllers, "memory") && has_word(controllers, "pids")) {
            if (make_parent(m.cgroup2, parent, true)) {
                auto p = m.cgroup2 / parent;
                if (probe(p, "memory.max", "67108864") && probe(p, "pids.max", "64")) {
                    mgr->version_ = 2;
                    mgr->memory_parent_ = mgr->pids_parent_ = mgr->cpu_parent_ = p;
                    detail = "cgroup v2 at " + p.string();
                    return mgr;
                }
            }
            detail = "cgroup v2 has memory and pids but " + (m.cgroup2 / parent).string() + " is not writable; ";
        } else {
            detail = "cgroup v2 at " + m.cgroup2.string() + " lacks the memory/pids controllers; ";
        }
    }
    if (!m.v1_memory.empty() && make_parent(m.v1_memory, parent, false) &&
        probe(m.v1_memory / parent, "memory.limit_in_bytes", "67108864"))
        mgr->memory_parent_ = m.v1_memory / parent;
    if (!m.v1_pids.empty() && make_parent(m.v1_pids, parent, false) && probe(m.v1_pids / parent, "pids.max", "64"))
        mgr->pids_parent_ = m.v1_pids / parent;
    if ((mgr->memory() || mgr->pids()) && !m.v1_cpuacct.empty() && make_parent(m.v1_cpuacct, parent, false) &&
        fs::exists(m.v1_cpuacct / parent / "cpuacct.usage"))
        mgr->cpu_parent_ = m.v1_cpuacct / parent;  // accounting only
    if (mgr->memory() || mgr->pids()) {
        mgr->version_ = 1;
        detail += "cgroup v1:";
        if (mgr->memory()) detail += " memory at " + mgr->memory_parent_.string();
        if (mgr->pids()) detail += " pids at " + mgr->pids_parent_.string();
        return mgr;
    }
    detail += "no writable cgroup hierarchy with memory or pids";
    return nullptr;
}

cgroup_manager::~cgroup_manager() {
    for (const auto& p : {memory_parent_, pids_parent_, cpu_parent_})
        if (!p.empty()) ::rmdir(p.c_str());
}

std::unique_ptr<job_cgroup> cgroup_manager::create(const std::string& name, std::uint64_t memory_bytes,
                                                   std::uint32_t pids_max) {
    std::vector<fs::path> dirs;
    fs::path memory_dir, pids_dir, cpu_dir;
    auto mk = [&](const fs::path& parent) {
        auto d = parent / name;
        if (::mkdir(d.c_str(), 0755) != 0 && errno == ENOENT) {
            // Another process removed the (empty) parent meanwhile: make it again.
            auto mount = parent;
            for (const auto& part : fs::path(parent_)) {
                (void)part;
                mount = mount.parent_path();
            }
            make_parent(mount, parent_, version_ == 2);
            ::mkdir(d.c_str(), 0755);
        }
        if (!fs::is_directory(d))
            throw std::system_error(errno, std::generic_category(), "mkdir " + d.string());
        if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
        return d;
    };
    if (memory()) memory_dir = mk(memory_parent_);
    if (pids()) pids_dir = mk(pids_parent_);
    if (!cpu_parent_.empty()) cpu_dir = mk(cpu_parent_);
    auto cg = std::make_unique<job_cgroup>(version_, dirs, memory_dir, pids_dir, cpu_dir);
    auto must = [&](const fs::path& p, const std::string& v) {
        if (!write_file(p, v)) throw std::system_error(errno, std::generic_category(), "write " + p.string());
    };
    if (version_ == 2) {
        must(memory_dir / "memory.max", std::to_string(memory_bytes));
        write_file(memory_dir / "memory.swap.max", "0");
        must(pids_dir / "pids.max", std::to_string(pids_max));
    } else {
        if (memory()) {
            must(memory_dir / "memory.limit_in_bytes", std::to_string(memory_bytes));
            write_file(memory_dir / "memory.memsw.limit_in_bytes", std::to_string(memory_bytes));
        }
        if (pids()) must(pids_dir / "pids.max", std::to_string(pids_max));
    }
    return cg;
}

job_cgroup::job_cgroup(int version, std::vector<fs::path> dirs, fs::path memory_dir, fs::path pids_dir, fs::path cpu_dir)
    : version_(version), dirs_(std::move(dirs)), memory_dir_(std::move(memory_dir)), pids_dir_(std::move(pids_dir)),
      cpu_dir_(std::move(cpu_dir)) {
    for (const auto& d : dirs_) {
        int fd = ::open((d / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            auto e = errno;
            for (int f : fds_) ::close(f);
            fds_.clear();
            throw std::system_error(e, std::generic_category(), "open " + (d / "cgroup.procs").string());
        }
        fds_.push_back(fd);
    }
}

job_cgroup::~job_cgroup() {
    if (removed_) return;
    for (int i = 0; i < 50 && !remove(); ++i) {
        kill_all();
        ::usleep(2000);
    }
}

std::uint64_t job_cgroup::oom_kills() const {
    if (memory_dir_.empty()) return 0;
    if (version_ == 2) return read_key(memory_dir_ / "memory.events", "oom_kill");
    return read_key(memory_dir_ / "memory.oom_control", "oom_kill");
}

std::uint64_t job_cgroup::pids_max_hits() const {
    if (pids_dir_.empty()) return 0;
    return read_key(pids_dir_ / "pids.events", "max");
}

std::uint64_t job_cgroup::cpu_usec() const {
    if (cpu_dir_.empty()) return 0;
    if (version_ == 2) return read_key(cpu_dir_ / "cpu.stat", "usage_usec");
    std::ifstream f(cpu_dir_ / "cpuacct.usage");
    std::uint64_t ns = 0;
    f >> ns;
    return ns / 1000;
}

std::vector<pid_t> job_cgroup::pids() const {
    std::vector<pid_t> out;
    if (dirs_.empty()) return out;
    std::ifstream f(dirs_.front() / "cgroup.procs");
    pid_t p;
    while (f >> p) out.push_back(p);
    return out;
}

void job_cgroup::kill_all() {
    if (version_ == 2 && !dirs_.empty() && write_file(dirs_.front() / "cgroup.kill", "1")) return;
    for (int round = 0; round < 20; ++round) {
        bool any = false;
        for (const auto& d : dirs_) {
            std::ifstream f(d / "cgroup.procs");
            pid_t p;
            while (f >> p) {
                ::kill(p, SIGKILL);
                any = true;
            }
        }
        if (!any) return;
    }
}

bool job_cgroup::remove() {
    for (int fd : fds_) ::close(fd);
    fds_.clear();
    bool ok = true;
    for (const auto& d : dirs_)
        if (::rmdir(d.c_str()) != 0 && errno != ENOENT) ok = false;
    removed_ = ok;
    return ok;
}

std::vector<pid_t> descendants(pid_t root) {
    std::multimap<pid_t, pid_t> children;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
        const auto name = e.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream f(e.path() / "stat");
        std::string stat;
        std::getline(f, stat);
        auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 2));
        char state;
        pid_t ppid = 0;
        rest >> state >> ppid;
        children.emplace(ppid, static_cast<pid_t>(std::stol(name)));
    }
    std::vector<pid_t> out;
    std::vector<pid_t> todo{root};
    while (!todo.empty()) {
        auto p = todo.back();
        todo.pop_back();
        auto [b, e] = children.equal_range(p);
        for (auto it = b; it != e; ++it) {
            out.push_back(it->second);
            todo.push_back(it->second);
        }
    }
    return out;
}

}  // namespace faasd::sandbox::detail
