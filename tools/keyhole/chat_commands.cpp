#include "chat_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <sstream>
#include <unordered_set>
#include <utility>
#include <vector>

#include "control_client.h"
#include "keyhole/identity/peer_id.h"
#include "poll_wait.h"
#include "render.h"

namespace keyhole::cli {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Messages fetched per inbox request; the CLI pages until an empty page, so
// a daemon that returns fewer per request is fine.
constexpr std::int64_t kInboxPage = 500;
constexpr std::int64_t kDefaultHistoryLimit = 50;
constexpr std::int64_t kMaxLimit = 1000000;

std::optional<std::int64_t> integer_field(const json& object, const char* name) {
    const json& value = field(object, name);
    if (value.is_number_integer()) return value.get<std::int64_t>();
    if (value.is_number_float() && std::isfinite(value.get<double>())) {
        return static_cast<std::int64_t>(value.get<double>());
    }
    return std::nullopt;
}

std::string text_of(const json& message) {
    const json& text = field(message, "text");
    return text.is_string() ? text.get<std::string>() : plain(text, "");
}

void report_daemon_error(const ControlResponse& response, std::ostream& err) {
    err << "keyhole: " << response.error_message << '\n';
}

// The daemon's reply to `request` on a new connection, with errors printed;
// nothing when the command should end with kExitFailure.
std::optional<json> request_result(const Invocation& invocation, json request,
                                   std::ostream& err) {
    auto client = ControlClient::connect(invocation.socket_path, invocation.timeout);
    if (!client) {
        err << "keyhole: " << client.error() << '\n';
        return std::nullopt;
    }
    auto response = client->call(std::move(request));
    if (!response) {
        err << "keyhole: " << response.error() << '\n';
        return std::nullopt;
    }
    if (!response->ok) {
        report_daemon_error(*response, err);
        return std::nullopt;
    }
    return std::move(response->result);
}

// ---------------------------------------------------------------------------
// send

constexpr const char* kSendUsage = "usage: keyhole send ID TEXT [--wait[=SECONDS]]";

void print_sent(const json& result, std::ostream& out) {
    out << plain(field(result, "message_id")) << '\n';
}

int run_send(const Invocation& invocation, std::ostream& out, std::ostream& err) {
    auto request = build_send_request(invocation);
    if (!request) {
        err << "keyhole: " << request.error() << '\n';
        return kExitUsage;
    }
    auto wait = send_wait_seconds(invocation);  // checked by build_send_request
    if (!wait || !*wait) {
        auto result = request_result(invocation, std::move(*request), err);
        if (!result) return kExitFailure;
        if (invocation.json_output) {
            out << dump_text(*result, 2) << '\n';
        } else {
            print_sent(*result, out);
        }
        return out ? kExitSuccess : kExitFailure;
    }

    const double wait_seconds = **wait;
    const std::string peer = (*request)["peer"].get<std::string>();
    auto client = ControlClient::connect(invocation.socket_path, invocation.timeout);
    if (!client) {
        err << "keyhole: " << client.error() << '\n';
        return kExitFailure;
    }
    // Progress is for people watching; a second connection subscribed before
    // the send, so no event about this peer is missed. Without it the send
    // still works, just silently.
    std::optional<ControlClient> events;
    const bool show_progress = ::isatty(STDERR_FILENO) == 1;
    if (show_progress) {
        std::ostringstream ignored;
        events = subscribe(invocation, ignored);
    }

    if (show_progress) {
        // A session that is already up sends no event; say which path it uses.
        if (auto peers = client->call(json{{"cmd", "peers"}}); peers && peers->ok) {
            const json& list = field(peers->result, "peers");
            for (const auto& entry : list.is_array() ? list : json::array()) {
                if (!same_peer(field(entry, "id"), peer) || field(entry, "state") != "up") continue;
                json event = entry;
                event["event"] = "peer";
                if (auto text = peer_event_text(event, /*with_endpoint=*/true)) err << *text << '\n';
            }
        }
    }
    const auto timeout = std::chrono::milliseconds(
                             static_cast<std::int64_t>(std::ceil(wait_seconds * 1000))) +
                         kSendWaitGrace;
    const auto deadline = Clock::now() + timeout;
    auto id = client->send_request(std::move(*request));
    if (!id) {
        err << "keyhole: " << id.error() << '\n';
        return kExitFailure;
    }
    std::optional<ControlResponse> response;
    for (;;) {
        while (events) {
            auto event = events->read_event(std::chrono::milliseconds(0));
            if (!event) {
                events.reset();  // progress is best effort
                break;
            }
            if (!*event) break;
            if (same_peer(field(**event, "peer"), peer)) {
                if (auto text = peer_event_text(**event, /*with_endpoint=*/true)) {
                    err << *text << '\n';
                }
            }
        }
        auto reply = client->poll_reply(*id, std::chrono::milliseconds(0));
        if (!reply) {
            err << "keyhole: " << reply.error() << '\n';
            return kExitFailure;
        }
        if (*reply) {
            response = std::move(**reply);
            break;
        }
        auto ready = wait_readable({client->fd(), events ? events->fd() : -1}, deadline);
        if (!ready) {
            err << "keyhole: " << ready.error() << '\n';
            return kExitFailure;
        }
        if (ready->timed_out) {
            // One last look, then give up: the daemon should have answered.
            auto last = client->poll_reply(*id, std::chrono::milliseconds(0));
            if (last && *last) {
                response = std::move(**last);
                break;
            }
            err << "keyhole: the daemon did not answer within "
                << seconds_text(static_cast<double>(timeout.count()) / 1000) << " s\n";
            return kExitFailure;
        }
    }

    if (!response->ok) {
        if (response->error_code == "timeout") {
            err << "keyhole: not delivered within " << seconds_text(wait_seconds)
                << " s (still queued)\n";
        } else {
            report_daemon_error(*response, err);
        }
        return kExitFailure;
    }
    if (field(response->result, "delivered") != true) {
        // A daemon that only queued it: --wait promises more than that.
        err << "keyhole: the daemon queued the message but did not report its delivery\n";
        return kExitFailure;
    }
    if (show_progress) {
        const json& elapsed = field(response->result, "elapsed_ms");
        if (elapsed.is_number()) {
            err << "delivered in " << std::llround(elapsed.get<double>()) << " ms\n";
        } else {
            err << "delivered\n";
        }
    }
    if (invocation.json_output) {
        out << dump_text(response->result, 2) << '\n';
    } else {
        print_sent(response->result, out);
    }
    return out ? kExitSuccess : kExitFailure;
}

// ---------------------------------------------------------------------------
// inbox

void print_inbox_message(const json& message, bool json_output, std::ostream& out) {
    out << (json_output ? message_json_line(message) : inbox_line(message)) << '\n';
}

int run_inbox(const Invocation& invocation, std::ostream& out, std::ostream& err) {
    if (!invocation.arguments.empty()) {
        err << "keyhole: inbox takes no arguments (usage: keyhole inbox [--json] [--follow] "
               "[--limit N])\n";
        return kExitUsage;
    }
    auto limit = limit_option(invocation);
    if (!limit) {
        err << "keyhole: " << limit.error() << '\n';
        return kExitUsage;
    }
    const bool follow = invocation.has_option("follow");

    // Subscribed before fetching: a message stored meanwhile is then both
    // fetched and announced (printed once), never neither.
    std::optional<ControlClient> events;
    if (follow) {
        events = subscribe(invocation, err);
        if (!events) return kExitFailure;
    }
    auto client = ControlClient::connect(invocation.socket_path, invocation.timeout);
    if (!client) {
        err << "keyhole: " << client.error() << '\n';
        return kExitFailure;
    }

    // Pages through the whole inbox (after_row is the cursor); with --limit N
    // only the newest N are printed.
    std::int64_t after_row = 0;
    std::int64_t high_water = 0;  // every fetched message has row <= this
    std::unordered_set<std::string> fetched_ids;
    std::deque<json> newest;
    std::size_t printed = 0;
    for (;;) {
        auto response = client->call(build_inbox_request(after_row, kInboxPage));
        if (!response) {
            err << "keyhole: " << response.error() << '\n';
            return kExitFailure;
        }
        if (!response->ok) {
            report_daemon_error(*response, err);
            return kExitFailure;
        }
        const json& messages = field(response->result, "messages");
        if (!messages.is_array()) {
            err << "keyhole: the daemon's inbox reply has no message list\n";
            return kExitFailure;
        }
        if (auto last_row = integer_field(response->result, "last_row")) {
            high_water = std::max(high_water, *last_row);
        }
        std::int64_t page_end = after_row;
        for (const auto& message : messages) {
            if (auto row = integer_field(message, "row")) page_end = std::max(page_end, *row);
            if (follow) fetched_ids.insert(plain(field(message, "message_id"), ""));
            if (*limit) {
                newest.push_back(message);
                if (newest.size() > static_cast<std::size_t>(**limit)) newest.pop_front();
            } else {
                print_inbox_message(message, invocation.json_output, out);
                ++printed;
            }
        }
        high_water = std::max(high_water, page_end);
        // An empty page ends it; so does one that does not advance the cursor.
        if (messages.empty() || page_end <= after_row) break;
        after_row = page_end;
    }
    for (const auto& message : newest) {
        print_inbox_message(message, invocation.json_output, out);
        ++printed;
    }
    if (printed == 0 && !follow && !invocation.json_output) out << "no messages\n";
    out.flush();
    if (!follow) return out ? kExitSuccess : kExitFailure;

    catch_interrupts();
    for (;;) {
        for (;;) {
            auto event = events->read_event(std::chrono::milliseconds(0));
            if (!event) {
                out.flush();
                err << "keyhole: " << event.error() << '\n';
                return kExitFailure;
            }
            if (!*event) break;
            const json& message = **event;
            if (field(message, "event") != "message") continue;
            // A row at or below the high-water mark may already have been
            // fetched (or may have become readable only now: a message that
            // arrived early and waited for an earlier one); the id decides.
            auto row = integer_field(message, "row");
            if (row && *row <= high_water &&
                fetched_ids.count(plain(field(message, "message_id"), "")) != 0) {
                continue;
            }
            print_inbox_message(message, invocation.json_output, out);
        }
        out.flush();
        if (!out) return kExitFailure;
        auto ready = wait_readable({events->fd()});
        if (!ready) {
            err << "keyhole: " << ready.error() << '\n';
            return kExitFailure;
        }
        if (ready->interrupted) return kExitSuccess;
    }
}

// ---------------------------------------------------------------------------
// history

void print_history(const json& result, std::ostream& out) {
    const json& messages = field(result, "messages");
    if (!messages.is_array()) {
        out << dump_text(result, 2) << '\n';
        return;
    }
    if (messages.empty()) out << "no messages\n";
    for (const auto& message : messages) out << history_line(message) << '\n';
}

void print_messages_json(const json& result, std::ostream& out) {
    const json& messages = field(result, "messages");
    if (!messages.is_array()) {
        out << dump_text(result) << '\n';
        return;
    }
    for (const auto& message : messages) out << message_json_line(message) << '\n';
}

// ---------------------------------------------------------------------------
// contacts

constexpr const char* kContactsUsage =
    "usage: keyhole contacts add ID [NAME] | contacts remove ID | contacts list";

int run_contacts(const Invocation& invocation, std::ostream& out, std::ostream& err) {
    auto request = build_contacts_request(invocation);
    if (!request) {
        err << "keyhole: " << request.error() << '\n';
        return kExitUsage;
    }
    const std::string command = (*request)["cmd"].get<std::string>();
    Command single{.name = command,
                   .argument_synopsis = "",
                   .summary = "",
                   .build_request = [request = *request](const Invocation&) -> Result<json> {
                       return request;
                   },
                   .print_result = nullptr};
    if (command == "contacts_list") {
        single.print_result = print_contacts;
    } else {
        const std::string peer = (*request)["peer"].get<std::string>();
        const bool adding = command == "contacts_add";
        single.print_result = [peer, adding](const json&, std::ostream& stream) {
            stream << (adding ? "added " : "removed ") << peer << '\n';
        };
    }
    return run_command(single, invocation, out, err);
}

}  // namespace

