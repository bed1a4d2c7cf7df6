// WebSocket sessions: a handler-driven reader and one writer coroutine fed by a
// bounded queue (cf. Beast's example/websocket/server/chat-multi websocket_session).

#include "server_detail.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>

namespace faasd::http {

namespace {
constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}
}  // namespace

bool is_safe_subprotocol(std::string_view s) noexcept {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), is_tchar);
}

std::vector<std::string_view> split_subprotocols(std::string_view header) {
    std::vector<std::string_view> out;
    while (!header.empty()) {
        auto comma = header.find(',');
        auto item = header.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (!item.empty()) out.push_back(item);
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return out;
}

namespace detail {

ws_session_impl::ws_session_impl(asio::any_io_executor ex, beast::tcp_stream& stream, const beast_request& upgrade,
                                 request req, route_params params, const ws_options& opts,
                                 const server_metrics& m, faasd::logger log, std::atomic<std::size_t>* open_count)
    : ex_(ex),
      pending_stream_(&stream),
      upgrade_(&upgrade),
      req_(std::move(req)),
      params_(std::move(params)),
      opts_(opts),
      metrics_(m),
      log_(std::move(log)),
      open_count_(open_count),
      wake_(ex),
      done_timer_(ex),
      watchdog_(ex) {}

ws_session_impl::~ws_session_impl() = default;

std::vector<std::string> ws_session_impl::offered_subprotocols() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : req_.headers.items())
        if (iequals(k, "Sec-WebSocket-Protocol"))
            for (auto item : split_subprotocols(v)) out.emplace_back(item);
    return out;
}

asio::awaitable<boost::system::error_code> ws_session_impl::accept(std::optional<std::string> subprotocol) {
    if (accepted_ || rejected_ || pending_stream_ == nullptr) co_return make_error_code(errc::conflict);
    if (subprotocol) {
        auto offered = offered_subprotocols();
        if (!is_safe_subprotocol(*subprotocol) ||
            std::find(offered.begin(), offered.end(), *subprotocol) == offered.end())
            co_return make_error_code(errc::invalid_argument);
    }
    pending_stream_->expires_never();
    ws_.emplace(std::move(*pending_stream_));
    pending_stream_ = nullptr;
    accepted_ = true;  // the stream belongs to the session from here on

    websocket::stream_base::timeout t{};
    t.handshake_timeout = opts_.handshake_timeout;
    t.idle_timeout = opts_.idle_timeout;
    t.keep_alive_pings = true;
    ws_->set_option(t);
    ws_->set_option(websocket::stream_base::decorator(
        [sp = subprotocol.value_or(std::string())](websocket::response_type& res) {
            if (!sp.empty()) res.set(bhttp::field::sec_websocket_protocol, sp);
        }));
    ws_->read_message_max(opts_.max_message);
    auto [ec] = co_await ws_->async_accept(*upgrade_, use_tuple);
    if (ec) {
        force_close();
        co_return ec;
    }
    handshake_ok_ = true;
    {
        std::lock_guard lock(mu_);
        open_ = true;
    }
    if (open_count_) ++*open_count_;
    if (metrics_.ws_open) metrics_.ws_open->inc();
    writer_done_ = false;
    asio::co_spawn(ex_, writer(shared_from_this()), [log = log_](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log.error("http.websocket_writer_failed", {{"error", ex.what()}});
        }
    });
    co_return boost::system::error_code{};
}

asio::awaitable<void> ws_session_impl::reject(response r) {
    if (!accepted_ && !rejected_) rejected_ = std::move(r);
    co_return;
}

asio::awaitable<std::optional<std::string>> ws_session_impl::read() {
    {
        std::lock_guard lock(mu_);
        if (!open_ || closed_) co_return std::nullopt;
    }
    auto [ec, n] = co_await ws_->async_read(rbuf_, use_tuple);
    (void)n;
    if (ec) {
        std::lock_guard lock(mu_);
        closed_ = true;
        wake_writer_locked();
        co_return std::nullopt;
    }
    std::string s = beast::buffers_to_string(rbuf_.data());
    rbuf_.consume(rbuf_.size());
    co_return s;
}

