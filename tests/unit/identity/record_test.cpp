#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
#include "keyhole/identity/record.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace keyhole::identity;

namespace {

constexpr std::uint64_t kNow = 1'700'000'000;
using Bytes = std::vector<std::uint8_t>;
using Packer = msgpack::packer<msgpack::sbuffer>;
using ElementWriter = std::function<void(Packer&)>;

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

void pack_bytes(Packer& p, const std::uint8_t* data, std::size_t size) {
    p.pack_bin(static_cast<std::uint32_t>(size));
    p.pack_bin_body(reinterpret_cast<const char*>(data), static_cast<std::uint32_t>(size));
}

void pack_text(Packer& p, const std::string& s) {
    p.pack_str(static_cast<std::uint32_t>(s.size()));
    p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

// --- Test-local encoder, written from the wire format description -----------
// It makes well-signed records whose content the library must still refuse.

// Elements [0]..[6] of a record, each as a writer that can be swapped out.
std::vector<ElementWriter> elements_of(const IdentityRecord& r) {
    std::vector<ElementWriter> e;
    e.push_back([v = r.version](Packer& p) { p.pack_uint64(v); });
    e.push_back([k = r.owner.key()](Packer& p) { pack_bytes(p, k.data(), k.size()); });
    e.push_back([s = r.sequence](Packer& p) { p.pack_uint64(s); });
    e.push_back([x = r.expires_unix_s](Packer& p) { p.pack_uint64(x); });
    e.push_back([relays = r.relays](Packer& p) {
        p.pack_array(static_cast<std::uint32_t>(relays.size()));
        for (const auto& relay : relays) {
            p.pack_array(2);
            pack_bytes(p, relay.relay.key().data(), relay.relay.key().size());
            pack_text(p, relay.endpoint.to_string());
        }
    });
    e.push_back([c = r.capabilities](Packer& p) { p.pack_uint64(c); });
    e.push_back([n = r.nat](Packer& p) { p.pack_uint64(static_cast<std::uint64_t>(n)); });
    return e;
}

Bytes signature_trailer_bin8(const SignatureBytes& sig) {
    Bytes out = {0xc4, 0x40};
    out.insert(out.end(), sig.begin(), sig.end());
    return out;
}

// Packs the elements plus a signature by `signer` over
// "keyhole-record-v1" || everything before the signature.
Bytes encode_elements(const std::vector<ElementWriter>& elements, const KeyPair& signer,
                      bool signature_as_bin16 = false) {
    msgpack::sbuffer buffer;
    Packer p(buffer);
    p.pack_array(static_cast<std::uint32_t>(elements.size() + 1));
    for (const auto& write : elements) write(p);

    Bytes body(buffer.data(), buffer.data() + buffer.size());
    const std::string context = "keyhole-record-v1";
    Bytes message(context.begin(), context.end());
    message.insert(message.end(), body.begin(), body.end());
    const SignatureBytes sig = signer.sign(message);

    Bytes out = body;
    if (signature_as_bin16) {
        out.insert(out.end(), {0xc5, 0x00, 0x40});
        out.insert(out.end(), sig.begin(), sig.end());
    } else {
        const Bytes trailer = signature_trailer_bin8(sig);
        out.insert(out.end(), trailer.begin(), trailer.end());
    }
    return out;
}

IdentityRecord sample_record(const KeyPair& key) {
    IdentityRecord r;
    r.owner = key.id();
    r.sequence = 42;
    r.expires_unix_s = kNow + 3600;
    r.relays.push_back({KeyPair::generate().id(), *Endpoint::parse("198.51.100.20:4433")});
    r.relays.push_back({KeyPair::generate().id(), *Endpoint::parse("[2001:db8::20]:4433")});
    r.capabilities = kCapChat | kCapRelay;
    r.nat = NatClass::endpoint_independent;
    return r;
}

class Record : public testing::Test {
protected:
    KeyPair key = KeyPair::generate();
    KeyPair other = KeyPair::generate();
    IdentityRecord record = sample_record(key);
    Bytes encoded = encode_signed(record, key);

    // Both decoders must refuse; returns decode_verified's message.
    std::string rejection(const Bytes& bytes) {
        auto any = decode_verified_any_owner(bytes, kNow);
        EXPECT_FALSE(any) << "decode_verified_any_owner accepted the record";
        auto verified = decode_verified(bytes, key.id(), kNow);
        EXPECT_FALSE(verified) << "decode_verified accepted the record";
        return verified ? std::string() : verified.error();
    }

    std::string rejection_of(const std::vector<ElementWriter>& elements) {
        return rejection(encode_elements(elements, key));
    }
};

}  // namespace

TEST_F(Record, RoundTripsAllFields) {
    auto decoded = decode_verified(encoded, key.id(), kNow);
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(*decoded, record);

    auto any = decode_verified_any_owner(encoded, kNow);
    ASSERT_TRUE(any) << any.error();
    EXPECT_EQ(*any, record);
}

TEST_F(Record, RoundTripsMinimalAndExtremeValues) {
    IdentityRecord r;
    r.owner = key.id();
    r.sequence = UINT64_MAX;
    r.expires_unix_s = UINT64_MAX;
    r.capabilities = UINT32_MAX;
    r.nat = NatClass::endpoint_dependent;
    auto decoded = decode_verified(encode_signed(r, key), key.id(), kNow);
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(*decoded, r);

    r.sequence = 0;
    r.capabilities = 0;
    r.nat = NatClass::unknown;
    r.expires_unix_s = kNow + 1;
    decoded = decode_verified(encode_signed(r, key), key.id(), kNow);
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(*decoded, r);
}

TEST_F(Record, RoundTripsMaximumRelays) {
    for (std::size_t i = record.relays.size(); i < kMaxRelaysInRecord; ++i) {
        record.relays.push_back({KeyPair::generate().id(),
                                 *Endpoint::parse("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff" +
                                                  std::to_string(i) + "]:65535")});
    }
    const Bytes bytes = encode_signed(record, key);
    EXPECT_LE(bytes.size(), kMaxRecordSize);
    auto decoded = decode_verified(bytes, key.id(), kNow);
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(*decoded, record);
}

TEST_F(Record, EncodingFollowsTheDocumentedLayout) {
    ASSERT_GT(encoded.size(), 66u);
    EXPECT_EQ(encoded[0], 0x98);  // fixarray of 8
    EXPECT_EQ(encoded[1], 0x01);  // version 1
    EXPECT_EQ(encoded[2], 0xc4);  // bin8 owner
    EXPECT_EQ(encoded[3], 0x20);
    EXPECT_EQ(encoded[encoded.size() - 66], 0xc4);  // bin8 signature
    EXPECT_EQ(encoded[encoded.size() - 65], 0x40);

    // An encoder written from the description produces the same bytes
    // (Ed25519 signatures are deterministic).
    EXPECT_EQ(encode_elements(elements_of(record), key), encoded);

    // The signature covers the documented message.
    const std::string context = "keyhole-record-v1";
    Bytes message(context.begin(), context.end());
    message.insert(message.end(), encoded.begin(), encoded.end() - 66);
    EXPECT_TRUE(verify_signature(key.public_key(), message,
                                 std::span<const std::uint8_t>(encoded).last(64)));
}

TEST_F(Record, EncodeWritesTheSigningKeyAsOwnerAndAtMostMaxRelays) {
    IdentityRecord r = record;
    r.owner = other.id();  // violates the precondition
    while (r.relays.size() < kMaxRelaysInRecord + 3) r.relays.push_back(r.relays.front());
    auto decoded = decode_verified(encode_signed(r, key), key.id(), kNow);
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(decoded->owner, key.id());
    EXPECT_EQ(decoded->relays.size(), kMaxRelaysInRecord);
}

TEST_F(Record, RejectsEveryFlippedByte) {
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        for (std::uint8_t mask : {0x01, 0x02, 0x10, 0x80, 0xff}) {
            Bytes tampered = encoded;
            tampered[i] ^= mask;
            auto any = decode_verified_any_owner(tampered, kNow);
            ASSERT_FALSE(any) << "byte " << i << " ^ " << int(mask) << " accepted";
            auto verified = decode_verified(tampered, key.id(), kNow);
            ASSERT_FALSE(verified) << "byte " << i << " ^ " << int(mask) << " accepted";
        }
    }
}

