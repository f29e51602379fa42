// The keyhole CLI's commands: each turns its arguments into a control request
// and renders the daemon's result. Adding a command means adding one entry to
// the table in commands.cpp.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control_client.h"
#include "keyhole/result.h"

namespace keyhole::cli {

// Process exit codes.
constexpr int kExitSuccess = 0;
constexpr int kExitFailure = 1;  // the daemon said no, or could not be reached
constexpr int kExitUsage = 2;    // the command line (or an argument) is wrong

struct Invocation {
    std::vector<std::string> arguments;  // after the command name
    // The command's own options (see Command::options), by name without
    // "--": a value when one was given ("--limit 5", "--wait=10").
    std::map<std::string, std::optional<std::string>> options;
    bool json_output = false;
    std::filesystem::path socket_path;
    std::chrono::milliseconds timeout{30000};

    bool has_option(const std::string& name) const { return options.count(name) != 0; }
};

// An option only one command accepts; it must come after the command name.
struct CommandOption {
    enum class Value {
        none,      // --follow
        required,  // --limit N or --limit=N
        optional,  // --wait or --wait=SECONDS (only the '=' form takes a value)
    };
    std::string name;  // without "--"
    Value value = Value::none;
};

using RequestBuilder = std::function<Result<nlohmann::json>(const Invocation& invocation)>;
using ResultPrinter = std::function<void(const nlohmann::json& result, std::ostream& out)>;

struct Command {
    std::string name;
    std::string argument_synopsis;  // e.g. "ID"; shown in usage
    std::string summary;
    // Checks the arguments locally and builds {"cmd": ..., arguments...}.
    // An error here is a usage error: the daemon is never contacted.
    RequestBuilder build_request;
    // Prints a successful result for people.
    ResultPrinter print_result;
    // Optional: rewords a daemon error for this command, e.g. not_found.
    std::function<std::optional<std::string>(const ControlResponse& response,
                                             const std::vector<std::string>& arguments)>
        explain_error = nullptr;
    // Optional: prints the result for --json (default: the result verbatim).
    ResultPrinter print_json = nullptr;
    std::vector<CommandOption> options = {};
    // Optional: runs the whole command instead of one request and reply
    // (commands that stream, wait or talk on more than one connection).
    std::function<int(const Invocation& invocation, std::ostream& out, std::ostream& err)> run =
        nullptr;

    const CommandOption* find_option(std::string_view option_name) const;
};

const std::vector<Command>& command_table();
const Command* find_command(std::string_view name);

// Runs the command: its own run(), or build the request, talk to the daemon
// and print the outcome. Returns the exit code.
int run_command(const Command& command, const Invocation& invocation, std::ostream& out,
                std::ostream& err);

}  // namespace keyhole::cli
