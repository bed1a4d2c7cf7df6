#include <faasd/jobs/model.hpp>

namespace faasd::jobs {

const char* to_string(job_state s) noexcept {
    switch (s) {
        case job_state::queued: return "queued";
        case job_state::running: return "running";
        case job_state::succeeded: return "succeeded";
        case job_state::failed: return "failed";
        case job_state::timed_out: return "timed_out";
        case job_state::cancelled: return "cancelled";
    }
    return "?";
}

const char* to_string(delivery_mode d) noexcept {
    switch (d) {
        case delivery_mode::at_most_once: return "at-most-once";
        case delivery_mode::at_least_once: return "at-least-once";
        case delivery_mode::exactly_once: return "exactly-once";
    }
    return "?";
}

std::optional<job_state> parse_job_state(std::string_view s) noexcept {
    for (auto st : {job_state::queued, job_state::running, job_state::succeeded, job_state::failed,
                    job_state::timed_out, job_state::cancelled})
        if (s == to_string(st)) return st;
    return std::nullopt;
}

std::optional<delivery_mode> parse_delivery_mode(std::string_view s) noexcept {
    for (auto d : {delivery_mode::at_most_once, delivery_mode::at_least_once, delivery_mode::exactly_once})
        if (s == to_string(d)) return d;
    return std::nullopt;
}

bool is_terminal(job_state s) noexcept {
    return s == job_state::succeeded || s == job_state::failed || s == job_state::timed_out ||
           s == job_state::cancelled;
}

}  // namespace faasd::jobs
