// Relay announcements: sign and verify; forged, altered, expired, future,
// oversized and malformed ones are refused with a reason.
#include <gtest/gtest.h>

#include <random>

#include "keyhole/identity/relay_announcement.h"

namespace {

using namespace keyhole::identity;

constexpr std::uint64_t kNow = 1'800'000'000'000;  // Unix ms

RelayAnnouncement sample(const KeyPair& key) {
    RelayAnnouncement a;
    a.relay = key.id();
    a.udp = Endpoint::parse("198.51.100.7:4224").value();
    a.tcp = Endpoint::parse("198.51.100.7:443").value();
    a.capacity = 1000;
    a.free = 990;
    a.max_bandwidth = 12'500'000;
    a.issued_ms = kNow;
    a.expires_ms = kNow + 30 * 60 * 1000;
    return a;
}

TEST(RelayAnnouncement, SignedAnnouncementVerifies) {
    const auto key = KeyPair::generate();
    const auto bytes = encode_signed_announcement(sample(key), key);
    EXPECT_LE(bytes.size(), kMaxRelayAnnouncementSize);
    auto decoded = decode_verified_announcement(bytes, kNow + 1000);
    ASSERT_TRUE(decoded.ok()) << decoded.error();
    EXPECT_EQ(decoded.value(), sample(key));
}

TEST(RelayAnnouncement, WithoutTcpEndpointVerifies) {
    const auto key = KeyPair::generate();
    auto a = sample(key);
    a.tcp = Endpoint();
    auto decoded = decode_verified_announcement(encode_signed_announcement(a, key), kNow);
    ASSERT_TRUE(decoded.ok()) << decoded.error();
    EXPECT_TRUE(decoded->tcp.empty());
}

TEST(RelayAnnouncement, SignatureByAnotherKeyIsRejected) {
    const auto relay = KeyPair::generate();
    const auto forger = KeyPair::generate();
    auto bytes = encode_signed_announcement(sample(forger), forger);
    // Put the real relay's key in place of the forger's: the signature no longer holds.
    const auto at = std::search(bytes.begin(), bytes.end(), forger.public_key().begin(), forger.public_key().end());
    ASSERT_NE(at, bytes.end());
    std::copy(relay.public_key().begin(), relay.public_key().end(), at);
    auto decoded = decode_verified_announcement(bytes, kNow);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error(), "bad signature");
}

TEST(RelayAnnouncement, AlteredFieldIsRejected) {
    const auto key = KeyPair::generate();
    const auto bytes = encode_signed_announcement(sample(key), key);
    // Change the UDP port text "4224" to "4225".
    auto altered = bytes;
    const std::string port = "4224";
    const auto at = std::search(altered.begin(), altered.end(), port.begin(), port.end());
    ASSERT_NE(at, altered.end());
    *(at + 3) = '5';
    auto decoded = decode_verified_announcement(altered, kNow);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error(), "bad signature");
}

TEST(RelayAnnouncement, ExpiredIsRejected) {
    const auto key = KeyPair::generate();
    const auto a = sample(key);
    auto decoded = decode_verified_announcement(encode_signed_announcement(a, key), a.expires_ms);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error(), "relay announcement expired");
}

TEST(RelayAnnouncement, FromTheFutureIsRejected) {
    const auto key = KeyPair::generate();
    auto a = sample(key);
    a.issued_ms = kNow + kRelayClockSkewMs + 1000;
    a.expires_ms = a.issued_ms + 60'000;
    auto decoded = decode_verified_announcement(encode_signed_announcement(a, key), kNow);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error(), "relay announcement issued in the future");

    auto pinned = sample(key);
    pinned.expires_ms = kNow + kMaxRelayAnnouncementLifetimeMs + 1000;
    decoded = decode_verified_announcement(encode_signed_announcement(pinned, key), kNow);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error(), "relay announcement valid for too long");
}

TEST(RelayAnnouncement, OversizedEmptyAndTrailingBytesAreRejected) {
    const auto key = KeyPair::generate();
    auto bytes = encode_signed_announcement(sample(key), key);
    EXPECT_FALSE(decode_verified_announcement({}, kNow).ok());
    EXPECT_FALSE(decode_verified_announcement(std::vector<std::uint8_t>(kMaxRelayAnnouncementSize + 1, 0x90), kNow).ok());
    auto trailing = bytes;
    trailing.push_back(0);
    auto decoded = decode_verified_announcement(trailing, kNow);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error(), "trailing bytes after relay announcement");
}

TEST(RelayAnnouncement, MissingUdpEndpointDoesNotVerify) {
    const auto key = KeyPair::generate();
    auto a = sample(key);
    a.udp = Endpoint();
    EXPECT_FALSE(decode_verified_announcement(encode_signed_announcement(a, key), kNow).ok());
}

TEST(RelayAnnouncement, TruncationsAndBitFlipsAreRejectedWithoutCrashing) {
    const auto key = KeyPair::generate();
    const auto bytes = encode_signed_announcement(sample(key), key);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut)
        EXPECT_FALSE(decode_verified_announcement(std::span(bytes).first(cut), kNow).ok()) << cut;
    std::mt19937 random(5);
    for (int i = 0; i < 5000; ++i) {
        auto flipped = bytes;
        flipped[random() % flipped.size()] ^= static_cast<std::uint8_t>(1u << (random() % 8));
        EXPECT_FALSE(decode_verified_announcement(flipped, kNow).ok());
    }
    for (int i = 0; i < 5000; ++i) {
        std::vector<std::uint8_t> garbage(random() % 200);
        for (auto& b : garbage) b = static_cast<std::uint8_t>(random());
        if (!garbage.empty()) garbage[0] = static_cast<std::uint8_t>(0x90 + random() % 16);
        (void)decode_verified_announcement(garbage, kNow);
    }
}

}  // namespace
