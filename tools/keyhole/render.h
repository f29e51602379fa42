// Shared helpers for printing the daemon's results for people: defensive
// JSON field access, times, and text that came from other peers.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace keyhole::cli {

// Compact JSON; bad UTF-8 (peers' text) is replaced, never thrown.
std::string dump_text(const nlohmann::json& value, int indent = -1);

// Human output reads fields defensively: an unexpected shape from the daemon
// is printed as-is rather than crashing the CLI. Returns null when missing.
const nlohmann::json& field(const nlohmann::json& object, const char* name);

// A string as itself, null as `when_null`, anything else as JSON.
std::string plain(const nlohmann::json& value, std::string_view when_null = "none");

// "2023-11-14 22:13:20" (UTC) from milliseconds since the epoch; anything
// that is not a number is shown as JSON.
std::string utc_time_text(const nlohmann::json& unix_ms);

// A duration in milliseconds for people: "850 ms", "12.5 ms", "3.2 s".
std::string milliseconds_text(double milliseconds);

bool is_valid_utf8(std::string_view text);

// Makes text from a peer safe to print on a terminal: control characters
// (except newline and tab), bidirectional overrides and invalid UTF-8 become
// U+FFFD, so a message cannot move the cursor, recolour the terminal or
// disguise what it says.
std::string terminal_safe(std::string_view text);

// terminal_safe(text), with every line after the first indented by `indent`
// spaces so multi-line messages stay inside their column.
std::string indented_text(std::string_view text, std::size_t indent);

// The first `count` characters of a peer ID followed by "…".
std::string short_id(const nlohmann::json& id, std::size_t count = 8);

// Aligned columns; every row should have as many cells as the header.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

}  // namespace keyhole::cli
