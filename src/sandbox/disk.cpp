#include <faasd/sandbox/disk.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

namespace faasd::sandbox {

std::uint64_t disk_charge(bool regular, std::uint64_t size, std::uint64_t blocks_512) noexcept {
    std::uint64_t b = blocks_512 * 512;
    if (regular) b = std::max(b, size);
    b = (b + disk_entry_bytes - 1) / disk_entry_bytes * disk_entry_bytes;
    return std::max(b, disk_entry_bytes);
}

namespace blocking {
namespace {

struct walker {
    std::uint64_t limit;
    disk_usage u;
    std::set<dev_t> devices;

    bool add(const struct stat& st) {
        ++u.entries;
        u.bytes += disk_charge(S_ISREG(st.st_mode), static_cast<std::uint64_t>(st.st_size),
                               static_cast<std::uint64_t>(st.st_blocks));
        if (u.bytes > limit) {
            u.over = true;
            if (u.why.empty()) u.why = "its directories went past " + std::to_string(limit) + " bytes";
        }
        return !u.over;
    }

    void refuse(std::string why) {
        u.over = true;
        if (u.why.empty()) u.why = std::move(why);
    }

    // Opens a subdirectory without following symlinks; a directory the
    // function made unreadable gets rwx for its owner back (we are its owner
    // when not root; root does not need it). Never through a symlink swapped
    // in meanwhile: that could chmod one of the worker's own files.
    int open_dir(int parent, const char* name) {
        int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == EACCES && ::fchmodat(parent, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
            fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd;
    }

    // Walks the directory open at fd (consumed) at the given depth.
    void walk(int fd, dev_t dev, int depth) {
        DIR* d = ::fdopendir(fd);
        if (d == nullptr) {
            ::close(fd);
            return;
        }
        while (!u.over) {
            errno = 0;
            auto* e = ::readdir(d);
            if (e == nullptr) break;
            if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
            struct stat st {};
            if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
            if (!add(st)) break;
            if (!S_ISDIR(st.st_mode) || st.st_dev != dev) continue;  // another mount: not ours to count
            if (depth + 1 > disk_max_depth) {
                refuse("directories nested more than " + std::to_string(disk_max_depth) + " levels deep");
                break;
            }
            int sub = open_dir(::dirfd(d), e->d_name);
            if (sub < 0) {
                if (errno == ENOENT || errno == ENOTDIR) continue;  // removed or replaced meanwhile
                refuse("it made a directory the worker cannot read");
                break;
            }
            walk(sub, dev, depth + 1);
        }
        ::closedir(d);
    }

    // Deleted files still open in the job's processes: the disk they hold is
    // invisible to a directory walk.
    void unlinked(const std::vector<pid_t>& pids) {
        std::set<std::pair<dev_t, ino_t>> seen;
        for (pid_t pid : pids) {
            if (u.over) return;
            const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
            DIR* d = ::opendir(dir.c_str());
            if (d == nullptr) continue;  // exited, or not ours to look at
            while (auto* e = ::readdir(d)) {
                if (e->d_name[0] == '.') continue;
                struct stat st {};
                if (::fstatat(::dirfd(d), e->d_name, &st, 0) != 0) continue;
                if (!S_ISREG(st.st_mode) || st.st_nlink != 0 || !devices.count(st.st_dev)) continue;
                if (!seen.emplace(st.st_dev, st.st_ino).second) continue;
                auto before = u.bytes;
                bool ok = add(st);
                u.unlinked_bytes += u.bytes - before;
                if (!ok) {
                    u.why = "its directories and the deleted files it holds open went past " + std::to_string(limit) + " bytes";
                    break;
                }
            }
            ::closedir(d);
        }
    }
};

}  // namespace

disk_usage measure_disk(const std::vector<std::filesystem::path>& roots, const std::vector<pid_t>& pids,
                        std::uint64_t limit) {
    walker w{limit, {}, {}};
    for (const auto& root : roots) {
        if (w.u.over) break;
        int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            ::close(fd);
            continue;
        }
        w.devices.insert(st.st_dev);
        if (!w.add(st)) {
            ::close(fd);
            break;
        }
        w.walk(fd, st.st_dev, 0);
    }
    w.unlinked(pids);
    return w.u;
}

}  // namespace blocking
}  // namespace faasd::sandbox