std::optional<ControlClient> subscribe(const Invocation& invocation, std::ostream& err) {
    auto client = ControlClient::connect(invocation.socket_path, invocation.timeout);
    if (!client) {
        err << "keyhole: " << client.error() << '\n';
        return std::nullopt;
    }
    auto response = client->call(json{{"cmd", "subscribe"}});
    if (!response) {
        err << "keyhole: " << response.error() << '\n';
        return std::nullopt;
    }
    if (!response->ok) {
        err << "keyhole: cannot subscribe to events: " << response->error_message << '\n';
        return std::nullopt;
    }
    return std::move(*client);
}

// ---------------------------------------------------------------------------
// requests

Result<std::string> parse_peer_argument(std::string_view text) {
    auto id = identity::PeerId::parse(text);
    if (!id) return fail(id.error());
    return id->to_text();
}

Status check_message_text(std::string_view text) {
    if (text.empty()) return fail("the message is empty");
    if (text.size() > kMaxMessageBytes) {
        return fail("the message is too long: " + std::to_string(text.size()) +
                    " bytes, at most " + std::to_string(kMaxMessageBytes));
    }
    if (!is_valid_utf8(text)) return fail("the message is not valid UTF-8 text");
    return success();
}

std::string seconds_text(double seconds) {
    char text[48];
    std::snprintf(text, sizeof(text), "%.3f", seconds);
    std::string result = text;
    while (!result.empty() && result.back() == '0') result.pop_back();
    if (!result.empty() && result.back() == '.') result.pop_back();
    return result;
}

