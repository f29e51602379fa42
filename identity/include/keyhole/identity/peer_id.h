// PeerId: an Ed25519 public key, the only name a keyhole user has.
// Its text form is what people copy and paste, so it carries a checksum:
// a mistyped ID is rejected instead of becoming a lookup for nobody.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "keyhole/result.h"

namespace keyhole::identity {

constexpr std::size_t kPublicKeySize = 32;
using PublicKeyBytes = std::array<std::uint8_t, kPublicKeySize>;

class PeerId {
public:
    PeerId() = default;
    explicit PeerId(const PublicKeyBytes& key) : key_(key) {}

    // Parses the text form (see docs/protocol.md, "Text ID"). Accepts upper or
    // lower case and surrounding whitespace; rejects wrong length, characters
    // outside the alphabet and checksum mismatches with a clear message.
    static Result<PeerId> parse(std::string_view text);

    // 58 lowercase base32 characters: public key followed by a 4-byte checksum.
    std::string to_text() const;
    // Lowercase hex of the public key, for logs and DHT key derivation.
    std::string to_hex() const;

    const PublicKeyBytes& key() const { return key_; }

    friend bool operator==(const PeerId&, const PeerId&) = default;
    friend auto operator<=>(const PeerId&, const PeerId&) = default;

private:
    PublicKeyBytes key_{};
};

}  // namespace keyhole::identity
