// The identity record: what a daemon publishes in the DHT about itself,
// signed with its Ed25519 key. Byte layout in docs/protocol.md, "Identity record".
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/result.h"

namespace keyhole::identity {

constexpr std::uint32_t kRecordVersion = 1;
// Fits well inside OpenDHT's value limit (~65,530 bytes).
constexpr std::size_t kMaxRecordSize = 4096;
constexpr std::size_t kMaxRelaysInRecord = 8;

enum class NatClass : std::uint8_t {
    unknown = 0,
    open = 1,
    endpoint_independent = 2,
    endpoint_dependent = 3,
};
const char* to_string(NatClass nat);

// Capability flags.
enum Capability : std::uint32_t {
    kCapChat = 1u << 0,
    kCapRelay = 1u << 1,
};

struct RelayRef {
    PeerId relay;
    Endpoint endpoint;
    friend bool operator==(const RelayRef&, const RelayRef&) = default;
};

struct IdentityRecord {
    std::uint32_t version = kRecordVersion;
    PeerId owner;
    std::uint64_t sequence = 0;
    std::uint64_t expires_unix_s = 0;
    std::vector<RelayRef> relays;
    std::uint32_t capabilities = kCapChat;
    NatClass nat = NatClass::unknown;
    friend bool operator==(const IdentityRecord&, const IdentityRecord&) = default;
};

// Encodes and signs; record.owner must be key.id().
std::vector<std::uint8_t> encode_signed(const IdentityRecord& record, const KeyPair& key);

// Decodes and verifies bytes found in the DHT under `expected_owner`'s key.
// Rejects oversize input, malformed msgpack, trailing bytes, unknown version,
// a bad signature, an owner other than expected_owner, and an expiry at or
// before now_unix_s. The error says which.
Result<IdentityRecord> decode_verified(std::span<const std::uint8_t> bytes,
                                       const PeerId& expected_owner,
                                       std::uint64_t now_unix_s);

// Same checks without knowing the owner in advance (DHT store policy).
Result<IdentityRecord> decode_verified_any_owner(std::span<const std::uint8_t> bytes,
                                                 std::uint64_t now_unix_s);

// A newer record replaces an older one only with a strictly higher sequence.
inline bool supersedes(const IdentityRecord& candidate, const IdentityRecord& current) {
    return candidate.owner == current.owner && candidate.sequence > current.sequence;
}

}  // namespace keyhole::identity
