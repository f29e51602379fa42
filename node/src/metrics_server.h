// Prometheus metrics over plain HTTP on 127.0.0.1:<metrics_port>, on the
// daemon's io_context. Each connection gets one request and one response.
// Hostile clients cost little: the request head is bounded
// (kMaxHttpRequestHead), each connection has one deadline for the whole
// exchange (slow senders are cut off), and only a few connections are served
// at once (more are closed at accept).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <asio/io_context.hpp>

#include "keyhole/result.h"

namespace keyhole::node {

struct MetricsServerLimits {
    std::size_t max_connections = 8;
    std::chrono::milliseconds deadline{5000};  // accept to last byte written
};

class MetricsServer {
public:
    // `render` returns the exposition text; it runs on the io_context thread.
    MetricsServer(asio::io_context& io, std::function<std::string()> render, MetricsServerLimits limits = {});
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // Listens on 127.0.0.1:port (port 0: any free port, see port()).
    Status start(std::uint16_t port);
    // Closes the listener and every connection.
    void stop();
    bool running() const;
    std::uint16_t port() const;
    std::size_t connection_count() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace keyhole::node
