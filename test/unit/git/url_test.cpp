#include <faasd/git/url.hpp>

#include <catch2/catch.hpp>

using namespace faasd::git;

TEST_CASE("repository URLs parse into scheme, host, port and path", "[git][unit]") {
    auto u = parse_repo_url("HTTPS://GitHub.com:443/Owner/Repo.git/");
    REQUIRE(u.has_value());
    CHECK(u->scheme == "https");
    CHECK(u->host == "github.com");
    CHECK(u->port == 0);  // the default port is dropped
    CHECK(u->path == "/Owner/Repo.git/");
    CHECK(u->normalized == "https://github.com/Owner/Repo");  // path case is kept
    CHECK(u->fetch_url == "HTTPS://GitHub.com:443/Owner/Repo.git/");

    auto g = parse_repo_url("git://127.0.0.1:9419/x/y.git");
    REQUIRE(g.has_value());
    CHECK(g->port == 9419);
    CHECK(g->normalized == "git://127.0.0.1:9419/x/y");

    auto s = parse_repo_url("ssh://git@example.org:2222//team//app.git");
    REQUIRE(s.has_value());
    CHECK(s->user == "git");
    CHECK(s->normalized == "ssh://example.org:2222/team/app");
}

TEST_CASE("scp-like and local paths are accepted", "[git][unit]") {
    auto scp = parse_repo_url("git@github.com:owner/repo.git");
    REQUIRE(scp.has_value());
    CHECK(scp->scheme == "ssh");
    CHECK(scp->user == "git");
    CHECK(scp->host == "github.com");
    CHECK(scp->normalized == "ssh://github.com/owner/repo");
    CHECK(scp->fetch_url == "git@github.com:owner/repo.git");

    auto local = parse_repo_url("/srv/git/fn.git");
    REQUIRE(local.has_value());
    CHECK(local->scheme == "file");
    CHECK(local->fetch_url == "file:///srv/git/fn.git");
    CHECK(local->normalized == "file:///srv/git/fn");

    auto file = parse_repo_url("file:///srv/git/fn");
    REQUIRE(file.has_value());
    CHECK(file->normalized == local->normalized);
}

TEST_CASE("malformed URLs and URLs carrying passwords are rejected", "[git][unit]") {
    for (const char* bad : {"", "relative/path", "ftp://host/x", "https://user:secret@host/x.git", "https:///x",
                            "https://host", "https://host/", "https://host/x?q=1", "https://host/x#frag",
                            "https://host:0/x", "https://host:70000/x", "https://host/a b", "file://otherhost/x",
                            "git://host/%2e%2e/x", "host:"}) {
        INFO(bad);
        CHECK_FALSE((parse_repo_url(bad)).has_value());
    }
    CHECK((parse_repo_url("https://user@host/x.git")).has_value());  // a user name alone is fine
}

TEST_CASE("equivalent URLs share a cache key, scopes and repositories do not", "[git][unit]") {
    auto a = *parse_repo_url("https://GitHub.com/owner/repo.git");
    auto b = *parse_repo_url("https://github.com:443/owner/repo/");
    auto c = *parse_repo_url("https://github.com/owner/other");
    auto d = *parse_repo_url("http://github.com/owner/repo");
    CHECK(cache_key(a) == cache_key(b));
    CHECK(cache_key(a) != cache_key(c));
    CHECK(cache_key(a) != cache_key(d));  // the scheme is part of the identity
    CHECK(cache_key(a) != cache_key(a, "cred:1234"));
    CHECK(cache_key(a, "cred:1234") == cache_key(b, "cred:1234"));

    auto key = cache_key(a);
    CHECK(key.rfind("github.com_owner_repo-", 0) == 0);
    CHECK(key.size() == std::string("github.com_owner_repo-").size() + 16);

    // Keys are safe file names whatever the URL.
    auto weird = *parse_repo_url("https://h.example/../../etc/passwd");
    auto long_url = *parse_repo_url("https://h.example/" + std::string(300, 'a'));
    for (const auto& k : {cache_key(weird), cache_key(long_url), cache_key(*parse_repo_url("/tmp/x"))}) {
        INFO(k);
        CHECK(k.size() <= 64 + 17);
        CHECK(k.find('/') == std::string::npos);
        CHECK(k.front() != '.');
        CHECK(k.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") == std::string::npos);
    }
}

TEST_CASE("scheme allow-list: production default, development, parsing", "[git][unit]") {
    scheme_policy def;
    CHECK(def.allows("https"));
    CHECK(def.allows("ssh"));
    CHECK(def.allows("git"));
    CHECK_FALSE(def.allows("file"));
    CHECK_FALSE(def.allows("http"));

    auto dev = scheme_policy::development();
    CHECK(dev.allows("file"));
    CHECK(dev.allows("http"));

    auto p = scheme_policy::parse(" HTTPS, file ,https");
    REQUIRE(p.has_value());
    CHECK(p->allowed() == std::vector<std::string>{"https", "file"});
    CHECK(p->to_string() == "https,file");
    CHECK_FALSE((scheme_policy::parse("")).has_value());
    CHECK_FALSE((scheme_policy::parse("https,ftp")).has_value());
    CHECK_FALSE((scheme_policy::parse(",")).has_value());
}
