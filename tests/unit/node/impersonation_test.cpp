// A connect request must come from the key its claimed ID stands for: a
// daemon using its own key while claiming another's ID never gets a session.
// Real OpenDHT nodes and UDP ports on loopback; the victim is a real PeerManager.
#include <gtest/gtest.h>

#include <ctime>
#include <optional>

#include <asio/io_context.hpp>

#include "connect_payload.h"
#include "keyhole/dht/dht_node.h"
#include "keyhole/node/peer_manager.h"
#include "keyhole/transport/noise.h"
#include "keyhole/transport/udp_port.h"
#include "support/loopback_dht.h"

namespace {

using namespace std::chrono_literals;
using keyhole::identity::KeyPair;
namespace noise = keyhole::transport::noise;

using DhtOnPort = keyhole::testing::LoopbackDhtNode;
using keyhole::testing::run_until;

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// Sends a connect request to `victim` made with `sender_key` but claiming
// `claimed`, `copies` times (a replay), each as its own DHT value.
void send_hello(keyhole::dht::DhtNode& dht, const KeyPair& sender_key, const keyhole::identity::PeerId& claimed,
                const keyhole::identity::PeerId& victim, int copies = 1) {
    const std::string prologue = "keyhole/v1";
    noise::Initiator initiator(noise::KeyPair::from_identity(sender_key), noise::static_key_of(victim).value(),
                               std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(prologue.data()),
                                                             prologue.size()));
    auto message1 = initiator.write_message1(keyhole::node::encode_hello({claimed, 7, now_ms(), {}, {}, {}}));
    ASSERT_TRUE(message1.ok());
    std::vector<std::uint8_t> inbox{1};
    inbox.insert(inbox.end(), message1->begin(), message1->end());
    for (int i = 0; i < copies; ++i) dht.send_to_inbox(victim, inbox);
}

class Impersonation : public ::testing::Test {
protected:
    void SetUp() override {
        network = 300000 + static_cast<std::uint32_t>(std::time(nullptr) % 100000);
        boot.emplace(io, network, std::vector<std::string>{});
        victim_node.emplace(io, network, std::vector<std::string>{boot->udp.local_endpoint().to_string()});
        attacker_node.emplace(io, network, std::vector<std::string>{boot->udp.local_endpoint().to_string()});
        victim.emplace(io, victim_node->udp, victim_node->dht, victim_key, config, keyhole::node::PeerCallbacks{});
        victim_node->on_keyhole_packet = [this](std::span<const std::uint8_t> data, const keyhole::identity::Endpoint& from) {
            victim->on_packet(data, from);
        };
        victim->start();
        ASSERT_TRUE(run_until(io, [&] {
            return victim_node->dht.health().good_nodes > 0 && attacker_node->dht.health().good_nodes > 0;
        }, 20s));
    }
    void TearDown() override {
        victim->stop();
        victim.reset();
        attacker_node.reset();
        victim_node.reset();
        boot.reset();
    }

    asio::io_context io;
    std::uint32_t network = 0;
    keyhole::node::DaemonConfig config;
    KeyPair victim_key = KeyPair::generate();
    KeyPair attacker_key = KeyPair::generate();
    KeyPair impersonated_key = KeyPair::generate();
    std::optional<DhtOnPort> boot, victim_node, attacker_node;
    std::optional<keyhole::node::PeerManager> victim;
};

TEST_F(Impersonation, ConnectRequestClaimingAnotherIdIsRejected) {
    send_hello(attacker_node->dht, attacker_key, impersonated_key.id(), victim_key.id());
    ASSERT_TRUE(run_until(io, [&] { return victim->stats().handshakes_rejected > 0; }, 20s))
        << "the forged connect request never reached the victim";
    EXPECT_TRUE(victim->peers().empty()) << "a session slot was created for the impersonated ID";
}

TEST_F(Impersonation, TheSameRequestUnderItsOwnIdIsAccepted) {
    // The control case: proves the request above was rejected for its claim alone.
    send_hello(attacker_node->dht, attacker_key, attacker_key.id(), victim_key.id());
    ASSERT_TRUE(run_until(io, [&] { return !victim->peers().empty(); }, 20s));
    EXPECT_EQ(victim->peers().front().id, attacker_key.id());
    EXPECT_EQ(victim->stats().handshakes_rejected, 0u);
}

TEST_F(Impersonation, AReplayedConnectRequestIsIgnored) {
    send_hello(attacker_node->dht, attacker_key, attacker_key.id(), victim_key.id(), /*copies=*/2);
    ASSERT_TRUE(run_until(io, [&] { return victim->stats().handshakes_rejected > 0; }, 20s))
        << "the second copy of the connect request was not rejected";
    EXPECT_EQ(victim->peers().size(), 1u);
}

}  // namespace
