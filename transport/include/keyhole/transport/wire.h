// keyhole's own datagrams, byte by byte (docs/protocol.md, "keyhole packets").
// Parsing is separate from acting: parse_packet() turns bytes into a typed
// value and only a well-formed value reaches the session layer.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "keyhole/identity/endpoint.h"
#include "keyhole/result.h"
#include "keyhole/transport/packet.h"

namespace keyhole::transport {

enum class PacketType : std::uint8_t {
    reflect_request = 0x01,   // "at which address do you see me?"
    reflect_response = 0x02,  // the address the request came from
    handshake = 0x10,         // a connect request or response (Noise message) carried through a relay
    frame = 0x20,             // a session frame: encrypted and authenticated
};

using ReflectNonce = std::array<std::uint8_t, 8>;

// Requests are padded to at least the size of a response, so answering one
// never amplifies traffic towards a spoofed source.
constexpr std::size_t kReflectRequestSize = 32;

struct ReflectRequest {
    ReflectNonce nonce{};
};
struct ReflectResponse {
    ReflectNonce nonce{};
    identity::Endpoint observed;
};
// Header of a session frame; the ciphertext follows it in the datagram.
struct FrameHeader {
    std::uint32_t receiver_index = 0;
    std::uint64_t counter = 0;
};
constexpr std::size_t kFrameHeaderSize = kPacketHeaderSize + 4 + 8;  // also the AEAD's associated data
struct Frame {
    FrameHeader header;
    std::span<const std::uint8_t> associated_data;  // the header bytes
    std::span<const std::uint8_t> ciphertext;
};

// A connect request or response travelling through a relay instead of the
// DHT inbox: the same bytes as the inbox value (kind byte, then the Noise
// message), authenticated by Noise, not by this wrapper.
constexpr std::size_t kMaxHandshakeMessage = 1024;
struct Handshake {
    std::span<const std::uint8_t> message;
};

using Packet = std::variant<ReflectRequest, ReflectResponse, Frame, Handshake>;

// `datagram` must carry the magic prefix (is_keyhole_packet). Spans in the
// result point into `datagram`.
Result<Packet> parse_packet(std::span<const std::uint8_t> datagram);

std::vector<std::uint8_t> encode_reflect_request(const ReflectNonce& nonce);
std::vector<std::uint8_t> encode_reflect_response(const ReflectNonce& nonce, const identity::Endpoint& observed);
std::vector<std::uint8_t> encode_handshake(std::span<const std::uint8_t> message);
// The 16 header bytes of a frame; the caller appends the ciphertext.
std::array<std::uint8_t, kFrameHeaderSize> encode_frame_header(const FrameHeader& header);

}  // namespace keyhole::transport
