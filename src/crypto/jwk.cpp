#include <faasd/auth/base64.hpp>
#include <faasd/crypto/jwk.hpp>
#include <faasd/crypto/primitives.hpp>

#include "ossl.hpp"

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <set>

namespace faasd::crypto {

namespace json = boost::json;
using auth::jws_alg;
using auth::reject_reason;

const char* to_string(key_type t) noexcept {
    switch (t) {
        case key_type::rsa: return "RSA";
        case key_type::ec_p256: return "EC P-256";
    }
    return "?";
}

bool fits(key_type t, jws_alg a) noexcept {
    switch (a) {
        case jws_alg::rs256:
        case jws_alg::ps256: return t == key_type::rsa;
        case jws_alg::es256: return t == key_type::ec_p256;
    }
    return false;
}

// ---- public_key ----------------------------------------------------------

public_key::public_key(std::shared_ptr<evp_pkey_st> pkey, key_type type, std::string kid,
                       std::optional<jws_alg> alg)
    : pkey_(std::move(pkey)), type_(type), kid_(std::move(kid)), alg_(alg), bits_(EVP_PKEY_get_bits(pkey_.get())) {}

namespace {

detail::bn_ptr get_bn(EVP_PKEY* pk, const char* name) {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1) detail::throw_openssl("EVP_PKEY_get_bn_param");
    return detail::bn_ptr(bn);
}

// The public parameters in JWK member order of RFC 7638 (lexicographic), base64url.
struct jwk_members {
    std::string e, n;     // RSA
    std::string x, y;     // EC
};

jwk_members members_of(const public_key& k) {
    jwk_members m;
    auto* pk = k.native_handle();
    if (k.type() == key_type::rsa) {
        m.n = auth::base64url_encode(detail::bn_bytes(get_bn(pk, OSSL_PKEY_PARAM_RSA_N).get()));
        m.e = auth::base64url_encode(detail::bn_bytes(get_bn(pk, OSSL_PKEY_PARAM_RSA_E).get()));
    } else {
        m.x = auth::base64url_encode(detail::bn_bytes_padded(get_bn(pk, OSSL_PKEY_PARAM_EC_PUB_X).get(), 32));
        m.y = auth::base64url_encode(detail::bn_bytes_padded(get_bn(pk, OSSL_PKEY_PARAM_EC_PUB_Y).get(), 32));
    }
    return m;
}

}  // namespace

json::object public_key::to_jwk() const {
    auto m = members_of(*this);
    json::object o;
    if (type_ == key_type::rsa) {
        o["kty"] = "RSA";
        o["n"] = m.n;
        o["e"] = m.e;
    } else {
        o["kty"] = "EC";
        o["crv"] = "P-256";
        o["x"] = m.x;
        o["y"] = m.y;
    }
    o["kid"] = kid_;
    o["use"] = "sig";
    if (alg_) o["alg"] = auth::to_string(*alg_);
    return o;
}

std::string jwk_thumbprint(const public_key& key) {
    auto m = members_of(key);
    std::string canonical = key.type() == key_type::rsa
                                ? R"({"e":")" + m.e + R"(","kty":"RSA","n":")" + m.n + R"("})"
                                : R"({"crv":"P-256","kty":"EC","x":")" + m.x + R"(","y":")" + m.y + R"("})";
    return auth::base64url_encode(sha256(canonical));
}

// ---- parse_jwk -----------------------------------------------------------

namespace {

result<public_key> refuse(std::string* why, std::string text) {
    if (why != nullptr) *why = std::move(text);
    return errc::invalid_argument;
}

const json::string* member(const json::object& o, std::string_view name) {
    auto v = o.if_contains(name);
    return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
}

std::shared_ptr<evp_pkey_st> from_params(const char* type, OSSL_PARAM* params) {
    detail::pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) detail::throw_openssl("EVP_PKEY_fromdata_init");
    EVP_PKEY* pk = nullptr;
    if (EVP_PKEY_fromdata(ctx.get(), &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        ERR_clear_error();
        return nullptr;
    }
    std::shared_ptr<evp_pkey_st> owned(pk, &EVP_PKEY_free);
    detail::pkey_ctx_ptr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pk, nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) {
        ERR_clear_error();
        return nullptr;
    }
    return owned;
}

