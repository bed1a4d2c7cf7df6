#include <faasd/auth/base64.hpp>
#include <faasd/crypto/primitives.hpp>
#include <faasd/crypto/signing.hpp>

#include "ossl.hpp"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace faasd::crypto {

namespace json = boost::json;
using auth::jws_alg;

namespace {

using bio_ptr = std::unique_ptr<BIO, detail::deleter<BIO, &BIO_free_all>>;

std::shared_ptr<evp_pkey_st> share(EVP_PKEY* pk) { return std::shared_ptr<evp_pkey_st>(pk, &EVP_PKEY_free); }

jws_alg default_alg_for(key_type t) { return t == key_type::rsa ? jws_alg::rs256 : jws_alg::es256; }

public_key make_public(const std::shared_ptr<evp_pkey_st>& pkey, key_type type) {
    public_key anonymous(pkey, type, {}, default_alg_for(type));
    return public_key(pkey, type, jwk_thumbprint(anonymous), default_alg_for(type));
}

// Refuses to prompt for a passphrase: encrypted PEM files simply fail to load.
int no_passphrase(char*, int, int, void*) { return 0; }

}  // namespace

signing_key::signing_key(std::shared_ptr<evp_pkey_st> pkey, key_type type)
    : pkey_(std::move(pkey)), type_(type), public_(make_public(pkey_, type)) {
    kid_ = public_.kid();
}

signing_key signing_key::generate(key_type type) {
    EVP_PKEY* pk = type == key_type::rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048})
                                         : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (pk == nullptr) detail::throw_openssl("EVP_PKEY_Q_keygen");
    return signing_key(share(pk), type);
}

result<signing_key> signing_key::from_pem(std::string_view pem) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) detail::throw_openssl("BIO_new_mem_buf");
    EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, &no_passphrase, nullptr);
    ERR_clear_error();
    if (raw == nullptr) return errc::invalid_argument;
    auto pk = share(raw);
    int id = EVP_PKEY_get_base_id(raw);
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(raw);
        if (bits < 2048 || bits > 8192) return errc::invalid_argument;
        return signing_key(std::move(pk), key_type::rsa);
    }
    if (id == EVP_PKEY_EC) {
        char group[64] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(raw, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1 ||
            std::string_view(group, len) != "prime256v1") {
            ERR_clear_error();
            return errc::invalid_argument;
        }
        return signing_key(std::move(pk), key_type::ec_p256);
    }
    return errc::invalid_argument;
}

std::string signing_key::to_pem() const {
    // A secure-memory BIO: its buffer is cleansed when freed.
    bio_ptr bio(BIO_new(BIO_s_secmem()));
    if (!bio) detail::throw_openssl("BIO_new");
    if (PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        detail::throw_openssl("PEM_write_bio_PrivateKey");
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

jws_alg signing_key::default_alg() const noexcept { return default_alg_for(type_); }

std::string signing_key::jwks_json() const {
    jwk_set set;
    set.add(public_);
    return set.to_json();
}

std::string signing_key::sign(std::string_view signing_input, jws_alg alg) const {
    if (!fits(type_, alg))
        throw std::invalid_argument(std::string("a ") + to_string(type_) + " key cannot sign " + auth::to_string(alg));
    detail::md_ctx_ptr ctx(EVP_MD_CTX_new());
    if (!ctx) detail::throw_openssl("EVP_MD_CTX_new");
    EVP_PKEY_CTX* pctx = nullptr;
    if (EVP_DigestSignInit_ex(ctx.get(), &pctx, "SHA256", nullptr, nullptr, pkey_.get(), nullptr) != 1)
        detail::throw_openssl("EVP_DigestSignInit_ex");
    detail::set_jws_padding(pctx, alg);
    std::size_t len = 0;
    auto in = detail::cuc(signing_input.data());
    if (EVP_DigestSign(ctx.get(), nullptr, &len, in, signing_input.size()) != 1) detail::throw_openssl("EVP_DigestSign");
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), detail::uc(sig.data()), &len, in, signing_input.size()) != 1)
        detail::throw_openssl("EVP_DigestSign");
    sig.resize(len);
    if (alg != jws_alg::es256) return sig;

    // DER ECDSA-Sig-Value -> JOSE r||s.
    auto p = detail::cuc(sig.data());
    detail::ecdsa_sig_ptr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
    if (!es) detail::throw_openssl("d2i_ECDSA_SIG");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(es.get(), &r, &s);
    return detail::bn_bytes_padded(r, 32) + detail::bn_bytes_padded(s, 32);
}

