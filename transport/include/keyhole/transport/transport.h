// The keyhole packet layer on the shared port. Every node answers address
// reflection requests itself (bootstrap-only nodes included: they are the
// reflectors clients ask first); everything else goes to the session layer,
// or is counted and dropped where there is none.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>

#include "keyhole/identity/endpoint.h"

namespace keyhole::transport {

struct TransportStats {
    std::uint64_t packets_received = 0;
    std::uint64_t packets_dropped = 0;  // malformed, or no session layer
    std::uint64_t reflections_answered = 0;
};

class Transport {
public:
    using Sender = std::function<void(const identity::Endpoint& to, std::span<const std::uint8_t> datagram)>;
    using Handler = std::function<void(std::span<const std::uint8_t> datagram, const identity::Endpoint& from)>;

    explicit Transport(Sender sender) : sender_(std::move(sender)) {}
    void set_session_handler(Handler handler) { session_handler_ = std::move(handler); }

    // Called on the io_context thread with a datagram that carries the magic prefix.
    void on_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from);
    const TransportStats& stats() const { return stats_; }

private:
    void drop(std::span<const std::uint8_t> datagram, const identity::Endpoint& from, const char* why);

    Sender sender_;
    Handler session_handler_;
    TransportStats stats_;
    std::chrono::steady_clock::time_point last_drop_log_{};
    std::uint64_t drops_since_log_ = 0;
};

}  // namespace keyhole::transport
