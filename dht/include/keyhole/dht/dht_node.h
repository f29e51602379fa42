// keyhole's view of the DHT: a handful of verbs over OpenDHT's DhtRunner.
// OpenDHT runs on its own thread; every callback given here is posted back to
// the daemon's io_context, so callers never see OpenDHT's thread or types.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/identity/record.h"
#include "keyhole/result.h"

namespace keyhole::dht {

using identity::Endpoint;

// Sends one datagram on the shared UDP port; called from OpenDHT's thread.
// Returns 0 or an errno value.
using DatagramSender = std::function<int(const Endpoint& to, std::span<const std::uint8_t> datagram)>;

struct DhtOptions {
    Endpoint local_endpoint;             // what the shared UDP port is bound to
    std::vector<std::string> bootstrap;  // "host:port"; names are resolved
    std::uint32_t network_id = 0;
};

struct DhtHealth {
    unsigned good_nodes = 0;
    unsigned dubious_nodes = 0;
    std::vector<std::string> public_addresses;  // IPs other nodes report for us (no port)
};

struct LookupStats {
    std::uint64_t records_rejected = 0;  // values that failed verification
};

constexpr std::size_t kMaxInboxMessage = 1024;

using LookupCallback = std::function<void(Result<identity::IdentityRecord>)>;

class DhtNode {
public:
    DhtNode(asio::io_context& io, DatagramSender sender);
    ~DhtNode();
    DhtNode(const DhtNode&) = delete;
    DhtNode& operator=(const DhtNode&) = delete;

    Status start(const DhtOptions& options);
    // Stops OpenDHT and waits for its thread (DhtRunner::join). No callback runs after it.
    void stop();

    // Hands in a datagram from the shared port that is not a keyhole packet.
    void deliver(std::span<const std::uint8_t> datagram, const Endpoint& from);

    // Stores our signed record under its owner's key and keeps it stored
    // until the next publish() or withdraw(), which stop refreshing it.
    void publish(const identity::IdentityRecord& record, std::vector<std::uint8_t> signed_record);
    // Stops refreshing our record; storing nodes drop it when it expires.
    void withdraw();
    // True once the DHT confirmed storing the record last given to publish().
    bool record_stored() const;

    // Finds the verified record with the highest sequence, or an error
    // "not found" after at most `timeout`.
    void lookup(const identity::PeerId& peer, std::chrono::milliseconds timeout, LookupCallback done);

    // Connect requests travel through a DHT "inbox" per identity: a key only
    // its owner listens on. Values are opaque here (Noise handshake messages),
    // at most kMaxInboxMessage bytes, and stored for a short time only.
    using InboxCallback = std::function<void(std::vector<std::uint8_t> message)>;
    void listen_inbox(const identity::PeerId& owner, InboxCallback on_message);
    void send_to_inbox(const identity::PeerId& owner, std::vector<std::uint8_t> message);

    // Known DHT nodes' addresses (for address reflection).
    std::vector<Endpoint> known_nodes(std::size_t limit) const;

    DhtHealth health() const;
    LookupStats lookup_stats() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// The DHT key an identity record is stored under: SHA-1 (OpenDHT's InfoHash)
// of "keyhole/v1/id/" + hex public key. Hex, as OpenDHT would print it.
std::string record_key_hex(const identity::PeerId& owner);

}  // namespace keyhole::dht
