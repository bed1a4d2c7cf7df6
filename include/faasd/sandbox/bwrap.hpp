#pragma once
// The bubblewrap command line (pure), so that its security properties can be
// unit-tested: namespaces, read-only system directories, the job's mounts.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace faasd::sandbox {

/// A host path that is a directory or a symlink (merged-/usr systems link /bin -> usr/bin).
struct system_path {
    std::string path;            ///< "/usr", "/bin", "/etc/ssl"
    std::string symlink_target;  ///< non-empty: recreate as this symlink instead of binding
};

struct bwrap_plan {
    std::string bwrap = "bwrap";
    std::vector<system_path> system;   ///< read-only binds (or symlinks), in order
    std::vector<std::string> etc_files;  ///< host /etc entries bound read-only (only those that exist)
    std::string passwd_file;           ///< host file bound at /etc/passwd (synthetic)
    std::string group_file;            ///< host file bound at /etc/group (synthetic)
    std::string code_dir, input_dir, output_dir, result_dir, secrets_dir;  ///< host paths
    std::uint64_t tmp_bytes = 0;       ///< size of the /tmp and /dev/shm tmpfs (0 = no size option)
    bool network = false;              ///< keep the host network namespace
    bool map_to_nobody = false;        ///< bwrap runs as root: map the function to uid/gid 65534
    bool disable_userns = false;       ///< --disable-userns (bwrap 0.8+): no nested user namespaces
    std::map<std::string, std::string> env;  ///< the function's whole environment
    std::vector<std::string> argv;     ///< the function's command
};

/// Where the job's directories appear inside the sandbox.
inline constexpr const char* sandbox_code_dir = "/faasd/code";
inline constexpr const char* sandbox_input_dir = "/faasd/input";
inline constexpr const char* sandbox_output_dir = "/faasd/output";
inline constexpr const char* sandbox_result_dir = "/faasd/result";
inline constexpr const char* sandbox_secrets_dir = "/faasd/secrets";

/// The full argv for execve: bwrap, its options, "--", the function's argv.
/// Always: --unshare-all (user, ipc, pid, net, uts, cgroup), --die-with-parent,
/// --new-session, --clearenv, --proc /proc, a read-only --dev /dev with a
/// tmpfs /dev/shm, a tmpfs /tmp, the code read-only, output and result
/// writable; --share-net only when plan.network.
std::vector<std::string> build_bwrap_argv(const bwrap_plan& plan);

}  // namespace faasd::sandbox
