#include "dev/dev.hpp"

#include <faasd/config/config.hpp>

#include <sstream>
#include <system_error>

#ifndef FAASD_SOURCE_DIR
#define FAASD_SOURCE_DIR ""
#endif

namespace faasd::roles {
namespace fs = std::filesystem;

void dev_config::validate() const {
    if (!config::parse_endpoint(listen)) throw config::config_error("--listen: '" + listen + "' is not host:port");
    if (state_dir.empty()) throw config::config_error("--state-dir: must not be empty");
    if (min_workers < 0 || min_workers > 64) throw config::config_error("--min-workers: from 0 to 64");
    if (max_workers < 1 || max_workers > 64) throw config::config_error("--max-workers: from 1 to 64");
    if (min_workers > max_workers) throw config::config_error("--min-workers: must not exceed --max-workers");
    if (slots < 1 || slots > 256) throw config::config_error("--slots: from 1 to 256");
    if (sandbox != "auto" && sandbox != "bwrap" && sandbox != "none")
        throw config::config_error("--sandbox: '" + sandbox + "' is not one of auto|bwrap|none");
    if (partitions < 1 || partitions > 64) throw config::config_error("--partitions: from 1 to 64");
    if (!examples_dir.empty() && !fs::is_directory(examples_dir))
        throw config::config_error("--examples-dir: '" + examples_dir + "' is not a directory");
}

std::string dev_banner(const std::string& api_url, const std::string& bootstrap, const std::string& state_dir,
                       const std::string& sandbox, const std::vector<std::string>& example_urls,
                       const std::string& exe) {
    std::ostringstream o;
    const char* rule = "==============================================================================\n";
    o << rule
      << "  faasd dev: DEVELOPMENT MODE - NOT FOR PRODUCTION\n"
      << "  * Kafka is librdkafka's in-memory mock cluster: every job is lost on exit.\n"
      << "  * The development identity provider mints a token for ANY user, admin included.\n"
      << "  * file:// repositories and private source/sink addresses are allowed.\n"
      << rule
      << "  API        " << api_url << "   (OpenAPI: " << api_url << "/openapi.json)\n"
      << "  Kafka      " << bootstrap << "   (other processes may connect: --kafka-brokers " << bootstrap << ")\n"
      << "  State      " << state_dir << "\n"
      << "  Sandbox    " << sandbox << (sandbox == "none" ? "   (NO ISOLATION: functions run as this user)" : "") << "\n"
      << "  Token      " << exe << " dev token --state-dir " << state_dir << " --user alice [--admin]\n";
    if (!example_urls.empty()) {
        o << "  Examples   ";
        for (std::size_t i = 0; i < example_urls.size(); ++i) o << (i ? "\n             " : "") << example_urls[i];
        o << "\n  Try        export FAASD_TOKEN=$(" << exe << " dev token --state-dir " << state_dir << " --user alice)\n"
          << "             " << exe << " submit --server " << api_url << " --repo " << example_urls.front()
          << " --data '{\"hello\":\"world\"}' --wait\n";
    }
    o << rule;
    return o.str();
}

fs::path find_examples(const std::string& configured) {
    if (!configured.empty()) return configured;
    std::error_code ec;
    for (const fs::path& p : {fs::path("/usr/share/faasd/examples/functions"),
                             fs::path(FAASD_SOURCE_DIR) / "examples" / "functions"})
        if (!p.empty() && p.is_absolute() && fs::is_directory(p, ec)) return p;
    return {};
}

}  // namespace faasd::roles
