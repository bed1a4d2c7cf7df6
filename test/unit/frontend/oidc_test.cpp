#include "support/support.hpp"

#include <faasd/crypto/signing.hpp>
#include <faasd/frontend/oidc.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <optional>

using namespace faasd;
namespace asio = boost::asio;
namespace fe = faasd::frontend;
using asio::awaitable;

namespace {

const std::string issuer = "http://kc.test/realms/faas";

struct fake_clock : fe::clock {
    jobs::unix_ms t = 1'800'000'000'000;
    jobs::unix_ms now() const override { return t; }
};

// A Keycloak stand-in: discovery and JWKS documents, a fetch counter, a switch to fail.
struct fake_idp {
    std::vector<crypto::signing_key> keys{crypto::signing_key::generate()};
    int discovery_fetches = 0;
    int jwks_fetches = 0;
    bool down = false;
    std::chrono::milliseconds delay{0};

    std::string jwks() const {
        boost::json::array a;
        for (const auto& k : keys) a.push_back(k.verification_key().to_jwk());
        return boost::json::serialize(boost::json::object{{"keys", a}});
    }
    fe::fetch_fn fetch() {
        return [this](std::string url) -> awaitable<result<std::string>> {
            if (delay.count() > 0) {
                asio::steady_timer t(co_await asio::this_coro::executor, delay);
                co_await t.async_wait(asio::use_awaitable);
            }
            if (down) co_return errc::unavailable;
            if (url == issuer + "/.well-known/openid-configuration") {
                ++discovery_fetches;
                co_return boost::json::serialize(
                    boost::json::object{{"issuer", issuer}, {"jwks_uri", issuer + "/protocol/openid-connect/certs"}});
            }
            if (url == issuer + "/protocol/openid-connect/certs") {
                ++jwks_fetches;
                co_return jwks();
            }
            co_return errc::not_found;
        };
    }
    // (No braced default arguments: they would be evaluated inside coroutine bodies.)
    std::string token(const fake_clock& c, std::size_t key = 0) const {
        crypto::access_token_request r;
        r.issuer = issuer;
        r.subject = "sub-alice";
        r.username = "alice";
        r.roles.push_back("faas-user");
        r.issued_at = std::chrono::sys_seconds(std::chrono::seconds(c.t / 1000));
        r.lifetime = std::chrono::minutes(5);
        return crypto::mint_access_token(keys.at(key), r);
    }
};

auth::token_policy policy() {
    auth::token_policy p;
    p.issuer = issuer;
    return p;
}

template <class F>
void run(asio::io_context& ioc, F f) {
    bool done = false;
    std::exception_ptr err;
    asio::co_spawn(ioc, f(), [&](std::exception_ptr e) {
        err = e;
        done = true;
    });
    ioc.restart();
    ioc.run_for(std::chrono::seconds(5));
    REQUIRE(done);
    if (err) std::rethrow_exception(err);
}

}  // namespace

TEST_CASE("oidc: discovery, verification and the caller", "[frontend][unit]") {
    asio::io_context ioc;
    fake_idp idp;
    fake_clock clk;
    crypto::verifier v(policy());
    fe::oidc_keys::options o;
    o.issuer = issuer;
    fe::oidc_keys keys(ioc.get_executor(), o, idp.fetch(), v, logger::null());
    std::vector<std::string> reasons;
    fe::oidc_authenticator authn(v, keys, clk, [&](std::string_view r) { reasons.emplace_back(r); });

    // (Catch assertions stay outside coroutine bodies: GCC 12 miscompiles them there.)
    std::optional<result<fe::caller>> early, who, bad;
    bool refreshed = false, loaded = false;
    run(ioc, [&]() -> awaitable<void> {
        early = co_await authn.authenticate(idp.token(clk));  // before any key is loaded
        refreshed = co_await keys.refresh();
        loaded = keys.loaded();
        who = co_await authn.authenticate(idp.token(clk));
        bad = co_await authn.authenticate(std::string_view("x.y.z"));
    });
    CHECK(early->error() == make_error_code(errc::unavailable));  // not unauthorized
    CHECK(refreshed);
    CHECK(loaded);
    REQUIRE(who->has_value());
    CHECK((*who)->identity.subject == "sub-alice");
    CHECK((*who)->identity.username == "alice");
    CHECK((*who)->is_user());
    CHECK_FALSE((*who)->is_admin());
    CHECK((*who)->expires_at == clk.t / 1000 + 300);
    CHECK(bad->error() == make_error_code(errc::unauthorized));
    CHECK(idp.discovery_fetches == 1);
    CHECK(idp.jwks_fetches == 1);
    CHECK(reasons.size() == 1);
}

