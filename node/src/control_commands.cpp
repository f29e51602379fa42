#include "control_commands.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "message_json.h"
#include "peer_event.h"
#include "relay_allocator.h"

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
    // OpenDHT reports only our public IP; the port comes from keyhole nodes
    // that reflect the address they see (PeerManager).
    const auto public_endpoint = state.peers ? state.peers->public_endpoint() : std::nullopt;
    result["public_endpoint"] = public_endpoint ? json(public_endpoint->to_string()) : json(nullptr);
    result["nat"] = identity::to_string(state.peers ? state.peers->nat_class() : identity::NatClass::unknown);
    result["relays"] = json::array();
    if (state.peers) {
        for (const auto& relay : state.peers->relays().status()) {
            result["relays"].push_back({{"id", relay.id.to_text()},
                                        {"endpoint", relay.endpoint.to_string()},
                                        {"transport", relay.transport},
                                        {"state", relay.state},
                                        {"rtt_ms", relay.rtt_ms ? json(*relay.rtt_ms) : json(nullptr)}});
        }
        result["relays_lost"] = state.peers->relays().relays_lost();
        result["relay_deliveries_refused"] = state.peers->relays().deliveries_refused();
        result["relayed_sessions"] = state.peers->stats().relayed_sessions;
        result["relay_to_direct"] = state.peers->stats().relay_to_direct;
    }
    result["sessions"] = state.peers ? state.peers->sessions_up() : 0;
    if (state.peers) {
        const auto& stats = state.peers->stats();
        result["strangers_ignored"] = stats.strangers_ignored;
        result["handshakes_rejected"] = stats.handshakes_rejected;
        result["frames_rejected"] = stats.frames_rejected;
        result["connect_requests_sent"] = stats.connect_requests_sent;
        result["handshakes_completed"] = stats.handshakes_completed;
        result["punch_probes_sent"] = stats.punch_probes_sent;
        result["punches_started"] = stats.punches_started;
        result["punches_succeeded"] = stats.punches_succeeded;
        result["birthday_probes_sent"] = stats.birthday_probes_sent;
        result["paths_lost"] = stats.paths_lost;
        result["queued_messages"] = 0;
        std::size_t queued = 0;
        for (const auto& peer : state.store->peers_with_pending()) queued += state.store->pending_outgoing(peer).size();
        result["queued_messages"] = queued;
    }
    result["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::steady_clock::now() - state.started).count();
    result["record_sequence"] = state.publisher ? json(state.publisher->sequence()) : json(nullptr);
    // Stored in the DHT, or (no DHT access) handed to a relay that stores it.
    result["record_published"] = state.publisher && state.publisher->published() &&
                                 (state.dht.record_stored() || (state.peers && state.peers->relays().record_published_via_relay()));
    result["port"] = state.udp.local_endpoint().port();
    result["records_rejected"] = state.dht.lookup_stats().records_rejected;
    result["keyhole_packets_dropped"] = state.transport.stats().packets_dropped;
    // What this node serves others, and the settings a SIGHUP may change.
    result["version"] = KEYHOLE_VERSION;
    result["reflections_answered"] = state.transport.stats().reflections_answered;
    result["keyhole_packets_received"] = state.transport.stats().packets_received;
    if (state.relay) {
        const auto& relay = state.relay->stats();
        result["relay_allocations"] = relay.allocations;
        result["relay_forwarded_frames"] = relay.frames_forwarded;
        result["relay_forwarded_bytes"] = relay.bytes_forwarded;
        std::uint64_t refused = 0;
        for (auto count : relay.refusals) refused += count;
        result["relay_refusals"] = refused;
    }
    result["log_level"] = state.config.log_level;
    result["keepalive_interval_s"] = state.config.keepalive_interval_s;
    result["metrics_port"] = state.config.metrics_port;
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

// --- chat commands: need a chat identity -----------------------------------

bool chat_available(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    if (state.store && state.peers && state.delivery) return true;
    reply(make_error_reply(request.id, error_code::unavailable, "a bootstrap-only node does not chat"));
    return false;
}

std::optional<identity::PeerId> peer_argument(const ControlRequest& request, ControlReply& reply) {
    auto text = string_argument(request, "peer");
    if (auto* error = std::get_if<ControlError>(&text)) {
        reply(make_error_reply(*error));
        return std::nullopt;
    }
    auto peer = identity::PeerId::parse(std::get<std::string>(text));
    if (!peer) {
        reply(make_error_reply(request.id, error_code::bad_argument, peer.error()));
        return std::nullopt;
    }
    return peer.value();
}

std::int64_t integer_argument(const ControlRequest& request, const char* name, std::int64_t fallback,
                              std::int64_t low, std::int64_t high) {
    const auto found = request.body.find(name);
    if (found == request.body.end() || !found->is_number_integer()) return fallback;
    return std::clamp(found->get<std::int64_t>(), low, high);
}

// "direct", "relay" or "none": how the session with `peer` goes right now.
std::string current_path(const DaemonState& state, const identity::PeerId& peer) {
    if (!state.peers) return "none";
    for (const auto& info : state.peers->peers())
        if (info.id == peer) return peer_json(info)["path"].get<std::string>();
    return "none";
}

void command_send(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    if (!chat_available(state, request, reply)) return;
    auto peer = peer_argument(request, reply);
    if (!peer) return;
    auto text = string_argument(request, "text");
    if (auto* error = std::get_if<ControlError>(&text)) {
        reply(make_error_reply(*error));
        return;
    }
    if (*peer == state.key->id()) {
        reply(make_error_reply(request.id, error_code::bad_argument, "cannot send a message to yourself"));
        return;
    }
    const auto started = std::chrono::steady_clock::now();
    const auto& message_text = std::get<std::string>(text);
    if (message_text.empty() || message_text.size() > kMaxMessageText) {
        reply(make_error_reply(request.id, error_code::bad_argument,
                               "message text must be 1 to " + std::to_string(kMaxMessageText) + " bytes"));
        return;
    }
    auto stored = state.delivery->send(*peer, message_text);
    if (!stored) {
        // Size is checked above; what is left is invalid UTF-8 or a storage failure.
        const bool storage = stored.error().find("UTF-8") == std::string::npos;
        reply(make_error_reply(request.id, storage ? error_code::internal : error_code::bad_argument, stored.error()));
        return;
    }
    const auto wait = request.body.find("wait_s");
    if (wait == request.body.end() || !wait->is_number()) {
        reply(make_ok_reply(request.id, json{{"message_id", stored->message_id},
                                             {"sequence", stored->sequence},
                                             {"queued", true}}));
        return;
    }
    const double wait_s = std::clamp(wait->get<double>(), 0.0, 86400.0);
    state.delivery->wait_for_delivery(
        stored->message_id, std::chrono::milliseconds(static_cast<std::int64_t>(wait_s * 1000)),
        [&state, peer = *peer, id = request.id, reply, message_id = stored->message_id, sequence = stored->sequence,
         started, wait_s](bool delivered) {
            if (!delivered) {
                reply(make_error_reply(id, error_code::timeout,
                                       "not delivered within " + std::to_string(static_cast<int>(wait_s)) +
                                           " s; it stays queued and will be retried"));
                return;
            }
            reply(make_ok_reply(id, json{{"message_id", message_id},
                                         {"sequence", sequence},
                                         {"delivered", true},
                                         {"path", current_path(state, peer)},
                                         {"elapsed_ms", elapsed_ms(started)}}));
        });
}

void command_inbox(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    if (!chat_available(state, request, reply)) return;
    const auto after = integer_argument(request, "after_row", 0, 0, INT64_MAX);
    const auto limit = integer_argument(request, "limit", 1000, 1, 100000);
    json messages = json::array();
    std::int64_t last_row = after;
    for (const auto& message : state.store->inbox(after, static_cast<std::size_t>(limit))) {
        messages.push_back(message_json(message));
        last_row = std::max(last_row, message.row);
    }
    reply(make_ok_reply(request.id, json{{"messages", messages}, {"last_row", last_row}}));
}

void command_history(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    if (!chat_available(state, request, reply)) return;
    auto peer = peer_argument(request, reply);
    if (!peer) return;
    const auto limit = integer_argument(request, "limit", 100, 1, 100000);
    json messages = json::array();
    for (const auto& message : state.store->history(*peer, static_cast<std::size_t>(limit)))
        messages.push_back(message_json(message));
    reply(make_ok_reply(request.id, json{{"messages", messages}}));
}

void command_peers(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    if (!chat_available(state, request, reply)) return;
    json peers = json::array();
    for (const auto& info : state.peers->peers()) peers.push_back(peer_json(info));
    reply(make_ok_reply(request.id, json{{"peers", peers}}));
}

void command_subscribe(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    reply(make_ok_reply(request.id, json{{"subscribed", true}}));
    state.events->subscribe(reply);
}

void command_contacts_add(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    if (!chat_available(state, request, reply)) return;
    auto peer = peer_argument(request, reply);
    if (!peer) return;
    std::string name;
    if (auto found = request.body.find("name"); found != request.body.end() && found->is_string())
        name = found->get<std::string>();
    if (auto added = state.store->add_contact(*peer, name); !added) {
        reply(make_error_reply(request.id, error_code::bad_argument, added.error()));
        return;
    }
    reply(make_ok_reply(request.id, json{{"id", peer->to_text()}, {"name", name}}));
}

void command_contacts_remove(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    if (!chat_available(state, request, reply)) return;
    auto peer = peer_argument(request, reply);
    if (!peer) return;
    if (auto removed = state.store->remove_contact(*peer); !removed) {
        reply(make_error_reply(request.id, error_code::not_found, removed.error()));
        return;
    }
    reply(make_ok_reply(request.id, json{{"id", peer->to_text()}}));
}

void command_contacts_list(DaemonState& state, const ControlRequest& request, ControlReply& reply) {
    if (!chat_available(state, request, reply)) return;
    json contacts = json::array();
    for (const auto& contact : state.store->contacts())
        contacts.push_back({{"id", contact.peer.to_text()}, {"name", contact.name}});
    reply(make_ok_reply(request.id, json{{"contacts", contacts}}));
}

const std::map<std::string, Handler, std::less<>>& command_table() {
    static const std::map<std::string, Handler, std::less<>> table{
        {"id", command_id},
        {"status", command_status},
        {"lookup", command_lookup},
        {"send", command_send},
        {"inbox", command_inbox},
        {"history", command_history},
        {"peers", command_peers},
        {"subscribe", command_subscribe},
        {"contacts_add", command_contacts_add},
        {"contacts_remove", command_contacts_remove},
        {"contacts_list", command_contacts_list},
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
