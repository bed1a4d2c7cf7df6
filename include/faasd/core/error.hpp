#pragma once
// Error codes for expected outcomes (STYLE.md section 5): functions that can
// fail in an expected way return boost::system::result<T> or an error_code of
// faasd::errc. Infrastructure failures throw.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <type_traits>

namespace faasd {

/// Expected failure conditions shared by every module.
enum class errc {
    ok = 0,
    invalid_argument = 1,  ///< input does not satisfy a schema or a limit
    not_found,             ///< no such object (or not visible to the caller)
    conflict,              ///< the object is in a state that forbids the operation
    unauthorized,          ///< missing or invalid credentials
    forbidden,             ///< authenticated, but not allowed
    too_large,             ///< a size limit was exceeded
    rate_limited,          ///< a rate or quota limit was exceeded
    timeout,               ///< a deadline passed
    cancelled,             ///< the operation was cancelled
    unavailable,           ///< a dependency is unreachable; retrying may help
    illegal_transition,    ///< a state machine rejected an input
    bad_message,           ///< a message could not be decoded
    unsupported_version,   ///< a message carries an unknown schema version
    internal,              ///< a bug or an unexpected condition
};

const boost::system::error_category& faasd_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), faasd_category()};
}

/// A short stable name for an errc ("invalid_argument"), for logs and problem types.
const char* to_string(errc e) noexcept;

template <class T>
using result = boost::system::result<T>;

}  // namespace faasd

template <>
struct boost::system::is_error_code_enum<faasd::errc> : std::true_type {};
