// The daemon's long-term Ed25519 key pair and its key file.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>

#include "keyhole/identity/peer_id.h"
#include "keyhole/result.h"

namespace keyhole::identity {

constexpr std::size_t kSecretKeySize = 64;  // libsodium's seed || public key
constexpr std::size_t kSignatureSize = 64;
using SecretKeyBytes = std::array<std::uint8_t, kSecretKeySize>;
using SignatureBytes = std::array<std::uint8_t, kSignatureSize>;

class KeyPair {
public:
    static KeyPair generate();

    // Loads <path>; refuses a file of the wrong size, one that group or others
    // may read, or one whose public half does not match its secret half.
    // Every error message names the file.
    static Result<KeyPair> load(const std::filesystem::path& path);
    // Loads <path> if it exists, otherwise generates a key and saves it.
    static Result<KeyPair> load_or_create(const std::filesystem::path& path);
    // Writes atomically: temp file with mode 0600, fsync, rename, fsync dir.
    Status save(const std::filesystem::path& path) const;

    PeerId id() const { return PeerId(public_key_); }
    const PublicKeyBytes& public_key() const { return public_key_; }

    SignatureBytes sign(std::span<const std::uint8_t> message) const;

    // X25519 key agreement keys derived from the Ed25519 pair (libsodium's
    // crypto_sign_ed25519_*_to_curve25519), for the session handshake.
    std::array<std::uint8_t, 32> x25519_secret() const;
    std::array<std::uint8_t, 32> x25519_public() const;
    // The 32-byte Ed25519 seed (the secret half), for GnuTLS: a relay's TLS
    // certificate is made over its identity key. Handle it like the key itself.
    std::array<std::uint8_t, 32> ed25519_seed() const {
        std::array<std::uint8_t, 32> seed{};
        for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = secret_key_[i];
        return seed;
    }

    KeyPair(const KeyPair&) = default;
    KeyPair& operator=(const KeyPair&) = default;
    ~KeyPair();

private:
    KeyPair() = default;
    PublicKeyBytes public_key_{};
    SecretKeyBytes secret_key_{};
};

bool verify_signature(const PublicKeyBytes& key, std::span<const std::uint8_t> message,
                      std::span<const std::uint8_t> signature);

}  // namespace keyhole::identity
