#include <faasd/auth/base64.hpp>
#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/sealing.hpp>

#include <catch2/catch.hpp>

using namespace faasd;
using namespace faasd::crypto;

namespace {

const std::string job_a = "01ARYZ6S41TSV4RRFFQ69G5FAV";
const std::string job_b = "01ARYZ6S41TSV4RRFFQ69G5FAW";
const std::string secret_json = R"({"git-token":"ghp_s3cr3t","src-token":"abc"})";

std::string key_of(char fill) { return auth::base64_encode(std::string(32, fill)); }

key_ring ring(std::string_view spec) { return key_ring::parse(spec).value(); }

std::string tamper_b64url(const std::string& b64, std::size_t byte) {
    auto raw = auth::base64url_decode(b64).value();
    raw[byte] = static_cast<char>(raw[byte] ^ 0x01);
    return auth::base64url_encode(raw);
}

}  // namespace

TEST_CASE("sealing round-trips and hides the plaintext", "[crypto][unit]") {
    auto r = ring("k1:" + key_of('a'));
    auto sealed = seal(r, job_a, secret_json);
    CHECK(sealed.key_id == "k1");
    CHECK(auth::base64url_decode(sealed.nonce_b64)->size() == 12);
    CHECK(auth::base64url_decode(sealed.ciphertext_b64)->size() == secret_json.size() + 16);
    CHECK(sealed.ciphertext_b64.find("s3cr3t") == std::string::npos);
    CHECK(sealed.names.empty());
    auto opened = open(r, job_a, sealed);
    REQUIRE(opened.has_value());
    CHECK(*opened == secret_json);
    wipe(*opened);
    CHECK(opened->empty());
}

TEST_CASE("every seal uses a fresh nonce", "[crypto][unit]") {
    auto r = ring("k1:" + key_of('a'));
    auto a = seal(r, job_a, secret_json);
    auto b = seal(r, job_a, secret_json);
    CHECK(a.nonce_b64 != b.nonce_b64);
    CHECK(a.ciphertext_b64 != b.ciphertext_b64);
}

TEST_CASE("empty plaintext and empty sealed values", "[crypto][unit]") {
    auto r = ring("k1:" + key_of('a'));
    auto sealed = seal(r, job_a, "");
    CHECK_FALSE(sealed.empty());  // a tag is still there
    CHECK(open(r, job_a, sealed).value().empty());
    CHECK(open(r, job_a, jobs::sealed_credentials{}).value().empty());
}

TEST_CASE("a ciphertext moved to another job does not open", "[crypto][unit]") {
    auto r = ring("k1:" + key_of('a'));
    auto sealed = seal(r, job_a, secret_json);
    auto opened = open(r, job_b, sealed);
    REQUIRE_FALSE(opened.has_value());
    CHECK(opened.error() == errc::unauthorized);
    CHECK(open(r, "", sealed).error() == errc::unauthorized);
}

TEST_CASE("tampering with ciphertext, tag or nonce is detected", "[crypto][unit]") {
    auto r = ring("k1:" + key_of('a'));
    auto sealed = seal(r, job_a, secret_json);
    auto ct_len = auth::base64url_decode(sealed.ciphertext_b64)->size();

    SECTION("first ciphertext byte") {
        auto t = sealed;
        t.ciphertext_b64 = tamper_b64url(t.ciphertext_b64, 0);
        CHECK(open(r, job_a, t).error() == errc::unauthorized);
    }
    SECTION("last tag byte") {
        auto t = sealed;
        t.ciphertext_b64 = tamper_b64url(t.ciphertext_b64, ct_len - 1);
        CHECK(open(r, job_a, t).error() == errc::unauthorized);
    }
    SECTION("nonce") {
        auto t = sealed;
        t.nonce_b64 = tamper_b64url(t.nonce_b64, 5);
        CHECK(open(r, job_a, t).error() == errc::unauthorized);
    }
    SECTION("truncated: tag removed, ciphertext cut") {
        auto raw = auth::base64url_decode(sealed.ciphertext_b64).value();
        auto t = sealed;
        t.ciphertext_b64 = auth::base64url_encode(raw.substr(0, raw.size() - 16));
        CHECK(open(r, job_a, t).error() == errc::unauthorized);
        t.ciphertext_b64 = auth::base64url_encode(raw.substr(0, 15));
        CHECK(open(r, job_a, t).error() == errc::bad_message);
    }
    SECTION("malformed encodings") {
        auto t = sealed;
        t.nonce_b64 = auth::base64url_encode("short");
        CHECK(open(r, job_a, t).error() == errc::bad_message);
        t = sealed;
        t.ciphertext_b64 = "***";
        CHECK(open(r, job_a, t).error() == errc::bad_message);
    }
    SECTION("a different key under the same id") {
        auto other = ring("k1:" + key_of('b'));
        CHECK(open(other, job_a, sealed).error() == errc::unauthorized);
    }
}