Result<std::optional<double>> send_wait_seconds(const Invocation& invocation) {
    auto found = invocation.options.find("wait");
    if (found == invocation.options.end()) return std::optional<double>();
    if (!found->second) return std::optional<double>(kDefaultSendWaitSeconds);
    const std::string& text = *found->second;
    char* end = nullptr;
    errno = 0;
    double seconds = std::strtod(text.c_str(), &end);
    if (text.empty() || errno != 0 || *end != '\0' || !std::isfinite(seconds) || seconds <= 0 ||
        seconds > 86400) {
        return fail("option '--wait': expected seconds, more than 0 and at most 86400");
    }
    return std::optional<double>(seconds);
}

Result<json> build_send_request(const Invocation& invocation) {
    const auto& arguments = invocation.arguments;
    if (arguments.size() == 3) {
        // "send ID TEXT --wait 10": the wait's value needs '='.
        auto wait = invocation.options.find("wait");
        char* end = nullptr;
        std::strtod(arguments[2].c_str(), &end);
        if (wait != invocation.options.end() && !wait->second && !arguments[2].empty() &&
            *end == '\0') {
            return fail("write the wait as --wait=" + arguments[2] + " (" + kSendUsage + ")");
        }
    }
    if (arguments.size() != 2) {
        return fail(std::string("send takes an ID and one TEXT; quote a text with spaces (") +
                    kSendUsage + ")");
    }
    auto peer = parse_peer_argument(arguments[0]);
    if (!peer) return fail(peer.error());
    if (auto checked = check_message_text(arguments[1]); !checked) return fail(checked.error());
    auto wait = send_wait_seconds(invocation);
    if (!wait) return fail(wait.error());

    json request{{"cmd", "send"}, {"peer", *peer}, {"text", arguments[1]}};
    if (*wait) {
        double seconds = **wait;
        if (seconds == std::floor(seconds)) {
            request["wait_s"] = static_cast<std::int64_t>(seconds);
        } else {
            request["wait_s"] = seconds;
        }
    }
    return request;
}

