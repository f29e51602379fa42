#include "keyhole/node/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>

#include <toml++/toml.h>

namespace keyhole::node {

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------
// Value checks shared by the config file and the command line, so both
// accept exactly the same values and describe problems the same way.

constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

std::string expected_integer(std::int64_t min, std::int64_t max) {
    return "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

const std::string& expected_log_level() {
    static const std::string text =
        "expected one of trace, debug, info, warn, error, critical, off";
    return text;
}

const std::string& expected_ipv4() {
    static const std::string text = "expected an IPv4 address such as 0.0.0.0";
    return text;
}

const std::string& expected_accept_from() {
    static const std::string text = "expected \"anyone\" or \"contacts\"";
    return text;
}

bool is_log_level(std::string_view text) {
    for (auto level : kLogLevels) {
        if (text == level) return true;
    }
    return false;
}

bool is_ipv4_address(const std::string& text) {
    in_addr address{};
    return inet_pton(AF_INET, text.c_str(), &address) == 1;
}

std::optional<AcceptFrom> parse_accept_from(std::string_view text) {
    if (text == "anyone") return AcceptFrom::anyone;
    if (text == "contacts") return AcceptFrom::contacts;
    return std::nullopt;
}

// Whole-string decimal integer; no sign tricks, no trailing garbage.
std::optional<std::int64_t> parse_integer(std::string_view text) {
    std::int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || text.empty()) {
        return std::nullopt;
    }
    return value;
}

// Returns what is wrong with a bootstrap "host:port" entry, or nothing.
// IPv6 literals need brackets ("[::1]:4222") so the port is unambiguous.
std::optional<std::string> bootstrap_entry_problem(std::string_view entry) {
    const std::string problem = "'" + std::string(entry) +
                                "' is not host:port with a port from 1 to 65535"
                                " (IPv6 as [addr]:port)";
    std::string_view host;
    std::string_view port;
    if (!entry.empty() && entry.front() == '[') {
        auto close = entry.find(']');
        if (close == std::string_view::npos || close + 1 >= entry.size() ||
            entry[close + 1] != ':') {
            return problem;
        }
        host = entry.substr(1, close - 1);
        port = entry.substr(close + 2);
    } else {
        auto colon = entry.rfind(':');
        if (colon == std::string_view::npos) return problem;
        host = entry.substr(0, colon);
        port = entry.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return problem;
    }
    if (host.empty()) return problem;
    if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos) {
        return problem;
    }
    auto number = parse_integer(port);
    if (!number || *number < 1 || *number > 65535) return problem;
    return std::nullopt;
}

// ---------------------------------------------------------------------------
// The config file.

struct ValueProblem {
    std::string expected;
    const toml::node* where = nullptr;  // a nested node (array element) to blame, if any
};

struct FileContext {
    fs::path directory;  // relative paths in the file are relative to this
};

using KeyApplier = std::function<std::optional<ValueProblem>(const toml::node&, DaemonConfig&,
                                                             const FileContext&)>;

std::optional<std::int64_t> integer_in_range(const toml::node& node, std::int64_t min,
                                             std::int64_t max) {
    auto* integer = node.as_integer();
    if (!integer) return std::nullopt;
    std::int64_t value = integer->get();
    if (value < min || value > max) return std::nullopt;
    return value;
}

template <typename Field>
KeyApplier integer_key(Field DaemonConfig::*field, std::int64_t min, std::int64_t max) {
    return [=](const toml::node& node, DaemonConfig& config,
               const FileContext&) -> std::optional<ValueProblem> {
        auto value = integer_in_range(node, min, max);
        if (!value) return ValueProblem{expected_integer(min, max)};
        config.*field = static_cast<Field>(*value);
        return std::nullopt;
    };
}

KeyApplier bool_key(bool DaemonConfig::*field) {
    return [=](const toml::node& node, DaemonConfig& config,
               const FileContext&) -> std::optional<ValueProblem> {
        auto* boolean = node.as_boolean();
        if (!boolean) return ValueProblem{"expected true or false"};
        config.*field = boolean->get();
        return std::nullopt;
    };
}