bool ws_session_impl::send(std::string text) {
    bool overflow = false;
    {
        std::lock_guard lock(mu_);
        if (!open_ || close_requested_ || closed_) return false;
        if (queue_.size() + 1 > opts_.send_queue_messages || queued_bytes_ + text.size() > opts_.send_queue_bytes) {
            overflow = overflowed_ = true;
            queue_.clear();
            queued_bytes_ = 0;
            close_requested_ = true;
            close_code_ = close_code::overloaded;
            close_reason_ = "send queue full";
        } else {
            queued_bytes_ += text.size();
            queue_.push_back(std::move(text));
        }
        wake_writer_locked();
    }
    if (overflow) {
        if (metrics_.ws_overflow) metrics_.ws_overflow->inc();
        log_.warn("http.websocket_overflow", {{"rid", req_.request_id}, {"remote", req_.remote}});
    }
    return !overflow;
}

void ws_session_impl::close(std::uint16_t code, std::string reason) {
    std::lock_guard lock(mu_);
    if (!open_ || close_requested_ || closed_) return;
    close_requested_ = true;
    close_code_ = code;
    if (reason.size() > 123) reason.resize(123);  // a close frame's payload is at most 125 bytes
    close_reason_ = std::move(reason);
    wake_writer_locked();
}

bool ws_session_impl::is_open() const noexcept {
    std::lock_guard lock(mu_);
    return open_ && !close_requested_ && !closed_;
}

ws_session::stats ws_session_impl::get_stats() const {
    std::lock_guard lock(mu_);
    return {queue_.size(), queued_bytes_, sent_, overflowed_};
}

std::uint16_t ws_session_impl::close_code_sent() const {
    std::lock_guard lock(mu_);
    return close_requested_ ? close_code_ : 0;
}

void ws_session_impl::wake_writer_locked() {
    if (!writer_waiting_) return;
    writer_waiting_ = false;
    asio::post(ex_, [self = shared_from_this()] { self->wake_.cancel(); });
}

void ws_session_impl::arm_watchdog(std::chrono::milliseconds d) {
    auto gen = ++watchdog_gen_;
    watchdog_.expires_after(d);
    watchdog_.async_wait([self = shared_from_this(), gen](boost::system::error_code ec) {
        if (ec || gen != self->watchdog_gen_) return;
        self->log_.info("http.websocket_write_timeout", {{"rid", self->req_.request_id}});
        self->force_close();
    });
}

void ws_session_impl::disarm_watchdog() {
    ++watchdog_gen_;
    watchdog_.cancel();
}

void ws_session_impl::force_close() {
    if (ws_) {
        boost::system::error_code ec;
        auto& sock = beast::get_lowest_layer(*ws_).socket();
        sock.shutdown(tcp::socket::shutdown_both, ec);
        sock.close(ec);
    }
    std::lock_guard lock(mu_);
    closed_ = true;
    wake_writer_locked();
}

asio::awaitable<void> ws_session_impl::wait_done() {
    while (!writer_done_) {
        done_timer_.expires_at(asio::steady_timer::time_point::max());
        co_await done_timer_.async_wait(use_tuple);
    }
}

asio::awaitable<void> ws_session_impl::writer(std::shared_ptr<ws_session_impl> self) {
    for (;;) {
        std::string msg;
        bool have_msg = false, do_close = false, wait = false;
        websocket::close_reason reason;
        {
            std::lock_guard lock(mu_);
            if (closed_) break;
            if (!queue_.empty()) {
                msg = std::move(queue_.front());
                queue_.pop_front();
                queued_bytes_ -= msg.size();
                have_msg = true;
            } else if (close_requested_) {
                do_close = true;
                reason.code = close_code_;
                reason.reason = close_reason_;
            } else {
                writer_waiting_ = wait = true;
            }
        }
        if (wait) {
            wake_.expires_at(asio::steady_timer::time_point::max());
            co_await wake_.async_wait(use_tuple);
            continue;
        }
        if (do_close) {
            arm_watchdog(opts_.handshake_timeout);
            co_await ws_->async_close(reason, use_tuple);
            disarm_watchdog();
            break;
        }
        if (have_msg) {
            arm_watchdog(opts_.write_timeout);
            ws_->text(true);
            auto [ec, n] = co_await ws_->async_write(asio::buffer(msg), use_tuple);
            (void)n;
            disarm_watchdog();
            if (ec) break;
            {
                std::lock_guard lock(mu_);
                ++sent_;
            }
            if (metrics_.ws_sent) metrics_.ws_sent->inc();
        }
    }
    force_close();
    if (open_count_) --*open_count_;
    if (metrics_.ws_open) metrics_.ws_open->dec();
    writer_done_ = true;
    done_timer_.cancel();
    (void)self;
}

}  // namespace detail
}  // namespace faasd::http
