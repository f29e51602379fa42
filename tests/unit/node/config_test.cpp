#include "keyhole/node/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace keyhole::node {
namespace {

namespace fs = std::filesystem;

class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "keyhole-config-XXXXXX").string();
        path_ = mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

    fs::path write(const std::string& name, const std::string& contents) const {
        fs::path file = path_ / name;
        std::ofstream(file) << contents;
        return file;
    }

private:
    fs::path path_;
};

// Sets (or, given nullptr, unsets) an environment variable for one scope.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) saved_ = old;
        set(value);
    }
    ~ScopedEnv() { set(saved_ ? saved_->c_str() : nullptr); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    void set(const char* value) {
        if (value) {
            ::setenv(name_, value, 1);
        } else {
            ::unsetenv(name_);
        }
    }
    const char* name_;
    std::optional<std::string> saved_;
};

Result<CommandLine> parse(std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), "keyholed");
    std::vector<const char*> argv;
    for (const auto& argument : arguments) argv.push_back(argument.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(Config, ValidFileLoadsEveryKey) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", R"(
state_dir = "/var/lib/keyhole"
port = 5000
bind_address = "127.0.0.1"
bootstrap = ["boot.example.org:4222", "[::1]:4223", "10.0.0.1:1"]
dht_network = 4294967295
control_socket = "/run/kh/control.sock"
control_group = "keyhole"
relay = true
bootstrap_only = false
log_level = "debug"
accept_from = "contacts"
keepalive_interval_s = 20
lookup_timeout_s = 30
record_lifetime_s = 7200
)");
    DaemonConfig config;
    auto loaded = load_config_file(file, config);
    ASSERT_TRUE(loaded) << loaded.error();
    EXPECT_EQ(config.state_dir, "/var/lib/keyhole");
    EXPECT_EQ(config.port, 5000);
    EXPECT_EQ(config.bind_address, "127.0.0.1");
    EXPECT_EQ(config.bootstrap,
              (std::vector<std::string>{"boot.example.org:4222", "[::1]:4223", "10.0.0.1:1"}));
    EXPECT_EQ(config.dht_network, 4294967295u);
    EXPECT_EQ(config.control_socket, "/run/kh/control.sock");
    EXPECT_EQ(config.control_group, "keyhole");
    EXPECT_TRUE(config.relay);
    EXPECT_FALSE(config.bootstrap_only);
    EXPECT_EQ(config.log_level, "debug");
    EXPECT_EQ(config.accept_from, AcceptFrom::contacts);
    EXPECT_EQ(config.keepalive_interval_s, 20u);
    EXPECT_EQ(config.lookup_timeout_s, 30u);
    EXPECT_EQ(config.record_lifetime_s, 7200u);
}

TEST(Config, KeysAbsentFromFileKeepTheirValues) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "port = 0\n");
    DaemonConfig config;
    config.log_level = "warn";
    ASSERT_TRUE(load_config_file(file, config));
    EXPECT_EQ(config.port, 0);
    EXPECT_EQ(config.log_level, "warn");
    EXPECT_EQ(config.bind_address, "0.0.0.0");
}

TEST(Config, UnknownKeyErrorNamesFileLineAndKey) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "port = 4224\n\nprot = 1\n");
    DaemonConfig config;
    auto loaded = load_config_file(file, config);
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error(), file.string() + ":3: unknown key 'prot'");
}

TEST(Config, TableSectionIsAnUnknownKey) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "[network]\nport = 1\n");
    DaemonConfig config;
    auto loaded = load_config_file(file, config);
    ASSERT_FALSE(loaded);
    EXPECT_TRUE(contains(loaded.error(), "unknown key 'network'")) << loaded.error();
}

TEST(Config, BadValueErrorNamesKeyAndExpectation) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "relay = true\nport = 70000\n");
    DaemonConfig config;
    auto loaded = load_config_file(file, config);
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error(),
              file.string() + ":2: key 'port': expected an integer from 0 to 65535");
}

TEST(Config, WrongTypeIsRejected) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "port = \"4224\"\n");
    DaemonConfig config;
    auto loaded = load_config_file(file, config);
    ASSERT_FALSE(loaded);
    EXPECT_TRUE(contains(loaded.error(), ":1: key 'port': expected an integer")) << loaded.error();
}

