// A relay's announcement: what a daemon in relay mode publishes under the
// well-known DHT key "keyhole/v1/relays", signed with its Ed25519 key. Byte
// layout in docs/protocol.md, "Relay announcement".
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/result.h"

namespace keyhole::identity {

constexpr std::uint32_t kRelayAnnouncementVersion = 1;
constexpr std::size_t kMaxRelayAnnouncementSize = 512;
// Readers refuse announcements that claim to be valid for longer than this
// from now (a relay cannot pin itself into the directory), or that were
// issued more than kRelayClockSkewMs in the future.
constexpr std::uint64_t kMaxRelayAnnouncementLifetimeMs = 2 * 3600 * 1000;
constexpr std::uint64_t kRelayClockSkewMs = 5 * 60 * 1000;

struct RelayAnnouncement {
    std::uint32_t version = kRelayAnnouncementVersion;
    PeerId relay;                  // the relay's Ed25519 key; also its TLS certificate key
    Endpoint udp;                  // where allocate requests go
    Endpoint tcp;                  // TLS over TCP; empty when the relay offers none
    std::uint32_t capacity = 0;    // allocations it holds at most
    std::uint32_t free = 0;        // allocations free when signed
    std::uint64_t max_bandwidth = 0;  // bytes per second it forwards in total
    std::uint64_t issued_ms = 0;   // Unix milliseconds
    std::uint64_t expires_ms = 0;  // Unix milliseconds; invalid at and after
    friend bool operator==(const RelayAnnouncement&, const RelayAnnouncement&) = default;
};

// Encodes and signs with `key` (whose public key becomes announcement.relay).
// An empty `udp` endpoint is encoded as an empty string and will not verify.
std::vector<std::uint8_t> encode_signed_announcement(const RelayAnnouncement& announcement, const KeyPair& key);

// Decodes and verifies: size, MessagePack shape and types, version, endpoints,
// signature, expiry (expires_ms <= now), issued too far in the future, and a
// lifetime reaching more than kMaxRelayAnnouncementLifetimeMs beyond now.
Result<RelayAnnouncement> decode_verified_announcement(std::span<const std::uint8_t> bytes, std::uint64_t now_unix_ms);

}  // namespace keyhole::identity
