// Extra UDP sockets for birthday probing (docs/nat-traversal.md): behind an
// endpoint-dependent NAT every socket that sends to the peer gets its own
// public port, so opening many sockets multiplies the mappings the peer can
// hit by guessing ports. The socket that connects stays open for the session;
// the rest are closed.
//
// Sockets are plain non-blocking descriptors watched by the io_context (no
// per-socket receive buffer: hundreds of them must stay cheap).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include "keyhole/identity/endpoint.h"
#include "keyhole/result.h"

namespace keyhole::transport {

class ProbeSocketPool : public std::enable_shared_from_this<ProbeSocketPool> {
public:
    // Called on the io_context thread with the pool and the index of the receiving socket.
    using Receiver = std::function<void(const std::shared_ptr<ProbeSocketPool>& pool, std::size_t socket,
                                        std::span<const std::uint8_t> datagram, const identity::Endpoint& from)>;

    // Opens `count` sockets on `address` (port 0: the kernel picks each port).
    static Result<std::shared_ptr<ProbeSocketPool>> open(asio::io_context& io, const identity::Endpoint& address,
                                                         std::size_t count, Receiver receiver);
    ~ProbeSocketPool();
    ProbeSocketPool(const ProbeSocketPool&) = delete;
    ProbeSocketPool& operator=(const ProbeSocketPool&) = delete;

    std::size_t size() const { return sockets_.size(); }
    std::size_t open_count() const;
    bool is_open(std::size_t socket) const;
    // 0 or an errno value; EBADF for a closed socket.
    int send_from(std::size_t socket, const identity::Endpoint& to, std::span<const std::uint8_t> datagram);
    // Keeps socket `keep` (the one the session's path uses) and closes the rest.
    void close_all_except(std::size_t keep);
    void close();

private:
    explicit ProbeSocketPool(Receiver receiver) : receiver_(std::move(receiver)) {}
    void wait_readable(std::size_t socket);
    void drain(std::size_t socket);

    std::vector<std::unique_ptr<asio::ip::udp::socket>> sockets_;
    Receiver receiver_;
};

}  // namespace keyhole::transport
