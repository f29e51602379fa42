// Identity record: encoding, signing, strict decoding and verification.
//
// Wire format (version 1)
// -----------------------
// A record is one MessagePack array of exactly 8 elements, and nothing after
// it. The whole encoding is at most kMaxRecordSize (4096) bytes.
//
//   [0] version       positive int (uint32); must be kRecordVersion (1).
//   [1] owner         bin, exactly 32 bytes: the owner's Ed25519 public key.
//   [2] sequence      positive int (uint64); a record replaces another of the
//                     same owner only with a strictly higher sequence.
//   [3] expires       positive int (uint64), Unix time in seconds; the record
//                     is invalid at and after this instant.
//   [4] relays        array of at most kMaxRelaysInRecord (8) entries, each a
//                     2-element array:
//                       [0] relay public key: bin, exactly 32 bytes
//                       [1] relay endpoint:   str, "1.2.3.4:5" or "[::1]:5"
//                           (port 1..65535)
//   [5] capabilities  positive int (uint32), bit flags: 1 = chat, 2 = relay.
//                     Unknown bits are kept, not rejected.
//   [6] nat           positive int, 0..3: 0 unknown, 1 open,
//                     2 endpoint-independent, 3 endpoint-dependent.
//   [7] signature     bin, exactly 64 bytes, encoded as bin8: the record ends
//                     with the 66 bytes 0xc4 0x40 <signature>.
//
// The signature is Ed25519 (libsodium crypto_sign_detached) by the owner key
// over
//
//     "keyhole-record-v1" || <every byte of the encoding before element [7]>
//
// i.e. from the array header 0x98 through the end of element [6]; the ASCII
// prefix (17 bytes, no terminator) separates record signatures from any other
// signature made with the same key. Verifiers sign-check the bytes as
// received, never a re-encoding.
//
// Integers use MessagePack's shortest form when written; readers accept any
// unsigned integer form that fits the field. Negative integers, floats, nil,
// booleans, maps and ext types are rejected wherever they appear.
//
// Decoding checks, in order: size (empty / larger than 4096 bytes), MessagePack
// syntax, trailing bytes, top-level shape, version, element count and types,
// signature, owner (decode_verified only), expiry.
#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
#include "keyhole/identity/record.h"

#include <msgpack.hpp>
#include <sodium.h>

#include <cstring>
#include <exception>
#include <string>

namespace keyhole::identity {
namespace {

constexpr char kSignatureContext[] = "keyhole-record-v1";
constexpr std::size_t kSignatureContextSize = sizeof kSignatureContext - 1;
constexpr std::size_t kRecordElements = 8;
// 0xc4 = bin8, 0x40 = 64 bytes.
constexpr std::uint8_t kSignatureHeader[2] = {0xc4, 0x40};
constexpr std::size_t kSignatureTrailerSize = sizeof kSignatureHeader + kSignatureSize;  // 66

bool sodium_ready() {
    static const bool ready = sodium_init() >= 0;
    return ready;
}

// msgpack packer stream appending to a byte vector.
struct ByteSink {
    std::vector<std::uint8_t>& out;
    void write(const char* data, std::size_t size) {
        out.insert(out.end(), reinterpret_cast<const std::uint8_t*>(data),
                   reinterpret_cast<const std::uint8_t*>(data) + size);
    }
};

std::vector<std::uint8_t> signed_message(std::span<const std::uint8_t> body) {
    // Sized up front and filled with memcpy (vector::insert trips a GCC 12
    // -Wstringop-overflow false positive at -O2).
    std::vector<std::uint8_t> message(kSignatureContextSize + body.size());
    std::memcpy(message.data(), kSignatureContext, kSignatureContextSize);
    if (!body.empty()) {
        std::memcpy(message.data() + kSignatureContextSize, body.data(), body.size());
    }
    return message;
}

Error malformed(const std::string& why) { return fail("malformed record (" + why + ")"); }

bool is_uint(const msgpack::object& o) { return o.type == msgpack::type::POSITIVE_INTEGER; }

bool is_bin(const msgpack::object& o, std::size_t size) {
    return o.type == msgpack::type::BIN && o.via.bin.size == size;
}

template <std::size_t N>
std::array<std::uint8_t, N> bin_bytes(const msgpack::object& o) {
    std::array<std::uint8_t, N> out{};
    std::memcpy(out.data(), o.via.bin.ptr, N);
    return out;
}

// Decodes and checks everything except the owner; `expected_owner` may be null.
Result<IdentityRecord> decode(std::span<const std::uint8_t> bytes, const PeerId* expected_owner,
                              std::uint64_t now_unix_s) {
    if (bytes.empty()) return fail("empty record");
    if (bytes.size() > kMaxRecordSize) {
        return fail("record too large (" + std::to_string(bytes.size()) + " bytes, at most " +
                    std::to_string(kMaxRecordSize) + ")");
    }
    if (!sodium_ready()) return fail("cannot verify record: libsodium initialisation failed");

    // Bounds on what a hostile header may make the parser allocate: the
    // record needs arrays of at most 8 elements, nesting depth 3, no maps,
    // no ext, short strings (endpoints) and short binaries (keys, signature).
    const msgpack::unpack_limit limit(/*array=*/16, /*map=*/0, /*str=*/256, /*bin=*/128,
                                      /*ext=*/0, /*depth=*/4);
    msgpack::object_handle handle;
    std::size_t offset = 0;
    try {
        handle = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(),
                                 offset, nullptr, nullptr, limit);
    } catch (const std::exception& e) {
        return malformed(std::string("not valid MessagePack: ") + e.what());
    } catch (...) {
        return malformed("not valid MessagePack");
    }
    if (offset != bytes.size()) return fail("trailing bytes after record");

