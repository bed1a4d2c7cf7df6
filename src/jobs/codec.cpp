#include <faasd/jobs/codec.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace faasd::jobs {
namespace json = boost::json;

namespace {

// Field readers: a missing optional field keeps the default; a present field of
// the wrong type is an error.
struct reader {
    const json::object& o;
    bool ok = true;

    const json::value* find(std::string_view k) const {
        auto it = o.find(k);
        return it == o.end() || it->value().is_null() ? nullptr : &it->value();
    }
    void str(std::string_view k, std::string& out) {
        if (auto v = find(k)) {
            if (v->is_string()) out = std::string(v->get_string());
            else ok = false;
        }
    }
    template <class I>
    void integer(std::string_view k, I& out) {
        if (auto v = find(k)) {
            if (v->is_int64()) out = static_cast<I>(v->get_int64());
            else if (v->is_uint64()) out = static_cast<I>(v->get_uint64());
            else ok = false;
        }
    }
    void boolean(std::string_view k, bool& out) {
        if (auto v = find(k)) {
            if (v->is_bool()) out = v->get_bool();
            else ok = false;
        }
    }
    void strings(std::string_view k, std::vector<std::string>& out) {
        if (auto v = find(k)) {
            if (!v->is_array()) { ok = false; return; }
            out.clear();
            for (const auto& e : v->get_array()) {
                if (!e.is_string()) { ok = false; return; }
                out.emplace_back(e.get_string());
            }
        }
    }
    void string_map(std::string_view k, std::map<std::string, std::string>& out) {
        if (auto v = find(k)) {
            if (!v->is_object()) { ok = false; return; }
            out.clear();
            for (const auto& [name, e] : v->get_object()) {
                if (!e.is_string()) { ok = false; return; }
                out.emplace(std::string(name), std::string(e.get_string()));
            }
        }
    }
    const json::object* object(std::string_view k) {
        auto v = find(k);
        if (!v) return nullptr;
        if (!v->is_object()) { ok = false; return nullptr; }
        return &v->get_object();
    }
};

json::array to_array(const std::vector<std::string>& v) {
    json::array a;
    a.reserve(v.size());
    for (const auto& s : v) a.emplace_back(s);
    return a;
}

json::object to_object(const std::map<std::string, std::string>& m) {
    json::object o;
    for (const auto& [k, v] : m) o[k] = v;
    return o;
}

result<const json::object*> as_object(const json::value& v) {
    if (!v.is_object()) return errc::bad_message;
    return &v.get_object();
}

errc check_version(const json::object& o) {
    auto it = o.find("v");
    if (it == o.end() || !it->value().is_int64()) return errc::bad_message;
    if (it->value().get_int64() != wire_version) return errc::unsupported_version;
    return errc::ok;
}

template <class T, class F>
result<T> decode_versioned(std::string_view bytes, F from_json) {
    boost::system::error_code ec;
    json::value v = json::parse(bytes, ec);
    if (ec || !v.is_object()) return errc::bad_message;
    if (auto e = check_version(v.get_object()); e != errc::ok) return e;
    return from_json(v);
}

template <class T>
std::string encode_versioned(const T& t) {
    json::object o = to_json(t);
    o.emplace("v", wire_version);
    return json::serialize(o);
}

}  // namespace

json::object to_json(const identity& v) {
    return {{"sub", v.subject}, {"username", v.username}, {"roles", to_array(v.roles)}};
}

json::object to_json(const repo_spec& v) {
    json::object o{{"url", v.url}};
    if (!v.ref.empty()) o["ref"] = v.ref;
    if (!v.commit.empty()) o["commit"] = v.commit;
    if (!v.credential.empty()) o["credential"] = v.credential;
    return o;
}

namespace {
json::object link_json(const std::string& url, const std::map<std::string, std::string>& headers,
                       const std::string& credential) {
    json::object o{{"url", url}};
    if (!headers.empty()) o["headers"] = to_object(headers);
    if (!credential.empty()) o["credential"] = credential;
    return o;
}
}  // namespace

