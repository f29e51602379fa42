// Relay packets, byte by byte (docs/protocol.md, "Relays"). Same rules as
// wire.h: parse_relay_packet() turns bytes into a typed value, and only a
// well-formed value reaches the relay server or the client. Every answer a
// relay sends is at most as large as the packet that provoked it, so a relay
// is never an amplifier towards a spoofed source.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/result.h"
#include "keyhole/transport/packet.h"

namespace keyhole::transport {

enum class RelayPacketType : std::uint8_t {
    allocate_request = 0x30,    // client -> relay: "I want an allocation for this key"
    allocate_challenge = 0x31,  // relay -> client: a cookie proving the client receives at its source
    allocate_confirm = 0x32,    // client -> relay: cookie + signature by the key; also refreshes
    allocate_result = 0x33,     // relay -> client: granted (lifetime, limits) or refused (reason)
    relay_send = 0x35,          // anyone -> relay: forward this to the holder of an allocation
    relay_deliver = 0x36,       // relay -> client: forwarded datagram (channel 0: an owner's reply)
    relay_reply = 0x37,         // allocation owner -> relay: answer on a channel
    // The DHT for clients that reach the relay only over TLS (UDP blocked):
    // served on TLS streams that hold an allocation, never over UDP (an
    // answer can be larger than its request: no amplifier).
    directory_publish = 0x38,   // client -> relay: store my signed identity record
    directory_lookup = 0x39,    // client -> relay: find this key's record
    directory_record = 0x3a,    // relay -> client: the signed record found (empty: none)
    directory_inbox = 0x3b,     // client -> relay: put this connect request into a key's DHT inbox
    relay_error = 0x3f,         // relay -> anyone: why a packet was not forwarded
};

// True for the types a relay server handles (0x30, 0x32, 0x35, 0x37, 0x38, 0x39, 0x3b).
bool is_relay_server_packet(std::span<const std::uint8_t> datagram);
// True for the types a relay client handles (0x31, 0x33, 0x36, 0x3a, 0x3f).
bool is_relay_client_packet(std::span<const std::uint8_t> datagram);

using RelayNonce = std::array<std::uint8_t, 8>;
using RelayCookie = std::array<std::uint8_t, 16>;
using RelayChannel = std::uint32_t;
// Channel 0 in a relay_deliver: the datagram is an allocation owner's reply
// to something this endpoint sent with relay_send.
constexpr RelayChannel kReplyChannel = 0;

// Reason codes of allocate_result and relay_error. 0 means granted / no error.
enum class RelayCode : std::uint8_t {
    ok = 0,
    capacity = 1,         // the relay holds its maximum number of allocations
    per_key_limit = 2,    // this client key holds its maximum number of allocations here
    rate_limited = 3,     // packets or bytes per second of the source or the allocation
    bandwidth = 4,        // the relay's total bandwidth is used up
    bad_cookie = 5,       // cookie unknown, expired, or from another source address
    bad_signature = 6,    // the confirm's signature does not verify
    unknown_target = 7,   // relay_send to a key without an allocation here
    unknown_channel = 8,  // relay_reply on a channel the allocation does not have
    not_allocated = 9,    // relay_reply from a source that holds no allocation
    too_large = 10,       // inner datagram over kMaxRelayInner
};
constexpr std::size_t kRelayCodeCount = 11;
const char* to_string(RelayCode code);

// Sizes. Requests are padded so that the challenge is never larger.
constexpr std::size_t kAllocateRequestSize = 64;
constexpr std::size_t kAllocateChallengeSize = kPacketHeaderSize + 8 + 16;               // 28
constexpr std::size_t kAllocateConfirmSize = kPacketHeaderSize + 32 + 16 + 64;           // 116
constexpr std::size_t kAllocateResultSize = kPacketHeaderSize + 16 + 1 + 4 + 7 + 4 + 4;  // 40
constexpr std::size_t kRelaySendHeaderSize = kPacketHeaderSize + 32;                      // 36
constexpr std::size_t kRelayDeliverHeaderSize = kPacketHeaderSize + 4;                    // 8
constexpr std::size_t kRelayReplyHeaderSize = kPacketHeaderSize + 4;                      // 8
constexpr std::size_t kRelayErrorSize = kPacketHeaderSize + 1 + 8;                        // 13
// Largest inner datagram a relay forwards: a relay_send carrying it still
// fits a UDP datagram over IPv4 and a 2-byte TLS record length.
constexpr std::size_t kMaxRelayInner = 65000;
constexpr std::size_t kDirectoryLookupSize = kPacketHeaderSize + 8 + 32;  // 44
constexpr std::size_t kMaxDirectoryValue = 4096;  // a signed record (identity::kMaxRecordSize) or an inbox message

struct AllocateRequest {
    identity::PeerId client;
    RelayNonce nonce{};
};
struct AllocateChallenge {
    RelayNonce nonce{};
    RelayCookie cookie{};
};
struct AllocateConfirm {
    identity::PeerId client;
    RelayCookie cookie{};
    identity::SignatureBytes signature{};
};
struct AllocateResult {
    RelayCookie cookie{};            // of the confirm this answers
    RelayCode code = RelayCode::ok;  // ok = granted
    std::uint32_t lifetime_s = 0;    // seconds until the allocation expires unless refreshed
    identity::Endpoint observed;     // the source the relay saw (IPv4; empty for TLS or IPv6)
    std::uint32_t packets_per_s = 0; // the allocation's limits
    std::uint32_t bytes_per_s = 0;
};
struct RelaySend {
    identity::PeerId target;
    std::span<const std::uint8_t> inner;  // points into the datagram
};
struct RelayDeliver {
    RelayChannel channel = 0;
    std::span<const std::uint8_t> inner;
};
struct RelayReply {
    RelayChannel channel = 0;
    std::span<const std::uint8_t> inner;
};
struct RelayError {
    RelayCode code = RelayCode::ok;
    // What it is about: the first 8 bytes of the target key (unknown_target),
    // the channel (big-endian, 4 bytes then zeros), or the request nonce.
    std::array<std::uint8_t, 8> context{};
};

struct DirectoryPublish {
    std::span<const std::uint8_t> signed_record;  // verified by the relay before it stores it
};
struct DirectoryLookup {
    RelayNonce nonce{};
    identity::PeerId target;
};
struct DirectoryRecord {
    RelayNonce nonce{};
    std::span<const std::uint8_t> signed_record;  // empty: not found; the client verifies it
};
struct DirectoryInbox {
    identity::PeerId target;
    std::span<const std::uint8_t> message;
};

using RelayPacket = std::variant<AllocateRequest, AllocateChallenge, AllocateConfirm, AllocateResult, RelaySend,
                                 RelayDeliver, RelayReply, RelayError, DirectoryPublish, DirectoryLookup,
                                 DirectoryRecord, DirectoryInbox>;

// `datagram` must carry the magic prefix. Spans in the result point into it.
Result<RelayPacket> parse_relay_packet(std::span<const std::uint8_t> datagram);

// The bytes an allocate_confirm's signature covers:
// "keyhole/v1/relay-alloc" || relay key || client key || cookie.
std::vector<std::uint8_t> allocation_signed_message(const identity::PeerId& relay, const identity::PeerId& client,
                                                    const RelayCookie& cookie);

std::vector<std::uint8_t> encode_allocate_request(const identity::PeerId& client, const RelayNonce& nonce);
std::vector<std::uint8_t> encode_allocate_challenge(const RelayNonce& nonce, const RelayCookie& cookie);
// Signs with `client` (whose public key becomes the confirm's client key).
std::vector<std::uint8_t> encode_allocate_confirm(const identity::KeyPair& client, const identity::PeerId& relay,
                                                  const RelayCookie& cookie);
std::vector<std::uint8_t> encode_allocate_result(const AllocateResult& result);
std::vector<std::uint8_t> encode_relay_send(const identity::PeerId& target, std::span<const std::uint8_t> inner);
std::vector<std::uint8_t> encode_relay_deliver(RelayChannel channel, std::span<const std::uint8_t> inner);
std::vector<std::uint8_t> encode_relay_reply(RelayChannel channel, std::span<const std::uint8_t> inner);
std::vector<std::uint8_t> encode_relay_error(const RelayError& error);
std::vector<std::uint8_t> encode_directory_publish(std::span<const std::uint8_t> signed_record);
std::vector<std::uint8_t> encode_directory_lookup(const RelayNonce& nonce, const identity::PeerId& target);
std::vector<std::uint8_t> encode_directory_record(const RelayNonce& nonce, std::span<const std::uint8_t> signed_record);
std::vector<std::uint8_t> encode_directory_inbox(const identity::PeerId& target, std::span<const std::uint8_t> message);

}  // namespace keyhole::transport
