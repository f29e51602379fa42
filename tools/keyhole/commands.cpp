#include "commands.h"

#include <algorithm>
#include <ctime>

#include "chat_commands.h"
#include "keyhole/identity/peer_id.h"
#include "render.h"
#include "status_text.h"

namespace keyhole::cli {

namespace {

using nlohmann::json;

// Relays come as {"id", "endpoint"} objects; shown as "ENDPOINT (ID)".
std::string relay_text(const json& relay) {
    const json& endpoint = field(relay, "endpoint");
    const json& id = field(relay, "id");
    if (endpoint.is_string() && id.is_string()) {
        return endpoint.get<std::string>() + " (" + id.get<std::string>() + ")";
    }
    return plain(relay);
}

std::string list_text(
    const json& value, const std::function<std::string(const json&)>& item_text =
                           [](const json& item) { return plain(item); }) {
    if (!value.is_array()) return plain(value);
    if (value.empty()) return "none";
    std::string text;
    for (const auto& item : value) {
        if (!text.empty()) text += ", ";
        text += item_text(item);
    }
    return text;
}

// "1700000000 (2023-11-14T22:13:20Z)"
std::string unix_time_text(const json& value) {
    if (!value.is_number_integer()) return plain(value);
    auto seconds = static_cast<std::time_t>(value.get<std::int64_t>());
    std::tm utc{};
    char iso[32];
    if (!gmtime_r(&seconds, &utc) ||
        std::strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &utc) == 0) {
        return std::to_string(seconds);
    }
    return std::to_string(seconds) + " (" + iso + ")";
}

using Fields = std::vector<std::pair<std::string, std::string>>;

// "key:  value" lines with the values lined up.
void print_fields(std::ostream& out, const Fields& fields) {
    std::size_t width = 0;
    for (const auto& [key, value] : fields) width = std::max(width, key.size());
    for (const auto& [key, value] : fields) {
        out << key << ':' << std::string(width - key.size() + 1, ' ') << value << '\n';
    }
}

RequestBuilder without_arguments(std::string name) {
    return [name](const Invocation& invocation) -> Result<json> {
        if (!invocation.arguments.empty()) {
            return fail(name + " takes no arguments (usage: keyhole " + name + ")");
        }
        return json{{"cmd", name}};
    };
}

// ---------------------------------------------------------------------------
// id

void print_id(const json& result, std::ostream& out) {
    out << plain(field(result, "id")) << '\n';
}

// ---------------------------------------------------------------------------
// lookup

Result<json> build_lookup(const Invocation& invocation) {
    const auto& arguments = invocation.arguments;
    if (arguments.size() != 1) return fail("lookup takes one ID (usage: keyhole lookup ID)");
    // Checked here so a typo is caught by its checksum, without a DHT round trip.
    auto id = identity::PeerId::parse(arguments[0]);
    if (!id) return fail(id.error());
    return json{{"cmd", "lookup"}, {"peer", id->to_text()}};
}

void print_lookup(const json& result, std::ostream& out) {
    print_fields(out, {
                          {"id", plain(field(result, "id"))},
                          {"sequence", plain(field(result, "sequence"))},
                          {"expires", unix_time_text(field(result, "expires_unix_s"))},
                          {"capabilities", list_text(field(result, "capabilities"))},
                          {"nat", plain(field(result, "nat"), "unknown")},
                          {"relays", list_text(field(result, "relays"), relay_text)},
                      });
}

std::optional<std::string> explain_lookup_error(const ControlResponse& response,
                                                const std::vector<std::string>& arguments) {
    if (response.error_code != "not_found" || arguments.empty()) return std::nullopt;
    auto id = identity::PeerId::parse(arguments[0]);
    return (id ? id->to_text() : arguments[0]) + " not found in the DHT";
}

// ---------------------------------------------------------------------------
// request: one raw control request, for scripts and for testing the protocol

Result<json> build_raw_request(const Invocation& invocation) {
    const auto& arguments = invocation.arguments;
    if (arguments.size() != 1) return fail("request takes one JSON object (usage: keyhole request '{\"cmd\":\"status\"}')");
    json request = json::parse(arguments[0], nullptr, /*allow_exceptions=*/false);
    if (!request.is_object()) return fail("request must be a JSON object");
    return request;
}

void print_raw_result(const json& result, std::ostream& out) { out << dump_text(result, 2) << '\n'; }

}  // namespace

const std::vector<Command>& command_table() {
    static const std::vector<Command> commands = {
        {.name = "id",
         .argument_synopsis = "",
         .summary = "print this node's ID",
         .build_request = without_arguments("id"),
         .print_result = print_id},
        {.name = "status",
         .argument_synopsis = "",
         .summary = "summary of the daemon: DHT, NAT, sessions, queue (--json: everything)",
         .build_request = without_arguments("status"),
         .print_result = print_status},
        {.name = "lookup",
         .argument_synopsis = "ID",
         .summary = "look an ID's signed record up in the DHT",
         .build_request = build_lookup,
         .print_result = print_lookup,
         .explain_error = explain_lookup_error},
        send_command(),
        inbox_command(),
        history_command(),
        chat_command(),
        peers_command(),
        contacts_command(),
        {.name = "request",
         .argument_synopsis = "JSON",
         .summary = "send one raw control request and print the result",
         .build_request = build_raw_request,
         .print_result = print_raw_result},
    };
    return commands;
}

const Command* find_command(std::string_view name) {
    for (const auto& command : command_table()) {
        if (command.name == name) return &command;
    }
    return nullptr;
}

const CommandOption* Command::find_option(std::string_view option_name) const {
    for (const auto& option : options) {
        if (option.name == option_name) return &option;
    }
    return nullptr;
}

int run_command(const Command& command, const Invocation& invocation, std::ostream& out,
                std::ostream& err) {
    if (command.run) return command.run(invocation, out, err);
    auto request = command.build_request(invocation);
    if (!request) {
        err << "keyhole: " << request.error() << '\n';
        return kExitUsage;
    }
    auto client = ControlClient::connect(invocation.socket_path, invocation.timeout);
    if (!client) {
        err << "keyhole: " << client.error() << '\n';
        return kExitFailure;
    }
    auto response = client->call(std::move(*request));
    if (!response) {
        err << "keyhole: " << response.error() << '\n';
        return kExitFailure;
    }
    if (!response->ok) {
        std::optional<std::string> explained;
        if (command.explain_error) {
            explained = command.explain_error(*response, invocation.arguments);
        }
        err << "keyhole: " << explained.value_or(response->error_message) << '\n';
        return kExitFailure;
    }
    if (invocation.json_output && command.print_json) {
        command.print_json(response->result, out);
    } else if (invocation.json_output) {
        out << dump_text(response->result, 2) << '\n';
    } else {
        command.print_result(response->result, out);
    }
    return out ? kExitSuccess : kExitFailure;
}

}  // namespace keyhole::cli
