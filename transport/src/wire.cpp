#include "keyhole/transport/wire.h"

#include <algorithm>

namespace keyhole::transport {

namespace {

void put_magic(std::vector<std::uint8_t>& out, PacketType type) {
    out.insert(out.end(), kPacketMagic.begin(), kPacketMagic.end());
    out.push_back(static_cast<std::uint8_t>(type));
}

std::uint64_t read_be(std::span<const std::uint8_t> bytes) {
    std::uint64_t value = 0;
    for (auto byte : bytes) value = (value << 8) | byte;
    return value;
}

template <std::size_t N>
void write_be(std::uint8_t* out, std::uint64_t value) {
    for (std::size_t i = 0; i < N; ++i) out[N - 1 - i] = static_cast<std::uint8_t>(value >> (8 * i));
}

}  // namespace

Result<Packet> parse_packet(std::span<const std::uint8_t> datagram) {
    if (!is_keyhole_packet(datagram)) return fail("not a keyhole packet");
    const auto type = static_cast<PacketType>(datagram[kPacketMagic.size()]);
    const auto body = datagram.subspan(kPacketHeaderSize);
    switch (type) {
        case PacketType::reflect_request: {
            if (datagram.size() != kReflectRequestSize) return fail("reflect request of wrong size");
            ReflectRequest request;
            std::copy_n(body.begin(), request.nonce.size(), request.nonce.begin());
            return Packet{request};
        }
        case PacketType::reflect_response: {
            // nonce(8) family(1) address(4) port(2); IPv4 only for now.
            if (body.size() != 8 + 1 + 4 + 2) return fail("reflect response of wrong size");
            if (body[8] != 4) return fail("reflect response with unknown address family");
            ReflectResponse response;
            std::copy_n(body.begin(), response.nonce.size(), response.nonce.begin());
            std::array<std::uint8_t, 4> address{};
            std::copy_n(body.begin() + 9, 4, address.begin());
            const auto port = static_cast<std::uint16_t>(read_be(body.subspan(13, 2)));
            if (port == 0) return fail("reflect response with port 0");
            response.observed = identity::Endpoint::ipv4(address, port);
            return Packet{response};
        }
        case PacketType::frame: {
            if (datagram.size() < kFrameHeaderSize + 16) return fail("frame too short");
            Frame frame;
            frame.header.receiver_index = static_cast<std::uint32_t>(read_be(body.subspan(0, 4)));
            frame.header.counter = read_be(body.subspan(4, 8));
            frame.associated_data = datagram.first(kFrameHeaderSize);
            frame.ciphertext = datagram.subspan(kFrameHeaderSize);
            return Packet{frame};
        }
        case PacketType::handshake: {
            if (body.empty() || body.size() > kMaxHandshakeMessage) return fail("handshake message of wrong size");
            return Packet{Handshake{body}};
        }
    }
    return fail("unknown keyhole packet type");
}

std::vector<std::uint8_t> encode_reflect_request(const ReflectNonce& nonce) {
    std::vector<std::uint8_t> out;
    put_magic(out, PacketType::reflect_request);
    out.insert(out.end(), nonce.begin(), nonce.end());
    out.resize(kReflectRequestSize, 0);
    return out;
}

std::vector<std::uint8_t> encode_reflect_response(const ReflectNonce& nonce, const identity::Endpoint& observed) {
    std::vector<std::uint8_t> out;
    if (!observed.is_v4()) return out;  // IPv6 sockets are not used yet
    put_magic(out, PacketType::reflect_response);
    out.insert(out.end(), nonce.begin(), nonce.end());
    out.push_back(4);
    out.insert(out.end(), observed.address_bytes(), observed.address_bytes() + 4);
    out.push_back(static_cast<std::uint8_t>(observed.port() >> 8));
    out.push_back(static_cast<std::uint8_t>(observed.port() & 0xff));
    return out;
}

std::vector<std::uint8_t> encode_handshake(std::span<const std::uint8_t> message) {
    std::vector<std::uint8_t> out;
    put_magic(out, PacketType::handshake);
    out.insert(out.end(), message.begin(), message.end());
    return out;
}

std::array<std::uint8_t, kFrameHeaderSize> encode_frame_header(const FrameHeader& header) {
    std::array<std::uint8_t, kFrameHeaderSize> out{};
    std::copy(kPacketMagic.begin(), kPacketMagic.end(), out.begin());
    out[kPacketMagic.size()] = static_cast<std::uint8_t>(PacketType::frame);
    write_be<4>(out.data() + kPacketHeaderSize, header.receiver_index);
    write_be<8>(out.data() + kPacketHeaderSize + 4, header.counter);
    return out;
}

}  // namespace keyhole::transport
