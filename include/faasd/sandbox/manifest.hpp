#pragma once
// The function convention (pure; docs/functions.md): how a checked-out
// repository says what to run, and how output files reach the job's sinks.
//
//   faasd.json at the repository root:
//     {
//       "command": ["python3", "main.py"],   // argv; required unless an executable `main` exists
//       "network": true,                      // optional: asks for network (granted only if the worker allows it)
//       "env": {"PYTHONUNBUFFERED": "1"},     // optional constant environment
//       "outputs": {"report": "report.csv"}   // optional: sink name -> file in FAASD_OUTPUT_DIR
//     }
//   otherwise an executable file `main` at the root is run as ./main.
//   The job's `entry` (argv) overrides the command in both cases.

#include <boost/system/result.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::sandbox {

inline constexpr std::string_view manifest_file_name = "faasd.json";
inline constexpr std::string_view main_file_name = "main";
inline constexpr std::size_t max_manifest_bytes = 64 * 1024;

struct function_manifest {
    std::vector<std::string> command;
    std::optional<bool> network;
    std::map<std::string, std::string> env;
    std::map<std::string, std::string> outputs;  ///< sink name -> output file name
};

/// Why a function cannot be run (job_error code "invalid_manifest" or "no_entry").
struct function_error {
    std::string code;
    std::string message;
};

template <class T>
using function_result = boost::system::result<T, function_error>;

/// Parses a faasd.json text. Unknown keys are rejected (typos must not pass
/// silently); command elements must be non-empty strings without NUL; env
/// names match [A-Za-z_][A-Za-z0-9_]* and must not start with FAASD_; output
/// file names are plain names (no '/', not "." or "..").
function_result<function_manifest> parse_manifest(std::string_view json);

/// What the repository offers, gathered by the shell (load_function).
struct convention_input {
    std::vector<std::string> job_entry;          ///< the job's entry (may be empty)
    std::optional<std::string> manifest_text;    ///< contents of faasd.json, if present
    bool has_executable_main = false;            ///< `main` exists, is a regular file and executable
};

/// The resolved command and settings.
struct function_command {
    std::vector<std::string> argv;
    bool wants_network = false;
    std::map<std::string, std::string> env;
    std::map<std::string, std::string> outputs;
    std::string source;  ///< "entry", "manifest" or "main": where argv came from
};

/// Pure precedence: job entry > manifest command > ./main; manifest env,
/// network and outputs apply whichever command wins.
function_result<function_command> resolve_function(const convention_input& in);

/// Reads <code_dir>/faasd.json and checks <code_dir>/main (blocking, small files).
function_result<function_command> load_function(const std::string& code_dir, const std::vector<std::string>& job_entry);

/// True for a name usable as an environment variable by jobs and manifests.
bool is_valid_env_name(std::string_view name) noexcept;
/// True for a plain file name: non-empty, at most 255 bytes, no '/', no NUL, not "." or "..".
bool is_plain_file_name(std::string_view name) noexcept;

/// An output file matched to a sink ("" = delivered nowhere).
struct output_match {
    std::string file;
    std::string sink;
};

/// Pure: which output file goes to which sink. For each sink, in order:
/// the manifest's "outputs" mapping names the file; else a file named exactly
/// like the sink; else the only file whose stem (text before the first '.')
/// is the sink name. A file goes to at most one sink. Returns every file,
/// sorted by name.
std::vector<output_match> match_outputs(const std::vector<std::string>& files, const std::vector<std::string>& sinks,
                                        const std::map<std::string, std::string>& mapping);

}  // namespace faasd::sandbox
