#include <faasd/jobs/codec.hpp>
#include <faasd/jobs/merge.hpp>
#include <faasd/jobs/view.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>

namespace faasd::jobs {
namespace json = boost::json;

namespace {

using u32 = std::uint32_t;
constexpr std::size_t max_id_length = 26;

bool valid_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > max_id_length) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_';
    });
}

std::size_t hash_sv(std::string_view s) noexcept { return std::hash<std::string_view>{}(s); }

// Heap bytes of a std::string beyond the object itself (0 when it fits the SSO buffer).
std::size_t heap_of(const std::string& s) noexcept { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

// A reference-counted string interner. Handle 0 is the empty string.
class string_pool {
public:
    string_pool() { entries_.push_back({std::string(), 0}); }
    string_pool(const string_pool&) = delete;
    string_pool& operator=(const string_pool&) = delete;

    u32 acquire(std::string_view s) {
        if (s.empty()) return 0;
        if (auto it = index_.find(s); it != index_.end()) {
            ++entries_[*it].refs;
            return *it;
        }
        u32 h;
        if (!free_.empty()) {
            h = free_.back();
            free_.pop_back();
            entries_[h].s.assign(s);
            entries_[h].refs = 1;
        } else {
            h = static_cast<u32>(entries_.size());
            entries_.push_back({std::string(s), 1});
        }
        index_.insert(h);
        return h;
    }
    void release(u32 h) noexcept {
        if (h == 0) return;
        if (--entries_[h].refs == 0) {
            index_.erase(h);
            std::string().swap(entries_[h].s);
            free_.push_back(h);
        }
    }
    std::optional<u32> find(std::string_view s) const {
        if (s.empty()) return 0u;
        if (auto it = index_.find(s); it != index_.end()) return *it;
        return std::nullopt;
    }
    std::string_view get(u32 h) const noexcept { return entries_[h].s; }
    std::size_t memory_bytes() const {
        std::size_t n = entries_.capacity() * sizeof(entry) + free_.capacity() * sizeof(u32) +
                        index_.bucket_count() * (sizeof(u32) + 1);
        for (const auto& e : entries_) n += heap_of(e.s);
        return n;
    }

private:
    struct entry {
        std::string s;
        u32 refs = 0;
    };
    struct hasher {
        using is_transparent = void;
        const string_pool* p;
        std::size_t operator()(u32 h) const noexcept { return hash_sv(p->entries_[h].s); }
        std::size_t operator()(std::string_view s) const noexcept { return hash_sv(s); }
    };
    struct equal {
        using is_transparent = void;
        const string_pool* p;
        bool operator()(u32 a, u32 b) const noexcept { return a == b; }
        bool operator()(std::string_view a, u32 b) const noexcept { return a == p->entries_[b].s; }
        bool operator()(u32 a, std::string_view b) const noexcept { return p->entries_[a].s == b; }
    };
    std::vector<entry> entries_;
    std::vector<u32> free_;
    boost::unordered_flat_set<u32, hasher, equal> index_{0, hasher{this}, equal{this}};
};

struct stored_result {
    timing times;
    std::optional<int> exit_code;
    u32 worker = 0;
    bool capped = false;
    std::string body;  // JSON object text: output, stdout, stderr, flags, outputs, error
};

struct extras {
    std::string error_message;
    std::string idempotency_key;
    std::unique_ptr<stored_result> result;
    bool empty() const noexcept { return error_message.empty() && idempotency_key.empty() && !result; }
};

struct record {
    std::array<char, max_id_length> id{};
    std::uint8_t id_len = 0;
    job_state state = job_state::queued;
    delivery_mode delivery = delivery_mode::at_least_once;
    bool used = false;
    bool rev_is_commit = false;
    std::int32_t attempt = 1;
    u32 subject = 0, ident = 0, worker = 0, repo_url = 0, repo_rev = 0, error_code = 0, tags = 0;
    unix_ms submitted_at = 0, started_at = 0, finished_at = 0, updated_at = 0;
    std::unique_ptr<extras> extra;

    std::string_view id_view() const noexcept { return {id.data(), id_len}; }
};

struct owner_entry {
    std::vector<u32> slots;  // ascending by (submitted_at, id)
    std::size_t unfinished = 0;
};

// base64url without padding, for cursors.
constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url(std::string_view in) {
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        auto n = (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8) |
                 std::uint8_t(in[i + 2]);
        out += b64[(n >> 18) & 63];
        out += b64[(n >> 12) & 63];
        out += b64[(n >> 6) & 63];
        out += b64[n & 63];
    }
    if (i + 1 == in.size()) {
        auto n = std::uint32_t(std::uint8_t(in[i])) << 16;
        out += b64[(n >> 18) & 63];
        out += b64[(n >> 12) & 63];
    } else if (i + 2 == in.size()) {
        auto n = (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8);
        out += b64[(n >> 18) & 63];
        out += b64[(n >> 12) & 63];
        out += b64[(n >> 6) & 63];
    }
    return out;
}