TEST_CASE("oidc: key rotation costs one refresh for many requests", "[frontend][unit]") {
    asio::io_context ioc;
    fake_idp idp;
    fake_clock clk;
    crypto::verifier v(policy());
    fe::oidc_keys::options o;
    o.issuer = issuer;
    o.cooldown = std::chrono::seconds(30);
    o.min_interval = std::chrono::milliseconds(200);
    fe::oidc_keys keys(ioc.get_executor(), o, idp.fetch(), v, logger::null());
    fe::oidc_authenticator authn(v, keys, clk);
    bool first = false;
    run(ioc, [&]() -> awaitable<void> { first = co_await keys.refresh(); });
    REQUIRE(first);
    REQUIRE(idp.jwks_fetches == 1);

    // The issuer adds a key and signs with it; the fetch takes a while.
    idp.keys.push_back(crypto::signing_key::generate());
    idp.delay = std::chrono::milliseconds(50);
    auto fresh = idp.token(clk, 1);
    int ok = 0, refused = 0;
    for (int i = 0; i < 20; ++i)
        asio::co_spawn(ioc, authn.authenticate(fresh), [&](std::exception_ptr, result<fe::caller> r) { (r ? ok : refused)++; });
    ioc.restart();
    ioc.run_for(std::chrono::seconds(3));
    CHECK(ok == 20);
    CHECK(refused == 0);
    CHECK(idp.jwks_fetches == 2);  // single flight
    CHECK(keys.stats().refreshes_ok == 2);

    SECTION("a kid already looked up in vain is not looked up again within the cooldown") {
        crypto::signing_key stranger = crypto::signing_key::generate();
        crypto::access_token_request r;
        r.issuer = issuer;
        r.subject = "sub-mallory";
        r.roles = {"faas-user"};
        r.issued_at = std::chrono::sys_seconds(std::chrono::seconds(clk.t / 1000));
        auto forged = crypto::mint_access_token(stranger, r);
        int forged_refused = 0;
        for (int i = 0; i < 50; ++i)
            asio::co_spawn(ioc, authn.authenticate(forged), [&](std::exception_ptr, result<fe::caller> x) {
                if (!x) ++forged_refused;
            });
        ioc.restart();
        ioc.run_for(std::chrono::seconds(3));
        CHECK(forged_refused == 50);
        CHECK(idp.jwks_fetches == 3);  // one look for the stranger's kid, shared by all 50
        CHECK(keys.stats().refreshes_skipped == 0);
        for (int i = 0; i < 10; ++i)
            asio::co_spawn(ioc, authn.authenticate(forged), [&](std::exception_ptr, result<fe::caller> x) {
                if (!x) ++forged_refused;
            });
        ioc.restart();
        ioc.run_for(std::chrono::seconds(1));
        CHECK(forged_refused == 60);
        CHECK(idp.jwks_fetches == 3);
        CHECK(keys.stats().refreshes_skipped == 10);
    }
}

TEST_CASE("oidc: Keycloak down keeps the cached keys", "[frontend][unit]") {
    asio::io_context ioc;
    fake_idp idp;
    fake_clock clk;
    crypto::verifier v(policy());
    fe::oidc_keys::options o;
    o.issuer = issuer;
    o.cooldown = std::chrono::milliseconds(0);
    fe::oidc_keys keys(ioc.get_executor(), o, idp.fetch(), v, logger::null());
    fe::oidc_authenticator authn(v, keys, clk);
    bool up = false, down = true, still_loaded = false;
    std::optional<result<fe::caller>> who;
    run(ioc, [&]() -> awaitable<void> {
        up = co_await keys.refresh();
        idp.down = true;
        down = co_await keys.refresh();
        still_loaded = keys.loaded();
        who = co_await authn.authenticate(idp.token(clk));
    });
    CHECK(up);
    CHECK_FALSE(down);
    CHECK(still_loaded);
    CHECK(who->has_value());
    CHECK(keys.stats().refreshes_failed == 1);
}

