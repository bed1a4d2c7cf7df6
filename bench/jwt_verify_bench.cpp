// Token verification throughput on this machine, one thread:
//   full RS256 / PS256 / ES256 verification (parse, header, signature, claims),
//   verified-token cache hits (SHA-256 of the token + LRU lookup),
//   and, for scale, the pure checks alone, dev IdP signing and credential sealing.
//
// Usage: faasd_bench_jwt_verify_bench [seconds per measurement, default 1]
// Results go into docs/security.md.

#include <faasd/auth/jwt.hpp>
#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/sealing.hpp>
#include <faasd/crypto/signing.hpp>
#include <faasd/crypto/verifier.hpp>

#include <boost/json/object.hpp>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

using namespace faasd;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace {

double g_seconds = 1.0;
volatile std::size_t g_sink = 0;  // keeps results alive

// CPU time of this thread: on a shared machine wall time also counts waiting for a core.
double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs op in batches until g_seconds (wall) have passed; prints wall-clock ops/s
// and CPU microseconds per op, and returns CPU-based ops/s.
double measure(const char* name, const std::function<std::size_t()>& op) {
    for (int i = 0; i < 3; ++i) g_sink = g_sink + op();  // warm-up
    std::size_t n = 0;
    auto cpu_start = thread_cpu_seconds();
    auto start = clock_type::now();
    auto deadline = start + std::chrono::duration<double>(g_seconds);
    auto now = start;
    while (now < deadline) {
        for (int i = 0; i < 16; ++i) g_sink = g_sink + op();
        n += 16;
        now = clock_type::now();
    }
    double secs = std::chrono::duration<double>(now - start).count();
    double cpu = thread_cpu_seconds() - cpu_start;
    double rate = static_cast<double>(n) / secs;
    double cpu_rate = static_cast<double>(n) / cpu;
    std::printf("%-44s %10.0f ops/s wall %10.0f ops/s CPU %10.2f us/op CPU\n", name, rate, cpu_rate, 1e6 / cpu_rate);
    return cpu_rate;
}

json::object claims(std::int64_t now_s, int i) {
    return json::object{
        {"exp", now_s + 300},
        {"iat", now_s},
        {"jti", "bench-" + std::to_string(i)},
        {"iss", "http://127.0.0.1:8080/realms/faas"},
        {"aud", json::array{"faas-frontend", "account"}},
        {"sub", "6b0d2c2e-1f0a-4d1b-9a53-7d1e2c3b4a5f"},
        {"typ", "Bearer"},
        {"azp", "faas-cli"},
        {"scope", "openid profile email"},
        {"realm_access", json::object{{"roles", json::array{"default-roles-faas", "faas-user", "offline_access"}}}},
        {"preferred_username", "alice"},
        {"email", "alice@example.test"},
        {"email_verified", true},
    };
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1) g_seconds = std::atof(argv[1]);
    if (g_seconds <= 0) g_seconds = 1.0;

    auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    auto now_s = now.time_since_epoch().count();
    auto rsa = crypto::signing_key::generate(crypto::key_type::rsa);
    auto ec = crypto::signing_key::generate(crypto::key_type::ec_p256);

    crypto::jwk_set keys;
    keys.add(rsa.verification_key());
    keys.add(ec.verification_key());
    crypto::jwk_set keys_no_alg;
    {
        auto jwk = rsa.verification_key().to_jwk();
        jwk.erase("alg");
        keys_no_alg.add(crypto::parse_jwk(jwk).value());
    }

    auth::token_policy rs_policy;
    rs_policy.issuer = "http://127.0.0.1:8080/realms/faas";
    auto ps_policy = rs_policy;
    ps_policy.algorithms = {auth::jws_alg::ps256};
    auto es_policy = rs_policy;
    es_policy.algorithms = {auth::jws_alg::es256};

    auto rs_token = crypto::sign_jwt(rsa, claims(now_s, 0));
    auto ps_token = crypto::sign_jwt(rsa, claims(now_s, 0), {}, auth::jws_alg::ps256);
    auto es_token = crypto::sign_jwt(ec, claims(now_s, 0));
    std::printf("token size: %zu bytes (RS256), %zu bytes (ES256); %.1f s per measurement; 1 thread\n\n",
                rs_token.size(), es_token.size(), g_seconds);

    auto check = [&](const std::string& t, const crypto::jwk_set& k, const auth::token_policy& p) -> std::size_t {
        auto r = crypto::verify_token(t, k, p, now);
        if (!r) {
            std::fprintf(stderr, "bench token refused\n");
            std::exit(1);
        }
        return r->roles.size();
    };

    double rs = measure("RS256 verify_token (no cache)", [&] { return check(rs_token, keys, rs_policy); });
    measure("PS256 verify_token (no cache)", [&] { return check(ps_token, keys_no_alg, ps_policy); });
    measure("ES256 verify_token (no cache)", [&] { return check(es_token, keys, es_policy); });

    crypto::verifier v(rs_policy);
    v.set_keys(keys);
    (void)v.verify(rs_token, now);
    double hit = measure("verifier cache hit (RS256 token)", [&] { return v.verify(rs_token, now)->roles.size(); });
    auto s = v.cache_stats();
    std::printf("  cache: hits=%llu misses=%llu size=%zu; a hit is %.0fx cheaper than a verification\n",
                static_cast<unsigned long long>(s.hits), static_cast<unsigned long long>(s.misses), s.size, hit / rs);

    measure("  of which SHA-256 of the token", [&] { return crypto::sha256(rs_token).size(); });
    measure("pure part: parse_jwt + check_header + claims", [&] {
        auto t = auth::parse_jwt(rs_token).value();
        auto h = auth::check_header(t.header, rs_policy).value();
        return auth::check_claims(t.claims, rs_policy, now)->roles.size() + h.kid.size();
    });

    std::printf("\n");
    measure("dev IdP: mint RS256 access token", [&] {
        return crypto::mint_access_token(rsa, crypto::dev_user("alice", false, rs_policy.issuer, now)).size();
    });
    measure("dev IdP: mint ES256 access token", [&] {
        return crypto::mint_access_token(ec, crypto::dev_user("alice", false, rs_policy.issuer, now)).size();
    });

    auto ring = crypto::key_ring::parse(crypto::generate_key("k1")).value();
    std::string creds = R"({"git-token":"ghp_0123456789abcdef0123456789abcdef0123","src-token":"s3cr3t-value-12345",)"
                        R"("sink-token":"another-secret-value-67890"})";
    auto sealed = crypto::seal(ring, "01ARYZ6S41TSV4RRFFQ69G5FAV", creds);
    measure("seal credentials (AES-256-GCM, 130 B)",
            [&] { return crypto::seal(ring, "01ARYZ6S41TSV4RRFFQ69G5FAV", creds).ciphertext_b64.size(); });
    measure("open credentials", [&] {
        auto p = crypto::open(ring, "01ARYZ6S41TSV4RRFFQ69G5FAV", sealed).value();
        auto n = p.size();
        crypto::wipe(p);
        return n;
    });
    return static_cast<int>(g_sink & 0);
}