std::optional<std::string> unb64url(std::string_view in) {
    auto val = [](char c) -> int {
        const char* p = std::strchr(b64, c);
        return c != '\0' && p ? static_cast<int>(p - b64) : -1;
    };
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = val(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

struct cursor_key {
    unix_ms submitted_at = 0;
    std::string id;
};

std::string encode_cursor(unix_ms at, std::string_view id) {
    return b64url("c1:" + std::to_string(at) + ":" + std::string(id));
}

std::optional<cursor_key> decode_cursor(std::string_view c) {
    auto raw = unb64url(c);
    if (!raw || raw->rfind("c1:", 0) != 0) return std::nullopt;
    std::string_view rest(*raw);
    rest.remove_prefix(3);
    auto colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    cursor_key k;
    std::int64_t v = 0;
    bool neg = false;
    std::string_view num = rest.substr(0, colon);
    if (num.front() == '-') {
        neg = true;
        num.remove_prefix(1);
    }
    if (num.empty() || num.size() > 18) return std::nullopt;
    for (char ch : num) {
        if (ch < '0' || ch > '9') return std::nullopt;
        v = v * 10 + (ch - '0');
    }
    k.submitted_at = neg ? -v : v;
    k.id = std::string(rest.substr(colon + 1));
    if (!valid_id(k.id)) return std::nullopt;
    return k;
}

std::string join_nul(const std::string& head, const std::vector<std::string>& rest) {
    std::string out = head;
    for (const auto& r : rest) {
        out += '\0';
        out += r;
    }
    return out;
}

std::vector<std::string> split_nul(std::string_view s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        auto p = s.find('\0', start);
        out.emplace_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
        if (p == std::string_view::npos) break;
        start = p + 1;
    }
    return out;
}

std::string tail(const std::string& s, std::size_t n) {
    if (s.size() <= n) return s;
    std::size_t start = s.size() - n;
    // do not start in the middle of a UTF-8 sequence
    while (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) ++start;
    return s.substr(start);
}

json::object result_body_object(const job_result& r, bool drop_output, std::size_t text_cap) {
    json::object o;
    o["output"] = drop_output ? json::value() : r.output;
    bool so_cut = r.stdout_truncated, se_cut = r.stderr_truncated;
    std::string so = r.stdout_text, se = r.stderr_text;
    if (so.size() > text_cap) {
        so = tail(so, text_cap);
        so_cut = true;
    }
    if (se.size() > text_cap) {
        se = tail(se, text_cap);
        se_cut = true;
    }
    o["stdout"] = so;
    o["stderr"] = se;
    if (so_cut) o["stdout_truncated"] = true;
    if (se_cut) o["stderr_truncated"] = true;
    if (!r.outputs.empty()) {
        json::array a;
        for (const auto& f : r.outputs)
            a.push_back(json::object{{"name", f.name}, {"size", f.size}, {"sink", f.sink}, {"http_status", f.http_status}});
        o["outputs"] = std::move(a);
    }
    if (!r.error.empty()) o["error"] = to_json(r.error);
    return o;
}

// Builds the stored form of a result; `capped` tells whether the cap applied.
std::string stored_body(const job_result& r, std::size_t max_bytes, bool& capped) {
    capped = false;
    auto text = json::serialize(result_body_object(r, false, std::string::npos));
    if (text.size() <= max_bytes) return text;
    capped = true;
    // Drop the output and keep the last bytes of stdout and stderr; shrink
    // until it fits (outputs and error are small and kept).
    std::size_t cap = max_bytes / 2;
    while (true) {
        text = json::serialize(result_body_object(r, true, cap));
        if (text.size() <= max_bytes || cap == 0) return text;
        cap = cap > 64 ? cap / 2 : 0;
    }
}

}  // namespace