TEST_CASE("oidc: a discovery document for another issuer is refused", "[frontend][unit]") {
    asio::io_context ioc;
    crypto::verifier v(policy());
    fe::oidc_keys::options o;
    o.issuer = issuer;
    auto fetch = [](std::string) -> awaitable<result<std::string>> {
        co_return std::string(R"({"issuer":"http://evil.test/realms/faas","jwks_uri":"http://evil.test/certs"})");
    };
    fe::oidc_keys keys(ioc.get_executor(), o, fetch, v, logger::null());
    bool ok = true;
    run(ioc, [&]() -> awaitable<void> { ok = co_await keys.refresh(); });
    CHECK_FALSE(ok);
    CHECK_FALSE(keys.loaded());
}

TEST_CASE("oidc: static JWKS file", "[frontend][unit]") {
    asio::io_context ioc;
    fake_idp idp;
    fake_clock clk;
    test::temp_dir dir;
    auto file = dir.path() / "jwks.json";
    std::ofstream(file) << idp.jwks();
    crypto::verifier v(policy());
    fe::oidc_keys::options o;
    o.issuer = issuer;
    o.jwks_file = file.string();
    fe::oidc_keys keys(ioc.get_executor(), o, idp.fetch(), v, logger::null());
    fe::oidc_authenticator authn(v, keys, clk);
    bool changed = false;
    std::optional<result<fe::caller>> who;
    run(ioc, [&]() -> awaitable<void> {
        co_await keys.run([&](bool loaded) { changed = loaded; });  // returns after loading a file
        who = co_await authn.authenticate(idp.token(clk));
    });
    CHECK(changed);
    CHECK(who->has_value());
    CHECK(idp.discovery_fetches == 0);
}

TEST_CASE("oidc: a discovery URL fetches through an internal address and still checks the public issuer",
          "[frontend][unit]") {
    // The public issuer is not reachable from here; the same IdP answers at an
    // internal address with documents that name the public issuer.
    const std::string internal = "http://keycloak.internal:8080/realms/faas";
    fake_idp idp;
    std::vector<std::string> fetched;
    std::string doc_issuer = issuer;
    fe::fetch_fn fetch = [&](std::string url) -> awaitable<result<std::string>> {
        fetched.push_back(url);
        if (url == internal + "/.well-known/openid-configuration")
            co_return boost::json::serialize(
                boost::json::object{{"issuer", doc_issuer}, {"jwks_uri", issuer + "/protocol/openid-connect/certs"}});
        if (url == internal + "/protocol/openid-connect/certs") co_return idp.jwks();
        co_return errc::unavailable;  // the public address, or anything else
    };
    for (const std::string& discovery_url :
         {internal, internal + "/", internal + "/.well-known/openid-configuration"}) {
        INFO(discovery_url);
        asio::io_context ioc;
        fake_clock clk;
        crypto::verifier v(policy());
        fe::oidc_keys::options o;
        o.issuer = issuer;
        o.discovery_url = discovery_url;
        fe::oidc_keys keys(ioc.get_executor(), o, fetch, v, logger::null());
        fe::oidc_authenticator authn(v, keys, clk);
        fetched.clear();
        bool refreshed = false;
        std::optional<result<fe::caller>> who;
        run(ioc, [&]() -> awaitable<void> {
            refreshed = co_await keys.refresh();
            who = co_await authn.authenticate(idp.token(clk));
        });
        CHECK(refreshed);
        REQUIRE(who->has_value());
        CHECK((*who)->identity.username == "alice");
        CHECK(fetched == std::vector<std::string>{internal + "/.well-known/openid-configuration",
                                                  internal + "/protocol/openid-connect/certs"});
    }
    SECTION("a document naming another issuer is refused, wherever it comes from") {
        doc_issuer = internal;
        asio::io_context ioc;
        crypto::verifier v(policy());
        fe::oidc_keys::options o;
        o.issuer = issuer;
        o.discovery_url = internal;
        fe::oidc_keys keys(ioc.get_executor(), o, fetch, v, logger::null());
        bool refreshed = true;
        run(ioc, [&]() -> awaitable<void> { refreshed = co_await keys.refresh(); });
        CHECK_FALSE(refreshed);
        CHECK_FALSE(keys.loaded());
    }
    SECTION("the fetch plan") {
        auto none = fe::plan_oidc_fetch(issuer + "/", "");
        CHECK(none.discovery == issuer + "/.well-known/openid-configuration");
        CHECK(none.rebase.empty());
        CHECK(fe::jwks_fetch_url(none, issuer, issuer + "/certs") == issuer + "/certs");
        auto p = fe::plan_oidc_fetch(issuer, internal);
        CHECK(p.rebase == internal);
        // Only a jwks_uri under the issuer is moved; another host is fetched as named.
        CHECK(fe::jwks_fetch_url(p, issuer, issuer + "/protocol/openid-connect/certs") ==
              internal + "/protocol/openid-connect/certs");
        CHECK(fe::jwks_fetch_url(p, issuer, "https://keys.example/jwks") == "https://keys.example/jwks");
        CHECK(fe::jwks_fetch_url(p, issuer, issuer + "x/certs") == issuer + "x/certs");
    }
}
