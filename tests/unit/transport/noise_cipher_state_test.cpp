// CipherState: the counting and explicit-nonce interfaces, the nonce format,
// the reserved nonce, rekey, and hostile ciphertexts.
#include "keyhole/transport/noise.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>

namespace noise = keyhole::transport::noise;
using noise::Bytes;

namespace {

std::array<std::uint8_t, noise::kKeyLen> random_key() {
    std::array<std::uint8_t, noise::kKeyLen> key{};
    randombytes_buf(key.data(), key.size());
    return key;
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

// libsodium directly, with the nonce the spec defines for ChaChaPoly.
Bytes reference_encrypt(const std::array<std::uint8_t, 32>& key, std::uint64_t n, const Bytes& ad,
                        const Bytes& plaintext) {
    std::array<std::uint8_t, 12> nonce{};
    for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
    Bytes out(plaintext.size() + 16);
    unsigned long long length = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &length, plaintext.data(),
                                              plaintext.size(), ad.data(), ad.size(), nullptr,
                                              nonce.data(), key.data());
    out.resize(length);
    return out;
}

TEST(NoiseCipherState, NonceIsFourZeroBytesAndLittleEndianCounter) {
    const auto key = random_key();
    noise::CipherState cipher(key);
    const Bytes ad = text("ad"), plain = text("plaintext");
    for (std::uint64_t n : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0x0102030405060708},
                            noise::kMaxNonce - 1}) {
        auto c = cipher.encrypt(n, ad, plain);
        ASSERT_TRUE(c.ok()) << c.error();
        EXPECT_EQ(*c, reference_encrypt(key, n, ad, plain)) << "nonce " << n;
    }
}

TEST(NoiseCipherState, CountingNonceMovesOnlyOnSuccess) {
    const auto key = random_key();
    noise::CipherState sender(key), receiver(key);
    auto c0 = sender.encrypt_with_ad({}, text("zero"));
    auto c1 = sender.encrypt_with_ad({}, text("one"));
    ASSERT_TRUE(c0.ok() && c1.ok());
    EXPECT_EQ(sender.nonce(), 2u);
    EXPECT_EQ(*c0, reference_encrypt(key, 0, {}, text("zero")));
    EXPECT_EQ(*c1, reference_encrypt(key, 1, {}, text("one")));

    // Out of order: c1 first fails and does not move the counter.
    EXPECT_FALSE(receiver.decrypt_with_ad({}, *c1).ok());
    EXPECT_EQ(receiver.nonce(), 0u);
    auto p0 = receiver.decrypt_with_ad({}, *c0);
    ASSERT_TRUE(p0.ok());
    EXPECT_EQ(*p0, text("zero"));
    EXPECT_EQ(receiver.nonce(), 1u);
    EXPECT_TRUE(receiver.decrypt_with_ad({}, *c1).ok());
    EXPECT_EQ(receiver.nonce(), 2u);
}

TEST(NoiseCipherState, ExplicitNonceLeavesCounterAlone) {
    const auto key = random_key();
    noise::CipherState sender(key), receiver(key);
    auto c = sender.encrypt(41, text("ad"), text("hi"));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(sender.nonce(), 0u);
    // Any order, any number of times (replay protection is the caller's).
    for (int i = 0; i < 2; ++i) {
        auto p = receiver.decrypt(41, text("ad"), *c);
        ASSERT_TRUE(p.ok());
        EXPECT_EQ(*p, text("hi"));
    }
    EXPECT_EQ(receiver.nonce(), 0u);
    EXPECT_FALSE(receiver.decrypt(42, text("ad"), *c).ok());
    EXPECT_FALSE(receiver.decrypt(41, text("other ad"), *c).ok());
    EXPECT_FALSE(receiver.decrypt(41, {}, *c).ok());
}

TEST(NoiseCipherState, HostileCiphertexts) {
    const auto key = random_key();
    noise::CipherState receiver(key);
    auto c = noise::CipherState(key).encrypt(0, {}, text("message"));
    ASSERT_TRUE(c.ok());
    for (std::size_t i = 0; i < c->size(); ++i) {
        Bytes tampered = *c;
        tampered[i] ^= 0x01;
        EXPECT_FALSE(receiver.decrypt(0, {}, tampered).ok()) << "byte " << i;
    }
    for (std::size_t n = 0; n < c->size(); ++n)
        EXPECT_FALSE(receiver.decrypt(0, {}, std::span(*c).first(n)).ok()) << "length " << n;
    EXPECT_FALSE(receiver.decrypt(0, {}, Bytes(noise::kMaxMessageLen + 1)).ok());
    EXPECT_FALSE(receiver.decrypt_with_ad({}, Bytes(3)).ok());
    EXPECT_EQ(receiver.nonce(), 0u);

    // Empty plaintext: only the tag.
    auto empty = noise::CipherState(key).encrypt(5, {}, {});
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(empty->size(), noise::kTagLen);
    auto p = receiver.decrypt(5, {}, *empty);
    ASSERT_TRUE(p.ok());
    EXPECT_TRUE(p->empty());
}

TEST(NoiseCipherState, MessageSizeLimit) {
    noise::CipherState cipher(random_key());
    auto largest = cipher.encrypt(0, {}, Bytes(noise::kMaxPlaintextLen));
    ASSERT_TRUE(largest.ok());
    EXPECT_EQ(largest->size(), noise::kMaxMessageLen);
    EXPECT_TRUE(cipher.decrypt(0, {}, *largest).ok());
    EXPECT_FALSE(cipher.encrypt(0, {}, Bytes(noise::kMaxPlaintextLen + 1)).ok());
    EXPECT_FALSE(cipher.encrypt_with_ad({}, Bytes(noise::kMaxPlaintextLen + 1)).ok());
    EXPECT_EQ(cipher.nonce(), 0u);
}

