// Relay announcements through real OpenDHT on loopback: announce, find,
// withdraw; forged values stored under the relays key are ignored.
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <memory>
#include <optional>

#include <asio/io_context.hpp>
#include <opendht/dhtrunner.h>

#include "keyhole/dht/dht_node.h"
#include "keyhole/identity/relay_announcement.h"
#include "relay_directory.h"
#include "support/loopback_dht.h"

namespace {

using namespace std::chrono_literals;
using keyhole::identity::Endpoint;
using keyhole::identity::KeyPair;
using keyhole::identity::RelayAnnouncement;
using TestNode = keyhole::testing::LoopbackDhtNode;
using keyhole::testing::run_until;

std::uint32_t test_network() { return 200000 + static_cast<std::uint32_t>(std::time(nullptr) % 100000); }

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

RelayAnnouncement announcement_of(const KeyPair& key, std::uint16_t port) {
    RelayAnnouncement a;
    a.relay = key.id();
    a.udp = Endpoint::ipv4({127, 0, 0, 1}, port);
    a.tcp = Endpoint::ipv4({127, 0, 0, 1}, static_cast<std::uint16_t>(port + 1));
    a.capacity = 100;
    a.free = 100;
    a.max_bandwidth = 1'000'000;
    a.issued_ms = now_ms();
    a.expires_ms = a.issued_ms + 30 * 60 * 1000;
    return a;
}

// find_relays until `done` holds for the result (a get right after a put can miss).
template <typename Predicate>
std::vector<RelayAnnouncement> find_until(asio::io_context& io, TestNode& node, Predicate done) {
    std::vector<RelayAnnouncement> relays;
    for (int attempt = 0; attempt < 10; ++attempt) {
        std::optional<std::vector<RelayAnnouncement>> found;
        node.dht.find_relays(3s, [&](std::vector<RelayAnnouncement> result) { found = std::move(result); });
        EXPECT_TRUE(run_until(io, [&] { return found.has_value(); }, 6s));
        relays = found.value_or(std::vector<RelayAnnouncement>{});
        if (done(relays)) break;
    }
    return relays;
}

bool contains(const std::vector<RelayAnnouncement>& relays, const keyhole::identity::PeerId& id) {
    return std::any_of(relays.begin(), relays.end(), [&](const auto& a) { return a.relay == id; });
}

TEST(RelayDirectory, AnnouncedRelayIsFoundByAnotherNode) {
    asio::io_context io;
    const auto network = test_network();
    TestNode boot(io, network, {});
    TestNode relay_node(io, network, {boot.address()});
    TestNode client(io, network, {boot.address()});
    ASSERT_TRUE(run_until(io, [&] { return relay_node.dht.health().good_nodes > 0 && client.dht.health().good_nodes > 0; }, 20s));

    const auto key = KeyPair::generate();
    const auto announcement = announcement_of(key, relay_node.udp.local_endpoint().port());
    ASSERT_TRUE(relay_node.dht.announce_relay(keyhole::identity::encode_signed_announcement(announcement, key)).ok());
    auto relays = find_until(io, client, [&](const auto& r) { return contains(r, key.id()); });
    ASSERT_TRUE(contains(relays, key.id()));
    EXPECT_EQ(relays.front(), announcement);
}

TEST(RelayDirectory, RefusesToAnnounceWhatReadersWouldReject) {
    asio::io_context io;
    TestNode node(io, test_network() + 1, {});
    const auto key = KeyPair::generate();
    auto expired = announcement_of(key, 4000);
    expired.issued_ms -= 3'600'000;
    expired.expires_ms = expired.issued_ms + 1000;
    EXPECT_FALSE(node.dht.announce_relay(keyhole::identity::encode_signed_announcement(expired, key)).ok());
    EXPECT_FALSE(node.dht.announce_relay({1, 2, 3}).ok());
}

TEST(RelayDirectory, ForgedAnnouncementStoredUnderTheKeyIsIgnored) {
    asio::io_context io;
    const auto network = test_network() + 2;
    TestNode boot(io, network, {});
    TestNode relay_node(io, network, {boot.address()});
    TestNode client(io, network, {boot.address()});

    // Two stock OpenDHT nodes (no keyhole value types, so no store policy):
    // one puts a forgery, the other stores it, as a hostile or careless node
    // on the public network would. Keyhole nodes refuse to store it.
    auto stock_node = [&](dht::DhtRunner& runner) {
        dht::DhtRunner::Config config;
        config.threaded = true;
        config.dht_config.node_config.network = network;
        sockaddr_storage bind4{};
        const auto bind4_length = Endpoint::ipv4({127, 0, 0, 1}, 0).to_sockaddr(bind4);
        config.bind4 = dht::SockAddr(bind4, bind4_length);
        runner.run(config, {});
        runner.bootstrap("127.0.0.1", std::to_string(boot.udp.local_endpoint().port()));
    };
    dht::DhtRunner stock, stock_store;
    stock_node(stock);
    stock_node(stock_store);
    ASSERT_TRUE(run_until(io, [&] {
        return relay_node.dht.health().good_nodes > 0 && client.dht.health().good_nodes > 0 &&
               stock.getNodesStats(AF_INET).good_nodes > 0 && stock_store.getNodesStats(AF_INET).good_nodes > 0;
    }, 20s));

    const auto honest = KeyPair::generate();
    const auto forged_key = KeyPair::generate();
    auto forged_bytes = keyhole::identity::encode_signed_announcement(announcement_of(forged_key, 5000), forged_key);
    forged_bytes[forged_bytes.size() - 1] ^= 0x01;  // signature no longer holds
    auto forged_value = std::make_shared<dht::Value>(keyhole::dht::kRelayValueTypeId, forged_bytes, 77);
    const auto announcement = announcement_of(honest, relay_node.udp.local_endpoint().port());
    ASSERT_TRUE(relay_node.dht.announce_relay(keyhole::identity::encode_signed_announcement(announcement, honest)).ok());

    // Until the client's get has met the forgery (the stock nodes need a
    // moment to know each other, so the forgery is put again each round).
    std::vector<RelayAnnouncement> relays;
    for (int attempt = 0; attempt < 15; ++attempt) {
        auto forged_put = std::make_shared<std::atomic<int>>(-1);  // set on OpenDHT's thread
        stock.put(keyhole::dht::relays_key(), forged_value, [forged_put](bool ok) { *forged_put = ok ? 1 : 0; });
        ASSERT_TRUE(run_until(io, [&] { return *forged_put >= 0; }, 10s));
        relays = find_until(io, client, [&](const auto& r) { return contains(r, honest.id()); });
        if (client.dht.relay_announcements_rejected() > 0 && contains(relays, honest.id())) break;
        run_until(io, [] { return false; }, 500ms);
    }
    EXPECT_TRUE(contains(relays, honest.id()));
    EXPECT_FALSE(contains(relays, forged_key.id()));
    EXPECT_EQ(relays.size(), 1u);
    EXPECT_GT(client.dht.relay_announcements_rejected(), 0u) << "the forgery never reached the reader";
    stock.join();
    stock_store.join();
}

TEST(RelayDirectory, WithdrawnAnnouncementIsNotRefreshed) {
    asio::io_context io;
    const auto network = test_network() + 3;
    TestNode boot(io, network, {});
    TestNode relay_node(io, network, {boot.address()});
    ASSERT_TRUE(run_until(io, [&] { return relay_node.dht.health().good_nodes > 0; }, 20s));
    const auto key = KeyPair::generate();
    ASSERT_TRUE(relay_node.dht
                    .announce_relay(keyhole::identity::encode_signed_announcement(
                        announcement_of(key, relay_node.udp.local_endpoint().port()), key))
                    .ok());
    ASSERT_TRUE(run_until(io, [&] { return relay_node.dht.relay_announcement_stored(); }, 10s));
    relay_node.dht.withdraw_relay();
    EXPECT_FALSE(relay_node.dht.relay_announcement_stored());
}

}  // namespace
