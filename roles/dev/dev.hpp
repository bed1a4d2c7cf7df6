#pragma once
// `faasd dev`: every role in one process on librdkafka's mock cluster, with a
// development identity provider. Zero setup; for a laptop, never production.
//
// The pure parts (state-directory layout, sandbox choice, the banner) live
// here so that tests can check them without starting anything.

#include <filesystem>
#include <string>
#include <vector>

namespace faasd::roles {

/// Every option of `faasd dev`, with its default.
struct dev_config {
    std::string state_dir = ".faasd-dev";   ///< --state-dir: keys, repository cache, job workspaces, examples
    std::string listen = "127.0.0.1:8080";  ///< --listen: the frontend's address
    int min_workers = 1;                    ///< --min-workers: in-process workers the observer keeps at least
    int max_workers = 4;                    ///< --max-workers: and at most
    int slots = 2;                          ///< --slots: jobs at once per worker
    std::string sandbox = "auto";           ///< --sandbox auto|bwrap|none (auto: bwrap when it works here)
    std::string examples_dir;               ///< --examples-dir (default: the installed or source examples)
    std::string topic_prefix = "faasd.";    ///< --topic-prefix
    int partitions = 3;                     ///< --partitions: of each mock topic

    /// Throws config::config_error naming the bad option.
    void validate() const;
};

/// `faasd dev token` options.
struct dev_token_config {
    std::string state_dir = ".faasd-dev";
    std::string user = "alice";
    bool admin = false;
    std::string lifetime = "1h";
};

/// The issuer of the development identity provider (what `faasd dev token`
/// puts in `iss` and the dev frontend trusts). Not a URL: nothing can fetch it.
inline constexpr const char* dev_issuer = "urn:faasd:dev";

/// Files and directories under the state directory.
struct dev_layout {
    std::filesystem::path root;
    std::filesystem::path jwks() const { return root / "dev-idp-jwks.json"; }
    std::filesystem::path credentials_keys() const { return root / "credentials.keys"; }
    std::filesystem::path cache() const { return root / "repos"; }
    std::filesystem::path jobs() const { return root / "jobs"; }
    std::filesystem::path examples() const { return root / "examples"; }
    std::filesystem::path bootstrap() const { return root / "bootstrap"; }
};

/// The loud development-only banner, with the addresses a user needs.
/// `exe` is how to call faasd in the printed commands.
std::string dev_banner(const std::string& api_url, const std::string& bootstrap, const std::string& state_dir,
                       const std::string& sandbox, const std::vector<std::string>& example_urls,
                       const std::string& exe = "faasd");

/// Where the example functions are: `configured` if set, else the first of
/// /usr/share/faasd/examples/functions and <source>/examples/functions that
/// exists; empty when none does.
std::filesystem::path find_examples(const std::string& configured);

}  // namespace faasd::roles
