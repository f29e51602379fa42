// Daemon settings: built-in defaults, then the TOML config file, then flags.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/result.h"

namespace keyhole::node {

enum class AcceptFrom { anyone, contacts };

// What a relay allows (issue #5): docs/relay.md explains each limit. Set in
// the config file's [relay] table.
struct RelayLimits {
    std::uint32_t max_allocations = 1000;            // in total
    std::uint32_t max_allocations_per_key = 2;       // per client key
    std::uint32_t allocation_lifetime_s = 600;       // unless refreshed
    std::uint32_t allocation_packets_per_s = 500;    // forwarded, both directions together
    std::uint32_t allocation_bytes_per_s = 256 * 1024;
    std::uint32_t source_packets_per_s = 1000;       // per source address (IP and port)
    std::uint32_t source_bytes_per_s = 512 * 1024;
    std::uint64_t total_bytes_per_s = 12'500'000;    // 100 Mbit/s forwarded in total
    std::uint32_t max_channels_per_allocation = 64;  // remote peers per allocation
    std::uint32_t channel_idle_s = 300;              // an unused channel is forgotten after this
    std::uint32_t errors_per_s = 100;                // relay errors and refusals sent, in total
    std::uint32_t max_tls_connections = 1000;
};

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
    bool relay = false;                    // volunteer as a relay (issue #5)
    // Relay mode: TLS over TCP on this port; 0 = the same number as `port`.
    std::uint16_t relay_tcp_port = 0;
    // Relay mode: the public IPv4 address to announce; empty = the bind
    // address if it is a specific one, else what DHT nodes report.
    std::string relay_public_address;
    RelayLimits relay_limits;
    // Relay client: relays to use besides those found in the DHT, as
    // "ID@IPv4:udp-port" or "ID@IPv4:udp-port/tcp-port" (the only way to
    // know one on a network that drops UDP, where the DHT is out of reach).
    std::vector<std::string> relays;
    // Fall back to relays when punching cannot work (endpoint-dependent NAT,
    // UDP blocked, a failed punch). Off: direct paths only.
    bool relay_fallback = true;
    // Birthday probing between endpoint-dependent and -independent NATs
    // (docs/nat-traversal.md). Off: such pairs go through a relay at once.
    bool birthday_probing = true;
    bool bootstrap_only = false;
    std::string log_level = "info";        // trace, debug, info, warn, error, critical, off
    AcceptFrom accept_from = AcceptFrom::anyone;
    std::uint32_t keepalive_interval_s = 15;
    std::uint32_t lookup_timeout_s = 10;
    std::uint32_t record_lifetime_s = 3600;  // signed expiry; republished at half-life
    // Prometheus metrics on 127.0.0.1:<port> (GET /metrics); 0 = off.
    std::uint16_t metrics_port = 0;
};

// Parses a TOML file into `config` (keys absent from the file keep their value).
// Unknown keys and bad values are errors naming the file, line and key.
Status load_config_file(const std::filesystem::path& path, DaemonConfig& config);

// A configured relay (DaemonConfig::relays), parsed.
struct ConfiguredRelay {
    identity::PeerId id;
    identity::Endpoint udp;
    identity::Endpoint tcp;  // empty without TLS
};
Result<ConfiguredRelay> parse_configured_relay(std::string_view text);

// Parses keyholed's command line. --config FILE is read first (wherever it
// appears), then the other flags override it. Returns an error with a usage
// hint for unknown flags or bad values. Sets `show_help` for -h/--help.
struct CommandLine {
    DaemonConfig config;
    bool show_help = false;
    std::optional<std::filesystem::path> config_file;  // --config, as given
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
