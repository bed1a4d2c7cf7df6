#include <faasd/frontend/oidc.hpp>

#include <faasd/auth/jwt.hpp>
#include <faasd/auth/principal.hpp>
#include <faasd/crypto/jwk.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fstream>
#include <sstream>

namespace faasd::frontend {
namespace asio = boost::asio;
using asio::awaitable;

oidc_keys::oidc_keys(asio::any_io_executor ex, options opts, fetch_fn fetch, crypto::verifier& verifier,
                     faasd::logger log)
    : ex_(ex), opts_(std::move(opts)), fetch_(std::move(fetch)), verifier_(verifier), log_(std::move(log)), done_(ex) {
    done_.expires_at(asio::steady_timer::time_point::max());
}

awaitable<bool> oidc_keys::fetch_and_install() {
    std::string jwks_text;
    if (!opts_.jwks_file.empty()) {
        std::ifstream f(opts_.jwks_file, std::ios::binary);
        if (!f) {
            log_.error("oidc.jwks_file_unreadable", {{"file", opts_.jwks_file}});
            co_return false;
        }
        std::stringstream ss;
        ss << f.rdbuf();
        jwks_text = ss.str();
    } else {
        auto plan = plan_oidc_fetch(opts_.issuer, opts_.discovery_url);
        auto doc = co_await fetch_(plan.discovery);
        if (!doc) {
            log_.warn("oidc.discovery_failed", {{"issuer", opts_.issuer}, {"url", plan.discovery}});
            co_return false;
        }
        auto disc = auth::parse_discovery(*doc, opts_.issuer);
        if (!disc) {
            log_.error("oidc.discovery_invalid", {{"issuer", opts_.issuer}, {"url", plan.discovery}});
            co_return false;
        }
        auto jwks_url = jwks_fetch_url(plan, opts_.issuer, disc->jwks_uri);
        auto keys = co_await fetch_(jwks_url);
        if (!keys) {
            log_.warn("oidc.jwks_fetch_failed", {{"jwks_uri", jwks_url}});
            co_return false;
        }
        jwks_text = std::move(*keys);
    }
    std::vector<std::string> skipped;
    auto set = crypto::jwk_set::parse(jwks_text, &skipped);
    if (!set || set->empty()) {
        log_.error("oidc.jwks_invalid", {{"usable_keys", 0}});
        co_return false;
    }
    for (const auto& why : skipped) log_.debug("oidc.jwk_skipped", {{"why", why}});
    stats_.keys = set->size();
    std::string kids;
    for (const auto& k : set->kids()) kids += (kids.empty() ? "" : ",") + k;
    verifier_.set_keys(std::move(*set));
    log_.info("oidc.keys_loaded", {{"keys", static_cast<std::int64_t>(stats_.keys)}, {"kids", kids}});
    co_return true;
}

awaitable<bool> oidc_keys::refresh() {
    if (in_flight_) {
        // Join the fetch under way.
        while (in_flight_) co_await done_.async_wait(asio::as_tuple(asio::use_awaitable));
        co_return loaded_;
    }
    in_flight_ = true;
    last_attempt_ = std::chrono::steady_clock::now();
    bool ok = false;
    try {
        ok = co_await fetch_and_install();
    } catch (...) {
        in_flight_ = false;
        done_.cancel();
        done_.expires_at(asio::steady_timer::time_point::max());
        throw;
    }
    if (ok) {
        loaded_ = true;
        ++stats_.refreshes_ok;
    } else {
        ++stats_.refreshes_failed;
    }
    in_flight_ = false;
    done_.cancel();
    done_.expires_at(asio::steady_timer::time_point::max());
    co_return ok;
}

awaitable<void> oidc_keys::refresh_for_unknown_kid(std::string kid) {
    if (!opts_.jwks_file.empty() && loaded_) co_return;  // static keys: nothing to learn
    auto now = std::chrono::steady_clock::now();
    if (auto it = unknown_kids_.find(kid); it != unknown_kids_.end()) {
        if (now - it->second < opts_.cooldown) {
            ++stats_.refreshes_skipped;
            co_return;
        }
        unknown_kids_.erase(it);
    }
    if (!in_flight_ && last_attempt_) {
        auto gap = std::min(opts_.min_interval, opts_.cooldown);
        auto since = now - *last_attempt_;
        if (since < gap) {
            // Too soon after the last fetch: wait for the next slot (callers
            // arriving meanwhile wait too, then share one fetch).
            asio::steady_timer t(ex_, gap - since);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
    if (auto keys = verifier_.keys(); keys && keys->find(kid)) co_return;  // someone else's fetch found it
    co_await refresh();
    if (auto keys = verifier_.keys(); !keys || !keys->find(kid)) {
        if (unknown_kids_.size() >= 1024) unknown_kids_.clear();
        unknown_kids_[kid] = std::chrono::steady_clock::now();
    }
}

awaitable<void> oidc_keys::run(std::function<void(bool)> on_change) {
    asio::steady_timer t(ex_);
    while (true) {
        bool ok = co_await refresh();
        if (on_change) on_change(loaded_);
        if (!opts_.jwks_file.empty() && ok) co_return;  // a file does not change under us
        t.expires_after(loaded_ && ok ? opts_.max_age : std::max<std::chrono::milliseconds>(opts_.cooldown / 10, std::chrono::milliseconds(500)));
        co_await t.async_wait(asio::use_awaitable);  // throws when cancelled: the role is stopping
    }
}

namespace {
constexpr std::string_view well_known = "/.well-known/openid-configuration";

std::string_view trim_slashes(std::string_view s) {
    while (!s.empty() && s.back() == '/') s.remove_suffix(1);
    return s;
}
}  // namespace

oidc_fetch_plan plan_oidc_fetch(std::string_view issuer, std::string_view discovery_url) {
    oidc_fetch_plan p;
    if (discovery_url.empty()) {
        p.discovery = std::string(trim_slashes(issuer)) + std::string(well_known);
        return p;
    }
    auto base = discovery_url;
    if (base.ends_with(well_known)) base.remove_suffix(well_known.size());
    base = trim_slashes(base);
    p.discovery = std::string(base) + std::string(well_known);
    if (base != trim_slashes(issuer)) p.rebase = std::string(base);
    return p;
}

std::string jwks_fetch_url(const oidc_fetch_plan& plan, std::string_view issuer, std::string_view jwks_uri) {
    auto iss = trim_slashes(issuer);
    if (plan.rebase.empty() || !jwks_uri.starts_with(iss) || jwks_uri.size() == iss.size() ||
        jwks_uri[iss.size()] != '/')
        return std::string(jwks_uri);
    return plan.rebase + std::string(jwks_uri.substr(iss.size()));
}

caller caller_from(const auth::principal& p) {
    caller c;
    c.identity = auth::to_identity(p);
    c.expires_at = p.expires_at.time_since_epoch().count();
    return c;
}

oidc_authenticator::oidc_authenticator(crypto::verifier& verifier, oidc_keys& keys, const clock& clk,
                                       std::function<void(std::string_view)> on_reject)
    : verifier_(verifier), keys_(keys), clk_(clk), on_reject_(std::move(on_reject)) {}

awaitable<result<caller>> oidc_authenticator::authenticate(std::string_view token) {
    if (!keys_.loaded()) co_return errc::unavailable;
    auto now = std::chrono::sys_seconds(std::chrono::seconds(clk_.now() / 1000));
    auth::reject_reason why = auth::reject_reason::ok;
    auto p = verifier_.verify(token, now, &why);
    if (!p && why == auth::reject_reason::unknown_kid) {
        // Maybe the issuer rotated its keys: look (single flight, rate-limited).
        std::string copy(token);  // the caller's buffer may not outlive the suspension
        std::string kid;
        if (auto jwt = auth::parse_jwt(copy))
            if (auto k = jwt->header.find("kid"); k != jwt->header.end() && k->value().is_string())
                kid = std::string(k->value().get_string());
        co_await keys_.refresh_for_unknown_kid(std::move(kid));
        p = verifier_.verify(copy, now, &why);
    }
    if (!p) {
        if (on_reject_) on_reject_(auth::to_string(why));
        co_return errc::unauthorized;
    }
    co_return caller_from(*p);
}

}  // namespace faasd::frontend
