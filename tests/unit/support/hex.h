// Test support: hex text (as in test-vector files) to bytes and back, with libsodium.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sodium.h>

namespace keyhole::testing {

// nullopt for odd length or a non-hex character.
inline std::optional<std::vector<std::uint8_t>> parse_hex(const std::string& hex) {
    std::vector<std::uint8_t> out(hex.size() / 2);
    if (hex.empty()) return out;
    std::size_t written = 0;
    if (hex.size() % 2 != 0 ||
        sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &written, nullptr) != 0 ||
        written != out.size())
        return std::nullopt;
    return out;
}

// Lowercase hex of any contiguous byte container.
template <typename Container>
std::string to_hex(const Container& bytes) {
    std::string out(bytes.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
    out.pop_back();
    return out;
}

}  // namespace keyhole::testing
