// What the two Noise handshake messages carry (msgpack, inside the Noise
// encryption; docs/protocol.md, "Connect request and response").
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/identity/record.h"
#include "keyhole/result.h"

namespace keyhole::node {

constexpr std::size_t kMaxCandidates = 8;
constexpr std::size_t kMaxPayloadRelays = 4;

struct Hello {  // initiator -> responder, in Noise message 1
    identity::PeerId initiator;
    std::uint32_t initiator_index = 0;
    std::uint64_t timestamp_ms = 0;
    std::vector<identity::Endpoint> candidates;
    identity::NatClass nat = identity::NatClass::unknown;  // decides who does birthday probing
    std::vector<identity::RelayRef> relays;  // where the initiator holds relay allocations
};
struct Reply {  // responder -> initiator, in Noise message 2
    std::uint32_t responder_index = 0;
    std::uint64_t timestamp_ms = 0;
    std::vector<identity::Endpoint> candidates;
    identity::NatClass nat = identity::NatClass::unknown;
    std::vector<identity::RelayRef> relays;  // where the responder holds relay allocations
};

std::vector<std::uint8_t> encode_hello(const Hello& hello);
Result<Hello> decode_hello(std::span<const std::uint8_t> bytes);
std::vector<std::uint8_t> encode_reply(const Reply& reply);
Result<Reply> decode_reply(std::span<const std::uint8_t> bytes);

}  // namespace keyhole::node
