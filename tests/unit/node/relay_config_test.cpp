// The relay settings in the config file: `relay = true`, or a [relay] table
// with the TLS port, the public address and the limits.
#include <fstream>

#include <gtest/gtest.h>

#include "keyhole/identity/key_pair.h"
#include "keyhole/node/config.h"
#include "support/temp_dir.h"

namespace {

using keyhole::node::DaemonConfig;
using keyhole::node::load_config_file;

keyhole::Status load(const std::string& text, DaemonConfig& config) {
    keyhole::testing::TempDir dir;
    const auto file = dir.path() / "keyhole.toml";
    std::ofstream(file) << text;
    return load_config_file(file, config);
}

TEST(RelayConfig, PlainBooleanStillTurnsRelayModeOn) {
    DaemonConfig config;
    ASSERT_TRUE(load("relay = true\n", config).ok());
    EXPECT_TRUE(config.relay);
    EXPECT_EQ(config.relay_limits.max_allocations, 1000u);  // defaults kept
}

TEST(RelayConfig, TableSetsPortAddressAndLimits) {
    DaemonConfig config;
    auto loaded = load(
        "[relay]\n"
        "enabled = true\n"
        "tcp_port = 443\n"
        "public_address = \"203.0.113.7\"\n"
        "max_allocations = 50\n"
        "max_allocations_per_key = 3\n"
        "allocation_lifetime_s = 300\n"
        "allocation_packets_per_s = 100\n"
        "allocation_bytes_per_s = 65536\n"
        "source_packets_per_s = 200\n"
        "source_bytes_per_s = 131072\n"
        "total_bytes_per_s = 1000000\n"
        "max_channels_per_allocation = 8\n"
        "channel_idle_s = 60\n"
        "errors_per_s = 10\n"
        "max_tls_connections = 20\n",
        config);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_TRUE(config.relay);
    EXPECT_EQ(config.relay_tcp_port, 443);
    EXPECT_EQ(config.relay_public_address, "203.0.113.7");
    const auto& l = config.relay_limits;
    EXPECT_EQ(l.max_allocations, 50u);
    EXPECT_EQ(l.max_allocations_per_key, 3u);
    EXPECT_EQ(l.allocation_lifetime_s, 300u);
    EXPECT_EQ(l.allocation_packets_per_s, 100u);
    EXPECT_EQ(l.allocation_bytes_per_s, 65536u);
    EXPECT_EQ(l.source_packets_per_s, 200u);
    EXPECT_EQ(l.source_bytes_per_s, 131072u);
    EXPECT_EQ(l.total_bytes_per_s, 1000000u);
    EXPECT_EQ(l.max_channels_per_allocation, 8u);
    EXPECT_EQ(l.channel_idle_s, 60u);
    EXPECT_EQ(l.errors_per_s, 10u);
    EXPECT_EQ(l.max_tls_connections, 20u);
}

TEST(RelayConfig, UnknownKeyAndBadValuesNameTheKey) {
    DaemonConfig config;
    auto unknown = load("[relay]\nmax_alocations = 5\n", config);
    ASSERT_FALSE(unknown.ok());
    EXPECT_NE(unknown.error().find("relay.max_alocations"), std::string::npos) << unknown.error();

    auto bad = load("[relay]\nmax_allocations = 0\n", config);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().find("relay.max_allocations"), std::string::npos) << bad.error();

    auto address = load("[relay]\npublic_address = \"relay.example\"\n", config);
    ASSERT_FALSE(address.ok());
    EXPECT_NE(address.error().find("IPv4"), std::string::npos) << address.error();

    auto wrong_type = load("relay = 3\n", config);
    ASSERT_FALSE(wrong_type.ok());
    EXPECT_EQ(config.relay_limits.max_allocations, 1000u);  // a bad file changes nothing
}

// The client side: relays to use besides the DHT's, and the fallback switches.
TEST(RelayConfig, ClientRelaysAndSwitchesLoadAndBadEntriesNameTheLine) {
    const auto relay = keyhole::identity::KeyPair::generate().id().to_text();
    DaemonConfig config;
    ASSERT_TRUE(load("relays = [\"" + relay + "@203.0.113.81:4222/443\", \"" + relay + "@203.0.113.82:4222\"]\n"
                     "relay_fallback = false\nbirthday_probing = false\n",
                     config)
                    .ok());
    ASSERT_EQ(config.relays.size(), 2u);
    EXPECT_FALSE(config.relay_fallback);
    EXPECT_FALSE(config.birthday_probing);

    auto parsed = keyhole::node::parse_configured_relay(config.relays[0]);
    ASSERT_TRUE(parsed) << parsed.error();
    EXPECT_EQ(parsed->udp.to_string(), "203.0.113.81:4222");
    EXPECT_EQ(parsed->tcp.to_string(), "203.0.113.81:443");
    auto udp_only = keyhole::node::parse_configured_relay(config.relays[1]);
    ASSERT_TRUE(udp_only);
    EXPECT_TRUE(udp_only->tcp.empty());

    for (const auto& bad : std::vector<std::string>{"203.0.113.81:4222", "nokey@203.0.113.81:4222", relay + "@host:4222",
                                  relay + "@203.0.113.81", relay + "@203.0.113.81:4222/x"}) {
        EXPECT_FALSE(keyhole::node::parse_configured_relay(bad)) << bad;
    }
    DaemonConfig untouched;
    auto refused = load("relays = [\n  \"" + relay + "@203.0.113.81:4222\",\n  \"bad\",\n]\n", untouched);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().find(":3:"), std::string::npos) << refused.error();
    EXPECT_NE(refused.error().find("relays"), std::string::npos) << refused.error();
}

}  // namespace
