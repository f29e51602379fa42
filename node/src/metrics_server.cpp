#include "metrics_server.h"

#include <array>
#include <unordered_map>

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <spdlog/spdlog.h>

#include "metrics_http.h"

namespace keyhole::node {

namespace {

using asio::ip::tcp;

class Exchange;

// The acceptor and its connections. Shared, so completion handlers still
// queued after MetricsServer is gone find a valid object (or none).
struct Listener : std::enable_shared_from_this<Listener> {
    Listener(asio::io_context& io_context, std::function<std::string()> render_text, MetricsServerLimits server_limits)
        : io(io_context), render(std::move(render_text)), limits(server_limits), acceptor(io_context) {}

    void accept_next();
    void forget(Exchange* exchange) { exchanges.erase(exchange); }

    asio::io_context& io;
    std::function<std::string()> render;
    MetricsServerLimits limits;
    tcp::acceptor acceptor;
    bool running = false;
    std::uint64_t generation = 0;  // an accept from an earlier run is ignored
    std::unordered_map<Exchange*, std::shared_ptr<Exchange>> exchanges;
};

// One connection: read the request head, write the response, close.
class Exchange : public std::enable_shared_from_this<Exchange> {
public:
    Exchange(tcp::socket socket, std::weak_ptr<Listener> server)
        : socket_(std::move(socket)), deadline_(socket_.get_executor()), server_(std::move(server)) {}

    void start(std::chrono::milliseconds deadline) {
        deadline_.expires_after(deadline);
        deadline_.async_wait([weak = weak_from_this()](const asio::error_code& error) {
            if (error) return;
            if (auto self = weak.lock()) self->close();  // too slow: cut off
        });
        read_more();
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        deadline_.cancel();
        std::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        if (auto server = server_.lock()) server->forget(this);
    }

private:
    void read_more() {
        socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](const asio::error_code& error,
                                                                                  std::size_t count) {
            self->on_read(error, count);
        });
    }

    void on_read(const asio::error_code& error, std::size_t count) {
        if (closed_) return;
        if (error) {
            close();  // EOF before a whole head, or a reset: nothing to answer
            return;
        }
        received_.append(chunk_.data(), count);
        const auto head = parse_http_request_head(received_);
        if (head.state == HttpHeadState::incomplete) {
            read_more();
            return;
        }
        received_.clear();
        received_.shrink_to_fit();
        auto server = server_.lock();
        if (!server) {
            close();
            return;
        }
        response_ = http_response_for(head, server->render);
        asio::async_write(socket_, asio::buffer(response_),
                          [self = shared_from_this()](const asio::error_code&, std::size_t) { self->close(); });
    }

    tcp::socket socket_;
    asio::steady_timer deadline_;
    std::weak_ptr<Listener> server_;
    std::array<char, 2048> chunk_{};
    std::string received_;
    std::string response_;
    bool closed_ = false;
};


void Listener::accept_next() {
    acceptor.async_accept([weak = weak_from_this(), run = generation](const asio::error_code& error,
                                                                      tcp::socket socket) {
        auto self = weak.lock();
        if (!self || !self->running || run != self->generation) return;
        if (error) {
            if (error == asio::error::operation_aborted) return;
            // EMFILE and the like persist; retry after a pause instead of spinning.
            spdlog::warn("metrics: accept failed: {}", error.message());
            auto pause = std::make_shared<asio::steady_timer>(self->io, std::chrono::milliseconds(200));
            pause->async_wait([weak, run, pause](const asio::error_code& e) {
                auto again = weak.lock();
                if (!e && again && again->running && run == again->generation) again->accept_next();
            });
            return;
        }
        if (self->exchanges.size() >= self->limits.max_connections) {
            std::error_code ignored;
            socket.close(ignored);
        } else {
            auto exchange = std::make_shared<Exchange>(std::move(socket), weak);
            self->exchanges.emplace(exchange.get(), exchange);
            exchange->start(self->limits.deadline);
        }
        self->accept_next();
    });
}

}  // namespace

struct MetricsServer::Impl : Listener {
    using Listener::Listener;
};

MetricsServer::MetricsServer(asio::io_context& io, std::function<std::string()> render, MetricsServerLimits limits)
    : impl_(std::make_shared<Impl>(io, std::move(render), limits)) {}

MetricsServer::~MetricsServer() { stop(); }

Status MetricsServer::start(std::uint16_t port) {
    if (impl_->running) return fail("the metrics server is already running");
    // Loopback only: the numbers say who talks to whom and how often.
    const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), port);
    std::error_code error;
    auto failed = [&](const char* what) {
        std::error_code ignored;
        impl_->acceptor.close(ignored);
        return fail(std::string("metrics: cannot ") + what + " 127.0.0.1:" + std::to_string(port) + ": " +
                    error.message());
    };
    impl_->acceptor.open(endpoint.protocol(), error);
    if (error) return failed("open");
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), error);
    if (error) return failed("configure");
    impl_->acceptor.bind(endpoint, error);
    if (error) return failed("bind");
    impl_->acceptor.listen(16, error);
    if (error) return failed("listen on");
    impl_->running = true;
    spdlog::info("metrics on http://127.0.0.1:{}/metrics", this->port());
    impl_->accept_next();
    return success();
}

void MetricsServer::stop() {
    if (!impl_->running) return;
    impl_->running = false;
    ++impl_->generation;
    std::error_code ignored;
    impl_->acceptor.close(ignored);
    auto open = std::move(impl_->exchanges);
    impl_->exchanges.clear();
    for (auto& [raw, exchange] : open) exchange->close();
}

bool MetricsServer::running() const { return impl_->running; }

std::uint16_t MetricsServer::port() const {
    std::error_code error;
    auto endpoint = impl_->acceptor.local_endpoint(error);
    return error ? 0 : endpoint.port();
}

std::size_t MetricsServer::connection_count() const { return impl_->exchanges.size(); }

}  // namespace keyhole::node
