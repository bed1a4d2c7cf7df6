#include "common/command.hpp"

namespace faasd::roles {
// Filled in by the client issue.
void add_client_commands(CLI::App&, command_list&) {}
}  // namespace faasd::roles