json build_inbox_request(std::int64_t after_row, std::int64_t limit) {
    return json{{"cmd", "inbox"}, {"after_row", after_row}, {"limit", limit}};
}

Result<std::optional<std::int64_t>> limit_option(const Invocation& invocation) {
    auto found = invocation.options.find("limit");
    if (found == invocation.options.end()) return std::optional<std::int64_t>();
    const std::string text = found->second.value_or("");
    char* end = nullptr;
    errno = 0;
    long long value = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || errno != 0 || *end != '\0' || value <= 0 || value > kMaxLimit) {
        return fail("option '--limit': expected a whole number from 1 to " +
                    std::to_string(kMaxLimit));
    }
    return std::optional<std::int64_t>(value);
}

Result<json> build_history_request(const Invocation& invocation) {
    if (invocation.arguments.size() != 1) {
        return fail("history takes one ID (usage: keyhole history ID [--json] [--limit N])");
    }
    auto peer = parse_peer_argument(invocation.arguments[0]);
    if (!peer) return fail(peer.error());
    auto limit = limit_option(invocation);
    if (!limit) return fail(limit.error());
    return json{{"cmd", "history"}, {"peer", *peer}, {"limit", limit->value_or(kDefaultHistoryLimit)}};
}

Result<json> build_contacts_request(const Invocation& invocation) {
    const auto& arguments = invocation.arguments;
    const std::string action = arguments.empty() ? "" : arguments[0];
    if (action == "list") {
        if (arguments.size() != 1) return fail(std::string("contacts list takes no arguments (") + kContactsUsage + ")");
        return json{{"cmd", "contacts_list"}};
    }
    if (action == "add" || action == "remove") {
        const std::size_t most = action == "add" ? 3 : 2;
        if (arguments.size() < 2 || arguments.size() > most) {
            return fail("contacts " + action + " takes " +
                        (action == "add" ? "an ID and an optional NAME" : "one ID") + " (" +
                        kContactsUsage + ")");
        }
        auto peer = parse_peer_argument(arguments[1]);
        if (!peer) return fail(peer.error());
        if (action == "remove") return json{{"cmd", "contacts_remove"}, {"peer", *peer}};
        std::string name = arguments.size() == 3 ? arguments[2] : "";
        if (name.size() > 256 || !is_valid_utf8(name)) {
            return fail("a contact name is UTF-8 text of at most 256 bytes");
        }
        return json{{"cmd", "contacts_add"}, {"peer", *peer}, {"name", name}};
    }
    if (action.empty()) return fail(std::string("contacts needs an action (") + kContactsUsage + ")");
    return fail("unknown contacts action '" + action + "' (" + kContactsUsage + ")");
}