TEST(Config, BadValuesOfEveryCheckedKeyAreRejected) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"bind_address = \"localhost\"", "bind_address"},
        {"bind_address = \"::1\"", "bind_address"},
        {"bootstrap = \"a:1\"", "bootstrap"},
        {"bootstrap = [\"noport\"]", "bootstrap"},
        {"bootstrap = [\":4222\"]", "bootstrap"},
        {"bootstrap = [\"host:0\"]", "bootstrap"},
        {"bootstrap = [\"host:65536\"]", "bootstrap"},
        {"bootstrap = [\"::1:4222\"]", "bootstrap"},
        {"bootstrap = [\"[::1]\"]", "bootstrap"},
        {"bootstrap = [4222]", "bootstrap"},
        {"dht_network = -1", "dht_network"},
        {"dht_network = 4294967296", "dht_network"},
        {"relay = 1", "relay"},
        {"log_level = \"verbose\"", "log_level"},
        {"accept_from = \"friends\"", "accept_from"},
        {"keepalive_interval_s = 0", "keepalive_interval_s"},
        {"lookup_timeout_s = 301", "lookup_timeout_s"},
        {"record_lifetime_s = 119", "record_lifetime_s"},
        {"state_dir = \"\"", "state_dir"},
        {"control_socket = 5", "control_socket"},
    };
    TempDir dir;
    for (const auto& [line, key] : cases) {
        auto file = dir.write("keyhole.toml", line + "\n");
        DaemonConfig config;
        auto loaded = load_config_file(file, config);
        ASSERT_FALSE(loaded) << line;
        EXPECT_TRUE(contains(loaded.error(), ":1: key '" + key + "': ")) << loaded.error();
    }
}

TEST(Config, BadBootstrapEntryIsBlamedOnItsOwnLine) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "bootstrap = [\n  \"a:1\",\n  \"b\",\n]\n");
    DaemonConfig config;
    auto loaded = load_config_file(file, config);
    ASSERT_FALSE(loaded);
    EXPECT_TRUE(contains(loaded.error(), ":3: key 'bootstrap': entry 'b'")) << loaded.error();
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "port = 4224\nrelay = \n");
    DaemonConfig config;
    auto loaded = load_config_file(file, config);
    ASSERT_FALSE(loaded);
    EXPECT_TRUE(loaded.error().starts_with(file.string() + ":2:")) << loaded.error();
}

TEST(Config, FailedLoadLeavesConfigUntouched) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "port = 1\nlog_level = \"loud\"\n");
    DaemonConfig config;
    ASSERT_FALSE(load_config_file(file, config));
    EXPECT_EQ(config.port, 4224);
}

TEST(Config, UnreadableFileSaysWhy) {
    TempDir dir;
    auto missing = dir.path() / "absent.toml";
    DaemonConfig config;
    auto loaded = load_config_file(missing, config);
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error(), missing.string() + ": cannot read: No such file or directory");
}

TEST(Config, RelativePathsAreResolvedAgainstTheFilesDirectory) {
    TempDir dir;
    auto file = dir.write("keyhole.toml",
                          "state_dir = \"state\"\ncontrol_socket = \"run/../control.sock\"\n");
    DaemonConfig config;
    ASSERT_TRUE(load_config_file(file, config));
    EXPECT_EQ(config.state_dir, dir.path() / "state");
    EXPECT_EQ(config.control_socket, dir.path() / "control.sock");
}

TEST(CommandLine, FlagsOverrideTheFileWhereverConfigAppears) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "port = 5000\nlog_level = \"debug\"\nrelay = false\n");
    auto line = parse({"--port", "6000", "--relay", "--config", file.string()});
    ASSERT_TRUE(line) << line.error();
    EXPECT_EQ(line->config.port, 6000);
    EXPECT_TRUE(line->config.relay);
    EXPECT_EQ(line->config.log_level, "debug");
}

TEST(CommandLine, BootstrapFlagsReplaceTheFilesList) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "bootstrap = [\"a.example:1\", \"b.example:2\"]\n");
    auto line =
        parse({"--config=" + file.string(), "--bootstrap", "c.example:3", "--bootstrap=[::1]:4"});
    ASSERT_TRUE(line) << line.error();
    EXPECT_EQ(line->config.bootstrap, (std::vector<std::string>{"c.example:3", "[::1]:4"}));

    auto without_flag = parse({"--config", file.string()});
    ASSERT_TRUE(without_flag);
    EXPECT_EQ(without_flag->config.bootstrap,
              (std::vector<std::string>{"a.example:1", "b.example:2"}));
}

TEST(CommandLine, EveryFlagInBothForms) {
    auto line =
        parse({"--state-dir=/s", "--port=1", "--bind", "10.1.2.3", "--control", "/c.sock",
               "--control-group=wheel", "--bootstrap-only", "--log-level", "off", "--network=7"});
    ASSERT_TRUE(line) << line.error();
    EXPECT_EQ(line->config.state_dir, "/s");
    EXPECT_EQ(line->config.port, 1);
    EXPECT_EQ(line->config.bind_address, "10.1.2.3");
    EXPECT_EQ(line->config.control_socket, "/c.sock");
    EXPECT_EQ(line->config.control_group, "wheel");
    EXPECT_TRUE(line->config.bootstrap_only);
    EXPECT_EQ(line->config.log_level, "off");
    EXPECT_EQ(line->config.dht_network, 7u);
}

