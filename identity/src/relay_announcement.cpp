// Relay announcement: encoding, signing, strict decoding and verification.
//
// One MessagePack array of exactly 10 elements and nothing after it, at most
// kMaxRelayAnnouncementSize (512) bytes:
//
//   [0] version        positive int; must be kRelayAnnouncementVersion (1)
//   [1] relay          bin, exactly 32 bytes: the relay's Ed25519 public key
//   [2] udp endpoint   str "1.2.3.4:5" or "[::1]:5"
//   [3] tcp endpoint   str, same form, or "" when the relay offers no TLS/TCP
//   [4] capacity       positive int (uint32): allocations at most
//   [5] free           positive int (uint32), at most capacity
//   [6] max bandwidth  positive int (uint64): bytes per second in total
//   [7] issued         positive int (uint64): Unix milliseconds
//   [8] expires        positive int (uint64): Unix milliseconds, > issued
//   [9] signature      bin8 of 64 bytes: the announcement ends with c4 40 <sig>
//
// Signature: Ed25519 by the relay key over
//     "keyhole-relay-v1" || <every byte before element [9]>
// (16 ASCII bytes, no terminator; distinct from the identity record's context
// so neither signature can be replayed as the other).
#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
#include "keyhole/identity/relay_announcement.h"

#include <msgpack.hpp>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>

namespace keyhole::identity {
namespace {

constexpr char kSignatureContext[] = "keyhole-relay-v1";
constexpr std::size_t kSignatureContextSize = sizeof kSignatureContext - 1;
constexpr std::size_t kElements = 10;
constexpr std::uint8_t kSignatureHeader[2] = {0xc4, 0x40};
constexpr std::size_t kSignatureTrailerSize = sizeof kSignatureHeader + kSignatureSize;

bool sodium_ready() {
    static const bool ready = sodium_init() >= 0;
    return ready;
}

struct ByteSink {
    std::vector<std::uint8_t>& out;
    void write(const char* data, std::size_t size) {
        out.insert(out.end(), reinterpret_cast<const std::uint8_t*>(data),
                   reinterpret_cast<const std::uint8_t*>(data) + size);
    }
};

std::vector<std::uint8_t> signed_message(std::span<const std::uint8_t> body) {
    std::vector<std::uint8_t> message(kSignatureContextSize + body.size());
    std::memcpy(message.data(), kSignatureContext, kSignatureContextSize);
    if (!body.empty()) std::memcpy(message.data() + kSignatureContextSize, body.data(), body.size());
    return message;
}

Error malformed(const std::string& why) { return fail("malformed relay announcement (" + why + ")"); }

bool is_uint(const msgpack::object& o) { return o.type == msgpack::type::POSITIVE_INTEGER; }

void pack_str(msgpack::packer<ByteSink>& pk, const std::string& text) {
    pk.pack_str(static_cast<std::uint32_t>(text.size()));
    pk.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
}

Result<RelayAnnouncement> decode(std::span<const std::uint8_t> bytes, std::uint64_t now_ms) {
    if (bytes.empty()) return fail("empty relay announcement");
    if (bytes.size() > kMaxRelayAnnouncementSize) {
        return fail("relay announcement too large (" + std::to_string(bytes.size()) + " bytes, at most " +
                    std::to_string(kMaxRelayAnnouncementSize) + ")");
    }
    if (!sodium_ready()) return fail("cannot verify relay announcement: libsodium initialisation failed");

    const msgpack::unpack_limit limit(/*array=*/16, /*map=*/0, /*str=*/64, /*bin=*/64, /*ext=*/0, /*depth=*/2);
    msgpack::object_handle handle;
    std::size_t offset = 0;
    try {
        handle = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), offset, nullptr, nullptr,
                                 limit);
    } catch (const std::exception& e) {
        return malformed(std::string("not valid MessagePack: ") + e.what());
    } catch (...) {
        return malformed("not valid MessagePack");
    }
    if (offset != bytes.size()) return fail("trailing bytes after relay announcement");

    const msgpack::object& root = handle.get();
    if (root.type != msgpack::type::ARRAY) return malformed("not an array");
    const auto& items = root.via.array;
    if (items.size == 0 || !is_uint(items.ptr[0])) return malformed("version is not an unsigned integer");
    if (items.ptr[0].via.u64 != kRelayAnnouncementVersion)
        return fail("unknown relay announcement version " + std::to_string(items.ptr[0].via.u64));
    if (items.size != kElements)
        return malformed("expected " + std::to_string(kElements) + " elements, got " + std::to_string(items.size));
    const msgpack::object* f = items.ptr;

