// SIGHUP: what a re-read config changes in a running daemon, and what a bad
// file does (nothing).
#include <fstream>

#include <gtest/gtest.h>

#include "config_reload.h"
#include "support/temp_dir.h"

namespace keyhole::node {
namespace {

bool mentions(const std::vector<std::string>& lines, const std::string& part) {
    for (const auto& line : lines)
        if (line.find(part) != std::string::npos) return true;
    return false;
}

TEST(ConfigReload, AppliesLiveSettingsAndLogsEachChange) {
    DaemonConfig running;
    DaemonConfig reread = running;
    reread.log_level = "debug";
    reread.keepalive_interval_s = 20;
    reread.lookup_timeout_s = 5;
    reread.accept_from = AcceptFrom::contacts;
    const auto plan = plan_reload(running, reread);
    EXPECT_EQ(plan.config.log_level, "debug");
    EXPECT_EQ(plan.config.keepalive_interval_s, 20u);
    EXPECT_EQ(plan.config.lookup_timeout_s, 5u);
    EXPECT_EQ(plan.config.accept_from, AcceptFrom::contacts);
    EXPECT_EQ(plan.applied.size(), 4u);
    EXPECT_TRUE(mentions(plan.applied, "log_level: \"info\" -> \"debug\""));
    EXPECT_TRUE(mentions(plan.applied, "keepalive_interval_s: 15 -> 20"));
    EXPECT_TRUE(plan.ignored.empty());
    EXPECT_FALSE(plan.metrics_port_changed);
}

TEST(ConfigReload, KeepsSettingsThatNeedARestart) {
    DaemonConfig running;
    running.state_dir = "/var/lib/keyhole";
    DaemonConfig reread = running;
    reread.port = 4300;
    reread.state_dir = "/elsewhere";
    reread.bootstrap = {"example.org:4222"};
    reread.record_lifetime_s = 600;
    const auto plan = plan_reload(running, reread);
    EXPECT_EQ(plan.config.port, 4224);
    EXPECT_EQ(plan.config.state_dir, "/var/lib/keyhole");
    EXPECT_TRUE(plan.config.bootstrap.empty());
    EXPECT_EQ(plan.config.record_lifetime_s, 3600u);
    EXPECT_TRUE(plan.applied.empty());
    EXPECT_EQ(plan.ignored.size(), 4u);
    EXPECT_TRUE(mentions(plan.ignored, "port: 4224 -> 4300"));
    EXPECT_TRUE(mentions(plan.ignored, "bootstrap: [] -> [\"example.org:4222\"]"));
}

TEST(ConfigReload, MetricsPortChangeReopensTheListener) {
    DaemonConfig running;
    DaemonConfig reread = running;
    reread.metrics_port = 9464;
    const auto plan = plan_reload(running, reread);
    EXPECT_TRUE(plan.metrics_port_changed);
    EXPECT_EQ(plan.config.metrics_port, 9464);
}

TEST(ConfigReload, NothingChangedMeansAnEmptyPlan) {
    DaemonConfig running;
    const auto plan = plan_reload(running, running);
    EXPECT_TRUE(plan.applied.empty());
    EXPECT_TRUE(plan.ignored.empty());
}

// The daemon re-reads with parse_command_line; a broken file is an error
// that names the file and line, so the running config is kept.
TEST(ConfigReload, BadFileIsAnErrorWithFileAndLine) {
    testing::TempDir dir;
    const auto file = dir.path() / "keyhole.toml";
    std::ofstream(file) << "log_level = \"debug\"\nkeepalive_interval_s = 0\n";
    const std::string path = file.string();
    const char* argv[] = {"keyholed", "--config", path.c_str()};
    auto parsed = parse_command_line(3, argv);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error(), path + ":2: key 'keepalive_interval_s': expected an integer from 1 to 3600");
}

TEST(ConfigReload, FlagsStillWinOverTheReReadFile) {
    testing::TempDir dir;
    const auto file = dir.path() / "keyhole.toml";
    std::ofstream(file) << "log_level = \"debug\"\nmetrics_port = 9000\n";
    const std::string path = file.string();
    const char* argv[] = {"keyholed", "--config", path.c_str(), "--metrics-port", "9100"};
    auto parsed = parse_command_line(5, argv);
    ASSERT_TRUE(parsed.ok()) << parsed.error();
    EXPECT_EQ(parsed->config.metrics_port, 9100);
    EXPECT_EQ(parsed->config.log_level, "debug");
    ASSERT_TRUE(parsed->config_file);
    EXPECT_EQ(*parsed->config_file, path);
}

}  // namespace
}  // namespace keyhole::node
