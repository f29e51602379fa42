// The daemon's one UDP port, shared by OpenDHT and keyhole's own packets, so
// that the NAT mapping peers must punch to is the one the DHT keeps alive.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include "keyhole/identity/endpoint.h"
#include "keyhole/result.h"

namespace keyhole::transport {

using identity::Endpoint;

class UdpPort {
public:
    // Called on the io_context thread for every datagram received.
    using Receiver = std::function<void(std::span<const std::uint8_t> datagram, const Endpoint& from)>;

    explicit UdpPort(asio::io_context& io);
    UdpPort(const UdpPort&) = delete;
    UdpPort& operator=(const UdpPort&) = delete;

    Status open(const Endpoint& bind_to);
    void start_receiving(Receiver receiver);
    void close();

    Endpoint local_endpoint() const { return local_; }

    // Safe from any thread (OpenDHT sends from its own): a plain sendto(2) on
    // the socket, which the kernel serialises. Returns 0 or an errno value.
    int send_to(const Endpoint& to, std::span<const std::uint8_t> datagram);

private:
    void receive_next();

    asio::ip::udp::socket socket_;
    asio::ip::udp::endpoint sender_;
    std::array<std::uint8_t, 65536> buffer_{};
    Receiver receiver_;
    Endpoint local_;
};

}  // namespace keyhole::transport