    RelayAnnouncement a;
    if (f[1].type != msgpack::type::BIN || f[1].via.bin.size != kPublicKeySize)
        return malformed("relay key must be a 32-byte binary");
    PublicKeyBytes key{};
    std::memcpy(key.data(), f[1].via.bin.ptr, kPublicKeySize);
    a.relay = PeerId(key);

    if (f[2].type != msgpack::type::STR) return malformed("udp endpoint must be a string");
    auto udp = Endpoint::parse(std::string_view(f[2].via.str.ptr, f[2].via.str.size));
    if (!udp) return malformed("udp endpoint: " + udp.error());
    a.udp = udp.value();

    if (f[3].type != msgpack::type::STR) return malformed("tcp endpoint must be a string");
    if (f[3].via.str.size > 0) {
        auto tcp = Endpoint::parse(std::string_view(f[3].via.str.ptr, f[3].via.str.size));
        if (!tcp) return malformed("tcp endpoint: " + tcp.error());
        a.tcp = tcp.value();
    }

    if (!is_uint(f[4]) || f[4].via.u64 > UINT32_MAX) return malformed("capacity must be a 32-bit unsigned integer");
    a.capacity = static_cast<std::uint32_t>(f[4].via.u64);
    if (!is_uint(f[5]) || f[5].via.u64 > a.capacity) return malformed("free must be an unsigned integer <= capacity");
    a.free = static_cast<std::uint32_t>(f[5].via.u64);
    if (!is_uint(f[6])) return malformed("max bandwidth must be an unsigned integer");
    a.max_bandwidth = f[6].via.u64;
    if (!is_uint(f[7])) return malformed("issued must be an unsigned integer");
    a.issued_ms = f[7].via.u64;
    if (!is_uint(f[8]) || f[8].via.u64 <= a.issued_ms) return malformed("expires must be an integer after issued");
    a.expires_ms = f[8].via.u64;

    if (f[9].type != msgpack::type::BIN || f[9].via.bin.size != kSignatureSize ||
        bytes.size() < kSignatureTrailerSize || bytes[bytes.size() - kSignatureTrailerSize] != kSignatureHeader[0] ||
        bytes[bytes.size() - kSignatureTrailerSize + 1] != kSignatureHeader[1]) {
        return malformed("signature must be a 64-byte binary at the end");
    }
    const auto body = bytes.first(bytes.size() - kSignatureTrailerSize);
    if (!verify_signature(a.relay.key(), signed_message(body), bytes.last(kSignatureSize)))
        return fail("bad signature");

    if (a.expires_ms <= now_ms) return fail("relay announcement expired");
    if (a.issued_ms > now_ms + kRelayClockSkewMs) return fail("relay announcement issued in the future");
    if (a.expires_ms > now_ms + kMaxRelayAnnouncementLifetimeMs)
        return fail("relay announcement valid for too long");
    return a;
}

}  // namespace

std::vector<std::uint8_t> encode_signed_announcement(const RelayAnnouncement& announcement, const KeyPair& key) {
    std::vector<std::uint8_t> out;
    out.reserve(256);
    ByteSink sink{out};
    msgpack::packer<ByteSink> pk(sink);
    const auto& relay = key.public_key();
    pk.pack_array(static_cast<std::uint32_t>(kElements));
    pk.pack_uint32(kRelayAnnouncementVersion);
    pk.pack_bin(static_cast<std::uint32_t>(relay.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(relay.data()), static_cast<std::uint32_t>(relay.size()));
    pack_str(pk, announcement.udp.empty() ? std::string() : announcement.udp.to_string());
    pack_str(pk, announcement.tcp.empty() ? std::string() : announcement.tcp.to_string());
    pk.pack_uint32(announcement.capacity);
    pk.pack_uint32(std::min(announcement.free, announcement.capacity));
    pk.pack_uint64(announcement.max_bandwidth);
    pk.pack_uint64(announcement.issued_ms);
    pk.pack_uint64(announcement.expires_ms);
    const SignatureBytes signature = key.sign(signed_message(out));
    pk.pack_bin(static_cast<std::uint32_t>(signature.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(signature.data()), static_cast<std::uint32_t>(signature.size()));
    return out;
}

Result<RelayAnnouncement> decode_verified_announcement(std::span<const std::uint8_t> bytes, std::uint64_t now_unix_ms) {
    try {
        return decode(bytes, now_unix_ms);
    } catch (...) {
        return fail("cannot decode relay announcement (out of memory)");
    }
}

}  // namespace keyhole::identity
