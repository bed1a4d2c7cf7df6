// Pure parts of the CLI client: token cache, OAuth answers, request bodies, output.

#include "client/client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

namespace faasd::client {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string str_or(const json::object& o, std::string_view k, std::string fallback = {}) {
    auto it = o.find(k);
    if (it == o.end() || !it->value().is_string()) return fallback;
    return std::string(it->value().get_string());
}

std::int64_t int_or(const json::object& o, std::string_view k, std::int64_t fallback = 0) {
    auto it = o.find(k);
    if (it == o.end()) return fallback;
    if (it->value().is_int64()) return it->value().get_int64();
    if (it->value().is_uint64()) return static_cast<std::int64_t>(it->value().get_uint64());
    if (it->value().is_double()) return static_cast<std::int64_t>(it->value().get_double());
    return fallback;
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return std::nullopt;
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool split_kv(const std::string& s, std::string& k, std::string& v) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    k = s.substr(0, eq);
    v = s.substr(eq + 1);
    return true;
}

}  // namespace

fs::path token_cache_path() {
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return fs::path(x) / "faasd" / "token.json";
    const char* home = std::getenv("HOME");
    return fs::path(home && *home ? home : ".") / ".config" / "faasd" / "token.json";
}

result<stored_token> load_token(const fs::path& p) {
    auto text = read_file(p.string());
    if (!text) return errc::not_found;
    boost::system::error_code ec;
    auto v = json::parse(*text, ec);
    if (ec || !v.is_object()) return errc::bad_message;
    const auto& o = v.get_object();
    stored_token t;
    t.access_token = str_or(o, "access_token");
    t.refresh_token = str_or(o, "refresh_token");
    t.expires_at = int_or(o, "expires_at");
    t.refresh_expires_at = int_or(o, "refresh_expires_at");
    t.issuer = str_or(o, "issuer");
    t.client_id = str_or(o, "client_id");
    t.token_endpoint = str_or(o, "token_endpoint");
    if (t.access_token.empty()) return errc::bad_message;
    return t;
}

result<void> save_token(const fs::path& p, const stored_token& t) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) return errc::unavailable;
    ::chmod(p.parent_path().c_str(), 0700);
    json::object o{{"access_token", t.access_token},
                   {"refresh_token", t.refresh_token},
                   {"expires_at", t.expires_at},
                   {"refresh_expires_at", t.refresh_expires_at},
                   {"issuer", t.issuer},
                   {"client_id", t.client_id},
                   {"token_endpoint", t.token_endpoint}};
    auto text = json::serialize(o);
    auto tmp = p.string() + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return errc::unavailable;
    ::fchmod(fd, 0600);  // whatever the umask
    std::size_t off = 0;
    while (off < text.size()) {
        auto n = ::write(fd, text.data() + off, text.size() - off);
        if (n <= 0) {
            ::close(fd);
            ::unlink(tmp.c_str());
            return errc::unavailable;
        }
        off += static_cast<std::size_t>(n);
    }
    ::fsync(fd);
    ::close(fd);
    if (::rename(tmp.c_str(), p.c_str()) != 0) {
        ::unlink(tmp.c_str());
        return errc::unavailable;
    }
    return {};
}

result<stored_token> parse_token_response(std::string_view body, std::int64_t now_s) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return errc::bad_message;
    const auto& o = v.get_object();
    stored_token t;
    t.access_token = str_or(o, "access_token");
    if (t.access_token.empty()) return errc::bad_message;
    t.refresh_token = str_or(o, "refresh_token");
    t.expires_at = now_s + int_or(o, "expires_in", 60);
    auto rexp = int_or(o, "refresh_expires_in", 0);
    t.refresh_expires_at = rexp > 0 ? now_s + rexp : 0;
    return t;
}

std::pair<std::string, std::string> parse_oauth_error(std::string_view body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return {};
    return {str_or(v.get_object(), "error"), str_or(v.get_object(), "error_description")};
}

result<device_authorization> parse_device_authorization(std::string_view body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return errc::bad_message;
    const auto& o = v.get_object();
    device_authorization d;
    d.device_code = str_or(o, "device_code");
    d.user_code = str_or(o, "user_code");
    d.verification_uri = str_or(o, "verification_uri");
    d.verification_uri_complete = str_or(o, "verification_uri_complete");
    d.expires_in = static_cast<int>(int_or(o, "expires_in", 600));
    d.interval = static_cast<int>(std::max<std::int64_t>(1, int_or(o, "interval", 5)));
    if (d.device_code.empty() || d.user_code.empty() || d.verification_uri.empty()) return errc::bad_message;
    return d;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    auto enc = [&](std::string_view s) {
        for (unsigned char c : s) {
            if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
            else if (c == ' ') out += '+';
            else {
                out += '%';
                out += hex[c >> 4];
                out += hex[c & 15];
            }
        }
    };
    for (const auto& [k, v] : fields) {
        if (!out.empty()) out += '&';
        enc(k);
        out += '=';
        enc(v);
    }
    return out;
}

