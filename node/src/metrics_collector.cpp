#include "metrics_collector.h"

#include <nlohmann/json.hpp>

namespace keyhole::node {

namespace {

bool is_relayed(const PeerInfo& info) { return info.relay.has_value(); }

// PeerStats gains punches_started/punches_succeeded with the NAT traversal
// work (issue #4). Without them: every completed handshake starts punching,
// and a session that came up succeeded, since a direct path is the only way up.
template <typename Stats>
std::uint64_t punches_started(const Stats& stats) {
    if constexpr (requires { stats.punches_started; })
        return stats.punches_started;
    else
        return stats.handshakes_completed;
}
template <typename Stats>
std::uint64_t punches_succeeded(const Stats& stats, const DaemonCounters& counters) {
    if constexpr (requires { stats.punches_succeeded; })
        return stats.punches_succeeded;
    else
        return counters.sessions_came_up;
}

const char* mode_name(const DaemonConfig& config) {
    if (config.bootstrap_only) return "bootstrap";
    if (config.relay) return "relay";
    return "chat";
}

}  // namespace

void DaemonCounters::on_event_line(const std::string& line) {
    const auto event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!event.is_object()) return;
    const auto name = event.find("event");
    if (name == event.end() || !name->is_string()) return;
    if (*name == "delivered") ++messages_delivered;
    if (*name == "message") ++messages_received;
}

std::uint64_t count_queued_messages(const MessageStore& store) {
    std::uint64_t queued = 0;
    for (const auto& peer : store.peers_with_pending()) queued += store.pending_outgoing(peer).size();
    return queued;
}

MetricsSnapshot collect_metrics(DaemonState& state, const DaemonCounters& counters) {
    MetricsSnapshot s;
    s.mode = mode_name(state.config);
    s.version = KEYHOLE_VERSION;
    s.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - state.started).count();
    s.record_published = state.publisher && state.publisher->published() && state.dht.record_stored();

    const auto health = state.dht.health();
    s.dht_nodes_good = health.good_nodes;
    s.dht_nodes_dubious = health.dubious_nodes;
    const auto lookups = state.dht.lookup_stats();
    s.lookups_found = lookups.lookups_found;
    s.lookups_not_found = lookups.lookups_not_found;
    s.records_rejected = lookups.records_rejected;
    for (auto bound_ms : dht::kLookupLatencyBoundsMs) s.lookup_duration.upper_bounds_s.push_back(bound_ms / 1000.0);
    s.lookup_duration.counts.assign(lookups.latency_counts.begin(), lookups.latency_counts.end());
    s.lookup_duration.sum_s = lookups.latency_sum_s;
    if (state.relay) {
        s.relay_frames_forwarded = state.relay->stats().frames_forwarded;
        s.relay_bytes_forwarded = state.relay->stats().bytes_forwarded;
    }

    const auto& transport = state.transport.stats();
    s.packets_received = transport.packets_received;
    s.reflections_answered = transport.reflections_answered;
    s.dropped_malformed = transport.packets_dropped;

    if (state.peers) {
        for (const auto& info : state.peers->peers()) {
            if (info.state != PeerState::up) continue;
            ++(is_relayed(info) ? s.sessions_relay : s.sessions_direct);
        }
        const auto& stats = state.peers->stats();
        s.connect_requests_sent = stats.connect_requests_sent;
        s.punch_probes_sent = stats.punch_probes_sent;
        s.handshakes_completed = stats.handshakes_completed;
        s.punches_started = punches_started(stats);
        s.punches_succeeded = punches_succeeded(stats, counters);
        s.dropped_frame_rejected = stats.frames_rejected;
        s.dropped_handshake_rejected = stats.handshakes_rejected;
        s.dropped_stranger = stats.strangers_ignored;
    }
    if (state.store) s.messages_queued = count_queued_messages(*state.store);
    s.messages_delivered = counters.messages_delivered;
    s.messages_received = counters.messages_received;
    return s;
}

}  // namespace keyhole::node
