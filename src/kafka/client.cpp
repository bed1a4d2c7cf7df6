#include <faasd/kafka/client.hpp>
#include <faasd/kafka/error.hpp>

#include <algorithm>

namespace faasd::kafka {

std::chrono::milliseconds backoff_policy::delay(int failures) const noexcept {
    if (failures <= 1) return std::min(initial, max);
    auto d = initial;
    for (int i = 1; i < failures && d < max; ++i) d *= 2;
    return std::min(d, max);
}

std::map<std::string, std::string> parse_properties(const std::vector<std::string>& key_values) {
    std::map<std::string, std::string> out;
    for (const auto& kv : key_values) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            throw exception(make_error(errc::invalid_arg, "Kafka property '" + kv + "' is not key=value"));
        out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return out;
}

}  // namespace faasd::kafka