json::object to_json(const job_spec& v) {
    json::object o{{"repo", to_json(v.repo)}};
    if (!v.entry.empty()) o["entry"] = to_array(v.entry);
    if (!v.data.is_null()) o["data"] = v.data;
    if (!v.sources.empty()) {
        json::object s;
        for (const auto& [name, src] : v.sources) s[name] = link_json(src.url, src.headers, src.credential);
        o["sources"] = std::move(s);
    }
    if (!v.sinks.empty()) {
        json::object s;
        for (const auto& [name, snk] : v.sinks) {
            auto l = link_json(snk.url, snk.headers, snk.credential);
            l["method"] = snk.method;
            s[name] = std::move(l);
        }
        o["sinks"] = std::move(s);
    }
    if (!v.credentials.empty()) {
        o["credentials"] = json::object{{"kid", v.credentials.key_id},
                                        {"nonce", v.credentials.nonce_b64},
                                        {"ct", v.credentials.ciphertext_b64},
                                        {"names", to_array(v.credentials.names)}};
    }
    o["timeout_s"] = v.timeout_s;
    o["delivery"] = to_string(v.delivery);
    o["retries"] = v.retries;
    if (v.retry_on_failure) o["retry_on_failure"] = true;
    if (!v.env.empty()) o["env"] = to_object(v.env);
    if (!v.tags.empty()) o["tags"] = to_array(v.tags);
    return o;
}

json::object to_json(const job_message& v) {
    json::object o{{"id", v.id},
                   {"owner", to_json(v.owner)},
                   {"submitted_at", v.submitted_at},
                   {"attempt", v.attempt},
                   {"spec", to_json(v.spec)}};
    if (v.not_before != 0) o["not_before"] = v.not_before;
    if (!v.idempotency_key.empty()) o["idempotency_key"] = v.idempotency_key;
    return o;
}

json::object to_json(const timing& v) {
    return {{"submitted_at", v.submitted_at}, {"started_at", v.started_at},
            {"run_started_at", v.run_started_at}, {"finished_at", v.finished_at},
            {"queue_wait_ms", v.queue_wait_ms}, {"prepare_ms", v.prepare_ms},
            {"clone_ms", v.clone_ms}, {"sources_ms", v.sources_ms},
            {"run_ms", v.run_ms}, {"upload_ms", v.upload_ms},
            {"total_ms", v.total_ms}, {"cache_hit", v.cache_hit}};
}

json::object to_json(const job_error& v) { return {{"code", v.code}, {"message", v.message}}; }

json::object to_json(const job_result& v) {
    json::object o{{"id", v.id},
                   {"owner_sub", v.owner_subject},
                   {"state", to_string(v.state)},
                   {"attempt", v.attempt},
                   {"worker", v.worker},
                   {"output", v.output},
                   {"stdout", v.stdout_text},
                   {"stderr", v.stderr_text},
                   {"timing", to_json(v.times)}};
    if (v.exit_code) o["exit_code"] = *v.exit_code;
    if (v.stdout_truncated) o["stdout_truncated"] = true;
    if (v.stderr_truncated) o["stderr_truncated"] = true;
    if (v.capped) o["result_capped"] = true;
    if (!v.outputs.empty()) {
        json::array a;
        for (const auto& f : v.outputs)
            a.push_back(json::object{{"name", f.name}, {"size", f.size}, {"sink", f.sink}, {"http_status", f.http_status}});
        o["outputs"] = std::move(a);
    }
    if (!v.error.empty()) o["error"] = to_json(v.error);
    if (!v.tags.empty()) o["tags"] = to_array(v.tags);
    return o;
}

json::object to_json(const job_status& v) {
    json::object o{{"id", v.id},
                   {"owner", to_json(v.owner)},
                   {"state", to_string(v.state)},
                   {"attempt", v.attempt},
                   {"submitted_at", v.submitted_at},
                   {"updated_at", v.updated_at},
                   {"repo", to_json(v.repo)},
                   {"delivery", to_string(v.delivery)}};
    if (v.started_at) o["started_at"] = v.started_at;
    if (v.finished_at) o["finished_at"] = v.finished_at;
    if (!v.worker.empty()) o["worker"] = v.worker;
    if (!v.error.empty()) o["error"] = to_json(v.error);
    if (!v.tags.empty()) o["tags"] = to_array(v.tags);
    if (!v.idempotency_key.empty()) o["idempotency_key"] = v.idempotency_key;
    if (v.deliveries > 0) o["deliveries"] = v.deliveries;
    if (v.result) o["result"] = to_json(*v.result);
    return o;
}