// ---------------------------------------------------------------------------
// rendering

std::string inbox_line(const json& message) {
    const std::string time = utc_time_text(field(message, "sent_unix_ms"));
    const std::string from = short_id(field(message, "from"));
    const std::string head = time + "  " + from + "  ";
    // Continuation lines start under the text: time (19) + 2 + 8 + "…" + 2.
    return head + indented_text(text_of(message), time.size() + 2 + 8 + 1 + 2);
}

std::string history_line(const json& message) {
    const std::string time = utc_time_text(field(message, "sent_unix_ms"));
    const bool outgoing = field(message, "direction") == "out";
    std::string line = time + (outgoing ? "  > " : "  < ") +
                       indented_text(text_of(message), time.size() + 4);
    if (outgoing && field(message, "delivered") == true) line += " ✓";
    return line;
}

std::string message_json_line(const json& message) {
    json copy = message;
    if (copy.is_object()) copy.erase("event");
    return dump_text(copy);
}

void print_peers(const json& result, std::ostream& out) {
    const json& peers = field(result, "peers");
    if (!peers.is_array()) {
        out << dump_text(result, 2) << '\n';
        return;
    }
    if (peers.empty()) {
        out << "no sessions\n";
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& peer : peers) {
        const json& rtt = field(peer, "rtt_ms");
        const json& last_seen = field(peer, "last_seen_s");
        std::string last_seen_text = "-";
        if (last_seen.is_number()) {
            last_seen_text = std::to_string(std::llround(last_seen.get<double>())) + " s ago";
        }
        // "relay <relay ID>" when the session goes through a relay.
        std::string path = terminal_safe(plain(field(peer, "path"), "-"));
        if (const json& relay = field(peer, "relay"); relay.is_string()) path += " " + terminal_safe(relay.get<std::string>());
        rows.push_back({
            terminal_safe(plain(field(peer, "id"), "?")),
            path,
            terminal_safe(plain(field(peer, "endpoint"), "-")),
            rtt.is_number() ? milliseconds_text(rtt.get<double>()) : "-",
            last_seen_text,
            terminal_safe(plain(field(peer, "state"), "-")),
        });
    }
    print_table(out, {"ID", "PATH", "ENDPOINT", "RTT", "LAST SEEN", "STATE"}, rows);
}