TEST_CASE("an unknown key id fails with not_found", "[crypto][unit]") {
    auto sealed = seal(ring("k1:" + key_of('a')), job_a, secret_json);
    auto opened = open(ring("k2:" + key_of('a')), job_a, sealed);
    REQUIRE_FALSE(opened.has_value());
    CHECK(opened.error() == errc::not_found);
}

TEST_CASE("key rotation: new key first seals, old ciphertexts still open", "[crypto][unit]") {
    auto before = ring("kid1:" + key_of('1'));
    auto old_sealed = seal(before, job_a, secret_json);
    CHECK(old_sealed.key_id == "kid1");

    SECTION("through the environment variable") {
        auto after = ring("kid2:" + key_of('2') + ",kid1:" + key_of('1'));
        CHECK(after.active_id() == "kid2");
        CHECK(open(after, job_a, old_sealed).value() == secret_json);
        auto new_sealed = seal(after, job_b, secret_json);
        CHECK(new_sealed.key_id == "kid2");
        CHECK(open(after, job_b, new_sealed).value() == secret_json);
        // A worker that has not been given kid2 yet cannot open it, and says so.
        CHECK(open(before, job_b, new_sealed).error() == errc::not_found);
        // After retiring kid1, the old ciphertext no longer opens.
        auto retired = ring("kid2:" + key_of('2'));
        CHECK(open(retired, job_a, old_sealed).error() == errc::not_found);
    }
    SECTION("through add(make_active)") {
        auto r = before;
        REQUIRE(r.add("kid2", std::string(32, '2'), true).has_value());
        CHECK(r.ids() == std::vector<std::string>{"kid2", "kid1"});
        CHECK(open(r, job_a, old_sealed).value() == secret_json);
        CHECK(seal(r, job_b, "x").key_id == "kid2");
        CHECK(r.add("kid2", std::string(32, '3')).error() == errc::invalid_argument);
        CHECK(r.add("kid3", std::string(31, '3')).error() == errc::invalid_argument);
    }
}

TEST_CASE("key ring parsing: clear errors that never echo key material", "[crypto][unit]") {
    struct row {
        std::string spec, message;
    };
    auto r = GENERATE_COPY(values<row>({
        {"", "entry 1 is empty"},
        {"k1:" + key_of('a') + ",", "entry 2 is empty"},
        {"k1", "has no ':'"},
        {":" + key_of('a'), "key id must be"},
        {"k 1:" + key_of('a'), "key id must be"},
        {"k1:" + key_of('a') + ",k1:" + key_of('b'), "appears twice"},
        {"k1:not*base64", "not valid base64"},
        {"k1:" + auth::base64_encode(std::string(16, 'z')), "16 bytes, AES-256 needs 32"},
        {"k1:" + auth::base64_encode(std::string(33, 'z')), "33 bytes"},
    }));
    CAPTURE(r.spec);
    std::string why;
    auto parsed = key_ring::parse(r.spec, &why);
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error() == errc::invalid_argument);
    CHECK_THAT(why, Catch::Contains(r.message));
    CHECK(why.find(key_of('a')) == std::string::npos);
    CHECK(why.find("enp6") == std::string::npos);  // part of base64("zzz...")
}

TEST_CASE("key ring parsing accepts spaces, unpadded base64 and several keys", "[crypto][unit]") {
    auto unpadded = key_of('a');
    while (unpadded.back() == '=') unpadded.pop_back();
    auto r = key_ring::parse(" k2 : " + key_of('b') + " , k1:" + unpadded + " ");
    REQUIRE(r.has_value());
    CHECK(r->ids() == std::vector<std::string>{"k2", "k1"});
    CHECK(r->active_id() == "k2");
    CHECK(r->contains("k1"));
    CHECK_FALSE(r->contains("k3"));
}

TEST_CASE("generate_key gives a usable key ring entry", "[crypto][unit]") {
    auto entry = generate_key("dev");
    CHECK(entry.rfind("dev:", 0) == 0);
    auto r = key_ring::parse(entry);
    REQUIRE(r.has_value());
    CHECK(open(*r, job_a, seal(*r, job_a, "{}")).value() == "{}");
    CHECK(generate_key("dev") != entry);
}

TEST_CASE("seal refuses an empty key ring", "[crypto][unit]") {
    CHECK_THROWS_AS(seal(key_ring{}, job_a, "{}"), std::logic_error);
}
