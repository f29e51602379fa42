// OpenDHT's view of keyhole's UDP port: sends go out through the daemon's
// socket; datagrams the daemon demultiplexed as DHT traffic come in through deliver().
#pragma once

#include <span>

#include <opendht/network_utils.h>

#include "keyhole/dht/dht_node.h"

namespace keyhole::dht {

class SharedPortSocket final : public ::dht::net::DatagramSocket {
public:
    SharedPortSocket(DatagramSender sender, const Endpoint& bound);

    int sendTo(const ::dht::SockAddr& dest, const std::uint8_t* data, std::size_t size, bool replied) override;
    bool hasIPv4() const override { return bound4_.getFamily() == AF_INET; }
    bool hasIPv6() const override { return bound6_.getFamily() == AF_INET6; }
    const ::dht::SockAddr& getBoundRef(sa_family_t family = AF_UNSPEC) const override;
    void stop() override {}

    // Called on the daemon's thread; OpenDHT queues the packet for its own thread.
    void deliver(std::span<const std::uint8_t> datagram, const Endpoint& from);

private:
    DatagramSender sender_;
    ::dht::SockAddr bound4_;
    ::dht::SockAddr bound6_;
};

}  // namespace keyhole::dht