TEST(NoiseCipherState, ReservedNonceAndExhaustion) {
    noise::CipherState cipher(random_key());
    EXPECT_FALSE(cipher.encrypt(noise::kMaxNonce, {}, text("x")).ok());
    EXPECT_FALSE(cipher.decrypt(noise::kMaxNonce, {}, Bytes(20)).ok());

    cipher.set_nonce(noise::kMaxNonce - 1);
    EXPECT_TRUE(cipher.encrypt_with_ad({}, text("last")).ok());
    EXPECT_EQ(cipher.nonce(), noise::kMaxNonce);
    auto refused = cipher.encrypt_with_ad({}, text("one too many"));
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().find("exhausted"), std::string::npos);
    EXPECT_FALSE(cipher.decrypt_with_ad({}, Bytes(20)).ok());
}

TEST(NoiseCipherState, WithoutKey) {
    noise::CipherState empty;
    EXPECT_FALSE(empty.has_key());
    // The spec's EncryptWithAd / DecryptWithAd pass data through without a key...
    auto passed = empty.encrypt_with_ad(text("ad"), text("clear"));
    ASSERT_TRUE(passed.ok());
    EXPECT_EQ(*passed, text("clear"));
    EXPECT_EQ(empty.nonce(), 0u);
    // ...but the explicit-nonce transport calls and rekey need one.
    EXPECT_FALSE(empty.encrypt(0, {}, text("x")).ok());
    EXPECT_FALSE(empty.decrypt(0, {}, Bytes(20)).ok());
    EXPECT_FALSE(empty.rekey().ok());
}

TEST(NoiseCipherState, RekeyFollowsTheSpec) {
    const auto key = random_key();
    noise::CipherState a(key), b(key);
    a.set_nonce(7);
    ASSERT_TRUE(a.rekey().ok());
    EXPECT_EQ(a.nonce(), 7u);  // rekey keeps n

    // REKEY(k) = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes).
    const Bytes block = reference_encrypt(key, noise::kMaxNonce, {}, Bytes(32, 0));
    std::array<std::uint8_t, 32> expected_key{};
    std::copy(block.begin(), block.begin() + 32, expected_key.begin());
    auto c = a.encrypt(3, {}, text("after rekey"));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(*c, reference_encrypt(expected_key, 3, {}, text("after rekey")));

    // Both ends rekey in step: still in contact; one end only: not.
    EXPECT_FALSE(b.decrypt(3, {}, *c).ok());
    ASSERT_TRUE(b.rekey().ok());
    EXPECT_TRUE(b.decrypt(3, {}, *c).ok());
}

TEST(NoiseCipherState, MovedFromStateHasNoKey) {
    noise::CipherState original(random_key());
    original.set_nonce(9);
    noise::CipherState moved(std::move(original));
    EXPECT_TRUE(moved.has_key());
    EXPECT_EQ(moved.nonce(), 9u);
    EXPECT_FALSE(original.has_key());  // NOLINT(bugprone-use-after-move): checking the wipe
    EXPECT_FALSE(original.encrypt(0, {}, text("x")).ok());

    noise::CipherState assigned;
    assigned = std::move(moved);
    EXPECT_TRUE(assigned.has_key());
    EXPECT_FALSE(moved.has_key());  // NOLINT(bugprone-use-after-move)
}

TEST(NoiseSymmetricState, InitializeMixHashAndSplit) {
    // A name of at most HASHLEN bytes is zero-padded; a longer one is hashed.
    noise::SymmetricState shortname(noise::kProtocolName);
    noise::HandshakeHash padded{};
    std::copy(noise::kProtocolName.begin(), noise::kProtocolName.end(), padded.begin());
    EXPECT_EQ(shortname.handshake_hash(), padded);
    EXPECT_FALSE(shortname.has_key());

    const std::string long_name(80, 'N');
    noise::SymmetricState longname(long_name);
    EXPECT_EQ(longname.handshake_hash(), noise::detail::hash(text(long_name)));

    // MixHash(data) = HASH(h || data).
    Bytes joined(padded.begin(), padded.end());
    const Bytes data = text("data");
    joined.insert(joined.end(), data.begin(), data.end());
    shortname.mix_hash(data);
    EXPECT_EQ(shortname.handshake_hash(), noise::detail::hash(joined));

    // Before MixKey EncryptAndHash is the identity; after it, a real cipher.
    auto clear = shortname.encrypt_and_hash(text("clear"));
    ASSERT_TRUE(clear.ok());
    EXPECT_EQ(*clear, text("clear"));
    shortname.mix_key(Bytes(32, 1));
    EXPECT_TRUE(shortname.has_key());
    auto sealed = shortname.encrypt_and_hash(text("sealed"));
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(sealed->size(), 6 + noise::kTagLen);

    auto [c1, c2] = shortname.split();
    EXPECT_TRUE(c1.has_key());
    EXPECT_TRUE(c2.has_key());
    auto x = c1.encrypt(0, {}, text("x"));
    auto y = c2.encrypt(0, {}, text("x"));
    ASSERT_TRUE(x.ok() && y.ok());
    EXPECT_NE(*x, *y);
}

}  // namespace
