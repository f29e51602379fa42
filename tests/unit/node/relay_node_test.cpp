// Relay mode as the daemon wires it (RelayNode): on a loopback DHT, a client
// finds the relay's announcement, allocates over UDP, and reaches the TLS
// port announced with the relay's key; stop() withdraws.
#include <gtest/gtest.h>

#include <ctime>
#include <deque>
#include <optional>

#include <asio/io_context.hpp>

#include "keyhole/identity/key_pair.h"
#include "keyhole/node/config.h"
#include "keyhole/transport/relay_client.h"
#include "keyhole/transport/relay_wire.h"
#include "keyhole/transport/tls_stream.h"
#include "relay_node.h"
#include "support/loopback_dht.h"

namespace {

using namespace std::chrono_literals;
using namespace keyhole::transport;
using keyhole::identity::Endpoint;
using keyhole::identity::KeyPair;
using keyhole::identity::RelayAnnouncement;
using keyhole::testing::LoopbackDhtNode;
using keyhole::testing::run_until;

// A loopback DHT of three nodes (a bootstrap, the relay's host, a client's)
// and a started RelayNode on the relay host, as the daemon wires it.
struct RelayOnLoopback {
    explicit RelayOnLoopback(std::uint32_t network_base)
        : network(network_base + static_cast<std::uint32_t>(std::time(nullptr) % 100000)),
          boot(io, network, {}), relay_host(io, network, {boot.address()}), client(io, network, {boot.address()}) {
        config.bind_address = "127.0.0.1";
        config.relay = true;
    }
    // Waits for the DHT and starts the relay; false if the DHT did not form.
    bool start() {
        if (!run_until(io, [&] { return relay_host.dht.health().good_nodes > 0 && client.dht.health().good_nodes > 0; }, 20s))
            return false;
        relay.emplace(io, relay_host.udp, relay_host.dht, relay_key, config);
        relay_host.on_keyhole_packet = [this](std::span<const std::uint8_t> packet, const Endpoint& from) {
            relay->on_datagram(packet, from);
        };
        relay->start();
        return !relay->tls_endpoint().empty();
    }

