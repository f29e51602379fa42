// The messaging commands: send, inbox, history, chat, peers, contacts.
// Each *_command() is one entry of the command table (commands.cpp); the
// request builders and line renderers are exposed for the unit tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "keyhole/result.h"

namespace keyhole::cli {

// Longest message text the daemon accepts, in bytes of UTF-8.
constexpr std::size_t kMaxMessageBytes = 64 * 1024;
// `send --wait` without a value.
constexpr double kDefaultSendWaitSeconds = 30;
// How much longer than wait_s the client waits for the daemon's answer.
constexpr std::chrono::milliseconds kSendWaitGrace{5000};
// `chat`: how long EOF on stdin waits for outstanding delivery acks.
constexpr std::chrono::milliseconds kChatDrainTimeout{10000};

Command send_command();
Command inbox_command();
Command history_command();
Command chat_command();
Command peers_command();
Command contacts_command();

// A new connection that has subscribed to events; errors are printed.
std::optional<ControlClient> subscribe(const Invocation& invocation, std::ostream& err);

// --- requests ---------------------------------------------------------------

// A peer ID argument (checksum verified) in its canonical text form.
Result<std::string> parse_peer_argument(std::string_view text);
// Non-empty, valid UTF-8 and at most kMaxMessageBytes.
Status check_message_text(std::string_view text);

// {"cmd":"send","peer","text"} plus "wait_s" with --wait.
Result<nlohmann::json> build_send_request(const Invocation& invocation);
// The --wait seconds (nothing without --wait); fails on a bad value.
Result<std::optional<double>> send_wait_seconds(const Invocation& invocation);
// "30", "2.5": how a wait is written in messages.
std::string seconds_text(double seconds);

nlohmann::json build_inbox_request(std::int64_t after_row, std::int64_t limit);
// The --limit value (nothing without --limit); fails unless a positive integer.
Result<std::optional<std::int64_t>> limit_option(const Invocation& invocation);
Result<nlohmann::json> build_history_request(const Invocation& invocation);
Result<nlohmann::json> build_contacts_request(const Invocation& invocation);

// --- rendering ----------------------------------------------------------------

// "2023-11-14 22:13:20  abcdefgh…  text" (inbox and inbox --follow).
std::string inbox_line(const nlohmann::json& message);
// "2023-11-14 22:13:20  > text ✓" or "… < text" (history).
std::string history_line(const nlohmann::json& message);
// A message (from a result or a "message" event) as one JSON Lines line,
// without the "event" key and without a trailing newline.
std::string message_json_line(const nlohmann::json& message);

void print_peers(const nlohmann::json& result, std::ostream& out);
void print_contacts(const nlohmann::json& result, std::ostream& out);

// A "peer" event in words: "looking up abcdefgh…", "connecting…",
// "session up (direct, 127.0.0.1:4301)"; without the endpoint when
// `with_endpoint` is false. Nothing for an event of another kind.
std::optional<std::string> peer_event_text(const nlohmann::json& event, bool with_endpoint);

// Whether an ID field (e.g. an event's "from") names `peer` (canonical text).
bool same_peer(const nlohmann::json& id, const std::string& peer);

}  // namespace keyhole::cli