TEST_F(Record, RejectsFlippedSignatureBitAsBadSignature) {
    for (std::size_t i = encoded.size() - 64; i < encoded.size(); ++i) {
        Bytes tampered = encoded;
        tampered[i] ^= 0x04;
        EXPECT_EQ(rejection(tampered), "bad signature") << i;
    }
}

TEST_F(Record, RejectsChangedFieldAsBadSignature) {
    Bytes tampered = encoded;
    tampered[1] = 0x01;  // unchanged version, for reference
    ASSERT_TRUE(decode_verified(tampered, key.id(), kNow));
    // Sequence 42 is a positive fixint right after the 34-byte owner.
    ASSERT_EQ(tampered[36], 42);
    tampered[36] = 43;
    EXPECT_EQ(rejection(tampered), "bad signature");
}

TEST_F(Record, RejectsSignatureByAnotherKey) {
    // Claims `key` as owner but is signed by `other`.
    const Bytes forged = encode_elements(elements_of(record), other);
    EXPECT_EQ(rejection(forged), "bad signature");
}

TEST_F(Record, RejectsOwnerOtherThanExpected) {
    // A perfectly valid record of `other`, found under `key`'s DHT key.
    const Bytes theirs = encode_signed(sample_record(other), other);
    ASSERT_TRUE(decode_verified_any_owner(theirs, kNow));
    auto decoded = decode_verified(theirs, key.id(), kNow);
    ASSERT_FALSE(decoded);
    EXPECT_EQ(decoded.error(), "record owner does not match the key it was found under");
}

