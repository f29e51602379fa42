// The IK handshake between two keyhole peers: round trips, what the responder
// learns, and hostile or broken messages.
#include "keyhole/transport/noise.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "keyhole/identity/key_pair.h"

namespace noise = keyhole::transport::noise;
using noise::Bytes;

namespace {

Bytes random_bytes(std::size_t n) {
    Bytes out(n);
    if (n > 0) randombytes_buf(out.data(), n);
    return out;
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

const Bytes kPrologue = text("keyhole/1 test");

struct Peers {
    noise::KeyPair initiator_keys = noise::KeyPair::generate();
    noise::KeyPair responder_keys = noise::KeyPair::generate();
};

// Both sides' results of a complete handshake.
struct Completed {
    noise::Session initiator;
    noise::Session responder;
    Bytes payload1_received;
    Bytes payload2_received;
    noise::PublicKey learned_initiator_key{};
};

Completed handshake(const Peers& peers, const Bytes& payload1, const Bytes& payload2) {
    noise::Initiator initiator(peers.initiator_keys, peers.responder_keys.public_key, kPrologue);
    noise::Responder responder(peers.responder_keys, kPrologue);
    Completed done;

    auto message1 = initiator.write_message1(payload1);
    EXPECT_TRUE(message1.ok()) << message1.error();
    EXPECT_EQ(message1->size(), noise::kMessage1Overhead + payload1.size());
    auto read1 = responder.read_message1(*message1);
    EXPECT_TRUE(read1.ok()) << read1.error();
    done.payload1_received = *read1;
    EXPECT_TRUE(responder.remote_static().has_value());
    if (responder.remote_static()) done.learned_initiator_key = *responder.remote_static();

    auto message2 = responder.write_message2(payload2);
    EXPECT_TRUE(message2.ok()) << message2.error();
    EXPECT_EQ(message2->size(), noise::kMessage2Overhead + payload2.size());
    auto read2 = initiator.read_message2(*message2);
    EXPECT_TRUE(read2.ok()) << read2.error();
    done.payload2_received = *read2;

    EXPECT_TRUE(initiator.complete());
    EXPECT_TRUE(responder.complete());
    auto init_session = initiator.split();
    auto resp_session = responder.split();
    EXPECT_TRUE(init_session.ok());
    EXPECT_TRUE(resp_session.ok());
    done.initiator = std::move(init_session).value();
    done.responder = std::move(resp_session).value();
    return done;
}

// A fresh handshake up to message 1 written, for tampering tests.
struct Message1 {
    Peers peers;
    Bytes message;
};

Message1 make_message1(const Bytes& payload) {
    Message1 m;
    noise::Initiator initiator(m.peers.initiator_keys, m.peers.responder_keys.public_key,
                               kPrologue);
    auto written = initiator.write_message1(payload);
    EXPECT_TRUE(written.ok());
    m.message = *written;
    return m;
}

TEST(NoiseHandshake, RoundTripWithRandomKeysAndPayloads) {
    for (std::size_t size : {0u, 1u, 17u, 200u, 1400u}) {
        SCOPED_TRACE("payload size " + std::to_string(size));
        Peers peers;
        const Bytes payload1 = random_bytes(size);
        const Bytes payload2 = random_bytes(size / 2 + 3);
        Completed done = handshake(peers, payload1, payload2);

        EXPECT_EQ(done.payload1_received, payload1);
        EXPECT_EQ(done.payload2_received, payload2);
        EXPECT_EQ(done.initiator.handshake_hash, done.responder.handshake_hash);

        // Transport in both directions, interleaved, with associated data.
        for (int round = 0; round < 5; ++round) {
            const Bytes ad = random_bytes(static_cast<std::size_t>(round));
            const Bytes up = random_bytes(static_cast<std::size_t>(round * 100));
            auto c = done.initiator.send.encrypt_with_ad(ad, up);
            ASSERT_TRUE(c.ok()) << c.error();
            auto p = done.responder.receive.decrypt_with_ad(ad, *c);
            ASSERT_TRUE(p.ok()) << p.error();
            EXPECT_EQ(*p, up);

            const Bytes down = random_bytes(static_cast<std::size_t>(round * 7 + 1));
            auto c2 = done.responder.send.encrypt_with_ad(ad, down);
            ASSERT_TRUE(c2.ok()) << c2.error();
            auto p2 = done.initiator.receive.decrypt_with_ad(ad, *c2);
            ASSERT_TRUE(p2.ok()) << p2.error();
            EXPECT_EQ(*p2, down);
        }
        EXPECT_EQ(done.initiator.send.nonce(), 5u);
        EXPECT_EQ(done.responder.receive.nonce(), 5u);
    }
}

TEST(NoiseHandshake, DirectionsUseDifferentKeys) {
    Peers peers;
    Completed done = handshake(peers, {}, {});
    const Bytes plain = text("same plaintext, same nonce");
    auto up = done.initiator.send.encrypt(0, {}, plain);
    auto down = done.responder.send.encrypt(0, {}, plain);
    ASSERT_TRUE(up.ok() && down.ok());
    EXPECT_NE(*up, *down);
    // A message cannot be reflected back to its sender.
    EXPECT_FALSE(done.initiator.receive.decrypt(0, {}, *up).ok());
}

TEST(NoiseHandshake, ResponderLearnsInitiatorStaticKey) {
    Peers peers;
    noise::Initiator initiator(peers.initiator_keys, peers.responder_keys.public_key, kPrologue);
    noise::Responder responder(peers.responder_keys, kPrologue);
    EXPECT_FALSE(responder.remote_static().has_value());

    auto message1 = initiator.write_message1(text("hello"));
    ASSERT_TRUE(message1.ok());
    // The static key travels encrypted: its bytes do not appear in the message.
    const auto& key = peers.initiator_keys.public_key;
    EXPECT_EQ(std::search(message1->begin(), message1->end(), key.begin(), key.end()),
              message1->end());

    ASSERT_TRUE(responder.read_message1(*message1).ok());
    ASSERT_TRUE(responder.remote_static().has_value());
    EXPECT_EQ(*responder.remote_static(), peers.initiator_keys.public_key);
}

// Noise static keys come from the Ed25519 identities, and a peer's key is
// derived from its ID alone.
TEST(NoiseHandshake, StaticKeysFromIdentities) {
    const auto alice = keyhole::identity::KeyPair::generate();
    const auto bob = keyhole::identity::KeyPair::generate();
    const auto alice_noise = noise::KeyPair::from_identity(alice);
    const auto bob_noise = noise::KeyPair::from_identity(bob);

    auto bob_key = noise::static_key_of(bob.id());
    ASSERT_TRUE(bob_key.ok()) << bob_key.error();
    EXPECT_EQ(*bob_key, bob_noise.public_key);
    // The public half matches the secret half.
    auto recomputed = noise::KeyPair::from_secret(alice_noise.secret.bytes());
    ASSERT_TRUE(recomputed.ok());
    EXPECT_EQ(recomputed->public_key, alice_noise.public_key);

    noise::Initiator initiator(alice_noise, *bob_key, kPrologue);
    noise::Responder responder(bob_noise, kPrologue);
    auto m1 = initiator.write_message1();
    ASSERT_TRUE(m1.ok());
    ASSERT_TRUE(responder.read_message1(*m1).ok());
    auto claimed = noise::static_key_of(alice.id());
    ASSERT_TRUE(claimed.ok());
    EXPECT_EQ(*responder.remote_static(), *claimed);
    auto m2 = responder.write_message2();
    ASSERT_TRUE(m2.ok());
    EXPECT_TRUE(initiator.read_message2(*m2).ok());
}

TEST(NoiseHandshake, InvalidPeerIdHasNoStaticKey) {
    keyhole::identity::PublicKeyBytes not_a_point{};
    not_a_point.fill(0xff);  // not a canonical Ed25519 encoding
    auto key = noise::static_key_of(keyhole::identity::PeerId(not_a_point));
    EXPECT_FALSE(key.ok());
}

TEST(NoiseHandshake, EveryFlippedByteOfMessage1IsRejected) {
    const Message1 m = make_message1(text("payload of message 1"));
    for (std::size_t i = 0; i < m.message.size(); ++i) {
        for (std::uint8_t mask : {0x01, 0x80}) {
            Bytes tampered = m.message;
            tampered[i] ^= mask;
            noise::Responder responder(m.peers.responder_keys, kPrologue);
            auto read = responder.read_message1(tampered);
            EXPECT_FALSE(read.ok()) << "byte " << i << " mask " << int(mask);
            EXPECT_FALSE(responder.remote_static().has_value()) << "byte " << i;
            EXPECT_FALSE(responder.write_message2().ok());
            EXPECT_FALSE(responder.split().ok());
        }
    }
    // The untouched message is fine.
    noise::Responder responder(m.peers.responder_keys, kPrologue);
    EXPECT_TRUE(responder.read_message1(m.message).ok());
}

TEST(NoiseHandshake, EveryFlippedByteOfMessage2IsRejected) {
    const Bytes payload2 = text("payload of message 2");
    const Peers peers;
    std::size_t length = 0;
    for (std::size_t i = 0;; ++i) {
        noise::Initiator initiator(peers.initiator_keys, peers.responder_keys.public_key,
                                   kPrologue);
        noise::Responder responder(peers.responder_keys, kPrologue);
        auto m1 = initiator.write_message1();
        ASSERT_TRUE(m1.ok());
        ASSERT_TRUE(responder.read_message1(*m1).ok());
        auto m2 = responder.write_message2(payload2);
        ASSERT_TRUE(m2.ok());
        length = m2->size();
        if (i == length) {
            EXPECT_TRUE(initiator.read_message2(*m2).ok());
            break;
        }
        Bytes tampered = *m2;
        tampered[i] ^= static_cast<std::uint8_t>(i % 2 ? 0x80 : 0x01);
        EXPECT_FALSE(initiator.read_message2(tampered).ok()) << "byte " << i;
        EXPECT_FALSE(initiator.complete());
        EXPECT_FALSE(initiator.split().ok());
        // Once failed, even the genuine message is refused.
        EXPECT_FALSE(initiator.read_message2(*m2).ok());
    }
    EXPECT_EQ(length, noise::kMessage2Overhead + payload2.size());
}

TEST(NoiseHandshake, TruncatedAndExtendedMessagesAreRejected) {
    const Message1 m = make_message1(text("abc"));
    for (std::size_t n = 0; n < m.message.size(); ++n) {
        noise::Responder responder(m.peers.responder_keys, kPrologue);
        auto read = responder.read_message1(std::span(m.message).first(n));
        EXPECT_FALSE(read.ok()) << "length " << n;
        if (n < noise::kMessage1Overhead) {
            EXPECT_TRUE(contains(read.error(), "too short")) << read.error();
        }
    }
    {
        Bytes longer = m.message;
        longer.push_back(0);
        noise::Responder responder(m.peers.responder_keys, kPrologue);
        EXPECT_FALSE(responder.read_message1(longer).ok());
    }
    {
        Bytes huge(noise::kMaxMessageLen + 1, 0x42);
        std::copy(m.message.begin(), m.message.end(), huge.begin());
        noise::Responder responder(m.peers.responder_keys, kPrologue);
        auto read = responder.read_message1(huge);
        EXPECT_FALSE(read.ok());
        EXPECT_TRUE(contains(read.error(), "too long")) << read.error();
    }

    // Message 2, truncated at every length.
    const Peers peers;
    for (std::size_t n = 0; n < noise::kMessage2Overhead + 4; ++n) {
        noise::Initiator initiator(peers.initiator_keys, peers.responder_keys.public_key,
                                   kPrologue);
        noise::Responder responder(peers.responder_keys, kPrologue);
        auto m1 = initiator.write_message1();
        ASSERT_TRUE(m1.ok());
        ASSERT_TRUE(responder.read_message1(*m1).ok());
        auto m2 = responder.write_message2(text("abcd"));
        ASSERT_TRUE(m2.ok());
        ASSERT_EQ(m2->size(), noise::kMessage2Overhead + 4);
        EXPECT_FALSE(initiator.read_message2(std::span(*m2).first(n)).ok()) << "length " << n;
    }
}

TEST(NoiseHandshake, WrongResponderKeyMakesMessage1Unreadable) {
    Peers peers;
    const auto someone_else = noise::KeyPair::generate();
    noise::Initiator initiator(peers.initiator_keys, someone_else.public_key, kPrologue);
    auto message1 = initiator.write_message1(text("for someone else"));
    ASSERT_TRUE(message1.ok());

    noise::Responder responder(peers.responder_keys, kPrologue);
    auto read = responder.read_message1(*message1);
    EXPECT_FALSE(read.ok());
    EXPECT_FALSE(responder.remote_static().has_value());

    // The intended responder reads it.
    noise::Responder intended(someone_else, kPrologue);
    EXPECT_TRUE(intended.read_message1(*message1).ok());
}

TEST(NoiseHandshake, PrologueMismatchFails) {
    Peers peers;
    noise::Initiator initiator(peers.initiator_keys, peers.responder_keys.public_key, kPrologue);
    noise::Responder responder(peers.responder_keys, text("keyhole/2 test"));
    auto message1 = initiator.write_message1();
    ASSERT_TRUE(message1.ok());
    EXPECT_FALSE(responder.read_message1(*message1).ok());
}

// IK message 1 can be replayed to the responder (it carries no responder
// contribution), but each answer has a fresh ephemeral, so the replayed
// session has other keys than the original, and the replayer cannot use them.
TEST(NoiseHandshake, ReplayedMessage1GivesDifferentSessionKeys) {
    Peers peers;
    noise::Initiator initiator(peers.initiator_keys, peers.responder_keys.public_key, kPrologue);
    auto message1 = initiator.write_message1(text("once"));
    ASSERT_TRUE(message1.ok());

    noise::Responder first(peers.responder_keys, kPrologue);
    ASSERT_TRUE(first.read_message1(*message1).ok());
    auto answer1 = first.write_message2();
    ASSERT_TRUE(answer1.ok());
    ASSERT_TRUE(initiator.read_message2(*answer1).ok());
    auto genuine = initiator.split();
    auto first_session = first.split();
    ASSERT_TRUE(genuine.ok() && first_session.ok());

    noise::Responder replayed(peers.responder_keys, kPrologue);
    ASSERT_TRUE(replayed.read_message1(*message1).ok());
    auto answer2 = replayed.write_message2();
    ASSERT_TRUE(answer2.ok());
    EXPECT_NE(*answer1, *answer2);
    auto replay_session = replayed.split();
    ASSERT_TRUE(replay_session.ok());

    EXPECT_NE(first_session->handshake_hash, replay_session->handshake_hash);
    const Bytes probe = text("probe");
    auto a = first_session->send.encrypt(0, {}, probe);
    auto b = replay_session->send.encrypt(0, {}, probe);
    auto c = first_session->receive.encrypt(0, {}, probe);
    auto d = replay_session->receive.encrypt(0, {}, probe);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
    EXPECT_NE(*a, *b);
    EXPECT_NE(*c, *d);
    // The genuine initiator's session matches the first responder only.
    EXPECT_TRUE(genuine->receive.decrypt(0, {}, *a).ok());
    EXPECT_FALSE(genuine->receive.decrypt(0, {}, *b).ok());
}

TEST(NoiseHandshake, LowOrderKeysAreRejected) {
    // 0, 1 and a point of order 8: X25519 with any clamped scalar gives zero.
    const std::vector<std::string> low_order = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    };
    for (const auto& hex : low_order) {
        SCOPED_TRACE(hex);
        noise::PublicKey bad{};
        ASSERT_EQ(sodium_hex2bin(bad.data(), bad.size(), hex.data(), hex.size(), nullptr, nullptr,
                                 nullptr),
                  0);

        // As the responder's static key: the initiator cannot even write.
        Peers peers;
        noise::Initiator initiator(peers.initiator_keys, bad, kPrologue);
        auto message1 = initiator.write_message1();
        ASSERT_FALSE(message1.ok());
        EXPECT_TRUE(contains(message1.error(), "all zero")) << message1.error();
        EXPECT_FALSE(initiator.write_message1().ok());

        // As the initiator's ephemeral in message 1.
        Message1 m = make_message1({});
        std::copy(bad.begin(), bad.end(), m.message.begin());
        noise::Responder responder(m.peers.responder_keys, kPrologue);
        auto read = responder.read_message1(m.message);
        ASSERT_FALSE(read.ok());
        EXPECT_TRUE(contains(read.error(), "all zero")) << read.error();

        // As the responder's ephemeral in message 2.
        noise::Initiator initiator2(peers.initiator_keys, peers.responder_keys.public_key,
                                    kPrologue);
        noise::Responder responder2(peers.responder_keys, kPrologue);
        auto m1 = initiator2.write_message1();
        ASSERT_TRUE(m1.ok());
        ASSERT_TRUE(responder2.read_message1(*m1).ok());
        auto m2 = responder2.write_message2();
        ASSERT_TRUE(m2.ok());
        std::copy(bad.begin(), bad.end(), m2->begin());
        auto read2 = initiator2.read_message2(*m2);
        ASSERT_FALSE(read2.ok());
        EXPECT_TRUE(contains(read2.error(), "all zero")) << read2.error();
    }
}

TEST(NoiseHandshake, MessagesOutOfOrderAreRefused) {
    Peers peers;
    noise::Initiator initiator(peers.initiator_keys, peers.responder_keys.public_key, kPrologue);
    noise::Responder responder(peers.responder_keys, kPrologue);

    EXPECT_FALSE(initiator.split().ok());
    EXPECT_FALSE(initiator.read_message2(Bytes(noise::kMessage2Overhead)).ok());
    EXPECT_FALSE(responder.write_message2().ok());
    EXPECT_FALSE(responder.split().ok());

    auto message1 = initiator.write_message1();
    ASSERT_TRUE(message1.ok());
    EXPECT_FALSE(initiator.write_message1().ok());
    ASSERT_TRUE(responder.read_message1(*message1).ok());
    EXPECT_FALSE(responder.read_message1(*message1).ok());
    auto message2 = responder.write_message2();
    ASSERT_TRUE(message2.ok());
    EXPECT_FALSE(responder.write_message2().ok());
    ASSERT_TRUE(initiator.read_message2(*message2).ok());
    EXPECT_FALSE(initiator.read_message2(*message2).ok());

    EXPECT_TRUE(initiator.split().ok());
    EXPECT_FALSE(initiator.split().ok());
    EXPECT_TRUE(responder.split().ok());
}

TEST(NoiseHandshake, PayloadSizeLimits) {
    Peers peers;
    noise::Initiator initiator(peers.initiator_keys, peers.responder_keys.public_key, kPrologue);
    // Too large: refused without spoiling the handshake.
    EXPECT_FALSE(initiator.write_message1(Bytes(noise::kMaxMessageLen - noise::kMessage1Overhead + 1)).ok());
    auto message1 = initiator.write_message1(Bytes(noise::kMaxMessageLen - noise::kMessage1Overhead, 7));
    ASSERT_TRUE(message1.ok()) << message1.error();
    EXPECT_EQ(message1->size(), noise::kMaxMessageLen);

    noise::Responder responder(peers.responder_keys, kPrologue);
    auto read = responder.read_message1(*message1);
    ASSERT_TRUE(read.ok()) << read.error();
    EXPECT_EQ(read->size(), noise::kMaxMessageLen - noise::kMessage1Overhead);
    EXPECT_FALSE(responder.write_message2(Bytes(noise::kMaxMessageLen - noise::kMessage2Overhead + 1)).ok());
    auto message2 = responder.write_message2(Bytes(noise::kMaxMessageLen - noise::kMessage2Overhead));
    ASSERT_TRUE(message2.ok());
    EXPECT_EQ(message2->size(), noise::kMaxMessageLen);
    EXPECT_TRUE(initiator.read_message2(*message2).ok());
}

TEST(NoiseHandshake, FixedEphemeralIsDeterministic) {
    Peers peers;
    const auto e_i = noise::KeyPair::generate();
    const auto e_r = noise::KeyPair::generate();
    Bytes first1, first2;
    for (int run = 0; run < 2; ++run) {
        noise::Initiator initiator(peers.initiator_keys, peers.responder_keys.public_key,
                                   kPrologue, e_i);
        noise::Responder responder(peers.responder_keys, kPrologue, e_r);
        auto m1 = initiator.write_message1(text("x"));
        ASSERT_TRUE(m1.ok());
        EXPECT_TRUE(std::equal(e_i.public_key.begin(), e_i.public_key.end(), m1->begin()));
        ASSERT_TRUE(responder.read_message1(*m1).ok());
        auto m2 = responder.write_message2(text("y"));
        ASSERT_TRUE(m2.ok());
        if (run == 0) {
            first1 = *m1;
            first2 = *m2;
        } else {
            EXPECT_EQ(*m1, first1);
            EXPECT_EQ(*m2, first2);
        }
    }
}

}  // namespace
