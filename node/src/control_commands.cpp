#include "control_commands.h"

#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace keyhole::node {

namespace {

using json = nlohmann::json;
using Handler = void (*)(DaemonState&, const ControlRequest&, ControlReply&);

double elapsed_ms(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

const char* mode_name(const DaemonConfig& config) {
    if (config.bootstrap_only) return "bootstrap";
    if (config.relay) return "relay";
    return "chat";
}

json capability_names(std::uint32_t capabilities) {
    json names = json::array();
    if (capabilities & identity::kCapChat) names.push_back("chat");
    if (capabilities & identity::kCapRelay) names.push_back("relay");
    return names;
}

void command_id(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    if (!state.key) {
        reply(make_error_reply(request.id, error_code::unavailable, "a bootstrap-only node has no chat identity"));
        return;
    }
    reply(make_ok_reply(request.id, json{{"id", state.key->id().to_text()}}));
}

void command_status(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    const auto health = state.dht.health();
    json result;
    result["id"] = state.key ? json(state.key->id().to_text()) : json(nullptr);
    result["mode"] = mode_name(state.config);
    result["dht_nodes"] = health.good_nodes;
    result["dht_nodes_dubious"] = health.dubious_nodes;
    result["public_addresses"] = health.public_addresses;
    // OpenDHT reports our public IP without the NAT-mapped port; until keyhole
    // nodes echo the port, the endpoint is only known when there is no NAT.
    result["public_endpoint"] = nullptr;
    result["nat"] = identity::to_string(identity::NatClass::unknown);
    result["relays"] = json::array();
    result["sessions"] = 0;
    result["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::steady_clock::now() - state.started).count();
    result["record_sequence"] = state.publisher ? json(state.publisher->sequence()) : json(nullptr);
    result["record_published"] = state.publisher && state.publisher->published() && state.dht.record_stored();
    result["port"] = state.udp.local_endpoint().port();
    result["records_rejected"] = state.dht.lookup_stats().records_rejected;
    result["keyhole_packets_dropped"] = state.transport.stats().packets_dropped;
    reply(make_ok_reply(request.id, result));
}

void command_lookup(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    auto text = string_argument(request, "peer");
    if (auto* error = std::get_if<ControlError>(&text)) {
        reply(make_error_reply(*error));
        return;
    }
    auto peer = identity::PeerId::parse(std::get<std::string>(text));
    if (!peer) {
        reply(make_error_reply(request.id, error_code::bad_argument, peer.error()));
        return;
    }
    const auto timeout = std::chrono::seconds(state.config.lookup_timeout_s);
    const auto started = std::chrono::steady_clock::now();
    state.dht.lookup(peer.value(), timeout,
                     [id = request.id, reply, peer_text = peer->to_text(), started](Result<identity::IdentityRecord> found) {
                         if (!found) {
                             reply(make_error_reply(id, error_code::not_found,
                                                    found.error() == "not found" ? peer_text + " not found in the DHT"
                                                                          : peer_text + " " + found.error()));
                             return;
                         }
                         json relays = json::array();
                         for (const auto& relay : found->relays)
                             relays.push_back({{"id", relay.relay.to_text()}, {"endpoint", relay.endpoint.to_string()}});
                         reply(make_ok_reply(id, json{{"id", found->owner.to_text()},
                                                      {"sequence", found->sequence},
                                                      {"expires_unix_s", found->expires_unix_s},
                                                      {"capabilities", capability_names(found->capabilities)},
                                                      {"nat", identity::to_string(found->nat)},
                                                      {"relays", relays},
                                                      {"elapsed_ms", elapsed_ms(started)}}));
                     });
}

const std::map<std::string, Handler, std::less<>>& command_table() {
    static const std::map<std::string, Handler, std::less<>> table{
        {"id", command_id},
        {"status", command_status},
        {"lookup", command_lookup},
    };
    return table;
}

}  // namespace

void handle_control_request(DaemonState& state, const ControlRequest& request, ControlReply reply) {
    const auto& table = command_table();
    const auto found = table.find(request.command);
    if (found == table.end()) {
        reply(make_error_reply(request.id, error_code::unknown_command,
                               "unknown command '" + request.command + "'"));
        return;
    }
    found->second(state, request, reply);
}

}  // namespace keyhole::node
