// The config file we ship must load with the daemon's own parser and point a
// new user at the public network.
#include <gtest/gtest.h>

#include <algorithm>

#include "keyhole/node/config.h"

namespace {

TEST(ShippedConfig, LoadsAndListsThePublicBootstrap) {
    keyhole::node::DaemonConfig config;
    auto loaded = keyhole::node::load_config_file(KEYHOLE_SOURCE_DIR "/node/keyhole.toml", config);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_NE(std::find(config.bootstrap.begin(), config.bootstrap.end(), "bootstrap.jami.net:4222"),
              config.bootstrap.end());
    EXPECT_EQ(config.dht_network, 0u);
    EXPECT_EQ(config.port, 4224);
}

}  // namespace