TEST_F(Record, RejectsExpiredRecord) {
    record.expires_unix_s = kNow;  // at now: already expired
    EXPECT_EQ(rejection(encode_signed(record, key)), "record expired");
    record.expires_unix_s = kNow - 1;
    EXPECT_EQ(rejection(encode_signed(record, key)), "record expired");
    record.expires_unix_s = 0;
    EXPECT_EQ(rejection(encode_signed(record, key)), "record expired");

    record.expires_unix_s = kNow + 1;
    EXPECT_TRUE(decode_verified(encode_signed(record, key), key.id(), kNow));
}

TEST_F(Record, RejectsUnknownVersion) {
    auto elements = elements_of(record);
    elements[0] = [](Packer& p) { p.pack_uint64(2); };
    EXPECT_EQ(rejection_of(elements), "unknown record version 2");

    elements[0] = [](Packer& p) { p.pack_uint64(0); };
    EXPECT_EQ(rejection_of(elements), "unknown record version 0");

    elements[0] = [](Packer& p) { p.pack_uint64(UINT64_MAX); };
    EXPECT_EQ(rejection_of(elements), "unknown record version 18446744073709551615");

    // A future version may have another shape; the version is still reported.
    auto future = elements_of(record);
    future[0] = [](Packer& p) { p.pack_uint64(2); };
    future.push_back([](Packer& p) { p.pack_uint64(7); });
    EXPECT_EQ(rejection_of(future), "unknown record version 2");
}

TEST_F(Record, RejectsVersionOfWrongType) {
    auto elements = elements_of(record);
    elements[0] = [](Packer& p) { p.pack_int64(-1); };
    EXPECT_TRUE(contains(rejection_of(elements), "version is not an unsigned integer"));
    elements[0] = [](Packer& p) { pack_text(p, "1"); };
    EXPECT_TRUE(contains(rejection_of(elements), "version is not an unsigned integer"));
    // Integral doubles would be packed as ints by msgpack-c, so use 1.5.
    elements[0] = [](Packer& p) { p.pack_double(1.5); };
    EXPECT_TRUE(contains(rejection_of(elements), "version is not an unsigned integer"));
}

