// The packet codec and session frames against hostile bytes: parse, never crash,
// reject what is not exactly right.
#include <gtest/gtest.h>

#include <random>

#include "keyhole/identity/key_pair.h"
#include "keyhole/transport/secure_session.h"
#include "keyhole/transport/wire.h"

namespace {

using namespace keyhole::transport;
using keyhole::identity::Endpoint;

std::vector<std::uint8_t> with_magic(std::uint8_t type, std::vector<std::uint8_t> body) {
    std::vector<std::uint8_t> out(kPacketMagic.begin(), kPacketMagic.end());
    out.push_back(type);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

// A pair of sessions as a Noise IK handshake between two identities makes them.
std::pair<SecureSession, SecureSession> session_pair() {
    const auto a = keyhole::identity::KeyPair::generate();
    const auto b = keyhole::identity::KeyPair::generate();
    const std::vector<std::uint8_t> prologue{'t'};
    noise::Initiator initiator(noise::KeyPair::from_identity(a), noise::static_key_of(b.id()).value(), prologue);
    noise::Responder responder(noise::KeyPair::from_identity(b), prologue);
    auto m1 = initiator.write_message1();
    EXPECT_TRUE(responder.read_message1(m1.value()).ok());
    auto m2 = responder.write_message2();
    EXPECT_TRUE(initiator.read_message2(m2.value()).ok());
    return {SecureSession(b.id(), 11, 22, std::move(initiator.split()).value()),
            SecureSession(a.id(), 22, 11, std::move(responder.split()).value())};
}

TEST(Wire, ReflectRequestRoundTripsAndIsPaddedAgainstAmplification) {
    const ReflectNonce nonce{1, 2, 3, 4, 5, 6, 7, 8};
    const auto request = encode_reflect_request(nonce);
    const auto response = encode_reflect_response(nonce, Endpoint::ipv4({203, 0, 113, 5}, 4222));
    EXPECT_GE(request.size(), response.size());
    auto parsed = parse_packet(request);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(std::get<ReflectRequest>(parsed.value()).nonce, nonce);
}

TEST(Wire, ReflectResponseCarriesTheObservedEndpoint) {
    const ReflectNonce nonce{9, 9, 9, 9, 9, 9, 9, 9};
    const auto observed = Endpoint::ipv4({198, 51, 100, 7}, 40000);
    auto parsed = parse_packet(encode_reflect_response(nonce, observed));
    ASSERT_TRUE(parsed.ok());
    const auto& response = std::get<ReflectResponse>(parsed.value());
    EXPECT_EQ(response.nonce, nonce);
    EXPECT_EQ(response.observed, observed);
}

TEST(Wire, HandshakeCarriesAConnectMessageThroughRelays) {
    const std::vector<std::uint8_t> message{1, 2, 3, 4, 5};
    const auto packet = encode_handshake(message);  // the parsed span points into it
    auto parsed = parse_packet(packet);
    ASSERT_TRUE(parsed.ok()) << parsed.error();
    ASSERT_TRUE(std::holds_alternative<Handshake>(parsed.value()));
    const auto& carried = std::get<Handshake>(parsed.value()).message;
    EXPECT_EQ(std::vector<std::uint8_t>(carried.begin(), carried.end()), message);
    EXPECT_FALSE(parse_packet(encode_handshake({})).ok());
    EXPECT_FALSE(parse_packet(encode_handshake(std::vector<std::uint8_t>(kMaxHandshakeMessage + 1))).ok());
}

TEST(Wire, MalformedPacketsAreRejected) {
    EXPECT_FALSE(parse_packet(with_magic(0x01, std::vector<std::uint8_t>(10))).ok());  // short request
    EXPECT_FALSE(parse_packet(with_magic(0x02, std::vector<std::uint8_t>(15))).ok());  // response, family 0
    EXPECT_FALSE(parse_packet(with_magic(0x20, std::vector<std::uint8_t>(20))).ok());  // frame without a tag
    EXPECT_FALSE(parse_packet(with_magic(0x7f, std::vector<std::uint8_t>(40))).ok());  // unknown type
}

TEST(Wire, RandomAndTruncatedBytesNeverCrashTheParser) {
    std::mt19937 random(7);
    for (int i = 0; i < 50000; ++i) {
        std::vector<std::uint8_t> body(random() % 200);
        for (auto& byte : body) byte = static_cast<std::uint8_t>(random());
        const auto type = static_cast<std::uint8_t>(i % 3 == 0 ? 0x20 : random());
        auto datagram = with_magic(type, body);
        (void)parse_packet(datagram);
        (void)parse_packet(std::span<const std::uint8_t>(datagram).first(random() % (datagram.size() + 1)));
    }
}

TEST(SecureSession, FrameRoundTripsAndIsAcceptedOnce) {
    auto [a, b] = session_pair();
    const std::vector<std::uint8_t> text{'h', 'i'};
    auto datagram = a.seal(text);
    ASSERT_TRUE(datagram.ok());
    auto packet = parse_packet(datagram.value());
    ASSERT_TRUE(packet.ok());
    auto opened = b.open(std::get<Frame>(packet.value()));
    ASSERT_TRUE(opened.ok()) << opened.error();
    EXPECT_EQ(opened.value(), text);
    EXPECT_FALSE(b.open(std::get<Frame>(packet.value())).ok()) << "a replayed frame was accepted";
}

TEST(SecureSession, EveryFlippedBitIsRejected) {
    auto [a, b] = session_pair();
    auto datagram = a.seal(std::vector<std::uint8_t>{'x', 'y', 'z'}).value();
    for (std::size_t i = kPacketHeaderSize; i < datagram.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            auto tampered = datagram;
            tampered[i] ^= static_cast<std::uint8_t>(1 << bit);
            auto packet = parse_packet(tampered);
            if (!packet) continue;
            auto* frame = std::get_if<Frame>(&packet.value());
            ASSERT_NE(frame, nullptr);
            EXPECT_FALSE(b.open(*frame).ok()) << "byte " << i << " bit " << bit;
        }
    }
    // The untouched frame still opens: the rejections changed no state.
    EXPECT_TRUE(b.open(std::get<Frame>(parse_packet(datagram).value())).ok());
}

TEST(SecureSession, RandomFramesNeverOpen) {
    auto [a, b] = session_pair();
    std::mt19937 random(11);
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::uint8_t> body(12 + 16 + random() % 100);
        for (auto& byte : body) byte = static_cast<std::uint8_t>(random());
        body[0] = 0; body[1] = 0; body[2] = 0; body[3] = 22;  // right receiver index, so decryption is tried
        auto packet = parse_packet(with_magic(0x20, body));
        ASSERT_TRUE(packet.ok());
        EXPECT_FALSE(b.open(std::get<Frame>(packet.value())).ok());
    }
}

}  // namespace