result<identity> identity_from_json(const json::value& v) {
    auto o = as_object(v);
    if (!o) return o.error();
    identity out;
    reader r{**o};
    r.str("sub", out.subject);
    r.str("username", out.username);
    r.strings("roles", out.roles);
    if (!r.ok) return errc::bad_message;
    return out;
}

result<repo_spec> repo_spec_from_json(const json::value& v) {
    auto o = as_object(v);
    if (!o) return o.error();
    repo_spec out;
    reader r{**o};
    r.str("url", out.url);
    r.str("ref", out.ref);
    r.str("commit", out.commit);
    r.str("credential", out.credential);
    if (!r.ok || out.url.empty()) return errc::bad_message;
    return out;
}

result<job_spec> job_spec_from_json(const json::value& v) {
    auto o = as_object(v);
    if (!o) return o.error();
    job_spec out;
    reader r{**o};
    auto repo = r.find("repo");
    if (!repo) return errc::bad_message;
    auto rs = repo_spec_from_json(*repo);
    if (!rs) return rs.error();
    out.repo = std::move(*rs);
    r.strings("entry", out.entry);
    if (auto d = (*o)->find("data"); d != (*o)->end()) out.data = d->value();
    if (auto s = r.object("sources")) {
        for (const auto& [name, e] : *s) {
            if (!e.is_object()) return errc::bad_message;
            reader lr{e.get_object()};
            source_spec src;
            lr.str("url", src.url);
            lr.string_map("headers", src.headers);
            lr.str("credential", src.credential);
            if (!lr.ok) return errc::bad_message;
            out.sources.emplace(std::string(name), std::move(src));
        }
    }
    if (auto s = r.object("sinks")) {
        for (const auto& [name, e] : *s) {
            if (!e.is_object()) return errc::bad_message;
            reader lr{e.get_object()};
            sink_spec snk;
            lr.str("url", snk.url);
            lr.str("method", snk.method);
            lr.string_map("headers", snk.headers);
            lr.str("credential", snk.credential);
            if (!lr.ok) return errc::bad_message;
            out.sinks.emplace(std::string(name), std::move(snk));
        }
    }
    if (auto c = r.object("credentials")) {
        reader cr{*c};
        cr.str("kid", out.credentials.key_id);
        cr.str("nonce", out.credentials.nonce_b64);
        cr.str("ct", out.credentials.ciphertext_b64);
        cr.strings("names", out.credentials.names);
        if (!cr.ok) return errc::bad_message;
    }
    r.integer("timeout_s", out.timeout_s);
    std::string delivery;
    r.str("delivery", delivery);
    if (!delivery.empty()) {
        auto d = parse_delivery_mode(delivery);
        if (!d) return errc::bad_message;
        out.delivery = *d;
    }
    r.integer("retries", out.retries);
    r.boolean("retry_on_failure", out.retry_on_failure);
    r.string_map("env", out.env);
    r.strings("tags", out.tags);
    if (!r.ok) return errc::bad_message;
    return out;
}

result<job_message> job_message_from_json(const json::value& v) {
    auto o = as_object(v);
    if (!o) return o.error();
    job_message out;
    reader r{**o};
    r.str("id", out.id);
    r.integer("submitted_at", out.submitted_at);
    r.integer("attempt", out.attempt);
    r.integer("not_before", out.not_before);
    r.str("idempotency_key", out.idempotency_key);
    auto owner = r.find("owner");
    auto spec = r.find("spec");
    if (!r.ok || out.id.empty() || !owner || !spec) return errc::bad_message;
    auto id = identity_from_json(*owner);
    if (!id) return id.error();
    out.owner = std::move(*id);
    auto s = job_spec_from_json(*spec);
    if (!s) return s.error();
    out.spec = std::move(*s);
    return out;
}

namespace {
bool timing_from_json(const json::object& o, timing& t) {
    reader r{o};
    r.integer("submitted_at", t.submitted_at);
    r.integer("started_at", t.started_at);
    r.integer("run_started_at", t.run_started_at);
    r.integer("finished_at", t.finished_at);
    r.integer("queue_wait_ms", t.queue_wait_ms);
    r.integer("prepare_ms", t.prepare_ms);
    r.integer("clone_ms", t.clone_ms);      // absent in older results: 0
    r.integer("sources_ms", t.sources_ms);  // absent in older results: 0
    r.integer("run_ms", t.run_ms);
    r.integer("upload_ms", t.upload_ms);
    r.integer("total_ms", t.total_ms);
    r.boolean("cache_hit", t.cache_hit);
    return r.ok;
}

bool error_from_json(reader& r, job_error& e) {
    if (auto eo = r.object("error")) {
        reader er{*eo};
        er.str("code", e.code);
        er.str("message", e.message);
        return er.ok;
    }
    return true;
}

bool state_from(reader& r, job_state& s) {
    std::string st;
    r.str("state", st);
    auto p = parse_job_state(st);
    if (!p) return false;
    s = *p;
    return true;
}
}  // namespace

