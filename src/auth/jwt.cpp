#include <faasd/auth/base64.hpp>
#include <faasd/auth/jwt.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace faasd::auth {

namespace json = boost::json;

// ---- reject_reason -------------------------------------------------------

const char* to_string(reject_reason r) noexcept {
    switch (r) {
        case reject_reason::ok: return "ok";
        case reject_reason::malformed: return "malformed";
        case reject_reason::too_large: return "too_large";
        case reject_reason::alg_not_allowed: return "alg_not_allowed";
        case reject_reason::forbidden_header: return "forbidden_header";
        case reject_reason::missing_kid: return "missing_kid";
        case reject_reason::unknown_kid: return "unknown_kid";
        case reject_reason::key_mismatch: return "key_mismatch";
        case reject_reason::bad_signature: return "bad_signature";
        case reject_reason::missing_claim: return "missing_claim";
        case reject_reason::expired: return "expired";
        case reject_reason::not_yet_valid: return "not_yet_valid";
        case reject_reason::issued_in_future: return "issued_in_future";
        case reject_reason::wrong_issuer: return "wrong_issuer";
        case reject_reason::wrong_audience: return "wrong_audience";
        case reject_reason::wrong_type: return "wrong_type";
    }
    return "unknown";
}

namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "faasd.auth"; }
    std::string message(int ev) const override { return to_string(static_cast<reject_reason>(ev)); }
};

}  // namespace

const boost::system::error_category& auth_category() noexcept {
    static const category instance;
    return instance;
}

reject_reason reason_of(const boost::system::error_code& ec) noexcept {
    if (!ec) return reject_reason::ok;
    if (ec.category() != auth_category()) return reject_reason::malformed;
    return static_cast<reject_reason>(ec.value());
}

// ---- principal -----------------------------------------------------------

bool principal::has_role(std::string_view role) const noexcept {
    return std::find(roles.begin(), roles.end(), role) != roles.end();
}

bool is_user(const principal& p) noexcept { return p.has_role(role_user) || p.has_role(role_admin); }

bool is_admin(const principal& p) noexcept { return p.has_role(role_admin); }

jobs::identity to_identity(const principal& p) { return {p.subject, p.username, p.roles}; }

// ---- algorithms ----------------------------------------------------------

const char* to_string(jws_alg a) noexcept {
    switch (a) {
        case jws_alg::rs256: return "RS256";
        case jws_alg::ps256: return "PS256";
        case jws_alg::es256: return "ES256";
    }
    return "?";
}

std::optional<jws_alg> parse_jws_alg(std::string_view s) noexcept {
    if (s == "RS256") return jws_alg::rs256;
    if (s == "PS256") return jws_alg::ps256;
    if (s == "ES256") return jws_alg::es256;
    return std::nullopt;
}

// ---- parsing -------------------------------------------------------------

namespace {

result<json::object> decode_object(std::string_view part) {
    auto bytes = base64url_decode(part);
    if (!bytes) return reject_reason::malformed;
    boost::system::error_code ec;
    auto v = json::parse(*bytes, ec);
    if (ec || !v.is_object()) return reject_reason::malformed;
    return std::move(v.as_object());
}

}  // namespace

result<jwt> parse_jwt(std::string_view token, std::size_t max_bytes) {
    if (token.size() > max_bytes) return reject_reason::too_large;
    auto dot1 = token.find('.');
    if (dot1 == std::string_view::npos) return reject_reason::malformed;
    auto dot2 = token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos) return reject_reason::malformed;
    if (token.find('.', dot2 + 1) != std::string_view::npos) return reject_reason::malformed;  // e.g. a JWE
    auto h = token.substr(0, dot1);
    auto p = token.substr(dot1 + 1, dot2 - dot1 - 1);
    auto s = token.substr(dot2 + 1);
    if (h.empty() || p.empty() || s.empty()) return reject_reason::malformed;

    jwt out;
    auto header = decode_object(h);
    if (!header) return header.error();
    auto claims = decode_object(p);
    if (!claims) return claims.error();
    auto sig = base64url_decode(s);
    if (!sig) return reject_reason::malformed;
    out.signing_input.assign(token.substr(0, dot2));
    out.header = std::move(*header);
    out.claims = std::move(*claims);
    out.signature = std::move(*sig);
    return out;
}

// ---- header --------------------------------------------------------------

result<jose_header> check_header(const json::object& header, const token_policy& policy) {
    // The algorithm is chosen by our configuration: the token's alg must merely be one of ours.
    auto alg_v = header.if_contains("alg");
    if (alg_v == nullptr || !alg_v->is_string()) return reject_reason::alg_not_allowed;
    auto alg = parse_jws_alg(std::string_view(alg_v->get_string()));
    if (!alg || std::find(policy.algorithms.begin(), policy.algorithms.end(), *alg) == policy.algorithms.end())
        return reject_reason::alg_not_allowed;

    // Parameters that would make the token name its own key, or require processing we do not do.
    static constexpr std::array<std::string_view, 5> forbidden = {"jku", "x5u", "x5c", "jwk", "crit"};
    for (auto name : forbidden)
        if (header.contains(name)) return reject_reason::forbidden_header;

    auto kid_v = header.if_contains("kid");
    if (kid_v == nullptr || !kid_v->is_string() || kid_v->get_string().empty()) return reject_reason::missing_kid;
    return jose_header{*alg, std::string(kid_v->get_string())};
}

// ---- claims --------------------------------------------------------------