std::string capped_result_json(const job_result& r, std::size_t max_bytes) {
    bool capped = false;
    auto body = stored_body(r, max_bytes, capped);
    if (!capped && !r.capped) return body;
    auto o = json::parse(body).as_object();
    o["result_capped"] = true;
    return json::serialize(o);
}

struct job_view::impl {
    view_limits lim;
    std::vector<record> records;
    std::vector<u32> free_slots;
    string_pool pool;
    state_counts counts{};

    struct id_hash {
        using is_transparent = void;
        const impl* v;
        std::size_t operator()(u32 s) const noexcept { return hash_sv(v->records[s].id_view()); }
        std::size_t operator()(std::string_view s) const noexcept { return hash_sv(s); }
    };
    struct id_eq {
        using is_transparent = void;
        const impl* v;
        bool operator()(u32 a, u32 b) const noexcept { return a == b; }
        bool operator()(std::string_view a, u32 b) const noexcept { return a == v->records[b].id_view(); }
        bool operator()(u32 a, std::string_view b) const noexcept { return v->records[a].id_view() == b; }
    };
    boost::unordered_flat_set<u32, id_hash, id_eq> by_id{0, id_hash{this}, id_eq{this}};
    boost::unordered_flat_map<u32, owner_entry> owners;  // key: interned subject

    // Erased ids and their submitted_at, oldest first, bounded.
    boost::unordered_flat_map<std::string, unix_ms> erased;
    std::deque<std::string> erased_order;

    explicit impl(view_limits l) : lim(l) {}
    impl(const impl&) = delete;

    std::optional<u32> find(std::string_view id) const {
        auto it = by_id.find(id);
        if (it == by_id.end()) return std::nullopt;
        return *it;
    }

    bool key_less(u32 a, unix_ms at, std::string_view id) const {
        const auto& r = records[a];
        if (r.submitted_at != at) return r.submitted_at < at;
        return r.id_view() < id;
    }

    void owner_insert(u32 slot) {
        const auto& r = records[slot];
        auto& o = owners[r.subject];
        auto pos = std::lower_bound(o.slots.begin(), o.slots.end(), slot, [&](u32 a, u32 b) {
            return key_less(a, records[b].submitted_at, records[b].id_view());
        });
        o.slots.insert(pos, slot);
        if (!is_terminal(r.state)) ++o.unfinished;
    }

    void owner_remove(u32 slot) {
        const auto& r = records[slot];
        auto it = owners.find(r.subject);
        if (it == owners.end()) return;
        auto& o = it->second;
        auto pos = std::lower_bound(o.slots.begin(), o.slots.end(), slot, [&](u32 a, u32 b) {
            return key_less(a, records[b].submitted_at, records[b].id_view());
        });
        if (pos != o.slots.end() && *pos == slot) o.slots.erase(pos);
        else std::erase(o.slots, slot);  // defensive: keys changed under us
        if (!is_terminal(r.state) && o.unfinished > 0) --o.unfinished;
        if (o.slots.empty()) owners.erase(it);
    }