std::string sign_jwt(const signing_key& key, const json::object& claims, const json::object& extra_header,
                     std::optional<jws_alg> alg) {
    auto use = alg.value_or(key.default_alg());
    json::object header{{"alg", auth::to_string(use)}, {"typ", "JWT"}, {"kid", key.kid()}};
    for (const auto& [name, value] : extra_header) header[name] = value;
    auto input = auth::base64url_encode(json::serialize(header)) + "." + auth::base64url_encode(json::serialize(claims));
    auto sig = key.sign(input, use);
    return input + "." + auth::base64url_encode(sig);
}

// ---- access tokens -------------------------------------------------------

namespace {

// 16 bytes as a UUID string, with version and variant bits set.
std::string uuid_from(std::string bytes, unsigned version) {
    static constexpr char digits[] = "0123456789abcdef";
    bytes.resize(16);
    bytes[6] = static_cast<char>((static_cast<unsigned char>(bytes[6]) & 0x0F) | (version << 4));
    bytes[8] = static_cast<char>((static_cast<unsigned char>(bytes[8]) & 0x3F) | 0x80);
    std::string out;
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        auto c = static_cast<unsigned char>(bytes[i]);
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

}  // namespace

std::string mint_access_token(const signing_key& key, const access_token_request& req) {
    auto iat = req.issued_at.time_since_epoch().count();
    json::array roles;
    for (const auto& r : req.roles) roles.emplace_back(r);
    json::object claims{
        {"exp", iat + req.lifetime.count()},
        {"iat", iat},
        {"auth_time", iat},
        {"jti", uuid_from(random_bytes(16), 4)},
        {"iss", req.issuer},
        {"aud", req.audience},
        {"sub", req.subject},
        {"typ", "Bearer"},
        {"azp", req.client_id},
        {"scope", "openid profile email"},
        {"realm_access", json::object{{"roles", std::move(roles)}}},
        {"preferred_username", req.username},
    };
    if (!req.email.empty()) {
        claims["email"] = req.email;
        claims["email_verified"] = true;
    }
    return sign_jwt(key, claims);
}

access_token_request dev_user(std::string_view username, bool admin, std::string issuer,
                              std::chrono::sys_seconds now) {
    access_token_request r;
    r.issuer = std::move(issuer);
    r.subject = uuid_from(sha256("faasd-dev-user:" + std::string(username)), 5);
    r.username = username;
    r.email = std::string(username) + "@faasd.dev.invalid";
    r.roles = {std::string(auth::role_user)};
    if (admin) r.roles.emplace_back(auth::role_admin);
    r.issued_at = now;
    return r;
}

// ---- key file ------------------------------------------------------------

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

signing_key load_key_file(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw_errno("stat " + path.string());
    if ((st.st_mode & 077) != 0)
        throw std::runtime_error(path.string() + " is readable by group or others: chmod 600 it (it holds a private key)");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::ostringstream buf;
    buf << in.rdbuf();
    auto pem = std::move(buf).str();
    auto key = signing_key::from_pem(pem);
    wipe(pem);
    if (!key) throw std::runtime_error(path.string() + " does not hold an RSA (2048+ bits) or P-256 private key");
    return *std::move(key);
}

}  // namespace

signing_key load_or_create_signing_key(const std::filesystem::path& state_dir, key_type type) {
    namespace fs = std::filesystem;
    if (fs::create_directories(state_dir)) fs::permissions(state_dir, fs::perms::owner_all, fs::perm_options::replace);
    auto path = state_dir / "dev-idp-key.pem";
    if (fs::exists(path)) return load_key_file(path);

    auto key = signing_key::generate(type);
    auto pem = key.to_pem();
    auto tmp = state_dir / ("dev-idp-key.pem.tmp-" + sha256_hex(random_bytes(8)).substr(0, 16));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        wipe(pem);
        throw_errno("create " + tmp.string());
    }
    std::size_t off = 0;
    while (off < pem.size()) {
        auto n = ::write(fd, pem.data() + off, pem.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int saved = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            wipe(pem);
            errno = saved;
            throw_errno("write " + tmp.string());
        }
        off += static_cast<std::size_t>(n);
    }
    wipe(pem);
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw_errno("fsync " + tmp.string());
    }
    // link() never replaces: if another process won the race, use its key.
    int rc = ::link(tmp.c_str(), path.c_str());
    int saved = errno;
    ::unlink(tmp.c_str());
    if (rc == 0) return key;
    if (saved == EEXIST) return load_key_file(path);
    errno = saved;
    throw_errno("link " + path.string());
}

}  // namespace faasd::crypto