TEST_F(Record, RejectsWrongElementCount) {
    auto fewer = elements_of(record);
    fewer.pop_back();
    EXPECT_EQ(rejection_of(fewer), "malformed record (expected 8 elements, got 7)");

    auto more = elements_of(record);
    more.push_back([](Packer& p) { p.pack_nil(); });
    EXPECT_EQ(rejection_of(more), "malformed record (expected 8 elements, got 9)");
}

TEST_F(Record, RejectsWrongFieldTypes) {
    struct Case {
        std::size_t index;
        ElementWriter writer;
        const char* message;
    };
    const std::uint8_t k31[31] = {};
    const std::uint8_t k33[33] = {};
    const std::vector<Case> cases = {
        {1, [&](Packer& p) { pack_bytes(p, k31, 31); }, "owner must be a 32-byte binary"},
        {1, [&](Packer& p) { pack_bytes(p, k33, 33); }, "owner must be a 32-byte binary"},
        {1, [](Packer& p) { pack_text(p, std::string(32, 'a')); }, "owner must be a 32-byte binary"},
        {2, [](Packer& p) { p.pack_int64(-5); }, "sequence must be an unsigned integer"},
        {2, [](Packer& p) { p.pack_nil(); }, "sequence must be an unsigned integer"},
        {3, [](Packer& p) { p.pack_true(); }, "expiry must be an unsigned integer"},
        {3, [](Packer& p) { p.pack_double(2e9 + 0.5); }, "expiry must be an unsigned integer"},
        {4, [](Packer& p) { p.pack_nil(); }, "relays must be an array"},
        {4, [](Packer& p) { p.pack_map(0); }, "relays must be an array"},
        {5, [](Packer& p) { p.pack_uint64(1ull << 32); }, "capabilities must be a 32-bit unsigned integer"},
        {5, [](Packer& p) { p.pack_int64(-1); }, "capabilities must be a 32-bit unsigned integer"},
        {6, [](Packer& p) { p.pack_uint64(4); }, "nat class must be 0, 1, 2 or 3"},
        {6, [](Packer& p) { p.pack_uint64(255); }, "nat class must be 0, 1, 2 or 3"},
        {6, [](Packer& p) { pack_text(p, "open"); }, "nat class must be 0, 1, 2 or 3"},
    };
    for (const Case& c : cases) {
        auto elements = elements_of(record);
        elements[c.index] = c.writer;
        const std::string error = rejection_of(elements);
        EXPECT_TRUE(contains(error, "malformed record")) << c.message << " -> " << error;
        EXPECT_TRUE(contains(error, c.message)) << c.message << " -> " << error;
    }
}

TEST_F(Record, RejectsMalformedRelays) {
    const auto relay_key = other.public_key();
    struct Case {
        ElementWriter writer;
        const char* message;
    };
    const std::vector<Case> cases = {
        {[&](Packer& p) {
             p.pack_array(1);
             p.pack_array(3);
             pack_bytes(p, relay_key.data(), 32);
             pack_text(p, "1.2.3.4:5");
             p.pack_nil();
         },
         "relay 0 must be a 2-element array"},
        {[&](Packer& p) {
             p.pack_array(1);
             pack_bytes(p, relay_key.data(), 32);
         },
         "relay 0 must be a 2-element array"},
        {[&](Packer& p) {
             p.pack_array(1);
             p.pack_array(2);
             pack_bytes(p, relay_key.data(), 31);
             pack_text(p, "1.2.3.4:5");
         },
         "relay 0 key must be a 32-byte binary"},
        {[&](Packer& p) {
             p.pack_array(1);
             p.pack_array(2);
             pack_bytes(p, relay_key.data(), 32);
             pack_bytes(p, reinterpret_cast<const std::uint8_t*>("1.2.3.4:5"), 9);
         },
         "relay 0 endpoint must be a string"},
        {[&](Packer& p) {
             p.pack_array(2);
             p.pack_array(2);
             pack_bytes(p, relay_key.data(), 32);
             pack_text(p, "1.2.3.4:5");
             p.pack_array(2);
             pack_bytes(p, relay_key.data(), 32);
             pack_text(p, "1.2.3.4:0");
         },
         "relay 1: invalid endpoint '1.2.3.4:0'"},
        {[&](Packer& p) {
             p.pack_array(1);
             p.pack_array(2);
             pack_bytes(p, relay_key.data(), 32);
             pack_text(p, "relay.example.com:443");
         },
         "relay 0: invalid endpoint"},
    };
    for (const Case& c : cases) {
        auto elements = elements_of(record);
        elements[4] = c.writer;
        const std::string error = rejection_of(elements);
        EXPECT_TRUE(contains(error, c.message)) << c.message << " -> " << error;
    }
}

