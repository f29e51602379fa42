// Relay mode in the daemon (issue #5), in one piece so run_daemon only has
// to create it, hand it packets and stop it: the RelayServer on the shared
// UDP port, its TLS/TCP listener, the announcement in the DHT, and the
// one-second housekeeping tick.
#pragma once

#include <memory>
#include <optional>
#include <span>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "keyhole/dht/dht_node.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/node/config.h"
#include "keyhole/transport/udp_port.h"
#include "relay_announcer.h"
#include "relay_server.h"
#include "relay_tls_listener.h"

namespace keyhole::node {

class RelayNode {
public:
    RelayNode(asio::io_context& io, transport::UdpPort& udp, dht::DhtNode& dht, const identity::KeyPair& key,
              const DaemonConfig& config);
    ~RelayNode();
    RelayNode(const RelayNode&) = delete;
    RelayNode& operator=(const RelayNode&) = delete;

    // Listens on TCP (a port that cannot be had only loses TLS, with a
    // warning), starts the tick and the announcement.
    void start();
    // Withdraws the announcement, closes TLS streams, stops the tick.
    void stop();

    // A datagram from the shared UDP port: true if it was a relay-server
    // packet (0x30, 0x32, 0x35, 0x37) and has been handled.
    bool on_datagram(std::span<const std::uint8_t> datagram, const identity::Endpoint& from);

    const RelayServer& server() const { return server_; }
    // The TLS/TCP endpoint listened on; empty without TLS.
    identity::Endpoint tls_endpoint() const;

private:
    std::optional<RelayEndpoints> public_endpoints() const;
    // The DHT for TLS clients (directory_* packets).
    void serve_directory(const RelayPath& from, const identity::PeerId& client, const transport::RelayPacket& request);
    void schedule_tick();

    transport::UdpPort& udp_;
    dht::DhtNode& dht_;
    const DaemonConfig& config_;
    RelayServer server_;
    std::unique_ptr<RelayTlsListener> tls_;
    RelayAnnouncer announcer_;
    asio::steady_timer tick_;
    bool running_ = false;
};

}  // namespace keyhole::node
