#include "common/command.hpp"

namespace faasd::roles {
// Filled in by the observer issue.
void add_observer_commands(CLI::App&, command_list&) {}
}  // namespace faasd::roles
