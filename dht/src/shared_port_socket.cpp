#include "shared_port_socket.h"

#include <cerrno>

namespace keyhole::dht {

namespace {
::dht::SockAddr to_sockaddr(const Endpoint& endpoint) {
    sockaddr_storage storage{};
    const socklen_t length = endpoint.to_sockaddr(storage);
    return length ? ::dht::SockAddr(storage, length) : ::dht::SockAddr();
}
}  // namespace

SharedPortSocket::SharedPortSocket(DatagramSender sender, const Endpoint& bound)
    : sender_(std::move(sender)) {
    if (bound.is_v4()) bound4_ = to_sockaddr(bound);
    if (bound.is_v6()) bound6_ = to_sockaddr(bound);
}

int SharedPortSocket::sendTo(const ::dht::SockAddr& dest, const std::uint8_t* data, std::size_t size, bool) {
    auto endpoint = Endpoint::from_sockaddr(dest.get(), dest.getLength());
    if (!endpoint) return EAFNOSUPPORT;
    return sender_(endpoint.value(), std::span<const std::uint8_t>(data, size));
}

const ::dht::SockAddr& SharedPortSocket::getBoundRef(sa_family_t family) const {
    return family == AF_INET6 ? bound6_ : bound4_;
}

void SharedPortSocket::deliver(std::span<const std::uint8_t> datagram, const Endpoint& from) {
    // getNewPacket() reuses buffers OpenDHT handed back, so lists do not grow.
    auto packets = getNewPacket();
    auto& packet = packets.front();
    packet.data.assign(datagram.begin(), datagram.end());
    sockaddr_storage storage{};
    const socklen_t length = from.to_sockaddr(storage);
    packet.from = ::dht::SockAddr(storage, length);
    packet.received = ::dht::clock::now();
    onReceived(std::move(packets));
}

}  // namespace keyhole::dht
