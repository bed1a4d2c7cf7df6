#include "common/command.hpp"

namespace faasd::roles {
// Filled in by the frontend issue.
void add_frontend_commands(CLI::App&, command_list&) {}
}  // namespace faasd::roles
