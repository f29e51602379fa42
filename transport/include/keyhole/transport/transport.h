// The keyhole packet layer. Until sessions exist it only counts what arrives
// and drops it, with a rate-limited log line, so the demultiplexing is proven.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>

#include "keyhole/identity/endpoint.h"

namespace keyhole::transport {

struct TransportStats {
    std::uint64_t packets_received = 0;
    std::uint64_t packets_dropped = 0;
};

class Transport {
public:
    // Called on the io_context thread with a datagram that carries the magic prefix.
    void on_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from);
    const TransportStats& stats() const { return stats_; }

private:
    TransportStats stats_;
    std::chrono::steady_clock::time_point last_drop_log_{};
    std::uint64_t drops_since_log_ = 0;
};

}  // namespace keyhole::transport
