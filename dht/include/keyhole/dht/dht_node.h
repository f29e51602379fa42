// keyhole's view of the DHT: a handful of verbs over OpenDHT's DhtRunner.
// OpenDHT runs on its own thread; every callback given here is posted back to
// the daemon's io_context, so callers never see OpenDHT's thread or types.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <optional>
#include <vector>

#include <asio/io_context.hpp>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/identity/record.h"
#include "keyhole/identity/relay_announcement.h"
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
    // When set, the DHT node id is derived from this identity, so a daemon
    // that restarts takes its old place in other nodes' routing tables
    // instead of leaving a dead entry there (which slows every search that
    // meets it by a response timeout). Unset: a random id (bootstrap nodes).
    std::optional<identity::PeerId> node_identity;
};

struct DhtHealth {
    unsigned good_nodes = 0;
    unsigned dubious_nodes = 0;
    std::vector<std::string> public_addresses;  // IPs other nodes report for us (no port)
};

// Upper bounds (ms) of the lookup latency buckets in LookupStats.
inline constexpr std::array<std::uint32_t, 8> kLookupLatencyBoundsMs = {50, 100, 250, 500, 1000, 2500, 5000, 10000};

struct LookupStats {
    std::uint64_t records_rejected = 0;  // values that failed verification
    std::uint64_t lookups_found = 0;     // finished lookups, by result
    std::uint64_t lookups_not_found = 0;
    // Finished lookups by duration: [i] is <= kLookupLatencyBoundsMs[i] (and
    // above the bound before it); the last entry is above every bound.
    std::array<std::uint64_t, kLookupLatencyBoundsMs.size() + 1> latency_counts{};
    double latency_sum_s = 0;
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
    // `found`, if given, gets the first verified record as soon as it arrives
    // (the search may still be waiting for slow or dead nodes), and again
    // each time a newer one arrives before the lookup ends: the first is
    // enough to know the peer is online, a later one may list other relays.
    void lookup(const identity::PeerId& peer, std::chrono::milliseconds timeout, LookupCallback done,
                std::function<void(const identity::IdentityRecord&)> found = {});

    // For relays serving clients that cannot reach the DHT: the signed bytes
    // of the newest verified record (empty: not found) after at most
    // `timeout`, and a one-time store of a record the caller verified.
    void lookup_signed(const identity::PeerId& peer, std::chrono::milliseconds timeout,
                       std::function<void(std::vector<std::uint8_t>)> done);
    void store_record(const identity::IdentityRecord& record, std::vector<std::uint8_t> signed_record);

    // Connect requests travel through a DHT "inbox" per identity, stored next
    // to its record (same key, own value type). The owner listens for requests
    // there, and a peer connecting to it listens there for the response while
    // its handshake runs. Values are opaque here (Noise handshake messages),
    // at most kMaxInboxMessage bytes, and stored for a short time only.
    using InboxCallback = std::function<void(std::vector<std::uint8_t> message)>;
    using InboxListen = std::uint64_t;
    InboxListen listen_inbox(const identity::PeerId& owner, InboxCallback on_message);
    void stop_listening(InboxListen listen);
    void send_to_inbox(const identity::PeerId& owner, std::vector<std::uint8_t> message);

    // Known DHT nodes' addresses (for address reflection).
    std::vector<Endpoint> known_nodes(std::size_t limit) const;

    DhtHealth health() const;
    LookupStats lookup_stats() const;

    // Relays (issue #5). A relay puts its signed announcement
    // (identity::encode_signed_announcement) under the well-known key
    // "keyhole/v1/relays" and keeps it stored until withdraw_relay() or the
    // next announce_relay(). Refuses an announcement that does not verify.
    Status announce_relay(std::vector<std::uint8_t> signed_announcement);
    void withdraw_relay();
    bool relay_announcement_stored() const;
    // Every verified, unexpired announcement found within `timeout` (the
    // latest per relay; forged, expired or malformed values are skipped and
    // counted in relay_announcements_rejected()). Empty if none.
    using RelaysCallback = std::function<void(std::vector<identity::RelayAnnouncement>)>;
    void find_relays(std::chrono::milliseconds timeout, RelaysCallback done);
    std::uint64_t relay_announcements_rejected() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// The DHT key an identity record is stored under: SHA-1 (OpenDHT's InfoHash)
// of "keyhole/v1/id/" + hex public key. Hex, as OpenDHT would print it.
std::string record_key_hex(const identity::PeerId& owner);

}  // namespace keyhole::dht
