#include "keyhole/transport/probe_socket_pool.h"

#include <array>
#include <cerrno>
#include <cstring>

#include <sys/socket.h>

namespace keyhole::transport {

namespace {

// Probes and session frames are small; anything larger is not ours.
constexpr std::size_t kMaxDatagram = 2048;
// Datagrams read per readiness event before yielding to other handlers.
constexpr int kDrainBudget = 16;

}  // namespace

Result<std::shared_ptr<ProbeSocketPool>> ProbeSocketPool::open(asio::io_context& io,
                                                               const identity::Endpoint& address,
                                                               std::size_t count, Receiver receiver) {
    if (!address.is_v4()) return fail("probe sockets: IPv4 only");
    std::shared_ptr<ProbeSocketPool> pool(new ProbeSocketPool(std::move(receiver)));
    sockaddr_storage storage{};
    const auto bound = identity::Endpoint::ipv4(
        {address.address_bytes()[0], address.address_bytes()[1], address.address_bytes()[2], address.address_bytes()[3]}, 0);
    const socklen_t length = bound.to_sockaddr(storage);
    for (std::size_t i = 0; i < count; ++i) {
        auto socket = std::make_unique<asio::ip::udp::socket>(io);
        asio::error_code error;
        socket->open(asio::ip::udp::v4(), error);
        if (!error && ::bind(socket->native_handle(), reinterpret_cast<const sockaddr*>(&storage), length) != 0)
            error = asio::error_code(errno, asio::system_category());
        if (!error) socket->non_blocking(true, error);
        if (error) {
            pool->close();
            return fail("probe sockets: " + std::to_string(i) + " of " + std::to_string(count) +
                        " opened, then: " + error.message());
        }
        pool->sockets_.push_back(std::move(socket));
    }
    for (std::size_t i = 0; i < pool->sockets_.size(); ++i) pool->wait_readable(i);
    return pool;
}

ProbeSocketPool::~ProbeSocketPool() { close(); }

std::size_t ProbeSocketPool::open_count() const {
    std::size_t count = 0;
    for (std::size_t i = 0; i < sockets_.size(); ++i) count += is_open(i) ? 1 : 0;
    return count;
}

bool ProbeSocketPool::is_open(std::size_t socket) const {
    return socket < sockets_.size() && sockets_[socket] && sockets_[socket]->is_open();
}

void ProbeSocketPool::wait_readable(std::size_t socket) {
    // The handler holds the pool: closing a socket cancels its wait, and the
    // pool outlives every handler still queued.
    sockets_[socket]->async_wait(asio::socket_base::wait_read,
                                 [self = shared_from_this(), socket](const asio::error_code& error) {
                                     if (error || !self->is_open(socket)) return;
                                     self->drain(socket);
                                     if (self->is_open(socket)) self->wait_readable(socket);
                                 });
}

void ProbeSocketPool::drain(std::size_t socket) {
    std::array<std::uint8_t, kMaxDatagram> buffer{};
    for (int i = 0; i < kDrainBudget && is_open(socket); ++i) {
        sockaddr_storage from{};
        socklen_t from_length = sizeof(from);
        const auto size = ::recvfrom(sockets_[socket]->native_handle(), buffer.data(), buffer.size(), MSG_DONTWAIT,
                                     reinterpret_cast<sockaddr*>(&from), &from_length);
        if (size < 0) return;  // EAGAIN, or an ICMP error surfacing: nothing to read
        auto sender = identity::Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&from), from_length);
        if (sender && receiver_)
            receiver_(shared_from_this(), socket, std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(size)), sender.value());
    }
}

int ProbeSocketPool::send_from(std::size_t socket, const identity::Endpoint& to, std::span<const std::uint8_t> datagram) {
    if (!is_open(socket)) return EBADF;
    sockaddr_storage storage{};
    const socklen_t length = to.to_sockaddr(storage);
    if (length == 0) return EINVAL;
    const auto sent = ::sendto(sockets_[socket]->native_handle(), datagram.data(), datagram.size(),
                               MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&storage), length);
    return sent < 0 ? errno : 0;
}

void ProbeSocketPool::close_all_except(std::size_t keep) {
    for (std::size_t i = 0; i < sockets_.size(); ++i) {
        if (i == keep || !sockets_[i]) continue;
        asio::error_code ignored;
        sockets_[i]->close(ignored);
    }
}

void ProbeSocketPool::close() {
    for (auto& socket : sockets_) {
        if (!socket) continue;
        asio::error_code ignored;
        socket->close(ignored);
    }
}

}  // namespace keyhole::transport
