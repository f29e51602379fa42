// keyhole's Noise_IK_25519_ChaChaPoly_BLAKE2b against data from independent
// sources: the published cacophony test vectors (tests/noise_vectors/), and
// HMAC / HKDF / BLAKE2b values computed with CPython's hmac and hashlib.
#include "keyhole/transport/noise.h"

#include <gtest/gtest.h>

#include "support/hex.h"
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#ifndef KEYHOLE_NOISE_VECTORS_DIR
#error "KEYHOLE_NOISE_VECTORS_DIR must name tests/noise_vectors (set by tests/CMakeLists.txt)"
#endif

namespace noise = keyhole::transport::noise;
using noise::Bytes;

namespace {

Bytes from_hex(const std::string& hex) {
    auto bytes = keyhole::testing::parse_hex(hex);
    if (!bytes) ADD_FAILURE() << "bad hex in test data: " << hex;
    return bytes.value_or(Bytes{});
}

using keyhole::testing::to_hex;

noise::KeyPair key_pair(const std::string& secret_hex) {
    auto kp = noise::KeyPair::from_secret(from_hex(secret_hex));
    EXPECT_TRUE(kp.ok()) << (kp.ok() ? "" : kp.error());
    return kp.ok() ? std::move(kp).value() : noise::KeyPair{};
}

nlohmann::json load_vectors() {
    const std::string path =
        std::string(KEYHOLE_NOISE_VECTORS_DIR) + "/noise_ik_25519_chachapoly_blake2b.json";
    std::ifstream in(path);
    if (!in) {
        ADD_FAILURE() << "cannot open " << path;
        return {};
    }
    return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

TEST(NoiseVectors, FileHoldsTheIkBlake2bVectors) {
    const auto doc = load_vectors();
    ASSERT_TRUE(doc.is_object());
    ASSERT_TRUE(doc.contains("vectors"));
    int matching = 0;
    for (const auto& v : doc["vectors"])
        if (v.value("protocol_name", "") == noise::kProtocolName) ++matching;
    EXPECT_GE(matching, 1);
}

// Each vector: message 0 is the initiator's handshake message, 1 the
// responder's; after the split, transport messages alternate initiator,
// responder, initiator, ... each with an empty associated data.
TEST(NoiseVectors, CacophonyIkMessagesAndHandshakeHash) {
    const auto doc = load_vectors();
    ASSERT_TRUE(doc.contains("vectors"));
    int checked = 0;
    for (const auto& v : doc["vectors"]) {
        if (v.value("protocol_name", "") != noise::kProtocolName) continue;
        SCOPED_TRACE("vector " + std::to_string(checked));
        ASSERT_FALSE(v.contains("init_psks") || v.contains("resp_psks"));

        const auto init_static = key_pair(v["init_static"].get<std::string>());
        const auto init_ephemeral = key_pair(v["init_ephemeral"].get<std::string>());
        const auto resp_static = key_pair(v["resp_static"].get<std::string>());
        const auto resp_ephemeral = key_pair(v["resp_ephemeral"].get<std::string>());
        const Bytes remote = from_hex(v["init_remote_static"].get<std::string>());
        ASSERT_EQ(to_hex(remote), to_hex(resp_static.public_key));

        const Bytes init_prologue = from_hex(v.value("init_prologue", ""));
        const Bytes resp_prologue = from_hex(v.value("resp_prologue", ""));
        noise::Initiator initiator(init_static, resp_static.public_key, init_prologue,
                                   init_ephemeral);
        noise::Responder responder(resp_static, resp_prologue, resp_ephemeral);

        const auto& messages = v["messages"];
        ASSERT_GE(messages.size(), 2u);

        // -> e, es, s, ss
        const Bytes payload1 = from_hex(messages[0]["payload"].get<std::string>());
        auto message1 = initiator.write_message1(payload1);
        ASSERT_TRUE(message1.ok()) << message1.error();
        EXPECT_EQ(to_hex(*message1), messages[0]["ciphertext"].get<std::string>());
        auto read1 = responder.read_message1(*message1);
        ASSERT_TRUE(read1.ok()) << read1.error();
        EXPECT_EQ(to_hex(*read1), to_hex(payload1));
        ASSERT_TRUE(responder.remote_static().has_value());
        EXPECT_EQ(to_hex(*responder.remote_static()), to_hex(init_static.public_key));

        // <- e, ee, se
        const Bytes payload2 = from_hex(messages[1]["payload"].get<std::string>());
        auto message2 = responder.write_message2(payload2);
        ASSERT_TRUE(message2.ok()) << message2.error();
        EXPECT_EQ(to_hex(*message2), messages[1]["ciphertext"].get<std::string>());
        auto read2 = initiator.read_message2(*message2);
        ASSERT_TRUE(read2.ok()) << read2.error();
        EXPECT_EQ(to_hex(*read2), to_hex(payload2));

        auto init_session = initiator.split();
        auto resp_session = responder.split();
        ASSERT_TRUE(init_session.ok()) << init_session.error();
        ASSERT_TRUE(resp_session.ok()) << resp_session.error();
        const auto expected_hash = v["handshake_hash"].get<std::string>();
        EXPECT_EQ(to_hex(init_session->handshake_hash), expected_hash);
        EXPECT_EQ(to_hex(resp_session->handshake_hash), expected_hash);
        EXPECT_EQ(to_hex(initiator.handshake_hash()), expected_hash);

        // Transport messages, checked through both the counting and the
        // explicit-nonce interfaces.
        std::uint64_t sent_by[2] = {0, 0};
        for (std::size_t i = 2; i < messages.size(); ++i) {
            SCOPED_TRACE("transport message " + std::to_string(i));
            const bool from_initiator = i % 2 == 0;
            auto& sender = from_initiator ? init_session->send : resp_session->send;
            auto& receiver = from_initiator ? resp_session->receive : init_session->receive;
            const Bytes payload = from_hex(messages[i]["payload"].get<std::string>());
            const auto expected = messages[i]["ciphertext"].get<std::string>();
            const std::uint64_t nonce = sent_by[from_initiator ? 0 : 1]++;

            auto explicit_ct = sender.encrypt(nonce, {}, payload);
            ASSERT_TRUE(explicit_ct.ok()) << explicit_ct.error();
            EXPECT_EQ(to_hex(*explicit_ct), expected);
            auto explicit_pt = receiver.decrypt(nonce, {}, from_hex(expected));
            ASSERT_TRUE(explicit_pt.ok()) << explicit_pt.error();
            EXPECT_EQ(to_hex(*explicit_pt), to_hex(payload));

            ASSERT_EQ(sender.nonce(), nonce);
            auto ciphertext = sender.encrypt_with_ad({}, payload);
            ASSERT_TRUE(ciphertext.ok()) << ciphertext.error();
            EXPECT_EQ(to_hex(*ciphertext), expected);
            auto plaintext = receiver.decrypt_with_ad({}, *ciphertext);
            ASSERT_TRUE(plaintext.ok()) << plaintext.error();
            EXPECT_EQ(to_hex(*plaintext), to_hex(payload));
        }
        ++checked;
    }
    EXPECT_GE(checked, 1);
}

// Expected values computed with CPython 3:
//   hmac.new(key, data, hashlib.blake2b).hexdigest()
// (RFC 2104 with BLAKE2b's 128-byte block), and the spec's HKDF on top of it.
TEST(NoisePrimitives, HmacBlake2bMatchesRfc2104Reference) {
    Bytes key(64);
    for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
    const std::string data = "keyhole hmac test";
    const Bytes data_bytes(data.begin(), data.end());
    EXPECT_EQ(to_hex(noise::detail::hmac(key, data_bytes)),
              "2f67cf2b24b1c723989203857114e7c848b5240eb77f7eeeb4c4125a2d0ebd86"
              "a8ee1d643fd7d7e348f32857add858f853c7f7972b30dabb01882865bc7e8f01");

    // Not BLAKE2b's keyed mode.
    std::array<std::uint8_t, 64> keyed{};
    crypto_generichash_blake2b(keyed.data(), keyed.size(), data_bytes.data(), data_bytes.size(),
                               key.data(), key.size());
    EXPECT_NE(to_hex(keyed), to_hex(noise::detail::hmac(key, data_bytes)));

    // A key longer than the block is hashed first.
    const Bytes long_key(200, 0xaa);
    const std::string data2 = "key longer than the block";
    EXPECT_EQ(to_hex(noise::detail::hmac(long_key, Bytes(data2.begin(), data2.end()))),
              "73b52533549bc1bc5255a6e29e7f5c48c2720a7643ae04ad0e1c939812e6840b"
              "8b389d2d11f2757c88e6d84c7173be902544e2162667e3ce6d3e085e3863de05");

    EXPECT_EQ(to_hex(noise::detail::hmac({}, {})),
              "198cd2006f66ff83fbbd913f78aca2251caf4f19fe9475aade8cf2091b99a684"
              "66775177424f58286886cbae8229644cec747237d4b721735485e17372fdf59c");
}

TEST(NoisePrimitives, HkdfTwoAndThreeOutputs) {
    std::array<std::uint8_t, 64> ck{};
    ck.fill(0x0b);
    Bytes ikm(32);
    for (std::size_t i = 0; i < ikm.size(); ++i) ikm[i] = static_cast<std::uint8_t>(i);

    noise::detail::HkdfOutput three;
    noise::detail::hkdf(ck, ikm, 3, three);
    EXPECT_EQ(to_hex(three.out1),
              "58d0bebc9c510df5c980759f4eb6616b52b40a8c127f2aa44c62222c1468b843"
              "3806d669bd667e2a6c7ca542d545e440a4530873a96d745bd33211ec12a238ce");
    EXPECT_EQ(to_hex(three.out2),
              "53cb79f1985a646154d617807601683e3cc1cd279423a4e7775686176934b414"
              "9cd558d805002ec26280de4a683cd8311375808c0f299a07d9a5d8bfabcb1f4a");
    EXPECT_EQ(to_hex(three.out3),
              "4ce9de1d8dec76a61676ede4ba0bf1a2b8644edadc00457df32cb2fed9e74b09"
              "1c91204111b41ee41a7c0f24850135c298f60c23dc7b3a2ec503e7f95522f613");

    noise::detail::HkdfOutput two;
    noise::detail::hkdf(ck, ikm, 2, two);
    EXPECT_EQ(to_hex(two.out1), to_hex(three.out1));
    EXPECT_EQ(to_hex(two.out2), to_hex(three.out2));
    EXPECT_EQ(two.out3, noise::HandshakeHash{});
}

TEST(NoisePrimitives, HashIsBlake2b512) {
    const std::string abc = "abc";
    EXPECT_EQ(to_hex(noise::detail::hash(Bytes(abc.begin(), abc.end()))),
              "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
              "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
}

}  // namespace
