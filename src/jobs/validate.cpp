#include <faasd/jobs/validate.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

namespace faasd::jobs {
namespace json = boost::json;

namespace {

// Fields that describe who submitted the job or that the service assigns:
// accepted and ignored (the identity comes from the token).
constexpr std::array ignored_fields{"owner", "sub", "subject", "user", "username", "preferred_username", "roles",
                                    "id", "state", "attempt", "submitted_at", "idempotency_key", "worker"};

constexpr std::array known_fields{"repo",  "entry",   "data",    "sources",          "sinks", "credentials",
                                  "timeout_s", "delivery", "retries", "retry_on_failure", "env",   "tags"};

// Headers a job may not set on a link: credentials go in `credentials`.
constexpr std::array forbidden_headers{"authorization", "proxy-authorization", "cookie", "host", "content-length",
                                       "transfer-encoding", "connection"};

bool contains(const auto& arr, std::string_view s) {
    return std::find(arr.begin(), arr.end(), s) != arr.end();
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool has_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

bool has_space_or_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
    });
}

// RFC 6901 escaping of one reference token.
std::string pointer_token(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
    }
    return out;
}

bool is_token_char(char c) noexcept {
    // RFC 9110 tchar
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

class checker {
public:
    explicit checker(const job_limits& l) : lim_(l) {}

    void fail(std::string pointer, std::string message) {
        if (issues_.size() < max_reported_issues) issues_.push_back({std::move(pointer), std::move(message)});
    }
    std::vector<validation_issue>& issues() { return issues_; }

    // A string field: type, length, no control characters.
    const json::string* str(const json::value& v, const std::string& ptr, std::size_t max, bool allow_empty = false) {
        if (!v.is_string()) {
            fail(ptr, "must be a string");
            return nullptr;
        }
        const auto& s = v.get_string();
        if (s.empty() && !allow_empty) {
            fail(ptr, "must not be empty");
            return nullptr;
        }
        if (s.size() > max) {
            fail(ptr, "is longer than " + std::to_string(max) + " characters");
            return nullptr;
        }
        if (has_control(s)) {
            fail(ptr, "must not contain control characters");
            return nullptr;
        }
        return &s;
    }

    std::optional<std::string> url(const json::value& v, const std::string& ptr,
                                   const std::vector<std::string>& schemes, std::string_view what) {
        auto s = str(v, ptr, lim_.max_url_length);
        if (!s) return std::nullopt;
        std::string_view u(*s);
        if (has_space_or_control(u)) {
            fail(ptr, "must not contain spaces");
            return std::nullopt;
        }
        auto scheme = url_scheme(u);
        if (scheme.empty()) {
            fail(ptr, "is not a URL");
            return std::nullopt;
        }
        if (std::find(schemes.begin(), schemes.end(), scheme) == schemes.end()) {
            std::string allowed;
            for (const auto& x : schemes) allowed += (allowed.empty() ? "" : ", ") + x;
            fail(ptr, std::string(what) + " URL scheme '" + scheme + "' is not allowed (allowed: " + allowed + ")");
            return std::nullopt;
        }
        // Authority-based URLs need a host; file URLs need an absolute path.
        auto sep = u.find("://");
        if (sep != std::string_view::npos) {
            auto rest = u.substr(sep + 3);
            if (scheme == "file") {
                if (rest.empty() || rest.front() != '/' || rest.size() < 2) {
                    fail(ptr, "file URLs must be file:///absolute/path");
                    return std::nullopt;
                }
            } else {
                auto host_end = rest.find_first_of("/?#");
                auto authority = rest.substr(0, host_end);
                auto at = authority.rfind('@');
                auto host = at == std::string_view::npos ? authority : authority.substr(at + 1);
                if (host.empty() || host.front() == ':') {
                    fail(ptr, "URL has no host");
                    return std::nullopt;
                }
                if (scheme != "ssh" && at != std::string_view::npos) {
                    fail(ptr, "URL must not carry user information (use a credential)");
                    return std::nullopt;
                }
            }
        }
        return std::string(u);
    }

    std::optional<std::string> name(std::string_view s, const std::string& ptr) {
        if (!is_valid_name(s, lim_.max_name_length)) {
            fail(ptr, "name must match [A-Za-z0-9_.-]{1," + std::to_string(lim_.max_name_length) + "}");
            return std::nullopt;
        }
        return std::string(s);
    }

    const json::object* obj(const json::value& v, const std::string& ptr) {
        if (!v.is_object()) {
            fail(ptr, "must be an object");
            return nullptr;
        }
        return &v.get_object();
    }

    std::optional<int> integer(const json::value& v, const std::string& ptr, int lo, int hi) {
        std::int64_t x = 0;
        if (v.is_int64()) x = v.get_int64();
        else if (v.is_uint64()) x = v.get_uint64() > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(v.get_uint64());
        else if (v.is_double() && v.get_double() == static_cast<double>(static_cast<std::int64_t>(v.get_double())) &&
                 v.get_double() > -1e15 && v.get_double() < 1e15)
            x = static_cast<std::int64_t>(v.get_double());
        else {
            fail(ptr, "must be an integer");
            return std::nullopt;
        }
        if (x < lo || x > hi) {
            fail(ptr, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
            return std::nullopt;
        }
        return static_cast<int>(x);
    }

    std::map<std::string, std::string> headers(const json::value& v, const std::string& ptr) {
        std::map<std::string, std::string> out;
        auto o = obj(v, ptr);
        if (!o) return out;
        if (o->size() > lim_.max_headers) {
            fail(ptr, "has more than " + std::to_string(lim_.max_headers) + " headers");
            return out;
        }
        std::set<std::string> seen;
        for (const auto& [k, hv] : *o) {
            std::string p = ptr + "/" + pointer_token(k);
            if (k.empty() || k.size() > lim_.max_name_length ||
                !std::all_of(k.begin(), k.end(), is_token_char)) {
                fail(p, "is not a valid header name");
                continue;
            }
            auto lk = lower(k);
            if (contains(forbidden_headers, lk)) {
                fail(p, "header may not be set here (put secrets in `credentials` and name them with `credential`)");
                continue;
            }
            if (!seen.insert(lk).second) {
                fail(p, "duplicate header (names are case-insensitive)");
                continue;
            }
            if (auto s = str(hv, p, lim_.max_string_length, true)) out.emplace(std::string(k), std::string(*s));
        }
        return out;
    }

    const job_limits& lim_;

private:
    std::vector<validation_issue> issues_;
};

}  // namespace

std::string url_scheme(std::string_view url) {
    auto sep = url.find("://");
    if (sep != std::string_view::npos) {
        auto scheme = url.substr(0, sep);
        if (scheme.empty() || !std::isalpha(static_cast<unsigned char>(scheme.front()))) return {};
        for (char c : scheme)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return {};
        return lower(scheme);
    }
    // scp-like: [user@]host:path, where the part before ':' has no '/'.
    auto colon = url.find(':');
    if (colon != std::string_view::npos && colon > 0 && colon + 1 < url.size()) {
        auto head = url.substr(0, colon);
        if (head.find('/') == std::string_view::npos && head.find('@') != std::string_view::npos &&
            head.back() != '@' && head.front() != '@')
            return "ssh";
    }
    return {};
}

bool is_valid_ref(std::string_view ref) noexcept {
    if (ref.empty() || ref.size() > 255) return false;
    if (ref.front() == '-' || ref.front() == '/' || ref.back() == '/' || ref.back() == '.') return false;
    if (ref.find("..") != std::string_view::npos || ref.find("//") != std::string_view::npos ||
        ref.find("@{") != std::string_view::npos || ref == "@")
        return false;
    if (ref.size() >= 5 && ref.substr(ref.size() - 5) == ".lock") return false;
    for (char c : ref) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) return false;
        if (std::string_view("~^:?*[\\").find(c) != std::string_view::npos) return false;
    }
    // no component may start with '.'
    for (std::size_t i = 0; i < ref.size(); ++i)
        if (ref[i] == '.' && (i == 0 || ref[i - 1] == '/')) return false;
    return true;
}

