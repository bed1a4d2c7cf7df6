#pragma once
// The authenticated caller, built from a verified access token, and the role
// predicates the frontend's handlers use.

#include <faasd/jobs/model.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faasd::auth {

/// Realm role that may submit jobs and read its own jobs.
inline constexpr std::string_view role_user = "faas-user";
/// Realm role that may read and cancel every job and change the observer's settings.
inline constexpr std::string_view role_admin = "faas-admin";

/// Who is calling, from the token's claims.
struct principal {
    std::string subject;                      ///< `sub`
    std::string username;                     ///< `preferred_username` (`sub` when absent)
    std::vector<std::string> roles;           ///< `realm_access.roles`
    std::chrono::sys_seconds expires_at{};    ///< `exp` (without leeway)
    std::optional<std::string> email;         ///< `email`, when present

    bool has_role(std::string_view role) const noexcept;
    friend bool operator==(const principal&, const principal&) = default;
};

/// May use the job API: holds faas-user, or faas-admin (an admin is also a user).
bool is_user(const principal& p) noexcept;
/// Holds faas-admin.
bool is_admin(const principal& p) noexcept;

/// The owner recorded on jobs (subject, username, roles).
jobs::identity to_identity(const principal& p);

}  // namespace faasd::auth