KeyApplier path_key(fs::path DaemonConfig::*field) {
    return [=](const toml::node& node, DaemonConfig& config,
               const FileContext& file) -> std::optional<ValueProblem> {
        auto* text = node.as_string();
        if (!text || text->get().empty()) return ValueProblem{"expected a non-empty path"};
        fs::path path = text->get();
        config.*field = path.is_relative() ? (file.directory / path).lexically_normal() : path;
        return std::nullopt;
    };
}

// A string key whose value must pass `accept`; `expected` describes good values.
KeyApplier checked_string_key(std::function<bool(const std::string&, DaemonConfig&)> accept,
                              std::string expected) {
    return [=](const toml::node& node, DaemonConfig& config,
               const FileContext&) -> std::optional<ValueProblem> {
        auto* text = node.as_string();
        if (!text || !accept(text->get(), config)) return ValueProblem{expected};
        return std::nullopt;
    };
}

std::optional<ValueProblem> apply_bootstrap(const toml::node& node, DaemonConfig& config,
                                            const FileContext&) {
    auto* array = node.as_array();
    if (!array) return ValueProblem{"expected an array of \"host:port\" strings"};
    std::vector<std::string> entries;
    for (const auto& element : *array) {
        auto* text = element.as_string();
        if (!text) return ValueProblem{"expected an array of \"host:port\" strings", &element};
        if (auto problem = bootstrap_entry_problem(text->get())) {
            return ValueProblem{"entry " + *problem, &element};
        }
        entries.push_back(text->get());
    }
    config.bootstrap = std::move(entries);
    return std::nullopt;
}

std::optional<ValueProblem> apply_relays(const toml::node& node, DaemonConfig& config, const FileContext&) {
    constexpr const char* kExpected = "expected an array of \"ID@IPv4:port\" or \"ID@IPv4:port/tcp-port\" strings";
    auto* array = node.as_array();
    if (!array) return ValueProblem{kExpected};
    std::vector<std::string> entries;
    for (const auto& element : *array) {
        auto* text = element.as_string();
        if (!text) return ValueProblem{kExpected, &element};
        if (auto parsed = parse_configured_relay(text->get()); !parsed)
            return ValueProblem{"entry " + parsed.error(), &element};
        entries.push_back(text->get());
    }
    config.relays = std::move(entries);
    return std::nullopt;
}

