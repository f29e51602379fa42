// The relay's TLS-over-TCP side: accepts connections, runs TLS with the
// relay's certificate (transport/tls_stream.h) and hands every packet to the
// RelayServer as coming from RelayPath{peer address, stream id}. Answers for
// a stream go back through send().
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "keyhole/identity/endpoint.h"
#include "keyhole/result.h"
#include "keyhole/transport/tls_stream.h"
#include "relay_server.h"

namespace keyhole::node {

// TLS connections one IP address may hold at once (TCP sources cannot be
// spoofed, so this bounds what one host can tie up).
constexpr std::size_t kMaxTlsConnectionsPerAddress = 16;

class RelayTlsListener {
public:
    RelayTlsListener(asio::io_context& io, std::shared_ptr<transport::TlsServerIdentity> identity, RelayServer& server,
                     std::uint32_t max_connections);
    ~RelayTlsListener();
    RelayTlsListener(const RelayTlsListener&) = delete;
    RelayTlsListener& operator=(const RelayTlsListener&) = delete;

    // Port 0 picks a free port (see local_endpoint()).
    Status listen(const identity::Endpoint& bind_to);
    void stop();
    identity::Endpoint local_endpoint() const { return local_; }

    // For the RelayServer's sender: a packet to the stream `stream`. Dropped
    // if the stream is gone or its backlog is full.
    void send(std::uint64_t stream, std::span<const std::uint8_t> packet);
    std::size_t connections() const { return streams_.size(); }
    // Closes streams that sent nothing for `idle` (the daemon's tick calls it;
    // a client refreshes its allocation at half its lifetime, so a live one
    // is never idle that long).
    void close_idle(std::chrono::steady_clock::duration idle);

private:
    void accept_next();
    void closed(std::uint64_t stream);

    asio::io_context& io_;
    asio::ip::tcp::acceptor acceptor_;
    std::shared_ptr<transport::TlsServerIdentity> identity_;
    RelayServer& server_;
    std::uint32_t max_connections_;
    struct Entry {
        std::shared_ptr<transport::TlsStream> stream;
        identity::Endpoint remote;
        std::chrono::steady_clock::time_point last_packet;
    };
    std::size_t connections_from(const identity::Endpoint& remote) const;

    std::map<std::uint64_t, Entry> streams_;
    std::uint64_t next_stream_ = 1;
    identity::Endpoint local_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace keyhole::node
