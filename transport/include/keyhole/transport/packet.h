// keyhole's own datagrams share the UDP port with OpenDHT. OpenDHT's datagrams
// are msgpack maps (first byte 0x80-0x8f, 0xde or 0xdf); keyhole's start with
// a magic prefix whose first byte lies outside those ranges. docs/protocol.md,
// "Packet demultiplexing".
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace keyhole::transport {

// "kh" + protocol version 1; the fourth byte is the packet type.
inline constexpr std::array<std::uint8_t, 3> kPacketMagic{0x6b, 0x68, 0x01};
inline constexpr std::size_t kPacketHeaderSize = kPacketMagic.size() + 1;

inline bool is_keyhole_packet(std::span<const std::uint8_t> datagram) {
    if (datagram.size() < kPacketHeaderSize) return false;
    for (std::size_t i = 0; i < kPacketMagic.size(); ++i)
        if (datagram[i] != kPacketMagic[i]) return false;
    return true;
}

}  // namespace keyhole::transport
