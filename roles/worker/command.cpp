#include "common/command.hpp"

namespace faasd::roles {
// Filled in by the worker issue.
void add_worker_commands(CLI::App&, command_list&) {}
}  // namespace faasd::roles