// `relay = true`, or a [relay] table: `enabled`, the TLS port, the public
// address and the limits (issue #5, docs/relay.md).
std::optional<ValueProblem> apply_relay(const toml::node& node, DaemonConfig& config, const FileContext&) {
    if (auto* boolean = node.as_boolean()) {
        config.relay = boolean->get();
        return std::nullopt;
    }
    auto* table = node.as_table();
    if (!table) return ValueProblem{"expected true, false or a [relay] table"};
    auto& limits = config.relay_limits;
    using Setter = std::function<std::optional<std::string>(const toml::node&)>;
    auto integer = [](auto& field, std::int64_t min, std::int64_t max) -> Setter {
        return [&field, min, max](const toml::node& value) -> std::optional<std::string> {
            auto number = integer_in_range(value, min, max);
            if (!number) return expected_integer(min, max);
            field = static_cast<std::remove_reference_t<decltype(field)>>(*number);
            return std::nullopt;
        };
    };
    const std::vector<std::pair<std::string_view, Setter>> keys = {
        {"enabled",
         [&](const toml::node& value) -> std::optional<std::string> {
             auto* flag = value.as_boolean();
             if (!flag) return "expected true or false";
             config.relay = flag->get();
             return std::nullopt;
         }},
        {"tcp_port", integer(config.relay_tcp_port, 0, 65535)},
        {"public_address",
         [&](const toml::node& value) -> std::optional<std::string> {
             auto* text = value.as_string();
             if (!text || (!text->get().empty() && !is_ipv4_address(text->get())))
                 return "expected an IPv4 address or \"\"";
             config.relay_public_address = text->get();
             return std::nullopt;
         }},
        {"max_allocations", integer(limits.max_allocations, 1, 1'000'000)},
        {"max_allocations_per_key", integer(limits.max_allocations_per_key, 1, 64)},
        {"allocation_lifetime_s", integer(limits.allocation_lifetime_s, 60, 86400)},
        {"allocation_packets_per_s", integer(limits.allocation_packets_per_s, 1, 10'000'000)},
        {"allocation_bytes_per_s", integer(limits.allocation_bytes_per_s, 1, 4'000'000'000LL)},
        {"source_packets_per_s", integer(limits.source_packets_per_s, 1, 10'000'000)},
        {"source_bytes_per_s", integer(limits.source_bytes_per_s, 1, 4'000'000'000LL)},
        {"total_bytes_per_s", integer(limits.total_bytes_per_s, 1, 1'000'000'000'000LL)},
        {"max_channels_per_allocation", integer(limits.max_channels_per_allocation, 1, 4096)},
        {"channel_idle_s", integer(limits.channel_idle_s, 10, 86400)},
        {"errors_per_s", integer(limits.errors_per_s, 1, 100'000)},
        {"max_tls_connections", integer(limits.max_tls_connections, 0, 100'000)},
    };
    for (const auto& [key, value] : *table) {
        const auto known = std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.first == key.str(); });
        if (known == keys.end())
            return ValueProblem{"unknown key 'relay." + std::string(key.str()) + "'", &value};
        if (auto problem = known->second(value))
            return ValueProblem{"relay." + std::string(key.str()) + ": " + *problem, &value};
    }
    return std::nullopt;
}

const std::vector<std::pair<std::string_view, KeyApplier>>& config_keys() {
    static const std::vector<std::pair<std::string_view, KeyApplier>> keys = {
        {"state_dir", path_key(&DaemonConfig::state_dir)},
        {"port", integer_key(&DaemonConfig::port, 0, 65535)},
        {"bind_address", checked_string_key(
                             [](const std::string& text, DaemonConfig& config) {
                                 if (!is_ipv4_address(text)) return false;
                                 config.bind_address = text;
                                 return true;
                             },
                             expected_ipv4())},
        {"bootstrap", apply_bootstrap},
        {"dht_network", integer_key(&DaemonConfig::dht_network, 0, 4294967295LL)},
        {"control_socket", path_key(&DaemonConfig::control_socket)},
        {"control_group", checked_string_key(
                              [](const std::string& text, DaemonConfig& config) {
                                  config.control_group = text;
                                  return true;
                              },
                              "expected a group name")},
        {"relay", apply_relay},
        {"relays", apply_relays},
        {"relay_fallback", bool_key(&DaemonConfig::relay_fallback)},
        {"birthday_probing", bool_key(&DaemonConfig::birthday_probing)},
        {"bootstrap_only", bool_key(&DaemonConfig::bootstrap_only)},
        {"log_level", checked_string_key(
                          [](const std::string& text, DaemonConfig& config) {
                              if (!is_log_level(text)) return false;
                              config.log_level = text;
                              return true;
                          },
                          expected_log_level())},
        {"accept_from", checked_string_key(
                            [](const std::string& text, DaemonConfig& config) {
                                auto value = parse_accept_from(text);
                                if (!value) return false;
                                config.accept_from = *value;
                                return true;
                            },
                            expected_accept_from())},
        {"keepalive_interval_s", integer_key(&DaemonConfig::keepalive_interval_s, 1, 3600)},
        {"lookup_timeout_s", integer_key(&DaemonConfig::lookup_timeout_s, 1, 300)},
        {"record_lifetime_s", integer_key(&DaemonConfig::record_lifetime_s, 120, 86400)},
        {"metrics_port", integer_key(&DaemonConfig::metrics_port, 0, 65535)},
    };
    return keys;
}

const KeyApplier* find_config_key(std::string_view key) {
    for (const auto& [name, applier] : config_keys()) {
        if (name == key) return &applier;
    }
    return nullptr;
}

// Plain POSIX reads so the error names the real reason (EACCES, EISDIR, ...).
Result<std::string> read_whole_file(const fs::path& path) {
    auto cannot_read = [&] {
        return fail(path.string() + ": cannot read: " + std::strerror(errno));
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cannot_read();
    std::string contents;
    std::array<char, 16 * 1024> chunk;
    for (;;) {
        ssize_t count = ::read(fd, chunk.data(), chunk.size());
        if (count < 0 && errno == EINTR) continue;
        if (count < 0) {
            auto error = cannot_read();
            ::close(fd);
            return error;
        }
        if (count == 0) break;
        contents.append(chunk.data(), static_cast<std::size_t>(count));
    }
    ::close(fd);
    return contents;
}

// ---------------------------------------------------------------------------
// The command line.

struct FlagSpec {
    std::string_view name;
    bool takes_value;
    // Applies the flag; returns what was expected when `value` is bad.
    std::function<std::optional<std::string>(const std::string& value, CommandLine&,
                                             std::vector<std::string>& bootstrap)>
        apply;
};

template <typename Field>
std::optional<std::string> set_integer(const std::string& value, Field& field, std::int64_t min,
                                       std::int64_t max) {
    auto number = parse_integer(value);
    if (!number || *number < min || *number > max) return expected_integer(min, max);
    field = static_cast<Field>(*number);
    return std::nullopt;
}

const std::vector<FlagSpec>& flag_specs() {
    using Bootstrap = std::vector<std::string>;
    static const std::vector<FlagSpec> specs = {
        // --config is handled before the others; listed so it is recognised.
        {"--config", true,
         [](const std::string&, CommandLine&, Bootstrap&) -> std::optional<std::string> {
             return std::nullopt;
         }},
        {"--state-dir", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             if (value.empty()) return "expected a non-empty path";
             line.config.state_dir = value;
             return std::nullopt;
         }},
        {"--port", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) {
             return set_integer(value, line.config.port, 0, 65535);
         }},
        {"--bind", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             if (!is_ipv4_address(value)) return expected_ipv4();
             line.config.bind_address = value;
             return std::nullopt;
         }},
        {"--bootstrap", true,
         [](const std::string& value, CommandLine&,
            Bootstrap& bootstrap) -> std::optional<std::string> {
             if (auto problem = bootstrap_entry_problem(value)) return problem;
             bootstrap.push_back(value);
             return std::nullopt;
         }},
        {"--control", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             if (value.empty()) return "expected a non-empty path";
             line.config.control_socket = value;
             return std::nullopt;
         }},
        {"--control-group", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             line.config.control_group = value;
             return std::nullopt;
         }},
        {"--relay", false,
         [](const std::string&, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             line.config.relay = true;
             return std::nullopt;
         }},
        {"--relay-tcp-port", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) {
             return set_integer(value, line.config.relay_tcp_port, 0, 65535);
         }},
        {"--use-relay", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             if (auto parsed = parse_configured_relay(value); !parsed) return parsed.error();
             line.config.relays.push_back(value);
             return std::nullopt;
         }},
        {"--no-relay-fallback", false,
         [](const std::string&, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             line.config.relay_fallback = false;
             return std::nullopt;
         }},
        {"--no-birthday-probing", false,
         [](const std::string&, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             line.config.birthday_probing = false;
             return std::nullopt;
         }},
        {"--bootstrap-only", false,
         [](const std::string&, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             line.config.bootstrap_only = true;
             return std::nullopt;
         }},
        {"--log-level", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) -> std::optional<std::string> {
             if (!is_log_level(value)) return expected_log_level();
             line.config.log_level = value;
             return std::nullopt;
         }},
        {"--network", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) {
             return set_integer(value, line.config.dht_network, 0, 4294967295LL);
         }},
        {"--metrics-port", true,
         [](const std::string& value, CommandLine& line, Bootstrap&) {
             return set_integer(value, line.config.metrics_port, 0, 65535);
         }},
    };
    return specs;
}