// The BIGNUMs and the point buffer must outlive OSSL_PARAM_BLD_to_param: the builder keeps pointers.
std::shared_ptr<evp_pkey_st> rsa_from_jwk(const json::object& jwk, std::string& problem) {
    auto fail = [&](std::string p) {
        problem = std::move(p);
        return std::shared_ptr<evp_pkey_st>();
    };
    auto n64 = member(jwk, "n");
    auto e64 = member(jwk, "e");
    if (n64 == nullptr || e64 == nullptr) return fail("RSA key without n or e");
    auto n = auth::base64url_decode(*n64);
    auto e = auth::base64url_decode(*e64);
    if (!n || !e) return fail("n or e is not base64url");
    auto nb = detail::bn_from_bytes(*n);
    auto eb = detail::bn_from_bytes(*e);
    int bits = BN_num_bits(nb.get());
    if (bits < 2048 || bits > 8192) return fail("RSA modulus of " + std::to_string(bits) + " bits");
    if (!BN_is_odd(eb.get()) || BN_num_bits(eb.get()) < 2 || BN_num_bits(eb.get()) > 64)
        return fail("bad RSA exponent");
    detail::param_bld_ptr bld(OSSL_PARAM_BLD_new());
    if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, nb.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, eb.get()) != 1)
        detail::throw_openssl("OSSL_PARAM_BLD_push_BN");
    detail::params_ptr params(OSSL_PARAM_BLD_to_param(bld.get()));
    if (!params) detail::throw_openssl("OSSL_PARAM_BLD_to_param");
    auto pk = from_params("RSA", params.get());
    if (!pk) problem = "invalid RSA public key";
    return pk;
}

std::shared_ptr<evp_pkey_st> ec_from_jwk(const json::object& jwk, std::string& problem) {
    auto fail = [&](std::string p) {
        problem = std::move(p);
        return std::shared_ptr<evp_pkey_st>();
    };
    auto crv = member(jwk, "crv");
    if (crv == nullptr || *crv != "P-256") return fail("EC curve is not P-256");
    auto x64 = member(jwk, "x");
    auto y64 = member(jwk, "y");
    if (x64 == nullptr || y64 == nullptr) return fail("EC key without x or y");
    auto x = auth::base64url_decode(*x64);
    auto y = auth::base64url_decode(*y64);
    if (!x || !y || x->size() != 32 || y->size() != 32) return fail("EC coordinates are not 32-byte base64url");
    std::string point = "\x04" + *x + *y;  // uncompressed SEC1 point
    detail::param_bld_ptr bld(OSSL_PARAM_BLD_new());
    if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
        detail::throw_openssl("OSSL_PARAM_BLD_push");
    detail::params_ptr params(OSSL_PARAM_BLD_to_param(bld.get()));
    if (!params) detail::throw_openssl("OSSL_PARAM_BLD_to_param");
    auto pk = from_params("EC", params.get());
    if (!pk) problem = "EC point is not on P-256";
    return pk;
}

}  // namespace

result<public_key> parse_jwk(const json::object& jwk, std::string* why) {
    auto kid = member(jwk, "kid");
    auto kty = member(jwk, "kty");
    if (kid == nullptr || kid->empty()) return refuse(why, "no kid");
    std::string k(*kid);
    if (kty == nullptr) return refuse(why, "kid " + k + ": no kty");
    if (auto use = jwk.if_contains("use"); use != nullptr && !(use->is_string() && use->get_string() == "sig"))
        return refuse(why, "kid " + k + ": use is not sig");
    if (auto ops = jwk.if_contains("key_ops")) {
        bool verify = false;
        if (ops->is_array())
            for (const auto& op : ops->get_array()) verify = verify || (op.is_string() && op.get_string() == "verify");
        if (!verify) return refuse(why, "kid " + k + ": key_ops lacks verify");
    }
    std::optional<jws_alg> alg;
    if (auto a = jwk.if_contains("alg")) {
        if (!a->is_string()) return refuse(why, "kid " + k + ": alg is not a string");
        alg = auth::parse_jws_alg(std::string_view(a->get_string()));
        if (!alg) return refuse(why, "kid " + k + ": unsupported alg " + std::string(a->get_string()));
    }

    std::string problem;
    std::shared_ptr<evp_pkey_st> pk;
    key_type type;
    if (*kty == "RSA") {
        type = key_type::rsa;
        pk = rsa_from_jwk(jwk, problem);
    } else if (*kty == "EC") {
        type = key_type::ec_p256;
        pk = ec_from_jwk(jwk, problem);
    } else {
        return refuse(why, "kid " + k + ": unsupported kty " + std::string(*kty));
    }
    if (!pk) return refuse(why, "kid " + k + ": " + problem);
    if (alg && !fits(type, *alg))
        return refuse(why, "kid " + k + ": alg " + auth::to_string(*alg) + " does not fit a " + to_string(type) + " key");
    return public_key(std::move(pk), type, std::move(k), alg);
}

