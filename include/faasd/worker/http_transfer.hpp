#pragma once
// The real transfer_port (service.hpp): sources and sinks over faasd::http's
// client, with its address policy (no loopback, private or link-local
// addresses unless allowed), its deadlines and the size cap of a source.

#include <faasd/core/log.hpp>
#include <faasd/worker/service.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <memory>

namespace faasd::http {
class client;
}

namespace faasd::worker {

struct http_transfer_config {
    bool allow_private = false;                  ///< loopback, private and link-local addresses (tests, dev)
    std::chrono::milliseconds timeout{300'000};  ///< one download or upload, redirects included
};

class http_transfer final : public transfer_port {
public:
    http_transfer(boost::asio::any_io_executor ex, http_transfer_config cfg, faasd::logger log);
    ~http_transfer() override;

    boost::asio::awaitable<transfer_outcome> download(jobs::source_spec source, std::string bearer,
                                                      std::filesystem::path to, std::uint64_t max_bytes) override;
    boost::asio::awaitable<transfer_outcome> upload(jobs::sink_spec sink, std::string bearer, std::filesystem::path file,
                                                    std::vector<std::pair<std::string, std::string>> extra_headers) override;

private:
    std::unique_ptr<http::client> client_;
};

}  // namespace faasd::worker