const FlagSpec* find_flag(std::string_view name) {
    for (const auto& spec : flag_specs()) {
        if (spec.name == name) return &spec;
    }
    return nullptr;
}

struct FlagUse {
    const FlagSpec* spec;
    std::string value;
};

const char* const kUsageHint = " (see keyholed --help)";

std::string env_or_empty(const char* name) {
    const char* value = std::getenv(name);
    return value ? std::string(value) : std::string();
}

fs::path home_directory() {
    if (auto home = env_or_empty("HOME"); !home.empty()) return home;
    if (const passwd* entry = getpwuid(getuid()); entry && entry->pw_dir) return entry->pw_dir;
    return {};
}

}  // namespace

Status load_config_file(const fs::path& path, DaemonConfig& config) {
    auto text = read_whole_file(path);
    if (!text) return fail(text.error());

    const std::string file_name = path.string();
    toml::table table;
    try {
        table = toml::parse(*text, file_name);
    } catch (const toml::parse_error& error) {
        const auto& where = error.source().begin;
        return fail(file_name + ":" + std::to_string(where.line) + ":" +
                    std::to_string(where.column) + ": " + std::string(error.description()));
    }

    std::error_code ignored;
    fs::path absolute = fs::absolute(path, ignored);
    FileContext context{(absolute.empty() ? path : absolute).parent_path()};

    // Apply to a copy so a bad file leaves the caller's config untouched.
    DaemonConfig updated = config;
    for (const auto& [key, node] : table) {
        const KeyApplier* applier = find_config_key(key.str());
        if (!applier) {
            return fail(file_name + ":" + std::to_string(key.source().begin.line) +
                        ": unknown key '" + std::string(key.str()) + "'");
        }
        if (auto problem = (*applier)(node, updated, context)) {
            const toml::node& blamed = problem->where ? *problem->where : node;
            return fail(file_name + ":" + std::to_string(blamed.source().begin.line) + ": key '" +
                        std::string(key.str()) + "': " + problem->expected);
        }
    }
    config = std::move(updated);
    return success();
}

