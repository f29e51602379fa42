// DhtNode through real OpenDHT: nodes on real loopback UDP ports, one io_context.
#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <optional>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "keyhole/dht/dht_node.h"
#include "keyhole/identity/record.h"
#include "keyhole/transport/udp_port.h"
#include "support/loopback_dht.h"

namespace {

using namespace std::chrono_literals;
using keyhole::identity::IdentityRecord;
using keyhole::identity::KeyPair;

using TestNode = keyhole::testing::LoopbackDhtNode;
using keyhole::testing::run_until;

std::uint32_t test_network() { return 100000 + static_cast<std::uint32_t>(std::time(nullptr) % 100000); }

TEST(DhtNode, LookupFindsThePublishedRecordWithTheHighestSequence) {
    asio::io_context io;
    const auto network = test_network();
    auto boot = std::make_unique<TestNode>(io, network, std::vector<std::string>{});
    TestNode a(io, network, {boot->address()});
    TestNode b(io, network, {boot->address()});
    ASSERT_TRUE(run_until(io, [&] { return a.dht.health().good_nodes > 0 && b.dht.health().good_nodes > 0; }, 20s));

    const auto key = KeyPair::generate();
    IdentityRecord record;
    record.owner = key.id();
    record.expires_unix_s = static_cast<std::uint64_t>(std::time(nullptr)) + 600;
    record.sequence = 7;
    a.dht.publish(record, keyhole::identity::encode_signed(record, key));
    record.sequence = 8;
    a.dht.publish(record, keyhole::identity::encode_signed(record, key));

    std::optional<keyhole::Result<IdentityRecord>> found;
    for (int attempt = 0; attempt < 10 && !(found && found->ok() && (*found)->sequence == 8); ++attempt) {
        found.reset();
        b.dht.lookup(key.id(), 5s, [&](keyhole::Result<IdentityRecord> result) { found = std::move(result); });
        ASSERT_TRUE(run_until(io, [&] { return found.has_value(); }, 10s));
    }
    ASSERT_TRUE(found->ok()) << found->error();
    EXPECT_EQ((*found)->owner, key.id());
    EXPECT_EQ((*found)->sequence, 8u);
}

TEST(DhtNode, LookupOfAnUnpublishedIdEndsNotFoundWithinItsTimeout) {
    asio::io_context io;
    const auto network = test_network() + 1;
    TestNode boot(io, network, {});
    TestNode a(io, network, {boot.address()});
    ASSERT_TRUE(run_until(io, [&] { return a.dht.health().good_nodes > 0; }, 20s));

    std::optional<keyhole::Result<IdentityRecord>> found;
    const auto started = std::chrono::steady_clock::now();
    a.dht.lookup(KeyPair::generate().id(), 1500ms, [&](keyhole::Result<IdentityRecord> result) { found = std::move(result); });
    ASSERT_TRUE(run_until(io, [&] { return found.has_value(); }, 5s));
    EXPECT_FALSE(found->ok());
    EXPECT_NE(found->error().find("not found"), std::string::npos);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
}

}  // namespace