bool is_full_commit(std::string_view s) noexcept {
    if (s.size() != 40 && s.size() != 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

bool is_valid_name(std::string_view s, std::size_t max) noexcept {
    if (s.empty() || s.size() > max) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
    });
}

bool env_name_allowed(std::string_view name, const std::vector<std::string>& allow) noexcept {
    if (name.empty()) return false;
    if (!(std::isalpha(static_cast<unsigned char>(name.front())) || name.front() == '_')) return false;
    if (!std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }))
        return false;
    for (const auto& a : allow) {
        if (!a.empty() && a.back() == '*') {
            std::string_view prefix(a.data(), a.size() - 1);
            if (name.substr(0, prefix.size()) == prefix) return true;
        } else if (name == a) {
            return true;
        }
    }
    return false;
}

validation_result validate_job(const json::value& body, const job_limits& lim) {
    validation_result out;
    checker c(lim);
    if (!body.is_object()) {
        c.fail("", "the job description must be a JSON object");
        out.issues = std::move(c.issues());
        return out;
    }
    const auto& o = body.get_object();
    validated_job job;
    auto& spec = job.spec;
    spec.timeout_s = lim.default_timeout_s;
    spec.retries = lim.default_retries;

    for (const auto& [k, v] : o) {
        if (!contains(known_fields, k) && !contains(ignored_fields, k))
            c.fail("/" + pointer_token(k), "unknown field");
    }

    // repo
    std::vector<std::pair<std::string, std::string>> references;  // (pointer, name)
    if (auto it = o.find("repo"); it == o.end() || it->value().is_null()) {
        c.fail("/repo", "is required");
    } else if (auto r = c.obj(it->value(), "/repo")) {
        for (const auto& [k, v] : *r)
            if (k != "url" && k != "ref" && k != "commit" && k != "credential")
                c.fail("/repo/" + pointer_token(k), "unknown field");
        if (auto u = r->find("url"); u == r->end()) c.fail("/repo/url", "is required");
        else if (auto url = c.url(u->value(), "/repo/url", lim.repo_schemes, "repository")) spec.repo.url = *url;
        auto ref = r->find("ref");
        auto commit = r->find("commit");
        bool has_ref = ref != r->end() && !ref->value().is_null();
        bool has_commit = commit != r->end() && !commit->value().is_null();
        if (has_ref == has_commit) {
            c.fail("/repo", "give exactly one of `ref` (a branch or tag) and `commit` (a full hash)");
        } else if (has_ref) {
            if (auto s = c.str(ref->value(), "/repo/ref", 255)) {
                if (!is_valid_ref(*s)) c.fail("/repo/ref", "is not a valid branch or tag name");
                else spec.repo.ref = std::string(*s);
            }
        } else if (auto s = c.str(commit->value(), "/repo/commit", 64)) {
            if (!is_full_commit(*s)) c.fail("/repo/commit", "must be a full commit hash (40 or 64 hex digits)");
            else spec.repo.commit = lower(*s);
        }
        if (auto cr = r->find("credential"); cr != r->end() && !cr->value().is_null()) {
            if (auto s = c.str(cr->value(), "/repo/credential", lim.max_name_length))
                if (auto n = c.name(*s, "/repo/credential")) {
                    spec.repo.credential = *n;
                    references.emplace_back("/repo/credential", *n);
                }
        }
    }

    // entry
    if (auto it = o.find("entry"); it != o.end() && !it->value().is_null()) {
        if (!it->value().is_array()) {
            c.fail("/entry", "must be an array of strings (the command and its arguments)");
        } else {
            const auto& a = it->value().get_array();
            if (a.empty()) c.fail("/entry", "must not be empty (omit it to use the repository's convention)");
            else if (a.size() > lim.max_entry_args)
                c.fail("/entry", "has more than " + std::to_string(lim.max_entry_args) + " elements");
            else
                for (std::size_t i = 0; i < a.size(); ++i)
                    if (auto s = c.str(a[i], "/entry/" + std::to_string(i), lim.max_string_length, i > 0))
                        spec.entry.emplace_back(*s);
        }
    }

    // data
    if (auto it = o.find("data"); it != o.end()) {
        auto size = json::serialize(it->value()).size();
        if (size > lim.max_data_bytes)
            c.fail("/data", "is larger than " + std::to_string(lim.max_data_bytes) + " bytes serialised");
        else spec.data = it->value();
    }

    // sources and sinks
    auto links = [&](std::string_view field, std::size_t max, bool is_sink) {
        auto it = o.find(field);
        if (it == o.end() || it->value().is_null()) return;
        std::string base = "/" + std::string(field);
        auto m = c.obj(it->value(), base);
        if (!m) return;
        if (m->size() > max) {
            c.fail(base, "has more than " + std::to_string(max) + " entries");
            return;
        }
        for (const auto& [name, v] : *m) {
            std::string p = base + "/" + pointer_token(name);
            auto n = c.name(name, p);
            auto lo = c.obj(v, p);
            if (!n || !lo) continue;
            std::string url, credential, method = "PUT";
            std::map<std::string, std::string> hdrs;
            bool ok = true;
            for (const auto& [k, fv] : *lo) {
                if (k != "url" && k != "headers" && k != "credential" && !(is_sink && k == "method")) {
                    c.fail(p + "/" + pointer_token(k), "unknown field");
                    ok = false;
                }
            }
            if (auto u = lo->find("url"); u == lo->end()) {
                c.fail(p + "/url", "is required");
                ok = false;
            } else if (auto parsed = c.url(u->value(), p + "/url", lim.link_schemes, is_sink ? "sink" : "source")) {
                url = *parsed;
            } else {
                ok = false;
            }
            if (auto h = lo->find("headers"); h != lo->end() && !h->value().is_null()) hdrs = c.headers(h->value(), p + "/headers");
            if (auto cr = lo->find("credential"); cr != lo->end() && !cr->value().is_null()) {
                if (auto s = c.str(cr->value(), p + "/credential", lim.max_name_length)) {
                    if (auto cn = c.name(*s, p + "/credential")) {
                        credential = *cn;
                        references.emplace_back(p + "/credential", *cn);
                    }
                }
            }
            if (is_sink) {
                if (auto me = lo->find("method"); me != lo->end() && !me->value().is_null()) {
                    if (auto s = c.str(me->value(), p + "/method", 8)) {
                        auto up = std::string(*s);
                        for (auto& ch : up) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
                        if (up != "PUT" && up != "POST") {
                            c.fail(p + "/method", "must be PUT or POST");
                            ok = false;
                        } else {
                            method = up;
                        }
                    }
                }
            }
            if (!ok) continue;
            if (is_sink) spec.sinks.emplace(*n, sink_spec{url, method, std::move(hdrs), credential});
            else spec.sources.emplace(*n, source_spec{url, std::move(hdrs), credential});
        }
    };
    links("sources", lim.max_sources, false);
    links("sinks", lim.max_sinks, true);

    // credentials
    if (auto it = o.find("credentials"); it != o.end() && !it->value().is_null()) {
        if (auto m = c.obj(it->value(), "/credentials")) {
            if (m->size() > lim.max_credentials) {
                c.fail("/credentials", "has more than " + std::to_string(lim.max_credentials) + " entries");
            } else {
                for (const auto& [name, v] : *m) {
                    std::string p = "/credentials/" + pointer_token(name);
                    auto n = c.name(name, p);
                    if (!n) continue;
                    // The value is a secret: never echo it in a message.
                    if (!v.is_string()) {
                        c.fail(p, "must be a string (the secret)");
                        continue;
                    }
                    const auto& s = v.get_string();
                    if (s.empty()) c.fail(p, "must not be empty");
                    else if (s.size() > lim.max_secret_length)
                        c.fail(p, "is longer than " + std::to_string(lim.max_secret_length) + " characters");
                    else {
                        job.credentials.emplace(*n, s);
                        spec.credentials.names.push_back(*n);
                    }
                }
            }
        }
    }
    for (const auto& [ptr, name] : references) {
        if (!job.credentials.contains(name)) c.fail(ptr, "names a credential that `credentials` does not define");
    }

    // scalars
    if (auto it = o.find("timeout_s"); it != o.end() && !it->value().is_null())
        if (auto t = c.integer(it->value(), "/timeout_s", lim.min_timeout_s, lim.max_timeout_s)) spec.timeout_s = *t;
    if (auto it = o.find("retries"); it != o.end() && !it->value().is_null())
        if (auto t = c.integer(it->value(), "/retries", 0, lim.max_retries)) spec.retries = *t;
    if (auto it = o.find("retry_on_failure"); it != o.end() && !it->value().is_null()) {
        if (!it->value().is_bool()) c.fail("/retry_on_failure", "must be true or false");
        else spec.retry_on_failure = it->value().get_bool();
    }
    if (auto it = o.find("delivery"); it != o.end() && !it->value().is_null()) {
        if (auto s = c.str(it->value(), "/delivery", 32)) {
            if (auto d = parse_delivery_mode(*s)) spec.delivery = *d;
            else c.fail("/delivery", "must be one of at-most-once, at-least-once, exactly-once");
        }
    }

    // env
    if (auto it = o.find("env"); it != o.end() && !it->value().is_null()) {
        if (auto m = c.obj(it->value(), "/env")) {
            if (m->size() > lim.max_env) {
                c.fail("/env", "has more than " + std::to_string(lim.max_env) + " entries");
            } else {
                for (const auto& [name, v] : *m) {
                    std::string p = "/env/" + pointer_token(name);
                    if (name.size() > lim.max_name_length || !env_name_allowed(name, lim.env_allow)) {
                        c.fail(p, "environment variable name is not allowed (see the env allow-list)");
                        continue;
                    }
                    if (auto s = c.str(v, p, lim.max_string_length, true)) spec.env.emplace(std::string(name), std::string(*s));
                }
            }
        }
    }

    // tags
    if (auto it = o.find("tags"); it != o.end() && !it->value().is_null()) {
        if (!it->value().is_array()) {
            c.fail("/tags", "must be an array of strings");
        } else {
            const auto& a = it->value().get_array();
            if (a.size() > lim.max_tags) {
                c.fail("/tags", "has more than " + std::to_string(lim.max_tags) + " tags");
            } else {
                std::set<std::string_view> seen;
                for (std::size_t i = 0; i < a.size(); ++i) {
                    auto p = "/tags/" + std::to_string(i);
                    auto s = c.str(a[i], p, lim.max_name_length);
                    if (!s) continue;
                    if (has_space_or_control(*s)) c.fail(p, "must not contain spaces");
                    else if (!seen.insert(std::string_view(*s)).second) c.fail(p, "duplicate tag");
                    else spec.tags.emplace_back(*s);
                }
            }
        }
    }

    if (!c.issues().empty()) {
        out.issues = std::move(c.issues());
        return out;
    }
    out.job = std::move(job);
    return out;
}

