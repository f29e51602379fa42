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

TEST(RelayNode, AnnouncesAllocatesOverUdpAndServesTlsOnTheAnnouncedPort) {
    asio::io_context io;
    const auto network = 400000 + static_cast<std::uint32_t>(std::time(nullptr) % 100000);
    LoopbackDhtNode boot(io, network, {});
    LoopbackDhtNode relay_host(io, network, {boot.address()});
    LoopbackDhtNode client(io, network, {boot.address()});
    ASSERT_TRUE(run_until(io, [&] { return relay_host.dht.health().good_nodes > 0 && client.dht.health().good_nodes > 0; }, 20s));

    keyhole::node::DaemonConfig config;
    config.bind_address = "127.0.0.1";
    config.relay = true;
    const auto relay_key = KeyPair::generate();
    keyhole::node::RelayNode relay(io, relay_host.udp, relay_host.dht, relay_key, config);
    relay_host.on_keyhole_packet = [&](std::span<const std::uint8_t> packet, const Endpoint& from) {
        relay.on_datagram(packet, from);
    };
    relay.start();
    ASSERT_FALSE(relay.tls_endpoint().empty());

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

}  // namespace