    void release_fields(record& r) {
        pool.release(r.subject);
        pool.release(r.ident);
        pool.release(r.worker);
        pool.release(r.repo_url);
        pool.release(r.repo_rev);
        pool.release(r.error_code);
        pool.release(r.tags);
        if (r.extra && r.extra->result) pool.release(r.extra->result->worker);
        r.subject = r.ident = r.worker = r.repo_url = r.repo_rev = r.error_code = r.tags = 0;
        r.extra.reset();
    }

    // Fills r from s (handles already released). The id is set by the caller.
    void fill(record& r, const job_status& s) {
        r.state = s.state;
        r.delivery = s.delivery;
        r.attempt = s.attempt;
        r.subject = pool.acquire(s.owner.subject);
        r.ident = pool.acquire(join_nul(s.owner.username, s.owner.roles));
        r.worker = pool.acquire(s.worker);
        r.repo_url = pool.acquire(s.repo.url);
        r.rev_is_commit = s.repo.ref.empty() && !s.repo.commit.empty();
        r.repo_rev = pool.acquire(r.rev_is_commit ? s.repo.commit : s.repo.ref);
        r.error_code = pool.acquire(s.error.code);
        if (!s.tags.empty()) {
            std::string joined;
            for (const auto& t : s.tags) {
                joined += '\0';
                joined += t;
            }
            r.tags = pool.acquire(joined);
        }
        r.submitted_at = s.submitted_at;
        r.started_at = s.started_at;
        r.finished_at = s.finished_at;
        r.updated_at = s.updated_at;
        if (!s.error.message.empty() || !s.idempotency_key.empty() || s.result) {
            r.extra = std::make_unique<extras>();
            r.extra->error_message = s.error.message;
            r.extra->idempotency_key = s.idempotency_key;
            if (s.result) {
                auto sr = std::make_unique<stored_result>();
                sr->times = s.result->times;
                sr->exit_code = s.result->exit_code;
                sr->worker = pool.acquire(s.result->worker);
                sr->body = stored_body(*s.result, lim.max_result_bytes, sr->capped);
                sr->capped = sr->capped || s.result->capped;  // the worker cut it already
                sr->body.shrink_to_fit();
                r.extra->result = std::move(sr);
            }
        }
    }

    merge_key key_of_record(const record& r) const {
        return {r.state, r.attempt, r.extra && r.extra->result, r.finished_at, r.updated_at, pool.get(r.worker)};
    }

    std::vector<std::string> tags_of(const record& r) const {
        std::vector<std::string> out;
        if (r.tags == 0) return out;
        auto parts = split_nul(pool.get(r.tags));
        out.assign(parts.begin() + 1, parts.end());  // the joined form starts with '\0'
        return out;
    }

    job_status materialise(const record& r) const {
        job_status s;
        s.id = std::string(r.id_view());
        s.owner.subject = std::string(pool.get(r.subject));
        auto ident = split_nul(pool.get(r.ident));
        s.owner.username = ident.front();
        s.owner.roles.assign(ident.begin() + 1, ident.end());
        s.state = r.state;
        s.attempt = r.attempt;
        s.submitted_at = r.submitted_at;
        s.started_at = r.started_at;
        s.finished_at = r.finished_at;
        s.updated_at = r.updated_at;
        s.worker = std::string(pool.get(r.worker));
        s.error.code = std::string(pool.get(r.error_code));
        s.repo.url = std::string(pool.get(r.repo_url));
        (r.rev_is_commit ? s.repo.commit : s.repo.ref) = std::string(pool.get(r.repo_rev));
        s.delivery = r.delivery;
        s.tags = tags_of(r);
        if (r.extra) {
            s.error.message = r.extra->error_message;
            s.idempotency_key = r.extra->idempotency_key;
        }
        return s;
    }

