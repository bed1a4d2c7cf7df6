#include <faasd/worker/outcome.hpp>

namespace faasd::worker {

failure convention_failure(std::string code, std::string message) {
    failure f;
    f.kind = failure_kind::permanent;
    f.code = std::move(code);
    f.message = std::move(message);
    return f;
}

failure credentials_failure(errc e) {
    failure f;
    if (e == errc::not_found) {
        f.kind = failure_kind::infrastructure;
        f.code = "credentials_unavailable";
        f.message = "the credentials were sealed with a key this worker does not have";
    } else {
        f.kind = failure_kind::permanent;
        f.code = "credentials_invalid";
        f.message = "the credentials do not open for this job";
    }
    return f;
}

failure_kind transfer_failure_kind(std::string_view client_error, int http_status) noexcept {
    if (client_error == "bad_status") {
        if (http_status >= 500 || http_status == 408 || http_status == 429) return failure_kind::infrastructure;
        return failure_kind::permanent;
    }
    if (client_error == "timeout" || client_error == "connect_failed" || client_error == "resolve_failed" ||
        client_error == "protocol_error" || client_error == "file_error" || client_error == "unavailable")
        return failure_kind::infrastructure;
    return failure_kind::permanent;  // too_large, address_forbidden, tls_error, invalid_url, redirects, ...
}

failure worker_failure(std::string message) {
    failure f;
    f.kind = failure_kind::infrastructure;
    f.code = "worker_error";
    f.message = std::move(message);
    return f;
}

}  // namespace faasd::worker
