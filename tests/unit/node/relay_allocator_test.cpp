// The relay client (RelayAllocator) against a real RelayServer on loopback
// UDP: a configured relay is pinged and allocated at, a relay that stops
// answering is noticed within three keepalive intervals, and a relay that
// lost our allocation (restarted) gets it back when it says so.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "keyhole/dht/dht_node.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/transport/relay_wire.h"
#include "keyhole/transport/udp_port.h"
#include "relay_allocator.h"
#include "relay_server.h"
#include "support/loopback_dht.h"

namespace {

using namespace std::chrono_literals;
using keyhole::identity::Endpoint;
using keyhole::identity::KeyPair;
using keyhole::identity::RelayRef;
using keyhole::node::RelayAllocator;
using keyhole::node::RelayPath;
using keyhole::node::RelayServer;
using keyhole::testing::run_until;

Endpoint loopback() { return Endpoint::ipv4({127, 0, 0, 1}, 0); }

struct AllocatorOnLoopback {
    AllocatorOnLoopback() : relay_udp(io), client_udp(io), dht(io, {}), ticker(io) {
        EXPECT_TRUE(relay_udp.open(loopback()).ok());
        EXPECT_TRUE(client_udp.open(loopback()).ok());
        restart_relay();
        relay_udp.start_receiving([this](std::span<const std::uint8_t> packet, const Endpoint& from) {
            if (answering && keyhole::transport::is_relay_server_packet(packet)) server->on_packet(packet, RelayPath{from, 0});
        });
        config.keepalive_interval_s = 1;
        config.relays = {relay_key.id().to_text() + "@" + relay_udp.local_endpoint().to_string()};
        keyhole::node::RelayAllocatorCallbacks callbacks;
        callbacks.on_relays_changed = [this](const std::vector<RelayRef>& relays) { changes.push_back(relays); };
        callbacks.on_relay_lost = [this](const Endpoint&) { lost_at = std::chrono::steady_clock::now(); };
        allocator = std::make_unique<RelayAllocator>(io, client_udp, dht, client_key, config, std::move(callbacks));
        client_udp.start_receiving([this](std::span<const std::uint8_t> packet, const Endpoint& from) {
            if (keyhole::transport::is_relay_client_packet(packet)) allocator->on_packet(packet, from);
        });
        tick();
    }
    ~AllocatorOnLoopback() {
        ticker.cancel();
        allocator->stop();
        client_udp.close();
        relay_udp.close();
    }
    // A new server on the same port and key: what a restarted relay looks like.
    void restart_relay() {
        server = std::make_unique<RelayServer>(relay_key, keyhole::node::RelayLimits{},
                                               [this](const RelayPath& to, std::span<const std::uint8_t> packet) {
                                                   relay_udp.send_to(to.endpoint, packet);
                                               });
    }
    void tick() {
        allocator->tick(std::chrono::steady_clock::now());
        ticker.expires_after(50ms);
        ticker.async_wait([this](const asio::error_code& error) {
            if (!error) tick();
        });
    }

    asio::io_context io;
    KeyPair relay_key = KeyPair::generate();
    KeyPair client_key = KeyPair::generate();
    keyhole::transport::UdpPort relay_udp;
    keyhole::transport::UdpPort client_udp;
    keyhole::dht::DhtNode dht;  // not started: discovery finds nothing, the configured relay is all there is
    keyhole::node::DaemonConfig config;
    std::unique_ptr<RelayServer> server;
    bool answering = true;
    std::unique_ptr<RelayAllocator> allocator;
    std::vector<std::vector<RelayRef>> changes;
    std::optional<std::chrono::steady_clock::time_point> lost_at;
    asio::steady_timer ticker;
};

TEST(RelayAllocator, AllocatesAtAConfiguredRelayOnlyWhenNeeded) {
    AllocatorOnLoopback lab;
    EXPECT_FALSE(run_until(lab.io, [&] { return lab.server->allocation_count() > 0; }, 300ms));  // not needed yet
    lab.allocator->need("test");
    ASSERT_TRUE(run_until(lab.io, [&] { return lab.allocator->granted().size() == 1; }, 5s));
    EXPECT_EQ(lab.allocator->granted()[0].relay, lab.relay_key.id());
    EXPECT_EQ(lab.allocator->granted()[0].endpoint, lab.relay_udp.local_endpoint());
    EXPECT_EQ(lab.server->allocation_count(), 1u);
    ASSERT_FALSE(lab.changes.empty());
    EXPECT_EQ(lab.changes.back(), lab.allocator->granted());
    const auto status = lab.allocator->status();
    ASSERT_EQ(status.size(), 1u);
    EXPECT_EQ(status[0].state, "granted");
    EXPECT_EQ(status[0].transport, "udp");
    EXPECT_TRUE(status[0].rtt_ms.has_value());
}

TEST(RelayAllocator, NoticesASilentRelayWithinThreeKeepaliveIntervals) {
    AllocatorOnLoopback lab;
    lab.allocator->need("test");
    ASSERT_TRUE(run_until(lab.io, [&] { return lab.allocator->granted().size() == 1; }, 5s));
    run_until(lab.io, [] { return false; }, 1500ms);  // a ping or two answered
    lab.answering = false;
    const auto silent_since = std::chrono::steady_clock::now();
    ASSERT_TRUE(run_until(lab.io, [&] { return lab.lost_at.has_value(); }, 6s));
    const auto noticed_after = *lab.lost_at - silent_since;
    EXPECT_LE(noticed_after, 3s) << std::chrono::duration<double>(noticed_after).count() << " s";
    EXPECT_TRUE(lab.allocator->granted().empty());
    EXPECT_TRUE(lab.changes.back().empty());  // the record loses the relay
    EXPECT_EQ(lab.allocator->relays_lost(), 1u);
}

TEST(RelayAllocator, AllocatesAgainWhenTheRelayLostTheAllocation) {
    AllocatorOnLoopback lab;
    lab.allocator->need("test");
    ASSERT_TRUE(run_until(lab.io, [&] { return lab.allocator->granted().size() == 1; }, 5s));
    lab.restart_relay();
    EXPECT_EQ(lab.server->allocation_count(), 0u);
    // Answering a peer on a channel: the restarted relay says "not allocated".
    const std::vector<std::uint8_t> frame{0x6b, 0x68, 0x01, 0x20, 1, 2, 3, 4};
    lab.allocator->send(keyhole::node::RelayHop{lab.relay_udp.local_endpoint(), 5, lab.relay_key.id()},
                        KeyPair::generate().id(), frame);
    ASSERT_TRUE(run_until(lab.io, [&] { return lab.server->allocation_count() == 1; }, 5s));
    ASSERT_TRUE(run_until(lab.io, [&] { return lab.allocator->granted().size() == 1; }, 2s));
    EXPECT_EQ(lab.allocator->relays_lost(), 0u);  // the relay itself never went away
}

}  // namespace
