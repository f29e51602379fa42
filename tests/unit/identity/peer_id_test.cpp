#include "keyhole/identity/peer_id.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "keyhole/identity/key_pair.h"

using keyhole::identity::KeyPair;
using keyhole::identity::PeerId;
using keyhole::identity::PublicKeyBytes;

namespace {

constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

PublicKeyBytes counting_key() {
    PublicKeyBytes key{};
    for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
    return key;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

// Vectors computed independently (Python hashlib.blake2b(digest_size=16) and
// base64.b32encode), so the text form is pinned down, not just self-consistent.
TEST(PeerId, TextFormMatchesIndependentVectors) {
    EXPECT_EQ(PeerId(PublicKeyBytes{}).to_text(),
              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaads5brry");
    EXPECT_EQ(PeerId(counting_key()).to_text(),
              "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dyprmq572q");

    auto parsed = PeerId::parse("aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dyprmq572q");
    ASSERT_TRUE(parsed) << parsed.error();
    EXPECT_EQ(parsed->key(), counting_key());
}

TEST(PeerId, RoundTripsThroughText) {
    for (int i = 0; i < 50; ++i) {
        const PeerId id = KeyPair::generate().id();
        const std::string text = id.to_text();
        ASSERT_EQ(text.size(), 58u);
        for (char c : text) EXPECT_NE(std::string(kAlphabet).find(c), std::string::npos) << text;
        auto parsed = PeerId::parse(text);
        ASSERT_TRUE(parsed) << parsed.error();
        EXPECT_EQ(*parsed, id);
    }
}

TEST(PeerId, RejectsEverySingleCharacterChange) {
    for (int round = 0; round < 4; ++round) {
        const PeerId id = KeyPair::generate().id();
        const std::string text = id.to_text();
        int changes = 0;
        int checksum_mismatches = 0;
        for (std::size_t pos = 0; pos < text.size(); ++pos) {
            for (const char* c = kAlphabet; *c != '\0'; ++c) {
                if (*c == text[pos]) continue;
                std::string typo = text;
                typo[pos] = *c;
                auto parsed = PeerId::parse(typo);
                ++changes;
                ASSERT_FALSE(parsed) << "typo at " << pos << " parsed as "
                                     << parsed->to_text();
                if (parsed.error() == "invalid ID (checksum mismatch)") ++checksum_mismatches;
            }
        }
        EXPECT_EQ(changes, 58 * 31);
        // Every change lands in the key, the checksum or the zero pad bits.
        EXPECT_EQ(checksum_mismatches, changes);
    }
}

TEST(PeerId, RejectsWrongLength) {
    const std::string text = KeyPair::generate().id().to_text();

    auto shorter = PeerId::parse(text.substr(0, 57));
    ASSERT_FALSE(shorter);
    EXPECT_EQ(shorter.error(), "invalid ID (expected 58 characters, got 57)");

    auto longer = PeerId::parse(text + "a");
    ASSERT_FALSE(longer);
    EXPECT_EQ(longer.error(), "invalid ID (expected 58 characters, got 59)");

    auto empty = PeerId::parse("");
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error(), "invalid ID (expected 58 characters, got 0)");

    auto blank = PeerId::parse(" \t\r\n ");
    ASSERT_FALSE(blank);
    EXPECT_EQ(blank.error(), "invalid ID (expected 58 characters, got 0)");
}

TEST(PeerId, RejectsCharactersOutsideBase32) {
    const std::string text = KeyPair::generate().id().to_text();
    for (char bad : std::string("01890=+/-_.!")) {
        std::string typo = text;
        typo[10] = bad;
        auto parsed = PeerId::parse(typo);
        ASSERT_FALSE(parsed);
        EXPECT_EQ(parsed.error(),
                  std::string("invalid ID (character '") + bad + "' at position 11 is not base32)");
    }
}

TEST(PeerId, EscapesUnprintableCharactersInErrors) {
    std::string text = KeyPair::generate().id().to_text();
    text[0] = '\x07';
    auto parsed = PeerId::parse(text);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error(), "invalid ID (character '\\x07' at position 1 is not base32)");

    text[0] = '\xc3';
    parsed = PeerId::parse(text);
    ASSERT_FALSE(parsed);
    EXPECT_TRUE(contains(parsed.error(), "'\\xc3'")) << parsed.error();
}

TEST(PeerId, RejectsWhitespaceInside) {
    std::string text = KeyPair::generate().id().to_text();
    text[20] = ' ';
    auto parsed = PeerId::parse(text);
    ASSERT_FALSE(parsed);
    EXPECT_TRUE(contains(parsed.error(), "at position 21 is not base32")) << parsed.error();
}

TEST(PeerId, AcceptsUpperCaseAndSurroundingWhitespace) {
    const PeerId id = KeyPair::generate().id();
    std::string upper = id.to_text();
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });

    auto parsed = PeerId::parse(upper);
    ASSERT_TRUE(parsed) << parsed.error();
    EXPECT_EQ(*parsed, id);

    auto padded = PeerId::parse("  \t" + id.to_text() + "\r\n");
    ASSERT_TRUE(padded) << padded.error();
    EXPECT_EQ(*padded, id);

    std::string mixed = id.to_text();
    for (std::size_t i = 0; i < mixed.size(); i += 2) {
        mixed[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(mixed[i])));
    }
    auto parsed_mixed = PeerId::parse(mixed);
    ASSERT_TRUE(parsed_mixed) << parsed_mixed.error();
    EXPECT_EQ(*parsed_mixed, id);
}

TEST(PeerId, RejectsNonZeroPadBits) {
    // The last character carries 3 checksum bits and 2 pad bits; setting a
    // pad bit keeps the decoded bytes but must still be refused.
    const std::string text = PeerId(counting_key()).to_text();
    const auto value = std::string(kAlphabet).find(text.back());
    ASSERT_EQ(value & 3u, 0u);
    for (std::size_t pad = 1; pad < 4; ++pad) {
        std::string changed = text;
        changed.back() = kAlphabet[value | pad];
        auto parsed = PeerId::parse(changed);
        ASSERT_FALSE(parsed);
        EXPECT_EQ(parsed.error(), "invalid ID (checksum mismatch)");
    }
}

TEST(PeerId, HexIsLowercaseKey) {
    EXPECT_EQ(PeerId(counting_key()).to_hex(),
              "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    PublicKeyBytes key{};
    key.fill(0xab);
    std::string expected;
    for (int i = 0; i < 32; ++i) expected += "ab";
    EXPECT_EQ(PeerId(key).to_hex(), expected);
}