    asio::io_context io;
    std::uint32_t network;
    LoopbackDhtNode boot;
    LoopbackDhtNode relay_host;
    LoopbackDhtNode client;
    keyhole::node::DaemonConfig config;
    KeyPair relay_key = KeyPair::generate();
    std::optional<keyhole::node::RelayNode> relay;
};

TEST(RelayNode, AnnouncesAllocatesOverUdpAndServesTlsOnTheAnnouncedPort) {
    RelayOnLoopback lab(400000);
    ASSERT_TRUE(lab.start());
    auto& io = lab.io;
    auto& client = lab.client;
    auto& relay_host = lab.relay_host;
    auto& relay = *lab.relay;
    const auto& relay_key = lab.relay_key;
    const auto& config = lab.config;

    // Discovery.
    std::optional<RelayAnnouncement> found;
    for (int attempt = 0; attempt < 10 && !found; ++attempt) {
        std::optional<std::vector<RelayAnnouncement>> relays;
        client.dht.find_relays(3s, [&](std::vector<RelayAnnouncement> result) { relays = std::move(result); });
        ASSERT_TRUE(run_until(io, [&] { return relays.has_value(); }, 6s));
        for (const auto& a : *relays)
            if (a.relay == relay_key.id()) found = a;
    }
    ASSERT_TRUE(found);
    EXPECT_EQ(found->udp, relay_host.udp.local_endpoint());
    EXPECT_EQ(found->tcp, relay.tls_endpoint());
    EXPECT_EQ(found->capacity, config.relay_limits.max_allocations);

    // Allocation over UDP, from the client's own DHT port, with the client state machine.
    const auto client_key = KeyPair::generate();
    RelayAllocationClient allocation(client_key, found->relay);
    std::deque<std::vector<std::uint8_t>> received;
    client.on_keyhole_packet = [&](std::span<const std::uint8_t> packet, const Endpoint&) {
        received.emplace_back(packet.begin(), packet.end());
    };
    const auto now = std::chrono::steady_clock::now();
    client.udp.send_to(found->udp, *allocation.poll(now));
    ASSERT_TRUE(run_until(
        io,
        [&] {
            while (!received.empty()) {
                const auto packet = std::move(received.front());
                received.pop_front();
                auto parsed = parse_relay_packet(packet);
                if (!parsed) continue;
                if (auto* challenge = std::get_if<AllocateChallenge>(&parsed.value())) {
                    if (auto confirm = allocation.on_challenge(*challenge, now)) client.udp.send_to(found->udp, *confirm);
                } else if (auto* result = std::get_if<AllocateResult>(&parsed.value())) {
                    allocation.on_result(*result, now);
                }
            }
            return allocation.state(now) != RelayAllocationClient::State::requesting;
        },
        3s));
    EXPECT_EQ(allocation.state(now), RelayAllocationClient::State::granted);
    EXPECT_EQ(relay.server().stats().allocations, 1u);

    // TLS on the announced port, bound to the announced key.
    bool ready = false;
    std::optional<std::string> closed;
    TlsStreamCallbacks callbacks;
    callbacks.on_ready = [&] { ready = true; };
    callbacks.on_closed = [&](const std::string& reason) { closed = reason; };
    auto stream = TlsStream::connect(io, found->tcp, found->relay, std::move(callbacks));
    ASSERT_TRUE(run_until(io, [&] { return ready || closed; }, 5s));
    EXPECT_TRUE(ready) << closed.value_or("");
    stream->close();

    relay.stop();
    EXPECT_FALSE(relay_host.dht.relay_announcement_stored());
}

// A client that reaches the relay only over TLS (UDP blocked) uses it as its
// DHT: its own record is stored (only its own, verified), records are found
// and returned signed, and none of it is served over UDP (no amplifier).
TEST(RelayNode, ServesTheDirectoryToTlsClientsOnly) {
    RelayOnLoopback lab(500000);
    ASSERT_TRUE(lab.start());
    auto& io = lab.io;
    auto& other = lab.client;  // a peer on the DHT
    auto& relay_host = lab.relay_host;
    auto& relay = *lab.relay;
    const auto& relay_key = lab.relay_key;

    // Allocate over TLS.
    const auto client_key = KeyPair::generate();
    RelayAllocationClient allocation(client_key, relay_key.id());
    std::deque<std::vector<std::uint8_t>> received;
    bool ready = false;
    TlsStreamCallbacks callbacks;
    callbacks.on_ready = [&] { ready = true; };
    callbacks.on_packet = [&](std::span<const std::uint8_t> packet) { received.emplace_back(packet.begin(), packet.end()); };
    auto stream = TlsStream::connect(io, relay.tls_endpoint(), relay_key.id(), std::move(callbacks));
    ASSERT_TRUE(run_until(io, [&] { return ready; }, 5s));
    const auto now = std::chrono::steady_clock::now();
    stream->send(*allocation.poll(now));
    std::optional<DirectoryRecord> answer;
    std::vector<std::uint8_t> answer_bytes;
    auto pump = [&] {
        while (!received.empty()) {
            answer_bytes = std::move(received.front());
            received.pop_front();
            auto parsed = parse_relay_packet(answer_bytes);
            if (!parsed) continue;
            if (auto* challenge = std::get_if<AllocateChallenge>(&parsed.value())) {
                if (auto confirm = allocation.on_challenge(*challenge, now)) stream->send(*confirm);
            } else if (auto* result = std::get_if<AllocateResult>(&parsed.value())) {
                allocation.on_result(*result, now);
            } else if (auto* record = std::get_if<DirectoryRecord>(&parsed.value())) {
                answer = *record;
                return;
            }
        }
    };
    ASSERT_TRUE(run_until(io, [&] { pump(); return allocation.state(now) == RelayAllocationClient::State::granted; }, 3s));

    // Publish our record through the relay; a peer on the DHT finds it.
    keyhole::identity::IdentityRecord record;
    record.owner = client_key.id();
    record.sequence = 7;
    record.expires_unix_s = static_cast<std::uint64_t>(std::time(nullptr)) + 600;
    record.relays = {{relay_key.id(), relay_host.udp.local_endpoint()}};
    stream->send(encode_directory_publish(keyhole::identity::encode_signed(record, client_key)));
    // Someone else's record is not stored on our say-so.
    const auto stranger = KeyPair::generate();
    keyhole::identity::IdentityRecord forged = record;
    forged.owner = stranger.id();
    stream->send(encode_directory_publish(keyhole::identity::encode_signed(forged, stranger)));
    std::optional<keyhole::Result<keyhole::identity::IdentityRecord>> found;
    for (int attempt = 0; attempt < 5 && !(found && *found); ++attempt) {
        found.reset();
        other.dht.lookup(client_key.id(), 3s, [&](keyhole::Result<keyhole::identity::IdentityRecord> r) { found = std::move(r); });
        ASSERT_TRUE(run_until(io, [&] { return found.has_value(); }, 5s));
    }
    ASSERT_TRUE(*found) << found->error();
    EXPECT_EQ((*found)->relays, record.relays);

    // Look a record up through the relay: the signed bytes come back and verify.
    const RelayNonce nonce{9, 8, 7, 6, 5, 4, 3, 2};
    stream->send(encode_directory_lookup(nonce, client_key.id()));
    ASSERT_TRUE(run_until(io, [&] { pump(); return answer.has_value(); }, 12s));
    EXPECT_EQ(answer->nonce, nonce);
    auto verified = keyhole::identity::decode_verified(answer->signed_record, client_key.id(),
                                                       static_cast<std::uint64_t>(std::time(nullptr)));
    ASSERT_TRUE(verified) << verified.error();
    EXPECT_EQ(verified->sequence, 7u);
    EXPECT_EQ(relay.server().directory_requests(), 3u);  // the forged publish counted, not stored

    // The stranger's record was not stored.
    found.reset();
    other.dht.lookup(stranger.id(), 2s, [&](keyhole::Result<keyhole::identity::IdentityRecord> r) { found = std::move(r); });
    ASSERT_TRUE(run_until(io, [&] { return found.has_value(); }, 5s));
    EXPECT_FALSE(*found);

    // Over UDP the directory is refused, even to an allocation holder.
    std::deque<std::vector<std::uint8_t>> udp_received;
    other.on_keyhole_packet = [&](std::span<const std::uint8_t> packet, const Endpoint&) {
        udp_received.emplace_back(packet.begin(), packet.end());
    };
    other.udp.send_to(relay_host.udp.local_endpoint(), encode_directory_lookup(nonce, client_key.id()));
    std::optional<RelayError> refused;
    ASSERT_TRUE(run_until(io, [&] {
        while (!udp_received.empty() && !refused) {
            auto packet = std::move(udp_received.front());
            udp_received.pop_front();
            auto parsed = parse_relay_packet(packet);
            if (parsed && std::holds_alternative<RelayError>(parsed.value())) refused = std::get<RelayError>(parsed.value());
        }
        return refused.has_value();
    }, 3s));
    EXPECT_EQ(refused->code, RelayCode::not_allocated);
    EXPECT_EQ(relay.server().directory_requests(), 3u);
    stream->close();
    relay.stop();
}

}  // namespace