Result<CommandLine> parse_command_line(int argc, const char* const* argv) {
    CommandLine result;
    std::vector<FlagUse> uses;
    std::optional<std::string> config_file;

    for (int index = 1; index < argc; ++index) {
        std::string_view argument = argv[index];
        if (argument == "-h" || argument == "--help") {
            result.show_help = true;
            return result;
        }
        if (!argument.starts_with("--")) {
            return fail("unexpected argument '" + std::string(argument) + "'" + kUsageHint);
        }
        std::string_view name = argument;
        std::optional<std::string> inline_value;
        if (auto equals = argument.find('='); equals != std::string_view::npos) {
            name = argument.substr(0, equals);
            inline_value = std::string(argument.substr(equals + 1));
        }
        const FlagSpec* spec = find_flag(name);
        if (!spec) return fail("unknown option '" + std::string(name) + "'" + kUsageHint);

        std::string value;
        if (spec->takes_value) {
            if (inline_value) {
                value = std::move(*inline_value);
            } else if (index + 1 < argc) {
                value = argv[++index];
            } else {
                return fail("option '" + std::string(name) + "' needs a value" + kUsageHint);
            }
        } else if (inline_value) {
            return fail("option '" + std::string(name) + "' takes no value" + kUsageHint);
        }

        if (name == "--config") {
            config_file = std::move(value);
        } else {
            uses.push_back({spec, std::move(value)});
        }
    }

    if (config_file) {
        if (config_file->empty()) return fail("option '--config': expected a file name");
        if (auto loaded = load_config_file(*config_file, result.config); !loaded) {
            return fail(loaded.error());
        }
        result.config_file = *config_file;
    }

    std::vector<std::string> flag_bootstrap;
    for (const auto& use : uses) {
        if (auto problem = use.spec->apply(use.value, result, flag_bootstrap)) {
            return fail("option '" + std::string(use.spec->name) + "': " + *problem);
        }
    }
    // Any --bootstrap replaces the file's list: a command line that names its
    // bootstrap nodes means exactly those.
    if (!flag_bootstrap.empty()) result.config.bootstrap = std::move(flag_bootstrap);

    if (result.config.state_dir.empty()) result.config.state_dir = default_state_dir();
    if (result.config.control_socket.empty()) {
        result.config.control_socket = per_user_control_socket_path();
    }
    return result;
}