    json::object result_head(const record& r) const {
        const auto& sr = *r.extra->result;
        json::object o{{"id", r.id_view()},
                       {"state", to_string(r.state)},
                       {"attempt", r.attempt},
                       {"worker", pool.get(sr.worker)},
                       {"timing", to_json(sr.times)}};
        if (sr.exit_code) o["exit_code"] = *sr.exit_code;
        if (sr.capped) o["result_capped"] = true;
        return o;
    }

    void remember_erased(std::string_view id, unix_ms submitted_at) {
        if (lim.remember_erased == 0) return;
        auto [it, inserted] = erased.insert_or_assign(std::string(id), submitted_at);
        if (inserted) erased_order.emplace_back(id);
        while (erased_order.size() > lim.remember_erased) {
            erased.erase(erased_order.front());
            erased_order.pop_front();
        }
    }
};

job_view::job_view(view_limits limits) : impl_(std::make_unique<impl>(limits)) {}
job_view::~job_view() = default;

apply_outcome job_view::apply(const job_status& s) {
    auto& v = *impl_;
    if (!valid_id(s.id)) return apply_outcome::ignored;
    if (auto e = v.erased.find(s.id); e != v.erased.end()) {
        if (s.submitted_at <= e->second) return apply_outcome::ignored;  // a late copy of the erased job
        v.erased.erase(e);  // a new job under the same id (idempotency key reuse after erasure)
        std::erase(v.erased_order, s.id);
    }
    if (auto slot = v.find(s.id)) {
        auto& r = v.records[*slot];
        if (!supersedes(key_of(s), v.key_of_record(r))) return apply_outcome::kept;
        v.owner_remove(*slot);
        --v.counts[static_cast<int>(r.state)];
        v.release_fields(r);
        v.fill(r, s);
        ++v.counts[static_cast<int>(r.state)];
        v.owner_insert(*slot);
        return apply_outcome::replaced;
    }
    u32 slot;
    if (!v.free_slots.empty()) {
        slot = v.free_slots.back();
        v.free_slots.pop_back();
    } else {
        slot = static_cast<u32>(v.records.size());
        v.records.emplace_back();
    }
    auto& r = v.records[slot];
    r.used = true;
    r.id_len = static_cast<std::uint8_t>(s.id.size());
    std::memcpy(r.id.data(), s.id.data(), s.id.size());
    v.fill(r, s);
    v.by_id.insert(slot);
    ++v.counts[static_cast<int>(r.state)];
    v.owner_insert(slot);
    return apply_outcome::inserted;
}

bool job_view::erase(std::string_view id) {
    auto& v = *impl_;
    auto slot = v.find(id);
    if (!slot) return false;
    auto& r = v.records[*slot];
    v.remember_erased(id, r.submitted_at);
    v.owner_remove(*slot);
    --v.counts[static_cast<int>(r.state)];
    v.by_id.erase(*slot);
    v.release_fields(r);
    r = record{};
    v.free_slots.push_back(*slot);
    return true;
}

std::optional<job_status> job_view::get(std::string_view id) const {
    auto slot = impl_->find(id);
    if (!slot) return std::nullopt;
    return impl_->materialise(impl_->records[*slot]);
}

std::optional<job_status> job_view::get_with_result(std::string_view id) const {
    auto slot = impl_->find(id);
    if (!slot) return std::nullopt;
    const auto& r = impl_->records[*slot];
    auto s = impl_->materialise(r);
    if (r.extra && r.extra->result) {
        auto text = result_json(id);
        auto res = job_result_from_json(json::parse(*text));
        if (res) {
            res->owner_subject = s.owner.subject;
            res->tags = s.tags;
            s.result = std::move(*res);
        }
    }
    return s;
}