TEST_F(Record, RejectsTooManyRelays) {
    IdentityRecord r = record;
    while (r.relays.size() <= kMaxRelaysInRecord) r.relays.push_back(r.relays.front());
    EXPECT_EQ(rejection_of(elements_of(r)), "malformed record (too many relays: 9, at most 8)");
}

TEST_F(Record, RejectsSignatureNotInCanonicalBin8Form) {
    const std::string error = rejection(encode_elements(elements_of(record), key, true));
    EXPECT_TRUE(contains(error, "signature must be a 64-byte binary")) << error;

    // Signature of the wrong length.
    msgpack::sbuffer buffer;
    Packer p(buffer);
    p.pack_array(8);
    for (const auto& write : elements_of(record)) write(p);
    const std::uint8_t short_sig[63] = {};
    pack_bytes(p, short_sig, sizeof short_sig);
    const std::string short_error = rejection(Bytes(buffer.data(), buffer.data() + buffer.size()));
    EXPECT_TRUE(contains(short_error, "signature must be a 64-byte binary")) << short_error;
}

TEST_F(Record, RejectsTrailingBytes) {
    for (const Bytes& extra : {Bytes{0x00}, Bytes{0xc0}, Bytes(10, 0xff), encoded}) {
        Bytes padded = encoded;
        padded.insert(padded.end(), extra.begin(), extra.end());
        EXPECT_EQ(rejection(padded), "trailing bytes after record");
    }
}

TEST_F(Record, RejectsOversizeAndEmptyInput) {
    Bytes big = encoded;
    big.resize(kMaxRecordSize + 1, 0);
    EXPECT_TRUE(contains(rejection(big), "record too large")) << rejection(big);
    EXPECT_TRUE(contains(rejection(Bytes(1 << 20, 0x98)), "record too large"));
    EXPECT_EQ(rejection(Bytes{}), "empty record");
}

TEST_F(Record, RejectsHostileMessagePackHeaders) {
    const std::vector<Bytes> hostile = {
        {0xdd, 0xff, 0xff, 0xff, 0xff},        // array32 claiming 2^32-1 elements
        {0xdc, 0xff, 0xff},                    // array16 claiming 65535 elements
        {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00},  // bin32 of 4 GiB
        {0xdb, 0x7f, 0xff, 0xff, 0xff, 0x41},  // str32 of 2 GiB
        {0xdf, 0xff, 0xff, 0xff, 0xff},        // map32
        {0x81, 0x01, 0x01},                    // small map
        {0xc7, 0x01, 0x05, 0x00},              // ext8
        {0xd4, 0x01, 0x00},                    // fixext1
        {0xc1},                                // never-used byte
        {0xc0},                                // nil
        {0x98},                                // array header alone
        {0x98, 0x01},                          // truncated after version
    };
    for (const Bytes& bytes : hostile) {
        EXPECT_TRUE(contains(rejection(bytes), "malformed record")) << rejection(bytes);
    }

    Bytes deep(1000, 0x91);  // [[[[...]]]] nested 1000 deep
    deep.push_back(0x01);
    EXPECT_TRUE(contains(rejection(deep), "malformed record")) << rejection(deep);

    Bytes wide = {0xdc, 0x00, 0x20};  // array16 of 32 nils: within size, over the bound
    wide.insert(wide.end(), 32, 0xc0);
    EXPECT_TRUE(contains(rejection(wide), "malformed record")) << rejection(wide);
}

