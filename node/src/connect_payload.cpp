#include "connect_payload.h"

#include <msgpack.hpp>

namespace keyhole::node {

namespace {

constexpr std::uint32_t kPayloadVersion = 1;

msgpack::unpack_limit limits() { return msgpack::unpack_limit(16, 0, 64, 64, 0, 4); }

void pack_candidates(msgpack::packer<msgpack::sbuffer>& packer, const std::vector<identity::Endpoint>& candidates) {
    const auto count = std::min(candidates.size(), kMaxCandidates);
    packer.pack_array(static_cast<std::uint32_t>(count));
    for (std::size_t i = 0; i < count; ++i) packer.pack(candidates[i].to_string());
}

Result<std::vector<identity::Endpoint>> unpack_candidates(const msgpack::object& object) {
    if (object.type != msgpack::type::ARRAY || object.via.array.size > kMaxCandidates)
        return fail("bad candidate list");
    std::vector<identity::Endpoint> candidates;
    for (std::uint32_t i = 0; i < object.via.array.size; ++i) {
        const auto& item = object.via.array.ptr[i];
        if (item.type != msgpack::type::STR) return fail("bad candidate");
        auto endpoint = identity::Endpoint::parse(std::string_view(item.via.str.ptr, item.via.str.size));
        if (!endpoint) return fail("bad candidate: " + endpoint.error());
        candidates.push_back(endpoint.value());
    }
    return candidates;
}

void pack_relays(msgpack::packer<msgpack::sbuffer>& packer, const std::vector<identity::RelayRef>& relays) {
    const auto count = std::min(relays.size(), kMaxPayloadRelays);
    packer.pack_array(static_cast<std::uint32_t>(count));
    for (std::size_t i = 0; i < count; ++i) {
        packer.pack_array(2);
        packer.pack_bin(identity::kPublicKeySize);
        packer.pack_bin_body(reinterpret_cast<const char*>(relays[i].relay.key().data()), identity::kPublicKeySize);
        packer.pack(relays[i].endpoint.to_string());
    }
}

Result<std::vector<identity::RelayRef>> unpack_relays(const msgpack::object& object) {
    if (object.type != msgpack::type::ARRAY || object.via.array.size > kMaxPayloadRelays) return fail("bad relay list");
    std::vector<identity::RelayRef> relays;
    for (std::uint32_t i = 0; i < object.via.array.size; ++i) {
        const auto& item = object.via.array.ptr[i];
        if (item.type != msgpack::type::ARRAY || item.via.array.size != 2) return fail("bad relay");
        const auto& key = item.via.array.ptr[0];
        const auto& address = item.via.array.ptr[1];
        if (key.type != msgpack::type::BIN || key.via.bin.size != identity::kPublicKeySize ||
            address.type != msgpack::type::STR)
            return fail("bad relay");
        identity::PublicKeyBytes bytes{};
        std::copy_n(reinterpret_cast<const std::uint8_t*>(key.via.bin.ptr), bytes.size(), bytes.begin());
        auto endpoint = identity::Endpoint::parse(std::string_view(address.via.str.ptr, address.via.str.size));
        if (!endpoint) return fail("bad relay endpoint: " + endpoint.error());
        relays.push_back({identity::PeerId(bytes), endpoint.value()});
    }
    return relays;
}

// Unpacks exactly one msgpack array of `size` elements, nothing after it.
Result<msgpack::object_handle> unpack_array(std::span<const std::uint8_t> bytes, std::uint32_t size) {
    try {
        std::size_t offset = 0;
        auto handle = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), offset, nullptr,
                                      nullptr, limits());
        if (offset != bytes.size()) return fail("trailing bytes");
        const auto& object = handle.get();
        if (object.type != msgpack::type::ARRAY || object.via.array.size != size) return fail("wrong shape");
        if (object.via.array.ptr[0].type != msgpack::type::POSITIVE_INTEGER ||
            object.via.array.ptr[0].via.u64 != kPayloadVersion)
            return fail("unknown payload version");
        return handle;
    } catch (const std::exception& error) {
        return fail(std::string("malformed payload: ") + error.what());
    }
}