validation_result validate_job_text(std::string_view body, const job_limits& limits) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) {
        validation_result r;
        r.issues.push_back({"", "the body is not valid JSON"});
        return r;
    }
    return validate_job(v, limits);
}

std::optional<std::string> check_limits(const job_limits& l) {
    if (l.min_timeout_s < 1) return "the minimum timeout must be at least 1 s";
    if (l.max_timeout_s < l.min_timeout_s) return "the maximum timeout is below the minimum";
    if (l.default_timeout_s < l.min_timeout_s || l.default_timeout_s > l.max_timeout_s)
        return "the default timeout is outside [minimum, maximum]";
    if (l.max_retries < 0 || l.default_retries < 0 || l.default_retries > l.max_retries)
        return "retries: need 0 <= default <= maximum";
    if (l.max_name_length == 0 || l.max_url_length == 0 || l.max_string_length == 0 || l.max_secret_length == 0)
        return "string length limits must be positive";
    if (l.repo_schemes.empty()) return "at least one repository URL scheme must be allowed";
    for (const auto& s : l.repo_schemes)
        if (s != "https" && s != "ssh" && s != "file" && s != "http" && s != "git")
            return "unknown repository URL scheme '" + s + "' (https, ssh, git, http, file)";
    for (const auto& s : l.link_schemes)
        if (s != "https" && s != "http" && s != "file")
            return "unknown source/sink URL scheme '" + s + "' (https, http, file)";
    for (const auto& e : l.env_allow) {
        std::string_view n(e);
        if (!n.empty() && n.back() == '*') n.remove_suffix(1);
        if (n.empty() && e != "*") return "empty env allow-list entry";
    }
    return std::nullopt;
}

}  // namespace faasd::jobs