result<json::object> body_from_flags(const submit_flags& f, std::string& why) {
    json::object o;
    if (f.repo.empty()) {
        why = "give a job file (or -) or at least --repo";
        return errc::invalid_argument;
    }
    json::object repo{{"url", f.repo}};
    if (!f.commit.empty()) repo["commit"] = f.commit;
    else repo["ref"] = f.ref.empty() ? "main" : f.ref;
    if (!f.repo_credential.empty()) repo["credential"] = f.repo_credential;
    o["repo"] = std::move(repo);
    if (!f.entry.empty()) o["entry"] = json::array(f.entry.begin(), f.entry.end());
    if (!f.data.empty() && !f.data_file.empty()) {
        why = "--data and --data-file exclude each other";
        return errc::invalid_argument;
    }
    std::string data_text = f.data;
    if (!f.data_file.empty()) {
        auto t = read_file(f.data_file);
        if (!t) {
            why = "cannot read --data-file " + f.data_file;
            return errc::invalid_argument;
        }
        data_text = *t;
    }
    if (!data_text.empty()) {
        boost::system::error_code ec;
        auto d = json::parse(data_text, ec);
        if (ec) {
            why = "--data is not valid JSON";
            return errc::invalid_argument;
        }
        o["data"] = std::move(d);
    }
    if (f.timeout_s > 0) o["timeout_s"] = f.timeout_s;
    if (!f.delivery.empty()) o["delivery"] = f.delivery;
    if (f.retries >= 0) o["retries"] = f.retries;
    std::string k, v;
    if (!f.env.empty()) {
        json::object env;
        for (const auto& e : f.env) {
            if (!split_kv(e, k, v)) {
                why = "--env '" + e + "' is not NAME=VALUE";
                return errc::invalid_argument;
            }
            env[k] = v;
        }
        o["env"] = std::move(env);
    }
    if (!f.tags.empty()) o["tags"] = json::array(f.tags.begin(), f.tags.end());
    auto links = [&](const std::vector<std::string>& items, const char* field, const char* flag) -> bool {
        if (items.empty()) return true;
        json::object m;
        for (const auto& e : items) {
            if (!split_kv(e, k, v)) {
                why = std::string(flag) + " '" + e + "' is not NAME=URL";
                return false;
            }
            m[k] = json::object{{"url", v}};
        }
        o[field] = std::move(m);
        return true;
    };
    if (!links(f.sources, "sources", "--source") || !links(f.sinks, "sinks", "--sink")) return errc::invalid_argument;
    if (!f.credential_files.empty()) {
        json::object creds;
        for (const auto& e : f.credential_files) {
            if (!split_kv(e, k, v)) {
                why = "--credential-file '" + e + "' is not NAME=PATH";
                return errc::invalid_argument;
            }
            auto secret = read_file(v);
            if (!secret) {
                why = "cannot read the credential file for '" + k + "'";
                return errc::invalid_argument;
            }
            while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) secret->pop_back();
            creds[k] = *secret;
        }
        o["credentials"] = std::move(creds);
    }
    return o;
}

