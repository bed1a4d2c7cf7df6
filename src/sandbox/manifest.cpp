#include <faasd/sandbox/manifest.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

namespace faasd::sandbox {
namespace json = boost::json;
namespace {

function_error invalid(std::string msg) { return function_error{"invalid_manifest", "faasd.json: " + std::move(msg)}; }

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

bool is_valid_env_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 128) return false;
    auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (!alpha(name.front())) return false;
    if (!std::all_of(name.begin(), name.end(), [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); })) return false;
    return !name.starts_with("FAASD_");
}

bool is_plain_file_name(std::string_view name) noexcept {
    return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
           name.find('/') == std::string_view::npos && !has_nul(name);
}

function_result<function_manifest> parse_manifest(std::string_view text) {
    if (text.size() > max_manifest_bytes) return invalid("larger than 64 KiB");
    boost::system::error_code ec;
    json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
    if (ec) return invalid("not valid JSON (" + ec.message() + ")");
    if (!v.is_object()) return invalid("must be a JSON object");
    function_manifest m;
    for (const auto& [key, val] : v.as_object()) {
        if (key == "command") {
            if (!val.is_array()) return invalid("\"command\" must be an array of strings");
            for (const auto& a : val.as_array()) {
                if (!a.is_string() || a.as_string().empty() || has_nul(a.as_string()))
                    return invalid("\"command\" elements must be non-empty strings");
                m.command.emplace_back(a.as_string());
            }
            if (m.command.empty()) return invalid("\"command\" must not be empty");
        } else if (key == "network") {
            if (!val.is_bool()) return invalid("\"network\" must be true or false");
            m.network = val.as_bool();
        } else if (key == "env") {
            if (!val.is_object()) return invalid("\"env\" must be an object of strings");
            for (const auto& [name, ev] : val.as_object()) {
                if (!is_valid_env_name(name))
                    return invalid("\"env\": '" + std::string(name) + "' is not an allowed variable name");
                if (!ev.is_string() || has_nul(ev.as_string())) return invalid("\"env\" values must be strings");
                m.env.emplace(std::string(name), std::string(ev.as_string()));
            }
        } else if (key == "outputs") {
            if (!val.is_object()) return invalid("\"outputs\" must map sink names to file names");
            for (const auto& [sink, file] : val.as_object()) {
                if (sink.empty() || !file.is_string() || !is_plain_file_name(file.as_string()))
                    return invalid("\"outputs\": '" + std::string(sink) + "' must name a plain file in the output directory");
                m.outputs.emplace(std::string(sink), std::string(file.as_string()));
            }
        } else if (key == "description" || key == "$schema") {
            // documentation only
        } else {
            return invalid("unknown key \"" + std::string(key) + "\"");
        }
    }
    return m;
}

function_result<function_command> resolve_function(const convention_input& in) {
    function_command out;
    std::optional<function_manifest> manifest;
    if (in.manifest_text) {
        auto m = parse_manifest(*in.manifest_text);
        if (!m) return m.error();
        manifest = std::move(*m);
    }
    if (!in.job_entry.empty()) {
        for (const auto& a : in.job_entry)
            if (a.empty() || has_nul(a)) return function_error{"no_entry", "the job's entry has an empty argument"};
        out.argv = in.job_entry;
        out.source = "entry";
    } else if (manifest && !manifest->command.empty()) {
        out.argv = manifest->command;
        out.source = "manifest";
    } else if (in.has_executable_main) {
        out.argv = {"./main"};
        out.source = "main";
    } else {
        return function_error{"no_entry", manifest ? "faasd.json has no \"command\" and there is no executable 'main'"
                                                   : "the repository has neither faasd.json nor an executable 'main' "
                                                     "at its root, and the job gives no entry"};
    }
    if (manifest) {
        out.wants_network = manifest->network.value_or(false);
        out.env = manifest->env;
        out.outputs = manifest->outputs;
    }
    return out;
}

function_result<function_command> load_function(const std::string& code_dir, const std::vector<std::string>& job_entry) {
    convention_input in;
    in.job_entry = job_entry;
    std::string manifest_path = code_dir + "/" + std::string(manifest_file_name);
    struct stat st {};
    if (::lstat(manifest_path.c_str(), &st) == 0) {
        if (!S_ISREG(st.st_mode)) return invalid("is not a regular file");
        if (static_cast<std::uint64_t>(st.st_size) > max_manifest_bytes) return invalid("larger than 64 KiB");
        std::ifstream f(manifest_path, std::ios::binary);
        in.manifest_text.emplace((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    }
    std::string main_path = code_dir + "/" + std::string(main_file_name);
    in.has_executable_main = ::lstat(main_path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
    return resolve_function(in);
}

std::vector<output_match> match_outputs(const std::vector<std::string>& files, const std::vector<std::string>& sinks,
                                        const std::map<std::string, std::string>& mapping) {
    std::map<std::string, std::string> file_to_sink;
    for (const auto& f : files) file_to_sink.emplace(f, "");
    std::set<std::string> used;
    auto take = [&](const std::string& file, const std::string& sink) {
        auto it = file_to_sink.find(file);
        if (it == file_to_sink.end() || !it->second.empty()) return false;
        it->second = sink;
        used.insert(sink);
        return true;
    };
    // 1. explicit mapping, 2. exact name, 3. unique stem.
    for (const auto& s : sinks)
        if (auto m = mapping.find(s); m != mapping.end()) take(m->second, s);
    for (const auto& s : sinks)
        if (!used.count(s) && !mapping.count(s)) take(s, s);
    for (const auto& s : sinks) {
        if (used.count(s) || mapping.count(s)) continue;
        std::string candidate;
        int n = 0;
        for (const auto& [file, sink] : file_to_sink) {
            if (!sink.empty()) continue;
            auto dot = file.find('.');
            if (dot != std::string::npos && dot > 0 && file.compare(0, dot, s) == 0 && dot == s.size()) {
                candidate = file;
                ++n;
            }
        }
        if (n == 1) take(candidate, s);
    }
    std::vector<output_match> out;
    for (auto& [file, sink] : file_to_sink) out.push_back({file, sink});
    return out;
}

}  // namespace faasd::sandbox