void print_contacts(const json& result, std::ostream& out) {
    const json& contacts = field(result, "contacts");
    if (!contacts.is_array()) {
        out << dump_text(result, 2) << '\n';
        return;
    }
    if (contacts.empty()) {
        out << "no contacts\n";
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& contact : contacts) {
        std::string name = terminal_safe(plain(field(contact, "name"), ""));
        rows.push_back({terminal_safe(plain(field(contact, "id"), "?")), name.empty() ? "-" : name});
    }
    print_table(out, {"ID", "NAME"}, rows);
}

std::optional<std::string> peer_event_text(const json& event, bool with_endpoint) {
    if (field(event, "event") != "peer") return std::nullopt;
    const std::string state = plain(field(event, "state"), "");
    if (state == "looking_up") return "looking up " + short_id(field(event, "peer"));
    if (state == "connecting") return std::string("connecting…");
    if (state == "down") return std::string("session down");
    if (state == "up") {
        std::string details = terminal_safe(plain(field(event, "path"), "unknown path"));
        if (const json& relay = field(event, "relay"); relay.is_string()) details += " " + short_id(relay);
        const json& endpoint = field(event, "endpoint");
        if (with_endpoint && endpoint.is_string() && !endpoint.get<std::string>().empty()) {
            details += ", " + terminal_safe(endpoint.get<std::string>());
        }
        return "session up (" + details + ")";
    }
    return "session " + terminal_safe(state);
}

bool same_peer(const json& id, const std::string& peer) {
    if (!id.is_string()) return false;
    const std::string& text = id.get_ref<const std::string&>();
    if (text == peer) return true;
    auto parsed = identity::PeerId::parse(text);  // tolerate case and spacing
    return parsed && parsed->to_text() == peer;
}

// ---------------------------------------------------------------------------
// the table entries

Command send_command() {
    return {.name = "send",
            .argument_synopsis = "ID TEXT [--wait[=S]]",
            .summary = "send a message (--wait: until delivered, default 30 s)",
            .build_request = build_send_request,
            .print_result = print_sent,
            .options = {{"wait", CommandOption::Value::optional}},
            .run = run_send};
}

Command inbox_command() {
    return {.name = "inbox",
            .argument_synopsis = "[--follow] [--limit N]",
            .summary = "print received messages (--follow: then new ones as they come)",
            .build_request = nullptr,
            .print_result = nullptr,
            .options = {{"follow", CommandOption::Value::none},
                        {"limit", CommandOption::Value::required}},
            .run = run_inbox};
}

Command history_command() {
    return {.name = "history",
            .argument_synopsis = "ID [--limit N]",
            .summary = "print the conversation with ID (default: last 50)",
            .build_request = build_history_request,
            .print_result = print_history,
            .print_json = print_messages_json,
            .options = {{"limit", CommandOption::Value::required}}};
}

Command peers_command() {
    return {.name = "peers",
            .argument_synopsis = "",
            .summary = "list sessions with other peers",
            .build_request =
                [](const Invocation& invocation) -> Result<json> {
                if (!invocation.arguments.empty()) {
                    return fail("peers takes no arguments (usage: keyhole peers [--json])");
                }
                return json{{"cmd", "peers"}};
            },
            .print_result = print_peers};
}

Command contacts_command() {
    return {.name = "contacts",
            .argument_synopsis = "add|remove|list",
            .summary = "manage contacts: add ID [NAME], remove ID, list",
            .build_request = build_contacts_request,
            .print_result = print_contacts,
            .run = run_contacts};
}

}  // namespace keyhole::cli
