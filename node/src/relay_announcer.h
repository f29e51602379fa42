// Keeps a relay's signed announcement in the DHT: signs it with the current
// free allocation count, announces it, re-signs at half its lifetime, and
// withdraws it on stop(). While the relay does not know its public address
// yet (no DHT node reported it), it retries every 10 s.
#pragma once

#include <chrono>
#include <functional>
#include <optional>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "keyhole/dht/dht_node.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/relay_announcement.h"
#include "relay_server.h"

namespace keyhole::node {

constexpr auto kRelayAnnouncementLifetime = std::chrono::minutes(30);

struct RelayEndpoints {
    identity::Endpoint udp;
    identity::Endpoint tcp;  // empty: no TLS/TCP
};

class RelayAnnouncer {
public:
    // `endpoints` returns the public endpoints to announce, or nothing while unknown.
    RelayAnnouncer(asio::io_context& io, dht::DhtNode& dht, const identity::KeyPair& key, const RelayServer& server,
                   std::function<std::optional<RelayEndpoints>()> endpoints,
                   std::chrono::milliseconds lifetime = kRelayAnnouncementLifetime);
    void start();
    void stop();
    // The last announcement given to the DHT, if any.
    const std::optional<identity::RelayAnnouncement>& current() const { return current_; }

private:
    void announce();
    void schedule(std::chrono::milliseconds delay);

    dht::DhtNode& dht_;
    const identity::KeyPair& key_;
    const RelayServer& server_;
    std::function<std::optional<RelayEndpoints>()> endpoints_;
    std::chrono::milliseconds lifetime_;
    asio::steady_timer timer_;
    std::optional<identity::RelayAnnouncement> current_;
    bool running_ = false;
};

}  // namespace keyhole::node