TEST(CommandLine, UnknownFlagIsAnErrorWithAHint) {
    auto line = parse({"--prot", "1"});
    ASSERT_FALSE(line);
    EXPECT_EQ(line.error(), "unknown option '--prot' (see keyholed --help)");
    auto with_value = parse({"--prot=1"});
    ASSERT_FALSE(with_value);
    EXPECT_EQ(with_value.error(), "unknown option '--prot' (see keyholed --help)");
}

TEST(CommandLine, BadFlagValuesAreErrors) {
    for (const auto& arguments : std::vector<std::vector<std::string>>{{"--port", "65536"},
                                                                       {"--port", "12x"},
                                                                       {"--port", "-1"},
                                                                       {"--bind", "nowhere"},
                                                                       {"--bootstrap", "host"},
                                                                       {"--log-level", "loud"},
                                                                       {"--network", "-3"},
                                                                       {"--port"},
                                                                       {"--relay=yes"},
                                                                       {"stray"}}) {
        auto line = parse(arguments);
        EXPECT_FALSE(line) << arguments.front();
    }
    auto line = parse({"--port", "65536"});
    ASSERT_FALSE(line);
    EXPECT_EQ(line.error(), "option '--port': expected an integer from 0 to 65535");
}

TEST(CommandLine, ConfigFileErrorsPropagate) {
    TempDir dir;
    auto file = dir.write("keyhole.toml", "nope = 1\n");
    auto line = parse({"--config", file.string()});
    ASSERT_FALSE(line);
    EXPECT_EQ(line.error(), file.string() + ":1: unknown key 'nope'");
}

TEST(CommandLine, HelpIsRecognised) {
    auto line = parse({"--port", "1", "-h"});
    ASSERT_TRUE(line);
    EXPECT_TRUE(line->show_help);
    auto long_form = parse({"--help"});
    ASSERT_TRUE(long_form);
    EXPECT_TRUE(long_form->show_help);
}

TEST(CommandLine, DefaultsAreFilledIn) {
    ScopedEnv socket("KEYHOLE_SOCKET", "/tmp/some/control.sock");
    ScopedEnv state("XDG_STATE_HOME", "/tmp/state-home");
    auto line = parse({});
    ASSERT_TRUE(line);
    EXPECT_EQ(line->config.control_socket, "/tmp/some/control.sock");
    EXPECT_EQ(line->config.state_dir, "/tmp/state-home/keyhole");
    EXPECT_EQ(line->config.port, 4224);
    EXPECT_TRUE(line->config.bootstrap.empty());
}

TEST(CommandLine, UsageListsEveryFlag) {
    std::string usage = usage_text();
    for (const char* flag :
         {"--config", "--state-dir", "--port", "--bind", "--bootstrap", "--control",
          "--control-group", "--relay", "--bootstrap-only", "--log-level", "--network", "--help"}) {
        EXPECT_TRUE(contains(usage, flag)) << flag;
    }
}

TEST(DefaultPaths, StateDirFallsBackToHome) {
    ScopedEnv state("XDG_STATE_HOME", nullptr);
    ScopedEnv home("HOME", "/home/tester");
    EXPECT_EQ(default_state_dir(), "/home/tester/.local/state/keyhole");
}

TEST(DefaultPaths, RelativeXdgStateHomeIsIgnored) {
    ScopedEnv state("XDG_STATE_HOME", "relative/state");
    ScopedEnv home("HOME", "/home/tester");
    EXPECT_EQ(default_state_dir(), "/home/tester/.local/state/keyhole");
}

TEST(DefaultPaths, ControlSocketPrefersEnvironment) {
    {
        ScopedEnv socket("KEYHOLE_SOCKET", "/x/y.sock");
        EXPECT_EQ(default_control_socket_path(), "/x/y.sock");
    }
    ScopedEnv socket("KEYHOLE_SOCKET", nullptr);
    if (fs::exists("/run/keyhole/control.sock")) GTEST_SKIP() << "system socket present";
    {
        ScopedEnv runtime("XDG_RUNTIME_DIR", "/run/user/1234");
        EXPECT_EQ(default_control_socket_path(), "/run/user/1234/keyhole/control.sock");
    }
    ScopedEnv runtime("XDG_RUNTIME_DIR", nullptr);
    EXPECT_EQ(default_control_socket_path(),
              "/tmp/keyhole-" + std::to_string(getuid()) + "/control.sock");
}

}  // namespace
}  // namespace keyhole::node