namespace {

using seconds_rep = std::int64_t;
constexpr seconds_rep rep_max = std::numeric_limits<seconds_rep>::max();
constexpr seconds_rep rep_min = std::numeric_limits<seconds_rep>::min();

// A NumericDate: an integer or fractional number of seconds (fractions dropped,
// out-of-range values saturated). nullopt when absent or not a number.
std::optional<seconds_rep> numeric_date(const json::object& claims, std::string_view name) {
    auto v = claims.if_contains(name);
    if (v == nullptr) return std::nullopt;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return v->get_uint64() > static_cast<std::uint64_t>(rep_max)
                                   ? rep_max
                                   : static_cast<seconds_rep>(v->get_uint64());
    if (v->is_double()) {
        double d = v->get_double();
        if (!std::isfinite(d)) return std::nullopt;
        if (d >= 9.2e18) return rep_max;
        if (d <= -9.2e18) return rep_min;
        return static_cast<seconds_rep>(std::floor(d));
    }
    return std::nullopt;
}

seconds_rep add_sat(seconds_rep a, seconds_rep b) {
    if (b > 0 && a > rep_max - b) return rep_max;
    if (b < 0 && a < rep_min - b) return rep_min;
    return a + b;
}

const json::string* string_claim(const json::object& claims, std::string_view name) {
    auto v = claims.if_contains(name);
    return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
}

bool audience_matches(const json::object& claims, const token_policy& policy) {
    if (auto aud = claims.if_contains("aud")) {
        if (aud->is_string() && aud->get_string() == policy.audience) return true;
        if (aud->is_array()) {
            for (const auto& a : aud->get_array())
                if (a.is_string() && a.get_string() == policy.audience) return true;
        }
    }
    if (policy.accept_azp) {
        auto azp = string_claim(claims, "azp");
        if (azp != nullptr && *azp == policy.audience) return true;
    }
    return false;
}

}  // namespace

result<principal> check_claims(const json::object& claims, const token_policy& policy, std::chrono::sys_seconds now) {
    const seconds_rep t = now.time_since_epoch().count();
    const seconds_rep leeway = std::max<seconds_rep>(0, policy.leeway.count());

    auto exp = numeric_date(claims, "exp");
    auto sub = string_claim(claims, "sub");
    auto iss = string_claim(claims, "iss");
    if (!exp || sub == nullptr || sub->empty() || iss == nullptr) return reject_reason::missing_claim;
    // A present but non-numeric nbf or iat is as bad as a missing exp.
    if (claims.contains("nbf") && !numeric_date(claims, "nbf")) return reject_reason::missing_claim;
    if (claims.contains("iat") && !numeric_date(claims, "iat")) return reject_reason::missing_claim;

    if (t >= add_sat(*exp, leeway)) return reject_reason::expired;
    if (auto nbf = numeric_date(claims, "nbf"); nbf && add_sat(t, leeway) < *nbf) return reject_reason::not_yet_valid;
    if (auto iat = numeric_date(claims, "iat"); iat && *iat > add_sat(t, leeway)) return reject_reason::issued_in_future;

    if (*iss != policy.issuer) return reject_reason::wrong_issuer;
    if (!audience_matches(claims, policy)) return reject_reason::wrong_audience;
    if (policy.token_type) {
        auto typ = string_claim(claims, "typ");
        if (typ == nullptr || *typ != *policy.token_type) return reject_reason::wrong_type;
    }

    principal p;
    p.subject.assign(*sub);
    if (auto name = string_claim(claims, "preferred_username"); name != nullptr && !name->empty())
        p.username.assign(*name);
    else
        p.username = p.subject;
    if (auto email = string_claim(claims, "email"); email != nullptr && !email->empty()) p.email.emplace(*email);
    p.expires_at = std::chrono::sys_seconds(std::chrono::seconds(*exp));
    if (auto ra = claims.if_contains("realm_access"); ra != nullptr && ra->is_object()) {
        if (auto roles = ra->get_object().if_contains("roles"); roles != nullptr && roles->is_array()) {
            for (const auto& r : roles->get_array())
                if (r.is_string()) p.roles.emplace_back(r.get_string());
        }
    }
    return p;
}

// ---- Authorization header ------------------------------------------------

std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept {
    auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    while (!authorization.empty() && is_space(authorization.front())) authorization.remove_prefix(1);
    while (!authorization.empty() && is_space(authorization.back())) authorization.remove_suffix(1);
    constexpr std::string_view scheme = "bearer";
    if (authorization.size() <= scheme.size() || !is_space(authorization[scheme.size()])) return std::nullopt;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        char c = authorization[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != scheme[i]) return std::nullopt;
    }
    auto token = authorization.substr(scheme.size());
    while (!token.empty() && is_space(token.front())) token.remove_prefix(1);
    if (token.empty()) return std::nullopt;
    // token68 (RFC 9110 section 11.2): base64url, '.', '~', '+', '/', then '=' padding only.
    std::size_t i = 0;
    auto token_char = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_' || c == '~' || c == '+' || c == '/';
    };
    while (i < token.size() && token_char(token[i])) ++i;
    if (i == 0) return std::nullopt;
    while (i < token.size() && token[i] == '=') ++i;
    if (i != token.size()) return std::nullopt;
    return token;
}

// ---- discovery -----------------------------------------------------------

result<oidc_discovery> parse_discovery(std::string_view text, std::string_view expected_issuer) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return errc::invalid_argument;
    const auto& o = v.get_object();
    auto iss = string_claim(o, "issuer");
    auto jwks = string_claim(o, "jwks_uri");
    if (iss == nullptr || *iss != expected_issuer || jwks == nullptr) return errc::invalid_argument;
    std::string_view uri(*jwks);
    if (!uri.starts_with("https://") && !uri.starts_with("http://")) return errc::invalid_argument;
    return oidc_discovery{std::string(*iss), std::string(uri)};
}

}  // namespace faasd::auth
