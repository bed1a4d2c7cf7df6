#include <faasd/worker/result_budget.hpp>

#include <faasd/jobs/codec.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <string>

namespace faasd::worker {

namespace {

constexpr std::size_t log_reserve = 16 * 1024;  // logs kept next to a kept output
constexpr std::size_t marker_room = 128;        // one marker line, escaped

// Bytes of s once JSON-escaped (without the quotes), as boost::json writes it.
std::size_t escaped_size(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
        case '"': case '\\': case '\b': case '\f': case '\n': case '\r': case '\t': return 2;
        default: return u < 0x20 ? 6 : 1;
    }
}

std::size_t escaped_size(const std::string& s) noexcept {
    std::size_t n = 0;
    for (char c : s) n += escaped_size(c);
    return n;
}

// The longest prefix of s whose escaped size is at most `budget`, ending on a
// UTF-8 boundary.
std::size_t prefix_within(const std::string& s, std::size_t budget) noexcept {
    std::size_t used = 0, i = 0;
    for (; i < s.size(); ++i) {
        const auto e = escaped_size(s[i]);
        if (used + e > budget) break;
        used += e;
    }
    while (i > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    return i;
}

// Cuts `text` to `budget` escaped bytes including the marker; true if cut.
bool cut_log(std::string& text, std::size_t budget) {
    if (escaped_size(text) <= budget) return false;
    const std::size_t total = text.size();
    const std::size_t keep = prefix_within(text, budget > marker_room ? budget - marker_room : 0);
    text.resize(keep);
    text += "\n[faasd: cut to fit the result size limit: " + std::to_string(total - keep) + " of " +
            std::to_string(total) + " bytes dropped]\n";
    return true;
}

}  // namespace

std::string validate(const result_limits& l) {
    if (l.result_bytes < 16 * 1024) return "--result-max-size: at least 16KiB";
    if (l.snapshot_bytes < 4 * 1024) return "--snapshot-result-max-size: at least 4KiB";
    if (l.snapshot_bytes > l.result_bytes) return "--snapshot-result-max-size: at most --result-max-size";
    return {};
}

std::size_t encoded_size(const jobs::job_result& r) { return jobs::encode(r).size(); }

bool fit_result(jobs::job_result& r, std::size_t max_bytes) {
    if (encoded_size(r) <= max_bytes) return false;
    r.capped = true;

    // What the logs and the output may use: the budget minus everything else
    // (with room for the flags and two markers).
    jobs::job_result bare = r;
    bare.stdout_text.clear();
    bare.stderr_text.clear();
    bare.output = nullptr;
    bare.stdout_truncated = bare.stderr_truncated = true;
    const std::size_t base = encoded_size(bare) + 2 * marker_room;
    std::size_t avail = max_bytes > base ? max_bytes - base : 0;

    // 2. The output stays if it fits next to a little of the logs.
    if (!r.output.is_null()) {
        const std::size_t out = boost::json::serialize(r.output).size();
        const std::size_t logs = escaped_size(r.stdout_text) + escaped_size(r.stderr_text);
        if (out + std::min(logs, log_reserve) <= avail) {
            avail -= out;
        } else {
            r.output = nullptr;
            r.stderr_text += "\n[faasd: the output (" + std::to_string(out) +
                             " bytes of JSON) was dropped to fit the result size limit]\n";
        }
    }

    // 3. The logs share the rest; shrink until the whole encoding fits.
    const std::string all_out = r.stdout_text, all_err = r.stderr_text;
    const std::size_t out_need = escaped_size(all_out), err_need = escaped_size(all_err);
    const bool out_was_cut = r.stdout_truncated, err_was_cut = r.stderr_truncated;
    for (int round = 0; round < 8; ++round) {
        const std::size_t half = avail / 2;
        std::size_t out_budget = half, err_budget = avail - half;
        if (out_need < out_budget) err_budget += out_budget - out_need;
        else if (err_need < err_budget) out_budget += err_budget - err_need;
        r.stdout_text = all_out;
        r.stderr_text = all_err;
        r.stdout_truncated = cut_log(r.stdout_text, out_budget) || out_was_cut;
        r.stderr_truncated = cut_log(r.stderr_text, err_budget) || err_was_cut;
        if (encoded_size(r) <= max_bytes) return true;
        avail /= 2;  // the estimate missed: try again with less
    }

    // 4. The fields that are usually small.
    if (r.error.message.size() > 512) {
        r.error.message.resize(prefix_within(r.error.message, 512));
        r.error.message += " [cut]";
    }
    if (encoded_size(r) > max_bytes) r.outputs.clear();
    if (encoded_size(r) > max_bytes) {
        r.stdout_text = "[faasd: cut to fit the result size limit]";
        r.stderr_text.clear();
        r.output = nullptr;
    }
    return true;
}

}  // namespace faasd::worker
