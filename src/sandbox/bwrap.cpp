#include <faasd/sandbox/bwrap.hpp>

namespace faasd::sandbox {

std::vector<std::string> build_bwrap_argv(const bwrap_plan& p) {
    std::vector<std::string> a{p.bwrap};
    auto add = [&](std::initializer_list<std::string> xs) { a.insert(a.end(), xs.begin(), xs.end()); };
    add({"--unshare-all"});
    if (p.network) add({"--share-net"});
    add({"--die-with-parent", "--new-session", "--hostname", "faasd"});
    if (p.map_to_nobody) add({"--unshare-user", "--uid", "65534", "--gid", "65534"});
    else if (p.disable_userns) add({"--unshare-user"});
    if (p.disable_userns) add({"--disable-userns"});
    for (const auto& s : p.system) {
        if (s.symlink_target.empty()) add({"--ro-bind", s.path, s.path});
        else add({"--symlink", s.symlink_target, s.path});
    }
    for (const auto& e : p.etc_files) add({"--ro-bind", e, e});
    if (!p.passwd_file.empty()) add({"--ro-bind", p.passwd_file, "/etc/passwd"});
    if (!p.group_file.empty()) add({"--ro-bind", p.group_file, "/etc/group"});
    // /dev read-only: its tmpfs has no size limit. POSIX shared memory gets a
    // tmpfs of its own, as big as /tmp.
    add({"--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"});
    if (p.tmp_bytes > 0) add({"--size", std::to_string(p.tmp_bytes)});
    add({"--tmpfs", "/dev/shm"});
    if (p.tmp_bytes > 0) add({"--size", std::to_string(p.tmp_bytes)});
    add({"--tmpfs", "/tmp"});
    add({"--ro-bind", p.code_dir, sandbox_code_dir});
    add({"--ro-bind", p.input_dir, sandbox_input_dir});
    add({"--bind", p.output_dir, sandbox_output_dir});
    add({"--bind", p.result_dir, sandbox_result_dir});
    if (!p.secrets_dir.empty()) add({"--ro-bind", p.secrets_dir, sandbox_secrets_dir});
    add({"--remount-ro", "/"});
    add({"--chdir", sandbox_code_dir});
    add({"--clearenv"});
    for (const auto& [k, v] : p.env) add({"--setenv", k, v});
    add({"--"});
    a.insert(a.end(), p.argv.begin(), p.argv.end());
    return a;
}

}  // namespace faasd::sandbox
