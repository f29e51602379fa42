// keyhole: the command-line client for the keyholed daemon.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands.h"
#include "keyhole/node/config.h"

namespace {

using keyhole::cli::Invocation;

constexpr const char* kUsageHint = " (see keyhole --help)";

std::string usage_text() {
    std::string text =
        "Usage: keyhole [--socket PATH] [--json] [--timeout SECONDS] COMMAND [ARGS]\n"
        "\n"
        "Talks to the local keyholed over its control socket.\n"
        "\n"
        "Commands:\n";
    std::vector<std::pair<std::string, std::string>> lines;
    std::size_t width = 0;
    for (const auto& command : keyhole::cli::command_table()) {
        std::string head = command.name;
        if (!command.argument_synopsis.empty()) head += " " + command.argument_synopsis;
        width = std::max(width, head.size());
        lines.emplace_back(head, command.summary);
    }
    for (const auto& [head, summary] : lines) {
        text += "  " + head + std::string(width - head.size() + 2, ' ') + summary + "\n";
    }
    text +=
        "\n"
        "Options (also accepted after the command; a command's own options, such as\n"
        "send --wait or inbox --follow, come after it):\n"
        "  --socket PATH      the daemon's control socket (default: $KEYHOLE_SOCKET,\n"
        "                     else /run/keyhole/control.sock if present, else\n"
        "                     $XDG_RUNTIME_DIR/keyhole/control.sock or\n"
        "                     /tmp/keyhole-UID/control.sock)\n"
        "  --json             print the daemon's result as JSON (inbox, history:\n"
        "                     one JSON object per message and line)\n"
        "  --timeout SECONDS  how long to wait for the daemon (default 30)\n"
        "  -h, --help         show this help\n"
        "\n"
        "Exit status: 0 success, 1 the daemon failed or is unreachable, 2 usage error.\n";
    return text;
}

std::optional<std::chrono::milliseconds> parse_timeout(const std::string& text) {
    char* end = nullptr;
    errno = 0;
    double seconds = std::strtod(text.c_str(), &end);
    if (text.empty() || errno != 0 || *end != '\0' || !std::isfinite(seconds) || seconds <= 0 ||
        seconds > 86400) {
        return std::nullopt;
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000)));
}

struct ParsedArguments {
    bool show_help = false;
    std::string command;
    Invocation invocation;
};

// Global options may come before or after the command; "--" ends options so
// later commands can take arguments that start with '-'.
keyhole::Result<ParsedArguments> parse_arguments(int argc, char** argv) {
    ParsedArguments parsed;
    std::optional<std::string> socket_path;
    bool options_ended = false;
    for (int index = 1; index < argc; ++index) {
        std::string_view argument = argv[index];
        bool is_option = !options_ended && argument.size() > 1 && argument.front() == '-';
        if (!is_option) {
            if (parsed.command.empty()) {
                parsed.command = argument;
            } else {
                parsed.invocation.arguments.emplace_back(argument);
            }
            continue;
        }
        if (argument == "--") {
            options_ended = true;
            continue;
        }
        if (argument == "-h" || argument == "--help") {
            parsed.show_help = true;
            continue;
        }

        std::string_view name = argument;
        std::optional<std::string> value;
        if (auto equals = argument.find('='); equals != std::string_view::npos) {
            name = argument.substr(0, equals);
            value = std::string(argument.substr(equals + 1));
        }
        auto take_value = [&]() -> keyhole::Result<std::string> {
            if (value) return *value;
            if (index + 1 < argc) return std::string(argv[++index]);
            return keyhole::fail("option '" + std::string(name) + "' needs a value" + kUsageHint);
        };

        // The command's own options, e.g. "inbox --follow"; they come after it.
        const keyhole::cli::CommandOption* command_option = nullptr;
        if (const auto* command = keyhole::cli::find_command(parsed.command);
            command && name.size() > 2 && name.substr(0, 2) == "--") {
            command_option = command->find_option(name.substr(2));
        }
        if (command_option) {
            using Value = keyhole::cli::CommandOption::Value;
            std::optional<std::string> option_value;
            if (command_option->value == Value::none && value) {
                return keyhole::fail("option '" + std::string(name) + "' takes no value" +
                                     kUsageHint);
            }
            if (command_option->value == Value::required) {
                auto text = take_value();
                if (!text) return keyhole::fail(text.error());
                option_value = *text;
            } else if (command_option->value == Value::optional) {
                option_value = value;  // only "--name=value"
            }
            parsed.invocation.options[command_option->name] = option_value;
        } else if (name == "--json" && !value) {
            parsed.invocation.json_output = true;
        } else if (name == "--socket") {
            auto path = take_value();
            if (!path) return keyhole::fail(path.error());
            if (path->empty()) {
                return keyhole::fail(std::string("option '--socket' needs a path") + kUsageHint);
            }
            socket_path = *path;
        } else if (name == "--timeout") {
            auto text = take_value();
            if (!text) return keyhole::fail(text.error());
            auto timeout = parse_timeout(*text);
            if (!timeout) {
                return keyhole::fail(
                    "option '--timeout': expected seconds, more than 0 and at most 86400");
            }
            parsed.invocation.timeout = *timeout;
        } else {
            return keyhole::fail("unknown option '" + std::string(argument) + "'" + kUsageHint);
        }
    }
    parsed.invocation.socket_path = socket_path ? std::filesystem::path(*socket_path)
                                                : keyhole::node::default_control_socket_path();
    return parsed;
}

int run(int argc, char** argv) {
    auto parsed = parse_arguments(argc, argv);
    if (!parsed) {
        std::cerr << "keyhole: " << parsed.error() << '\n';
        return keyhole::cli::kExitUsage;
    }
    if (parsed->show_help || parsed->command == "help") {
        std::cout << usage_text();
        return keyhole::cli::kExitSuccess;
    }
    if (parsed->command.empty()) {
        std::cerr << "keyhole: no command given" << kUsageHint << '\n';
        return keyhole::cli::kExitUsage;
    }
    const auto* command = keyhole::cli::find_command(parsed->command);
    if (!command) {
        std::cerr << "keyhole: unknown command '" << parsed->command << "'" << kUsageHint << '\n';
        return keyhole::cli::kExitUsage;
    }
    int status = keyhole::cli::run_command(*command, parsed->invocation, std::cout, std::cerr);
    std::cout.flush();
    if (!std::cout && status == keyhole::cli::kExitSuccess) return keyhole::cli::kExitFailure;
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& error) {
        // Last resort: a bug should still end with a message, not an abort.
        std::cerr << "keyhole: internal error: " << error.what() << '\n';
        return keyhole::cli::kExitFailure;
    }
}
