// What the control commands may read of the running daemon.
#pragma once

#include <chrono>
#include <optional>

#include "keyhole/dht/dht_node.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/node/config.h"
#include "keyhole/node/delivery.h"
#include "keyhole/node/event_hub.h"
#include "keyhole/node/message_store.h"
#include "keyhole/node/peer_manager.h"
#include "keyhole/node/record_publisher.h"
#include "keyhole/transport/transport.h"
#include "keyhole/transport/udp_port.h"
#include "relay_server.h"

namespace keyhole::node {

struct DaemonState {
    const DaemonConfig& config;
    const std::optional<identity::KeyPair>& key;  // empty on a bootstrap-only node
    transport::UdpPort& udp;
    dht::DhtNode& dht;
    transport::Transport& transport;
    RecordPublisher* publisher;  // null on a bootstrap-only node
    std::chrono::steady_clock::time_point started;
    // Chat: all null on a bootstrap-only node.
    MessageStore* store = nullptr;
    PeerManager* peers = nullptr;
    Delivery* delivery = nullptr;
    EventHub* events = nullptr;
    // Relay service (relay mode only, else null).
    const RelayServer* relay = nullptr;
};

}  // namespace keyhole::node
