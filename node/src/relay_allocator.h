// The client side of relays (issue #5): when this node needs one (its NAT is
// endpoint-dependent, UDP seems blocked, or a punch failed), find relays in
// the DHT (and the configured ones), measure their round-trip time, hold
// allocations at the best two, keep them alive, notice when one stops
// answering and replace it. Relays' answers (0x31/0x33/0x36/0x3f) come in
// here; forwarded datagrams go out to the session layer (on_deliver).
//
// Transport per relay: UDP from the shared port; TLS over TCP when UDP gets
// no answer and the relay offers TCP (networks that drop UDP).
//
// Liveness: every keepalive interval an allocate_request with a fresh nonce
// goes to each relay in use; the relay answers every request with a
// challenge (stateless), which doubles as the ping. No answer for three
// intervals: the relay counts as dead.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "keyhole/dht/dht_node.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/record.h"
#include "keyhole/node/config.h"
#include "keyhole/node/peer_manager.h"
#include "keyhole/transport/relay_client.h"
#include "keyhole/transport/relay_wire.h"
#include "keyhole/transport/tls_stream.h"
#include "keyhole/transport/udp_port.h"

namespace keyhole::node {

struct RelayAllocatorCallbacks {
    // The set of relays holding a granted allocation for us changed.
    std::function<void(const std::vector<identity::RelayRef>& relays)> on_relays_changed;
    // A relay we held an allocation at stopped answering (sessions through it must move).
    std::function<void(const identity::Endpoint& relay_endpoint)> on_relay_lost;
    // A datagram a relay forwarded to us (relay_deliver).
    std::function<void(std::span<const std::uint8_t> inner, const RelayHop& hop)> on_deliver;
    // Our current signed identity record (for relays that store it for us).
    std::function<std::vector<std::uint8_t>()> signed_record;
};

class RelayAllocator {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t kWanted = 2;  // allocations held at once

    RelayAllocator(asio::io_context& io, transport::UdpPort& udp, dht::DhtNode& dht, const identity::KeyPair& key,
                   const DaemonConfig& config, RelayAllocatorCallbacks callbacks);
    ~RelayAllocator();
    RelayAllocator(const RelayAllocator&) = delete;
    RelayAllocator& operator=(const RelayAllocator&) = delete;

    // This node needs relays from now on; `why` is logged once.
    void need(const std::string& why);
    bool needed() const { return needed_; }
    // Sends what is due (discovery, pings, allocation requests); notices dead relays.
    void tick(Clock::time_point now);
    void stop();

    // A relay-client packet (0x31, 0x33, 0x36, 0x3f) from the shared UDP port.
    void on_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from);
    // Sends `datagram` through a relay: relay_send to `peer` on channel 0,
    // else relay_reply on the hop's channel. Over TLS when that relay is one
    // of ours reached by TLS.
    void send(const RelayHop& hop, const identity::PeerId& peer, std::span<const std::uint8_t> datagram);

    // Relays holding a granted allocation for us, best first.
    std::vector<identity::RelayRef> granted() const;
    // A relay's ID by its UDP endpoint, if this node knows it.
    std::optional<identity::PeerId> relay_at(const identity::Endpoint& endpoint) const;

    struct Status {
        identity::PeerId id;
        identity::Endpoint endpoint;
        std::string transport;  // "udp" or "tls"
        std::string state;      // "allocating", "granted", "refused"
        std::optional<double> rtt_ms;
    };
    std::vector<Status> status() const;
    std::uint64_t relays_lost() const { return relays_lost_; }
    // relay_deliver packets from sources that are not relays we use or sent through.
    std::uint64_t deliveries_refused() const { return deliveries_refused_; }

    // The DHT through a relay, for a node that reaches relays only over TLS
    // (see transport::RelayPacketType::directory_*). True while an
    // allocation over TLS is granted.
    bool directory_available() const;
    // The signed bytes of `peer`'s record (empty: not found or no answer
    // within 10 s); the caller verifies them.
    void directory_lookup(const identity::PeerId& peer, std::function<void(std::vector<std::uint8_t>)> done);
    void directory_inbox(const identity::PeerId& peer, std::span<const std::uint8_t> message);
    // True once our record went to a relay that stores it for us.
    bool record_published_via_relay() const { return record_published_via_relay_; }

private:
    struct Candidate;
    struct Allocation;

    void discover(Clock::time_point now);
    void merge(const identity::PeerId& id, const identity::Endpoint& udp, const identity::Endpoint& tcp);
    void ping(Candidate& candidate, Clock::time_point now);
    void choose(Clock::time_point now);
    void open_tls(Allocation& allocation);
    void send_to_relay(Allocation& allocation, std::span<const std::uint8_t> packet);
    void handle(std::span<const std::uint8_t> datagram, const identity::Endpoint& from, Allocation* over_tls);
    void drop_allocation(const identity::PeerId& relay, const std::string& why, Clock::time_point now);
    void report_if_changed();
    Candidate* candidate(const identity::PeerId& id);

    asio::io_context& io_;
    transport::UdpPort& udp_;
    dht::DhtNode& dht_;
    const identity::KeyPair& key_;
    const DaemonConfig& config_;
    RelayAllocatorCallbacks callbacks_;
    bool needed_ = false;
    bool discovering_ = false;
    Clock::time_point next_discovery_{};
    std::vector<std::unique_ptr<Candidate>> candidates_;
    std::vector<std::unique_ptr<Allocation>> allocations_;  // in use, best first
    std::vector<identity::RelayRef> reported_;
    struct PendingPing {
        identity::PeerId relay;
        Clock::time_point sent;
    };
    std::map<transport::RelayNonce, PendingPing> pings_;
    struct PendingLookup {
        std::function<void(std::vector<std::uint8_t>)> done;
        Clock::time_point sent;
    };
    std::map<transport::RelayNonce, PendingLookup> lookups_;
    bool publish_record_now_ = false;
    Clock::time_point next_record_publish_{};
    bool record_published_via_relay_ = false;
    Allocation* directory_relay();
    std::uint64_t relays_lost_ = 0;
    std::uint64_t deliveries_refused_ = 0;
    std::set<identity::Endpoint> contacted_;  // relays we sent relay_send through (their answers are accepted)
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace keyhole::node