std::string format_duration(std::int64_t ms) {
    char buf[32];
    if (ms < 0) ms = 0;
    if (ms < 1000) std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
    else if (ms < 60'000) std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
    else if (ms < 3'600'000)
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                      static_cast<long long>((ms / 1000) % 60));
    else
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                      static_cast<long long>((ms / 60'000) % 60));
    return buf;
}

std::string format_time(std::int64_t unix_ms) {
    if (unix_ms <= 0) return "-";
    std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

namespace {
std::int64_t ms_of(const json::object& o, std::string_view k) { return int_or(o, k, 0); }
}  // namespace

std::string describe_job(const json::object& j) {
    std::ostringstream os;
    os << str_or(j, "id") << "  " << str_or(j, "state");
    if (auto a = int_or(j, "attempt", 1); a > 1) os << " (attempt " << a << ")";
    os << "\n";
    if (auto it = j.find("repo"); it != j.end() && it->value().is_object()) {
        const auto& r = it->value().get_object();
        auto rev = str_or(r, "ref");
        if (rev.empty()) rev = str_or(r, "commit");
        os << "  repo       " << str_or(r, "url") << " @ " << rev << "\n";
    }
    os << "  submitted  " << format_time(ms_of(j, "submitted_at")) << "\n";
    if (auto s = ms_of(j, "started_at"); s > 0)
        os << "  started    " << format_time(s) << " (waited " << format_duration(s - ms_of(j, "submitted_at")) << ")\n";
    if (auto f = ms_of(j, "finished_at"); f > 0)
        os << "  finished   " << format_time(f) << " (total " << format_duration(f - ms_of(j, "submitted_at")) << ")\n";
    if (auto w = str_or(j, "worker"); !w.empty()) os << "  worker     " << w << "\n";
    if (auto it = j.find("error"); it != j.end() && it->value().is_object())
        os << "  error      " << str_or(it->value().get_object(), "code") << ": "
           << str_or(it->value().get_object(), "message") << "\n";
    return os.str();
}

std::string jobs_table(const json::array& items) {
    std::ostringstream os;
    char line[256];
    std::snprintf(line, sizeof line, "%-26s  %-10s  %-19s  %s\n", "ID", "STATE", "SUBMITTED (UTC)", "REPO");
    os << line;
    for (const auto& v : items) {
        if (!v.is_object()) continue;
        const auto& j = v.get_object();
        std::string repo;
        if (auto it = j.find("repo"); it != j.end() && it->value().is_object()) repo = str_or(it->value().get_object(), "url");
        std::snprintf(line, sizeof line, "%-26s  %-10s  %-19s  %s\n", str_or(j, "id").c_str(), str_or(j, "state").c_str(),
                      format_time(ms_of(j, "submitted_at")).c_str(), repo.c_str());
        os << line;
    }
    if (items.empty()) os << "(no jobs)\n";
    return os.str();
}

std::string describe_result(const json::object& r) {
    std::ostringstream os;
    os << str_or(r, "id") << "  " << str_or(r, "state");
    if (auto it = r.find("exit_code"); it != r.end() && it->value().is_int64()) os << " (exit " << it->value().get_int64() << ")";
    os << "\n";
    if (auto it = r.find("timing"); it != r.end() && it->value().is_object()) {
        const auto& t = it->value().get_object();
        // clone_ms and sources_ms are absent in results of older workers: prepare_ms then stands for both.
        const bool split = t.contains("clone_ms");
        os << "  times      queue " << format_duration(ms_of(t, "queue_wait_ms")) << ", clone "
           << format_duration(ms_of(t, split ? "clone_ms" : "prepare_ms"))
           << (t.contains("cache_hit") && t.at("cache_hit") == true ? " (cached)" : "");
        if (split && ms_of(t, "sources_ms") > 0) os << ", sources " << format_duration(ms_of(t, "sources_ms"));
        os << ", run " << format_duration(ms_of(t, "run_ms"));
        if (ms_of(t, "upload_ms") > 0) os << ", upload " << format_duration(ms_of(t, "upload_ms"));
        os << ", total " << format_duration(ms_of(t, "total_ms")) << "\n";
    }
    if (auto it = r.find("error"); it != r.end() && it->value().is_object())
        os << "  error      " << str_or(it->value().get_object(), "code") << ": " << str_or(it->value().get_object(), "message") << "\n";
    if (auto it = r.find("output"); it != r.end() && !it->value().is_null()) os << "  output     " << json::serialize(it->value()) << "\n";
    if (r.contains("result_capped")) os << "  (the result was too large to keep; output dropped, logs cut)\n";
    auto block = [&](std::string_view name, std::string_view key, std::string_view cut) {
        auto text = str_or(r, key);
        if (text.empty()) return;
        os << "  --- " << name << (r.contains(cut) ? " (truncated)" : "") << " ---\n" << text;
        if (text.back() != '\n') os << "\n";
    };
    block("stdout", "stdout", "stdout_truncated");
    block("stderr", "stderr", "stderr_truncated");
    return os.str();
}

std::string event_line(const json::object& j) {
    std::ostringstream os;
    os << format_time(ms_of(j, "updated_at")) << "  " << str_or(j, "id") << "  " << str_or(j, "state");
    if (auto w = str_or(j, "worker"); !w.empty()) os << "  on " << w;
    if (auto it = j.find("error"); it != j.end() && it->value().is_object())
        os << "  (" << str_or(it->value().get_object(), "code") << ")";
    return os.str();
}

std::string progress_line(std::size_t tick, std::string_view state, std::int64_t elapsed_ms) {
    static constexpr const char* frames[] = {"|", "/", "-", "\\"};
    return std::string(frames[tick % 4]) + " " + std::string(state) + " " + format_duration(elapsed_ms);
}

int exit_status_for(std::string_view state) { return state == "succeeded" ? 0 : 1; }

namespace {
bool terminal_state(std::string_view s) {
    return s == "succeeded" || s == "failed" || s == "timed_out" || s == "cancelled";
}
}  // namespace

watch_tracker::watch_tracker(std::vector<std::string> ids) {
    for (auto& id : ids) jobs_.push_back({std::move(id), {}, false});
}

void watch_tracker::on_state(std::string_view id, std::string_view state) {
    for (auto& j : jobs_)
        if (j.id == id && !j.gone) j.state = std::string(state);
}

void watch_tracker::on_gone(std::string_view id) {
    for (auto& j : jobs_)
        if (j.id == id) j.gone = true;
}

std::optional<int> watch_tracker::outcome() const {
    if (jobs_.empty()) return std::nullopt;  // watching everything: until interrupted
    int status = 0;
    for (const auto& j : jobs_) {
        bool finished = terminal_state(j.state);
        if (!finished && !j.gone) return std::nullopt;
        int s = finished ? exit_status_for(j.state) : 3;  // gone before its outcome was seen
        status = std::max(status, s);
    }
    return status;
}

}  // namespace faasd::client
