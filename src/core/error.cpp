#include <faasd/core/error.hpp>

namespace faasd {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "faasd"; }
    std::string message(int ev) const override { return to_string(static_cast<errc>(ev)); }
};

}  // namespace

const boost::system::error_category& faasd_category() noexcept {
    static const category instance;
    return instance;
}

const char* to_string(errc e) noexcept {
    switch (e) {
        case errc::ok: return "ok";
        case errc::invalid_argument: return "invalid_argument";
        case errc::not_found: return "not_found";
        case errc::conflict: return "conflict";
        case errc::unauthorized: return "unauthorized";
        case errc::forbidden: return "forbidden";
        case errc::too_large: return "too_large";
        case errc::rate_limited: return "rate_limited";
        case errc::timeout: return "timeout";
        case errc::cancelled: return "cancelled";
        case errc::unavailable: return "unavailable";
        case errc::illegal_transition: return "illegal_transition";
        case errc::bad_message: return "bad_message";
        case errc::unsupported_version: return "unsupported_version";
        case errc::internal: return "internal";
    }
    return "unknown";
}

}  // namespace faasd
