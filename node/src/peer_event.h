// The JSON shape of a peer, shared by the "peers" command and "peer" events.
#pragma once

#include <nlohmann/json.hpp>

#include "keyhole/node/peer_manager.h"

namespace keyhole::node {

inline nlohmann::json peer_json(const PeerInfo& info) {
    using json = nlohmann::json;
    return {{"id", info.id.to_text()},
            {"state", to_string(info.state)},
            {"path", !info.path ? "none" : info.relay ? "relay" : "direct"},
            {"relay", info.relay ? json(info.relay->to_text()) : json(nullptr)},
            {"endpoint", info.path ? json(info.path->to_string()) : json(nullptr)},
            {"rtt_ms", info.rtt_ms ? json(*info.rtt_ms) : json(nullptr)},
            {"last_seen_s", info.last_seen_s ? json(*info.last_seen_s) : json(nullptr)},
            {"peer_nat", identity::to_string(info.peer_nat)},
            {"birthday_socket", info.via_probe_socket},
            {"detail", info.detail.empty() ? json(nullptr) : json(info.detail)}};
}

inline nlohmann::json peer_event(const PeerInfo& info) {
    auto event = peer_json(info);
    event["peer"] = event["id"];
    event.erase("id");
    return event;
}

}  // namespace keyhole::node
