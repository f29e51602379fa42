#include "keyhole/transport/udp_port.h"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>

#include <spdlog/spdlog.h>

namespace keyhole::transport {

namespace {

asio::ip::udp::endpoint to_asio(const Endpoint& endpoint) {
    sockaddr_storage storage{};
    const socklen_t length = endpoint.to_sockaddr(storage);
    asio::ip::udp::endpoint result;
    std::memcpy(result.data(), &storage, length);
    result.resize(length);
    return result;
}

Endpoint from_asio(const asio::ip::udp::endpoint& endpoint) {
    auto parsed = Endpoint::from_sockaddr(endpoint.data(), static_cast<socklen_t>(endpoint.size()));
    return parsed ? parsed.value() : Endpoint{};
}

}  // namespace

UdpPort::UdpPort(asio::io_context& io) : socket_(io) {}

Status UdpPort::open(const Endpoint& bind_to) {
    const auto asio_endpoint = to_asio(bind_to);
    asio::error_code error;
    socket_.open(asio_endpoint.protocol(), error);
    if (!error) socket_.bind(asio_endpoint, error);
    if (!error) socket_.non_blocking(true, error);
    if (error) {
        socket_.close();
        return fail("cannot bind UDP " + bind_to.to_string() + ": " + error.message());
    }
    local_ = from_asio(socket_.local_endpoint(error));
    return success();
}

void UdpPort::start_receiving(Receiver receiver) {
    receiver_ = std::move(receiver);
    receive_next();
}

void UdpPort::receive_next() {
    socket_.async_receive_from(
        asio::buffer(buffer_), sender_, [this](const asio::error_code& error, std::size_t size) {
            if (error == asio::error::operation_aborted || !socket_.is_open()) return;
            if (!error) {
                const Endpoint from = from_asio(sender_);
                if (!from.empty() && receiver_)
                    receiver_(std::span<const std::uint8_t>(buffer_.data(), size), from);
            } else {
                // ICMP errors surface here as ECONNREFUSED and the like: not fatal for UDP.
                spdlog::debug("udp receive: {}", error.message());
            }
            receive_next();
        });
}

int UdpPort::send_to(const Endpoint& to, std::span<const std::uint8_t> datagram) {
    sockaddr_storage storage{};
    const socklen_t length = to.to_sockaddr(storage);
    if (length == 0) return EINVAL;
    const auto sent = ::sendto(socket_.native_handle(), datagram.data(), datagram.size(),
                               MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&storage), length);
    return sent < 0 ? errno : 0;
}

void UdpPort::close() {
    asio::error_code ignored;
    socket_.close(ignored);
}

}  // namespace keyhole::transport
