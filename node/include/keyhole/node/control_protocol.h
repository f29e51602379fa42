// The control protocol: one JSON object per line in each direction.
//   request: {"id": <any JSON>, "cmd": "<command>", ...arguments}
//   reply:   {"id": <same>, "ok": true,  "result": {...}}
//            {"id": <same>, "ok": false, "error": {"code": "...", "message": "..."}}
//   event:   {"event": "<name>", ...}   (streamed after "subscribe"; later issues)
// Parsing is separate from acting: only a well-formed ControlRequest reaches
// the daemon's command table.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace keyhole::node {

// Longest accepted request line, newline excluded. Room for a 64 KiB chat
// message even if every byte were escaped as \u00XX.
constexpr std::size_t kMaxControlLine = 512 * 1024;

namespace error_code {
inline constexpr const char* parse_error = "parse_error";          // not JSON
inline constexpr const char* invalid_request = "invalid_request";  // JSON, wrong shape
inline constexpr const char* line_too_long = "line_too_long";
inline constexpr const char* unknown_command = "unknown_command";
inline constexpr const char* bad_argument = "bad_argument";
inline constexpr const char* not_found = "not_found";
inline constexpr const char* unavailable = "unavailable";          // e.g. bootstrap-only node
inline constexpr const char* timeout = "timeout";                  // send --wait: not acknowledged in time
inline constexpr const char* internal = "internal";
}  // namespace error_code

struct ControlRequest {
    nlohmann::json id;       // echoed in the reply; null when the client sent none
    std::string command;
    nlohmann::json body;     // the whole request object, for argument access
};

struct ControlError {
    nlohmann::json id;       // null when the id could not be read
    std::string code;
    std::string message;
};

using ParsedRequest = std::variant<ControlRequest, ControlError>;

// Never throws. A line that is not a JSON object, or lacks a string "cmd",
// becomes a ControlError carrying whatever id could be recovered.
ParsedRequest parse_request_line(std::string_view line);

// Argument helpers for command handlers: a missing or wrongly typed argument
// yields a ControlError with code bad_argument naming the argument.
std::variant<std::string, ControlError> string_argument(const ControlRequest& request,
                                                        const char* name);

std::string make_ok_reply(const nlohmann::json& id, const nlohmann::json& result);
std::string make_error_reply(const nlohmann::json& id, std::string_view code,
                             std::string_view message);
std::string make_error_reply(const ControlError& error);

}  // namespace keyhole::node