bool is_uint(const msgpack::object& object) { return object.type == msgpack::type::POSITIVE_INTEGER; }

// Unknown values (a newer peer) read as "unknown": the class only steers punching.
identity::NatClass unpack_nat(const msgpack::object& object) {
    if (!is_uint(object) || object.via.u64 > static_cast<std::uint64_t>(identity::NatClass::endpoint_dependent))
        return identity::NatClass::unknown;
    return static_cast<identity::NatClass>(object.via.u64);
}

}  // namespace

std::vector<std::uint8_t> encode_hello(const Hello& hello) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_array(7);
    packer.pack(kPayloadVersion);
    packer.pack_bin(identity::kPublicKeySize);
    packer.pack_bin_body(reinterpret_cast<const char*>(hello.initiator.key().data()), identity::kPublicKeySize);
    packer.pack(hello.initiator_index);
    packer.pack(hello.timestamp_ms);
    pack_candidates(packer, hello.candidates);
    packer.pack(static_cast<std::uint8_t>(hello.nat));
    pack_relays(packer, hello.relays);
    return {buffer.data(), buffer.data() + buffer.size()};
}

Result<Hello> decode_hello(std::span<const std::uint8_t> bytes) {
    auto handle = unpack_array(bytes, 7);
    if (!handle) return fail(handle.error());
    const auto* items = handle->get().via.array.ptr;
    if (items[1].type != msgpack::type::BIN || items[1].via.bin.size != identity::kPublicKeySize ||
        !is_uint(items[2]) || items[2].via.u64 > UINT32_MAX || !is_uint(items[3]))
        return fail("malformed hello");
    Hello hello;
    identity::PublicKeyBytes key{};
    std::copy_n(reinterpret_cast<const std::uint8_t*>(items[1].via.bin.ptr), key.size(), key.begin());
    hello.initiator = identity::PeerId(key);
    hello.initiator_index = static_cast<std::uint32_t>(items[2].via.u64);
    hello.timestamp_ms = items[3].via.u64;
    auto candidates = unpack_candidates(items[4]);
    if (!candidates) return fail(candidates.error());
    hello.candidates = std::move(candidates).value();
    hello.nat = unpack_nat(items[5]);
    auto relays = unpack_relays(items[6]);
    if (!relays) return fail(relays.error());
    hello.relays = std::move(relays).value();
    return hello;
}

std::vector<std::uint8_t> encode_reply(const Reply& reply) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_array(6);
    packer.pack(kPayloadVersion);
    packer.pack(reply.responder_index);
    packer.pack(reply.timestamp_ms);
    pack_candidates(packer, reply.candidates);
    packer.pack(static_cast<std::uint8_t>(reply.nat));
    pack_relays(packer, reply.relays);
    return {buffer.data(), buffer.data() + buffer.size()};
}

Result<Reply> decode_reply(std::span<const std::uint8_t> bytes) {
    auto handle = unpack_array(bytes, 6);
    if (!handle) return fail(handle.error());
    const auto* items = handle->get().via.array.ptr;
    if (!is_uint(items[1]) || items[1].via.u64 > UINT32_MAX || !is_uint(items[2])) return fail("malformed reply");
    Reply reply;
    reply.responder_index = static_cast<std::uint32_t>(items[1].via.u64);
    reply.timestamp_ms = items[2].via.u64;
    auto candidates = unpack_candidates(items[3]);
    if (!candidates) return fail(candidates.error());
    reply.candidates = std::move(candidates).value();
    reply.nat = unpack_nat(items[4]);
    auto relays = unpack_relays(items[5]);
    if (!relays) return fail(relays.error());
    reply.relays = std::move(relays).value();
    return reply;
}

}  // namespace keyhole::node
