#include "keyhole/transport/relay_wire.h"

#include <algorithm>
#include <cstring>

namespace keyhole::transport {

namespace {

constexpr char kAllocationContext[] = "keyhole/v1/relay-alloc";
constexpr std::size_t kAllocationContextSize = sizeof kAllocationContext - 1;

std::vector<std::uint8_t> start(RelayPacketType type, std::size_t body_size) {
    std::vector<std::uint8_t> out;
    out.reserve(kPacketHeaderSize + body_size);
    out.insert(out.end(), kPacketMagic.begin(), kPacketMagic.end());
    out.push_back(static_cast<std::uint8_t>(type));
    return out;
}

template <typename Bytes>
void append(std::vector<std::uint8_t>& out, const Bytes& bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

void append_be32(std::vector<std::uint8_t>& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

std::uint32_t read_be32(std::span<const std::uint8_t> bytes) {
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
           std::uint32_t{bytes[3]};
}

template <std::size_t N>
std::array<std::uint8_t, N> take(std::span<const std::uint8_t> bytes) {
    std::array<std::uint8_t, N> out{};
    std::copy_n(bytes.begin(), N, out.begin());
    return out;
}

bool known_code(std::uint8_t code) { return code < kRelayCodeCount; }

RelayPacketType type_of(std::span<const std::uint8_t> datagram) {
    return static_cast<RelayPacketType>(datagram[kPacketMagic.size()]);
}

}  // namespace

bool is_relay_server_packet(std::span<const std::uint8_t> datagram) {
    if (!is_keyhole_packet(datagram)) return false;
    switch (type_of(datagram)) {
        case RelayPacketType::allocate_request:
        case RelayPacketType::allocate_confirm:
        case RelayPacketType::relay_send:
        case RelayPacketType::relay_reply:
        case RelayPacketType::directory_publish:
        case RelayPacketType::directory_lookup:
        case RelayPacketType::directory_inbox: return true;
        default: return false;
    }
}

bool is_relay_client_packet(std::span<const std::uint8_t> datagram) {
    if (!is_keyhole_packet(datagram)) return false;
    switch (type_of(datagram)) {
        case RelayPacketType::allocate_challenge:
        case RelayPacketType::allocate_result:
        case RelayPacketType::relay_deliver:
        case RelayPacketType::directory_record:
        case RelayPacketType::relay_error: return true;
        default: return false;
    }
}

const char* to_string(RelayCode code) {
    switch (code) {
        case RelayCode::ok: return "ok";
        case RelayCode::capacity: return "relay at capacity";
        case RelayCode::per_key_limit: return "too many allocations for this key";
        case RelayCode::rate_limited: return "rate limited";
        case RelayCode::bandwidth: return "relay bandwidth exhausted";
        case RelayCode::bad_cookie: return "bad cookie";
        case RelayCode::bad_signature: return "bad signature";
        case RelayCode::unknown_target: return "no allocation for this key";
        case RelayCode::unknown_channel: return "unknown channel";
        case RelayCode::not_allocated: return "no allocation for this source";
        case RelayCode::too_large: return "datagram too large";
    }
    return "unknown code";
}

Result<RelayPacket> parse_relay_packet(std::span<const std::uint8_t> datagram) {
    if (!is_keyhole_packet(datagram)) return fail("not a keyhole packet");
    const auto body = datagram.subspan(kPacketHeaderSize);
    switch (type_of(datagram)) {
        case RelayPacketType::allocate_request: {
            // Padding is not checked: only the size matters (amplification).
            if (datagram.size() != kAllocateRequestSize) return fail("allocate request of wrong size");
            AllocateRequest request;
            request.client = identity::PeerId(take<32>(body));
            request.nonce = take<8>(body.subspan(32));
            return RelayPacket{request};
        }
        case RelayPacketType::allocate_challenge: {
            if (datagram.size() != kAllocateChallengeSize) return fail("allocate challenge of wrong size");
            AllocateChallenge challenge;
            challenge.nonce = take<8>(body);
            challenge.cookie = take<16>(body.subspan(8));
            return RelayPacket{challenge};
        }
        case RelayPacketType::allocate_confirm: {
            if (datagram.size() != kAllocateConfirmSize) return fail("allocate confirm of wrong size");
            AllocateConfirm confirm;
            confirm.client = identity::PeerId(take<32>(body));
            confirm.cookie = take<16>(body.subspan(32));
            confirm.signature = take<64>(body.subspan(48));
            return RelayPacket{confirm};
        }
        case RelayPacketType::allocate_result: {
            if (datagram.size() != kAllocateResultSize) return fail("allocate result of wrong size");
            AllocateResult result;
            result.cookie = take<16>(body);
            if (!known_code(body[16])) return fail("allocate result with unknown code");
            result.code = static_cast<RelayCode>(body[16]);
            result.lifetime_s = read_be32(body.subspan(17));
            // family(1) address(4) port(2); family 0 = not reported.
            const auto family = body[21];
            const auto port = static_cast<std::uint16_t>((body[26] << 8) | body[27]);
            if (family == 4) {
                if (port == 0) return fail("allocate result with port 0");
                result.observed = identity::Endpoint::ipv4(take<4>(body.subspan(22)), port);
            } else if (family != 0) {
                return fail("allocate result with unknown address family");
            }
            result.packets_per_s = read_be32(body.subspan(28));
            result.bytes_per_s = read_be32(body.subspan(32));
            if (result.code == RelayCode::ok && result.lifetime_s == 0)
                return fail("allocate result grants a lifetime of 0");
            return RelayPacket{result};
        }
        case RelayPacketType::relay_send: {
            if (datagram.size() <= kRelaySendHeaderSize) return fail("relay send without a datagram");
            if (datagram.size() - kRelaySendHeaderSize > kMaxRelayInner) return fail("relay send too large");
            return RelayPacket{RelaySend{identity::PeerId(take<32>(body)), datagram.subspan(kRelaySendHeaderSize)}};
        }
        case RelayPacketType::relay_deliver: {
            if (datagram.size() <= kRelayDeliverHeaderSize) return fail("relay deliver without a datagram");
            if (datagram.size() - kRelayDeliverHeaderSize > kMaxRelayInner) return fail("relay deliver too large");
            return RelayPacket{RelayDeliver{read_be32(body), datagram.subspan(kRelayDeliverHeaderSize)}};
        }
        case RelayPacketType::relay_reply: {
            if (datagram.size() <= kRelayReplyHeaderSize) return fail("relay reply without a datagram");
            if (datagram.size() - kRelayReplyHeaderSize > kMaxRelayInner) return fail("relay reply too large");
            const auto channel = read_be32(body);
            if (channel == kReplyChannel) return fail("relay reply on channel 0");
            return RelayPacket{RelayReply{channel, datagram.subspan(kRelayReplyHeaderSize)}};
        }
        case RelayPacketType::relay_error: {
            if (datagram.size() != kRelayErrorSize) return fail("relay error of wrong size");
            if (body[0] == 0 || !known_code(body[0])) return fail("relay error with unknown code");
            RelayError error;
            error.code = static_cast<RelayCode>(body[0]);
            error.context = take<8>(body.subspan(1));
            return RelayPacket{error};
        }
        case RelayPacketType::directory_publish: {
            if (body.empty() || body.size() > kMaxDirectoryValue) return fail("directory publish of wrong size");
            return RelayPacket{DirectoryPublish{body}};
        }
        case RelayPacketType::directory_lookup: {
            if (datagram.size() != kDirectoryLookupSize) return fail("directory lookup of wrong size");
            DirectoryLookup lookup;
            lookup.nonce = take<8>(body);
            lookup.target = identity::PeerId(take<32>(body.subspan(8)));
            return RelayPacket{lookup};
        }
        case RelayPacketType::directory_record: {
            if (body.size() < 8 || body.size() > 8 + kMaxDirectoryValue) return fail("directory record of wrong size");
            DirectoryRecord record;
            record.nonce = take<8>(body);
            record.signed_record = body.subspan(8);
            return RelayPacket{record};
        }
        case RelayPacketType::directory_inbox: {
            if (body.size() <= 32 || body.size() > 32 + kMaxDirectoryValue) return fail("directory inbox of wrong size");
            return RelayPacket{DirectoryInbox{identity::PeerId(take<32>(body)), body.subspan(32)}};
        }
    }
    return fail("not a relay packet");
}

std::vector<std::uint8_t> allocation_signed_message(const identity::PeerId& relay, const identity::PeerId& client,
                                                    const RelayCookie& cookie) {
    std::vector<std::uint8_t> message(kAllocationContextSize + 32 + 32 + cookie.size());
    std::memcpy(message.data(), kAllocationContext, kAllocationContextSize);
    std::memcpy(message.data() + kAllocationContextSize, relay.key().data(), 32);
    std::memcpy(message.data() + kAllocationContextSize + 32, client.key().data(), 32);
    std::memcpy(message.data() + kAllocationContextSize + 64, cookie.data(), cookie.size());
    return message;
}

std::vector<std::uint8_t> encode_allocate_request(const identity::PeerId& client, const RelayNonce& nonce) {
    auto out = start(RelayPacketType::allocate_request, kAllocateRequestSize);
    append(out, client.key());
    append(out, nonce);
    out.resize(kAllocateRequestSize, 0);
    return out;
}

std::vector<std::uint8_t> encode_allocate_challenge(const RelayNonce& nonce, const RelayCookie& cookie) {
    auto out = start(RelayPacketType::allocate_challenge, kAllocateChallengeSize);
    append(out, nonce);
    append(out, cookie);
    return out;
}

std::vector<std::uint8_t> encode_allocate_confirm(const identity::KeyPair& client, const identity::PeerId& relay,
                                                  const RelayCookie& cookie) {
    auto out = start(RelayPacketType::allocate_confirm, kAllocateConfirmSize);
    append(out, client.public_key());
    append(out, cookie);
    append(out, client.sign(allocation_signed_message(relay, client.id(), cookie)));
    return out;
}

std::vector<std::uint8_t> encode_allocate_result(const AllocateResult& result) {
    auto out = start(RelayPacketType::allocate_result, kAllocateResultSize);
    append(out, result.cookie);
    out.push_back(static_cast<std::uint8_t>(result.code));
    append_be32(out, result.lifetime_s);
    if (result.observed.is_v4()) {
        out.push_back(4);
        out.insert(out.end(), result.observed.address_bytes(), result.observed.address_bytes() + 4);
        out.push_back(static_cast<std::uint8_t>(result.observed.port() >> 8));
        out.push_back(static_cast<std::uint8_t>(result.observed.port() & 0xff));
    } else {
        out.insert(out.end(), 7, 0);
    }
    append_be32(out, result.packets_per_s);
    append_be32(out, result.bytes_per_s);
    return out;
}

std::vector<std::uint8_t> encode_relay_send(const identity::PeerId& target, std::span<const std::uint8_t> inner) {
    auto out = start(RelayPacketType::relay_send, 32 + inner.size());
    append(out, target.key());
    append(out, inner);
    return out;
}

std::vector<std::uint8_t> encode_relay_deliver(RelayChannel channel, std::span<const std::uint8_t> inner) {
    auto out = start(RelayPacketType::relay_deliver, 4 + inner.size());
    append_be32(out, channel);
    append(out, inner);
    return out;
}

std::vector<std::uint8_t> encode_relay_reply(RelayChannel channel, std::span<const std::uint8_t> inner) {
    auto out = start(RelayPacketType::relay_reply, 4 + inner.size());
    append_be32(out, channel);
    append(out, inner);
    return out;
}

std::vector<std::uint8_t> encode_relay_error(const RelayError& error) {
    auto out = start(RelayPacketType::relay_error, kRelayErrorSize);
    out.push_back(static_cast<std::uint8_t>(error.code));
    append(out, error.context);
    return out;
}

std::vector<std::uint8_t> encode_directory_publish(std::span<const std::uint8_t> signed_record) {
    auto out = start(RelayPacketType::directory_publish, signed_record.size());
    append(out, signed_record);
    return out;
}

std::vector<std::uint8_t> encode_directory_lookup(const RelayNonce& nonce, const identity::PeerId& target) {
    auto out = start(RelayPacketType::directory_lookup, 8 + 32);
    append(out, nonce);
    append(out, target.key());
    return out;
}

std::vector<std::uint8_t> encode_directory_record(const RelayNonce& nonce, std::span<const std::uint8_t> signed_record) {
    auto out = start(RelayPacketType::directory_record, 8 + signed_record.size());
    append(out, nonce);
    append(out, signed_record);
    return out;
}

std::vector<std::uint8_t> encode_directory_inbox(const identity::PeerId& target, std::span<const std::uint8_t> message) {
    auto out = start(RelayPacketType::directory_inbox, 32 + message.size());
    append(out, target.key());
    append(out, message);
    return out;
}

}  // namespace keyhole::transport