std::string usage_text() {
    return "Usage: keyholed [OPTIONS]\n"
           "\n"
           "The keyhole peer-to-peer chat daemon.\n"
           "\n"
           "Options (each also accepted as --option=VALUE):\n"
           "  --config FILE          read settings from this TOML file first\n"
           "  --state-dir DIR        where the identity and messages live\n"
           "                         (default: $XDG_STATE_HOME/keyhole or ~/.local/state/keyhole)\n"
           "  --port N               UDP port for the DHT and peers (default 4224, 0 = any)\n"
           "  --bind ADDR            IPv4 address to bind the UDP port to (default 0.0.0.0)\n"
           "  --bootstrap HOST:PORT  a DHT node to join through; repeat for several\n"
           "                         (replaces the config file's list)\n"
           "  --network N            OpenDHT network id (default 0, the public network)\n"
           "  --control PATH         control socket path (default: $KEYHOLE_SOCKET,\n"
           "                         $XDG_RUNTIME_DIR/keyhole/control.sock or\n"
           "                         /tmp/keyhole-UID/control.sock; the system service\n"
           "                         passes /run/keyhole/control.sock)\n"
           "  --control-group NAME   let this group use the control socket (mode 0660)\n"
           "  --relay                volunteer as a relay for peers behind strict NATs\n"
           "  --relay-tcp-port PORT  the relay's TLS-over-TCP port ([relay] tcp_port; 0: the UDP port)\n"
           "  --use-relay ID@IP:PORT[/TCP]  a relay to use besides those in the DHT (repeatable)\n"
           "  --no-relay-fallback    never use relays (direct paths only)\n"
           "  --no-birthday-probing  no birthday probing; such NAT pairs use a relay at once\n"
           "  --bootstrap-only       only serve the DHT; no identity, no chat\n"
           "  --log-level LEVEL      trace, debug, info, warn, error, critical or off\n"
           "                         (default info)\n"
           "  --metrics-port N       serve Prometheus metrics on 127.0.0.1:N (default 0: off)\n"
           "  --version              print the version and exit\n"
           "  -h, --help             show this help and exit\n";
}

fs::path default_control_socket_path() {
    if (auto explicit_path = env_or_empty("KEYHOLE_SOCKET"); !explicit_path.empty()) {
        return explicit_path;
    }
    const fs::path system_socket = "/run/keyhole/control.sock";
    std::error_code ignored;
    if (fs::exists(system_socket, ignored)) return system_socket;
    return per_user_control_socket_path();
}

fs::path per_user_control_socket_path() {
    if (auto explicit_path = env_or_empty("KEYHOLE_SOCKET"); !explicit_path.empty()) {
        return explicit_path;
    }
    if (auto runtime = env_or_empty("XDG_RUNTIME_DIR"); !runtime.empty()) {
        return fs::path(runtime) / "keyhole" / "control.sock";
    }
    return fs::path("/tmp") / ("keyhole-" + std::to_string(getuid())) / "control.sock";
}

fs::path default_state_dir() {
    // The XDG spec says relative values are invalid and must be ignored.
    if (auto state_home = env_or_empty("XDG_STATE_HOME");
        !state_home.empty() && fs::path(state_home).is_absolute()) {
        return fs::path(state_home) / "keyhole";
    }
    fs::path home = home_directory();
    // No home at all (a stripped-down service account): fall back to the
    // working directory rather than guessing a system path.
    if (home.empty()) return fs::path("keyhole-state");
    return home / ".local" / "state" / "keyhole";
}

Result<ConfiguredRelay> parse_configured_relay(std::string_view text) {
    const auto at = text.find('@');
    if (at == std::string_view::npos) return fail("'" + std::string(text) + "' is not ID@IPv4:port[/tcp-port]");
    auto id = identity::PeerId::parse(text.substr(0, at));
    if (!id) return fail("'" + std::string(text) + "': " + id.error());
    auto rest = text.substr(at + 1);
    std::string_view tcp_port;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        tcp_port = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
    }
    auto udp = identity::Endpoint::parse(rest);
    if (!udp || !udp->is_v4()) return fail("'" + std::string(text) + "': expected an IPv4 address and port after '@'");
    ConfiguredRelay relay{id.value(), udp.value(), {}};
    if (!tcp_port.empty()) {
        auto tcp = identity::Endpoint::parse(udp->address_string() + ":" + std::string(tcp_port));
        if (!tcp) return fail("'" + std::string(text) + "': bad TCP port after '/'");
        relay.tcp = tcp.value();
    }
    return relay;
}

}  // namespace keyhole::node