std::optional<std::string> job_view::result_json(std::string_view id) const {
    auto slot = impl_->find(id);
    if (!slot) return std::nullopt;
    const auto& r = impl_->records[*slot];
    if (!r.extra || !r.extra->result) return std::nullopt;
    // Splice the stored body into the head without re-serialising it.
    auto head = json::serialize(impl_->result_head(r));
    const auto& body = r.extra->result->body;  // "{...}"
    std::string out;
    out.reserve(head.size() + body.size());
    out.append(head, 0, head.size() - 1);
    if (body.size() > 2) {
        out += ',';
        out.append(body, 1, body.size() - 1);
    } else {
        out += '}';
    }
    return out;
}

bool job_view::contains(std::string_view id) const { return impl_->find(id).has_value(); }

std::string_view job_view::owner_of(std::string_view id) const {
    auto slot = impl_->find(id);
    if (!slot) return {};
    return impl_->pool.get(impl_->records[*slot].subject);
}

std::optional<job_state> job_view::state_of(std::string_view id) const {
    auto slot = impl_->find(id);
    if (!slot) return std::nullopt;
    return impl_->records[*slot].state;
}

bool job_view::is_valid_cursor(std::string_view cursor) { return cursor.empty() || decode_cursor(cursor).has_value(); }

job_page job_view::list(std::string_view owner_subject, std::optional<job_state> state, std::size_t limit,
                        std::string_view cursor, std::size_t max_scan) const {
    const auto& v = *impl_;
    job_page page;
    auto h = v.pool.find(owner_subject);
    if (!h || owner_subject.empty() || limit == 0) return page;
    auto it = v.owners.find(*h);
    if (it == v.owners.end()) return page;
    const auto& slots = it->second.slots;
    std::size_t end = slots.size();  // examine [0, end) backwards
    if (!cursor.empty()) {
        auto k = decode_cursor(cursor);
        if (!k) return page;
        end = static_cast<std::size_t>(
            std::lower_bound(slots.begin(), slots.end(), 0u,
                             [&](u32 a, u32) { return v.key_less(a, k->submitted_at, k->id); }) -
            slots.begin());
    }
    std::size_t scanned = 0;
    std::size_t i = end;
    while (i > 0 && page.items.size() < limit && scanned < max_scan) {
        --i;
        ++scanned;
        const auto& r = v.records[slots[i]];
        if (!state || r.state == *state) page.items.push_back(v.materialise(r));
    }
    if (i > 0) {
        const auto& last = v.records[slots[i]];
        page.next_cursor = encode_cursor(last.submitted_at, last.id_view());
    }
    return page;
}

std::size_t job_view::size() const noexcept { return impl_->by_id.size(); }

std::size_t job_view::unfinished(std::string_view owner_subject) const {
    auto h = impl_->pool.find(owner_subject);
    if (!h) return 0;
    auto it = impl_->owners.find(*h);
    return it == impl_->owners.end() ? 0 : it->second.unfinished;
}

const state_counts& job_view::counts() const noexcept { return impl_->counts; }

std::size_t job_view::memory_bytes() const {
    const auto& v = *impl_;
    std::size_t n = v.records.capacity() * sizeof(record) + v.free_slots.capacity() * sizeof(u32) +
                    v.by_id.bucket_count() * (sizeof(u32) + 1) + v.pool.memory_bytes();
    for (const auto& [k, o] : v.owners) n += sizeof(u32) + sizeof(owner_entry) + o.slots.capacity() * sizeof(u32);
    for (const auto& r : v.records) {
        if (!r.extra) continue;
        n += sizeof(extras) + heap_of(r.extra->error_message) + heap_of(r.extra->idempotency_key);
        if (r.extra->result) n += sizeof(stored_result) + heap_of(r.extra->result->body);
    }
    n += v.erased.size() * (sizeof(std::string) + sizeof(unix_ms) + 1) + v.erased_order.size() * sizeof(std::string);
    return n;
}

const view_limits& job_view::limits() const noexcept { return impl_->lim; }

}  // namespace faasd::jobs