    const msgpack::object& root = handle.get();
    if (root.type != msgpack::type::ARRAY) return malformed("not an array");
    const auto& items = root.via.array;
    if (items.size == 0 || !is_uint(items.ptr[0])) {
        return malformed("version is not an unsigned integer");
    }
    if (items.ptr[0].via.u64 != kRecordVersion) {
        return fail("unknown record version " + std::to_string(items.ptr[0].via.u64));
    }
    if (items.size != kRecordElements) {
        return malformed("expected " + std::to_string(kRecordElements) + " elements, got " +
                         std::to_string(items.size));
    }
    const msgpack::object* f = items.ptr;

    IdentityRecord record;
    record.version = kRecordVersion;

    if (!is_bin(f[1], kPublicKeySize)) return malformed("owner must be a 32-byte binary");
    record.owner = PeerId(bin_bytes<kPublicKeySize>(f[1]));

    if (!is_uint(f[2])) return malformed("sequence must be an unsigned integer");
    record.sequence = f[2].via.u64;

    if (!is_uint(f[3])) return malformed("expiry must be an unsigned integer");
    record.expires_unix_s = f[3].via.u64;

    if (f[4].type != msgpack::type::ARRAY) return malformed("relays must be an array");
    const auto& relays = f[4].via.array;
    if (relays.size > kMaxRelaysInRecord) {
        return malformed("too many relays: " + std::to_string(relays.size) + ", at most " +
                         std::to_string(kMaxRelaysInRecord));
    }
    for (std::uint32_t i = 0; i < relays.size; ++i) {
        const msgpack::object& entry = relays.ptr[i];
        const std::string which = "relay " + std::to_string(i);
        if (entry.type != msgpack::type::ARRAY || entry.via.array.size != 2) {
            return malformed(which + " must be a 2-element array");
        }
        const msgpack::object& key = entry.via.array.ptr[0];
        const msgpack::object& address = entry.via.array.ptr[1];
        if (!is_bin(key, kPublicKeySize)) return malformed(which + " key must be a 32-byte binary");
        if (address.type != msgpack::type::STR) {
            return malformed(which + " endpoint must be a string");
        }
        auto endpoint =
            Endpoint::parse(std::string_view(address.via.str.ptr, address.via.str.size));
        if (!endpoint) return malformed(which + ": " + endpoint.error());
        record.relays.push_back(RelayRef{PeerId(bin_bytes<kPublicKeySize>(key)), *endpoint});
    }

    if (!is_uint(f[5]) || f[5].via.u64 > UINT32_MAX) {
        return malformed("capabilities must be a 32-bit unsigned integer");
    }
    record.capabilities = static_cast<std::uint32_t>(f[5].via.u64);