TEST_F(Record, RejectsEveryTruncation) {
    for (std::size_t len = 0; len < encoded.size(); ++len) {
        const Bytes truncated(encoded.begin(), encoded.begin() + static_cast<long>(len));
        ASSERT_FALSE(decode_verified_any_owner(truncated, kNow)) << len;
        ASSERT_FALSE(decode_verified(truncated, key.id(), kNow)) << len;
    }
}

TEST_F(Record, FuzzRandomBytesAreRejectedWithoutCrashing) {
    std::mt19937_64 rng(0x6b6579686f6c65);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<std::size_t> length(0, 600);
    for (int i = 0; i < 20000; ++i) {
        Bytes bytes(length(rng));
        for (auto& b : bytes) b = static_cast<std::uint8_t>(byte(rng));
        // Half of them start like a record, to get past the first checks.
        if (i % 2 == 0 && bytes.size() >= 2) {
            bytes[0] = 0x98;
            bytes[1] = 0x01;
        }
        auto any = decode_verified_any_owner(bytes, kNow);
        ASSERT_FALSE(any) << "random input " << i << " accepted";
        if (i % 4 == 0) {
            ASSERT_FALSE(decode_verified(bytes, key.id(), kNow));
        }
    }
}

TEST_F(Record, FuzzMutationsOfValidRecordAreRejected) {
    std::mt19937_64 rng(0x7265636f7264);
    std::uniform_int_distribution<int> byte(0, 255);
    int tested = 0;
    for (int i = 0; i < 20000; ++i) {
        Bytes bytes = encoded;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e) {
            const std::size_t pos = bytes.empty() ? 0 : rng() % bytes.size();
            switch (rng() % 5) {
                case 0:  // overwrite
                    if (!bytes.empty()) bytes[pos] = static_cast<std::uint8_t>(byte(rng));
                    break;
                case 1:  // insert
                    bytes.insert(bytes.begin() + static_cast<long>(pos),
                                 static_cast<std::uint8_t>(byte(rng)));
                    break;
                case 2:  // erase
                    if (!bytes.empty()) bytes.erase(bytes.begin() + static_cast<long>(pos));
                    break;
                case 3:  // flip one bit
                    if (!bytes.empty()) bytes[pos] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
                    break;
                default:  // duplicate a chunk
                    if (!bytes.empty()) {
                        const std::size_t len = 1 + rng() % 16;
                        const std::size_t end = std::min(bytes.size(), pos + len);
                        const Bytes chunk(bytes.begin() + static_cast<long>(pos),
                                          bytes.begin() + static_cast<long>(end));
                        bytes.insert(bytes.begin() + static_cast<long>(end), chunk.begin(),
                                     chunk.end());
                    }
                    break;
            }
        }
        if (bytes == encoded) continue;
        ++tested;
        ASSERT_FALSE(decode_verified_any_owner(bytes, kNow)) << "mutation " << i << " accepted";
        ASSERT_FALSE(decode_verified(bytes, key.id(), kNow)) << "mutation " << i << " accepted";
    }
    EXPECT_GT(tested, 19000);
}

TEST(RecordSupersedes, OnlyStrictlyHigherSequenceOfSameOwner) {
    const KeyPair a = KeyPair::generate();
    const KeyPair b = KeyPair::generate();
    IdentityRecord current;
    current.owner = a.id();
    current.sequence = 10;

    IdentityRecord candidate = current;
    candidate.sequence = 9;
    EXPECT_FALSE(supersedes(candidate, current));
    candidate.sequence = 10;
    EXPECT_FALSE(supersedes(candidate, current));
    candidate.sequence = 11;
    EXPECT_TRUE(supersedes(candidate, current));

    candidate.owner = b.id();
    candidate.sequence = 1000;
    EXPECT_FALSE(supersedes(candidate, current));
}

TEST(NatClass, HasReadableNames) {
    EXPECT_STREQ(to_string(NatClass::unknown), "unknown");
    EXPECT_STREQ(to_string(NatClass::open), "open");
    EXPECT_STREQ(to_string(NatClass::endpoint_independent), "endpoint-independent");
    EXPECT_STREQ(to_string(NatClass::endpoint_dependent), "endpoint-dependent");
    EXPECT_STREQ(to_string(static_cast<NatClass>(200)), "unknown");
}