result<job_result> job_result_from_json(const json::value& v) {
    auto o = as_object(v);
    if (!o) return o.error();
    job_result out;
    reader r{**o};
    r.str("id", out.id);
    r.str("owner_sub", out.owner_subject);
    if (!state_from(r, out.state)) return errc::bad_message;
    r.integer("attempt", out.attempt);
    r.str("worker", out.worker);
    if (auto ec = r.find("exit_code")) {
        if (!ec->is_int64()) return errc::bad_message;
        out.exit_code = static_cast<int>(ec->get_int64());
    }
    if (auto it = (*o)->find("output"); it != (*o)->end()) out.output = it->value();
    r.str("stdout", out.stdout_text);
    r.str("stderr", out.stderr_text);
    r.boolean("stdout_truncated", out.stdout_truncated);
    r.boolean("stderr_truncated", out.stderr_truncated);
    r.boolean("result_capped", out.capped);
    if (auto a = r.find("outputs")) {
        if (!a->is_array()) return errc::bad_message;
        for (const auto& e : a->get_array()) {
            if (!e.is_object()) return errc::bad_message;
            reader fr{e.get_object()};
            output_file f;
            fr.str("name", f.name);
            fr.integer("size", f.size);
            fr.str("sink", f.sink);
            fr.integer("http_status", f.http_status);
            if (!fr.ok) return errc::bad_message;
            out.outputs.push_back(std::move(f));
        }
    }
    if (!error_from_json(r, out.error)) return errc::bad_message;
    if (auto t = r.object("timing"))
        if (!timing_from_json(*t, out.times)) return errc::bad_message;
    r.strings("tags", out.tags);
    if (!r.ok || out.id.empty()) return errc::bad_message;
    return out;
}

result<job_status> job_status_from_json(const json::value& v) {
    auto o = as_object(v);
    if (!o) return o.error();
    job_status out;
    reader r{**o};
    r.str("id", out.id);
    if (!state_from(r, out.state)) return errc::bad_message;
    r.integer("attempt", out.attempt);
    r.integer("submitted_at", out.submitted_at);
    r.integer("started_at", out.started_at);
    r.integer("finished_at", out.finished_at);
    r.integer("updated_at", out.updated_at);
    r.str("worker", out.worker);
    r.strings("tags", out.tags);
    r.str("idempotency_key", out.idempotency_key);
    r.integer("deliveries", out.deliveries);
    if (!error_from_json(r, out.error)) return errc::bad_message;
    std::string delivery;
    r.str("delivery", delivery);
    if (!delivery.empty()) {
        auto d = parse_delivery_mode(delivery);
        if (!d) return errc::bad_message;
        out.delivery = *d;
    }
    if (auto owner = r.find("owner")) {
        auto id = identity_from_json(*owner);
        if (!id) return id.error();
        out.owner = std::move(*id);
    }
    if (auto repo = r.find("repo")) {
        auto rs = repo_spec_from_json(*repo);
        if (!rs) return rs.error();
        out.repo = std::move(*rs);
    }
    if (auto res = r.find("result")) {
        auto jr = job_result_from_json(*res);
        if (!jr) return jr.error();
        out.result = std::move(*jr);
    }
    if (!r.ok || out.id.empty()) return errc::bad_message;
    return out;
}

std::string encode(const job_message& m) { return encode_versioned(m); }
std::string encode(const job_result& r) { return encode_versioned(r); }
std::string encode(const job_status& s) { return encode_versioned(s); }

result<job_message> decode_job_message(std::string_view bytes) {
    return decode_versioned<job_message>(bytes, job_message_from_json);
}
result<job_result> decode_job_result(std::string_view bytes) {
    return decode_versioned<job_result>(bytes, job_result_from_json);
}
result<job_status> decode_job_status(std::string_view bytes) {
    return decode_versioned<job_status>(bytes, job_status_from_json);
}

}  // namespace faasd::jobs