// ---- jwk_set -------------------------------------------------------------

result<jwk_set> jwk_set::parse(std::string_view text, std::vector<std::string>* skipped) {
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    if (ec || !doc.is_object()) return errc::invalid_argument;
    auto keys = doc.get_object().if_contains("keys");
    if (keys == nullptr || !keys->is_array()) return errc::invalid_argument;

    auto note = [&](std::string s) {
        if (skipped != nullptr) skipped->push_back(std::move(s));
    };
    std::vector<public_key> parsed;
    std::map<std::string, int, std::less<>> count;
    std::size_t index = 0;
    for (const auto& entry : keys->get_array()) {
        ++index;
        if (!entry.is_object()) {
            note("key " + std::to_string(index) + ": not an object");
            continue;
        }
        std::string why;
        auto k = parse_jwk(entry.get_object(), &why);
        if (!k) {
            note(why);
            continue;
        }
        ++count[k->kid()];
        parsed.push_back(std::move(*k));
    }
    jwk_set set;
    for (auto& k : parsed) {
        if (count[k.kid()] > 1) continue;
        set.add(std::move(k));
    }
    for (const auto& [kid, n] : count)
        if (n > 1) note("kid " + kid + ": " + std::to_string(n) + " keys share it; all skipped");
    return set;
}

void jwk_set::add(public_key k) {
    auto kid = k.kid();
    keys_.insert_or_assign(std::move(kid), std::move(k));
}

const public_key* jwk_set::find(std::string_view kid) const noexcept {
    auto it = keys_.find(kid);
    return it == keys_.end() ? nullptr : &it->second;
}

std::vector<std::string> jwk_set::kids() const {
    std::vector<std::string> out;
    for (const auto& [kid, k] : keys_) out.push_back(kid);
    return out;
}

std::string jwk_set::to_json() const {
    json::array arr;
    for (const auto& [kid, k] : keys_) arr.push_back(k.to_jwk());
    return json::serialize(json::object{{"keys", std::move(arr)}});
}

// ---- verification --------------------------------------------------------

namespace {

// JOSE ES256 signatures are r||s, 32 bytes each; OpenSSL wants DER.
std::string jose_to_der(std::string_view sig) {
    detail::ecdsa_sig_ptr es(ECDSA_SIG_new());
    if (!es) detail::throw_openssl("ECDSA_SIG_new");
    auto r = detail::bn_from_bytes(sig.substr(0, 32));
    auto s = detail::bn_from_bytes(sig.substr(32, 32));
    if (ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1) detail::throw_openssl("ECDSA_SIG_set0");
    r.release();
    s.release();
    int len = i2d_ECDSA_SIG(es.get(), nullptr);
    if (len <= 0) detail::throw_openssl("i2d_ECDSA_SIG");
    std::string der(static_cast<std::size_t>(len), '\0');
    auto* p = detail::uc(der.data());
    i2d_ECDSA_SIG(es.get(), &p);
    return der;
}

}  // namespace

result<void> verify_signature(const public_key& key, jws_alg alg, std::string_view signing_input,
                              std::string_view signature) {
    if (!fits(key.type(), alg)) return reject_reason::key_mismatch;
    if (key.declared_alg() && *key.declared_alg() != alg) return reject_reason::key_mismatch;

    std::string der;
    if (alg == jws_alg::es256) {
        if (signature.size() != 64) return reject_reason::bad_signature;
        der = jose_to_der(signature);
        signature = der;
    }
    detail::md_ctx_ptr ctx(EVP_MD_CTX_new());
    if (!ctx) detail::throw_openssl("EVP_MD_CTX_new");
    EVP_PKEY_CTX* pctx = nullptr;
    if (EVP_DigestVerifyInit_ex(ctx.get(), &pctx, "SHA256", nullptr, nullptr, key.native_handle(), nullptr) != 1)
        detail::throw_openssl("EVP_DigestVerifyInit_ex");
    detail::set_jws_padding(pctx, alg);
    int rc = EVP_DigestVerify(ctx.get(), detail::cuc(signature.data()), signature.size(),
                              detail::cuc(signing_input.data()), signing_input.size());
    ERR_clear_error();
    if (rc != 1) return reject_reason::bad_signature;
    return {};
}

}  // namespace faasd::crypto