    if (!is_uint(f[6]) || f[6].via.u64 > static_cast<std::uint64_t>(NatClass::endpoint_dependent)) {
        return malformed("nat class must be 0, 1, 2 or 3");
    }
    record.nat = static_cast<NatClass>(f[6].via.u64);

    // The signature must be the canonical bin8 trailer, so the signed range
    // is exactly the bytes before it.
    if (!is_bin(f[7], kSignatureSize) || bytes.size() < kSignatureTrailerSize ||
        bytes[bytes.size() - kSignatureTrailerSize] != kSignatureHeader[0] ||
        bytes[bytes.size() - kSignatureTrailerSize + 1] != kSignatureHeader[1]) {
        return malformed("signature must be a 64-byte binary at the end of the record");
    }
    const auto body = bytes.first(bytes.size() - kSignatureTrailerSize);
    const auto signature = bytes.last(kSignatureSize);
    if (!verify_signature(record.owner.key(), signed_message(body), signature)) {
        return fail("bad signature");
    }

    if (expected_owner != nullptr && record.owner != *expected_owner) {
        return fail("record owner does not match the key it was found under");
    }
    if (record.expires_unix_s <= now_unix_s) return fail("record expired");
    return record;
}

}  // namespace

const char* to_string(NatClass nat) {
    switch (nat) {
        case NatClass::unknown: return "unknown";
        case NatClass::open: return "open";
        case NatClass::endpoint_independent: return "endpoint-independent";
        case NatClass::endpoint_dependent: return "endpoint-dependent";
    }
    return "unknown";
}

std::vector<std::uint8_t> encode_signed(const IdentityRecord& record, const KeyPair& key) {
    std::vector<std::uint8_t> out;
    out.reserve(512);
    ByteSink sink{out};
    msgpack::packer<ByteSink> pk(sink);

    // The record is signed by `key`, so its owner is key's public key; version
    // is always the one this code writes. At most kMaxRelaysInRecord relays
    // with a non-empty endpoint are written, so the result always decodes.
    std::vector<const RelayRef*> relays;
    for (const auto& relay : record.relays) {
        if (relays.size() == kMaxRelaysInRecord) break;
        if (!relay.endpoint.empty()) relays.push_back(&relay);
    }

    const auto& owner = key.public_key();
    pk.pack_array(static_cast<std::uint32_t>(kRecordElements));
    pk.pack_uint32(kRecordVersion);
    pk.pack_bin(static_cast<std::uint32_t>(owner.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(owner.data()),
                     static_cast<std::uint32_t>(owner.size()));
    pk.pack_uint64(record.sequence);
    pk.pack_uint64(record.expires_unix_s);
    pk.pack_array(static_cast<std::uint32_t>(relays.size()));
    for (const RelayRef* relay : relays) {
        const auto& relay_key = relay->relay.key();
        const std::string endpoint = relay->endpoint.to_string();
        pk.pack_array(2);
        pk.pack_bin(static_cast<std::uint32_t>(relay_key.size()));
        pk.pack_bin_body(reinterpret_cast<const char*>(relay_key.data()),
                         static_cast<std::uint32_t>(relay_key.size()));
        pk.pack_str(static_cast<std::uint32_t>(endpoint.size()));
        pk.pack_str_body(endpoint.data(), static_cast<std::uint32_t>(endpoint.size()));
    }
    pk.pack_uint32(record.capabilities);
    pk.pack_uint8(static_cast<std::uint8_t>(record.nat));

    const SignatureBytes signature = key.sign(signed_message(out));
    pk.pack_bin(static_cast<std::uint32_t>(signature.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(signature.data()),
                     static_cast<std::uint32_t>(signature.size()));
    return out;
}

Result<IdentityRecord> decode_verified(std::span<const std::uint8_t> bytes,
                                       const PeerId& expected_owner, std::uint64_t now_unix_s) {
    try {
        return decode(bytes, &expected_owner, now_unix_s);
    } catch (...) {
        // Only allocation failure can get here; still never unwind into callers.
        return fail("cannot decode record (out of memory)");
    }
}

Result<IdentityRecord> decode_verified_any_owner(std::span<const std::uint8_t> bytes,
                                                 std::uint64_t now_unix_s) {
    try {
        return decode(bytes, nullptr, now_unix_s);
    } catch (...) {
        return fail("cannot decode record (out of memory)");
    }
}

}  // namespace keyhole::identity
