// The keyhole CLI's commands: each turns its arguments into a control request
// and renders the daemon's result. Adding a command means adding one entry to
// the table in commands.cpp.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
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
    bool json_output = false;
    std::filesystem::path socket_path;
    std::chrono::milliseconds timeout{30000};
};

struct Command {
    std::string name;
    std::string argument_synopsis;  // e.g. "ID"; shown in usage
    std::string summary;
    // Checks the arguments locally and builds {"cmd": ..., arguments...}.
    // An error here is a usage error: the daemon is never contacted.
    std::function<Result<nlohmann::json>(const std::vector<std::string>& arguments)> build_request;
    // Prints a successful result for people (--json prints it verbatim).
    std::function<void(const nlohmann::json& result, std::ostream& out)> print_result;
    // Optional: rewords a daemon error for this command, e.g. not_found.
    std::function<std::optional<std::string>(const ControlResponse& response,
                                             const std::vector<std::string>& arguments)>
        explain_error;
};

const std::vector<Command>& command_table();
const Command* find_command(std::string_view name);

// Builds the request, talks to the daemon, prints the outcome; returns the exit code.
int run_command(const Command& command, const Invocation& invocation, std::ostream& out,
                std::ostream& err);

}  // namespace keyhole::cli
