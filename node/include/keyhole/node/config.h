// Daemon settings: built-in defaults, then the TOML config file, then flags.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "keyhole/result.h"

namespace keyhole::node {

enum class AcceptFrom { anyone, contacts };

struct DaemonConfig {
    std::filesystem::path state_dir;       // default: see default_state_dir()
    std::uint16_t port = 4224;             // one UDP port for DHT and keyhole
    std::string bind_address = "0.0.0.0";  // IPv4 address to bind the UDP port to
    // host:port entries. No built-in default: the shipped config file lists the
    // public network's bootstrap; a bare `keyholed` contacts nobody it was not told of.
    std::vector<std::string> bootstrap;
    std::uint32_t dht_network = 0;         // OpenDHT network id; 0 is the public network
    std::filesystem::path control_socket;  // default: per_user_control_socket_path()
    std::string control_group;             // empty: socket mode 0600; else 0660 with this group
    bool relay = false;
    bool bootstrap_only = false;
    std::string log_level = "info";        // trace, debug, info, warn, error, critical, off
    AcceptFrom accept_from = AcceptFrom::anyone;
    std::uint32_t keepalive_interval_s = 15;
    std::uint32_t lookup_timeout_s = 10;
    std::uint32_t record_lifetime_s = 3600;  // signed expiry; republished at half-life
};

// Parses a TOML file into `config` (keys absent from the file keep their value).
// Unknown keys and bad values are errors naming the file, line and key.
Status load_config_file(const std::filesystem::path& path, DaemonConfig& config);

// Parses keyholed's command line. --config FILE is read first (wherever it
// appears), then the other flags override it. Returns an error with a usage
// hint for unknown flags or bad values. Sets `show_help` for -h/--help.
struct CommandLine {
    DaemonConfig config;
    bool show_help = false;
};
Result<CommandLine> parse_command_line(int argc, const char* const* argv);
std::string usage_text();

// Where the client looks: $KEYHOLE_SOCKET, else /run/keyhole/control.sock if
// that exists (the system service), else per_user_control_socket_path().
std::filesystem::path default_control_socket_path();
// Where a daemon listens unless told: $KEYHOLE_SOCKET, else
// $XDG_RUNTIME_DIR/keyhole/control.sock, else /tmp/keyhole-<uid>/control.sock.
// Never the service's path, so a user's daemon does not collide with it.
std::filesystem::path per_user_control_socket_path();
// $XDG_STATE_HOME/keyhole, else ~/.local/state/keyhole.
std::filesystem::path default_state_dir();

}  // namespace keyhole::node
