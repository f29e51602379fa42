// PeerId text form.
//
// The text ID is RFC 4648 base32 (lowercase alphabet
// "abcdefghijklmnopqrstuvwxyz234567", no padding) of 36 bytes:
//
//     public key (32 bytes) || checksum (4 bytes)
//
// checksum = first 4 bytes of BLAKE2b (libsodium crypto_generichash, no key,
// 16-byte output) over "keyhole-id-v1" || public key.
//
// 36 bytes = 288 bits, encoded as 58 characters (290 bits); the 2 trailing
// pad bits of the last character must be zero.
#include "keyhole/identity/peer_id.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace keyhole::identity {
namespace {

constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::size_t kChecksumSize = 4;
constexpr std::size_t kRawSize = kPublicKeySize + kChecksumSize;  // 36
constexpr std::size_t kTextSize = (kRawSize * 8 + 4) / 5;         // 58
constexpr char kChecksumContext[] = "keyhole-id-v1";

bool sodium_ready() {
    static const bool ready = sodium_init() >= 0;
    return ready;
}

// Returns false only if libsodium cannot be initialised.
bool checksum(const PublicKeyBytes& key, std::uint8_t out[kChecksumSize]) {
    if (!sodium_ready()) return false;
    unsigned char digest[16];
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, sizeof digest);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(kChecksumContext),
                              sizeof kChecksumContext - 1);
    crypto_generichash_update(&state, key.data(), key.size());
    crypto_generichash_final(&state, digest, sizeof digest);
    for (std::size_t i = 0; i < kChecksumSize; ++i) out[i] = digest[i];
    return true;
}

bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Value of one base32 character (either case), or -1.
int base32_value(char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= '2' && c <= '7') return c - '2' + 26;
    return -1;
}

// A character as it should appear in an error message: printable ASCII as
// itself, anything else as \xNN so hostile input cannot garble a terminal.
std::string describe_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(u));
    return buf;
}

}  // namespace

Result<PeerId> PeerId::parse(std::string_view text) {
    while (!text.empty() && is_ascii_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_ascii_space(text.back())) text.remove_suffix(1);

    if (text.size() != kTextSize) {
        return fail("invalid ID (expected " + std::to_string(kTextSize) + " characters, got " +
                    std::to_string(text.size()) + ")");
    }

    std::uint8_t raw[kRawSize] = {};
    std::size_t out = 0;
    std::uint32_t buffer = 0;
    int bits = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const int v = base32_value(text[i]);
        if (v < 0) {
            return fail("invalid ID (character '" + describe_char(text[i]) + "' at position " +
                        std::to_string(i + 1) + " is not base32)");
        }
        buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            raw[out++] = static_cast<std::uint8_t>((buffer >> bits) & 0xff);
        }
        buffer &= (1u << bits) - 1;  // keep only the bits not yet emitted
    }
    // 58 * 5 = 290 bits: 36 bytes plus 2 pad bits, which must be zero so
    // that every key has exactly one text form.
    if (out != kRawSize || bits != 2 || buffer != 0) return fail("invalid ID (checksum mismatch)");

    PublicKeyBytes key{};
    for (std::size_t i = 0; i < kPublicKeySize; ++i) key[i] = raw[i];
    std::uint8_t expected[kChecksumSize];
    if (!checksum(key, expected)) return fail("invalid ID (libsodium initialisation failed)");
    for (std::size_t i = 0; i < kChecksumSize; ++i) {
        if (raw[kPublicKeySize + i] != expected[i]) return fail("invalid ID (checksum mismatch)");
    }
    return PeerId(key);
}

std::string PeerId::to_text() const {
    std::uint8_t raw[kRawSize];
    for (std::size_t i = 0; i < kPublicKeySize; ++i) raw[i] = key_[i];
    if (!checksum(key_, raw + kPublicKeySize)) {
        // libsodium cannot start: nothing in keyhole can work.
        std::fputs("keyhole: libsodium initialisation failed\n", stderr);
        std::abort();
    }

    std::string text;
    text.reserve(kTextSize);
    std::uint32_t buffer = 0;
    int bits = 0;
    for (std::uint8_t byte : raw) {
        buffer = (buffer << 8) | byte;
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            text.push_back(kAlphabet[(buffer >> bits) & 0x1f]);
        }
        buffer &= (1u << bits) - 1;
    }
    if (bits > 0) text.push_back(kAlphabet[(buffer << (5 - bits)) & 0x1f]);
    return text;
}

std::string PeerId::to_hex() const {
    (void)sodium_ready();  // bin2hex needs no setup, but keep the rule simple
    char hex[kPublicKeySize * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, key_.data(), key_.size());
    return std::string(hex, kPublicKeySize * 2);
}

}  // namespace keyhole::identity
