// What the daemon exposes to Prometheus, and its text exposition format
// (version 0.0.4). The snapshot is filled by the daemon from its parts'
// counters; rendering is pure, so it is tested without a daemon.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keyhole::node {

// Buckets as the DHT counts them: counts[i] is the number of observations
// <= upper_bounds_s[i] and > the bound before it; counts.back() is above the
// last bound (so counts has one more entry than upper_bounds_s).
struct HistogramSnapshot {
    std::vector<double> upper_bounds_s;
    std::vector<std::uint64_t> counts;
    double sum_s = 0;
};

struct MetricsSnapshot {
    std::string mode;  // chat, relay, bootstrap
    std::string version;
    double uptime_s = 0;
    bool record_published = false;

    // DHT
    std::uint64_t dht_nodes_good = 0;
    std::uint64_t dht_nodes_dubious = 0;
    std::uint64_t lookups_found = 0;
    std::uint64_t lookups_not_found = 0;
    HistogramSnapshot lookup_duration;
    std::uint64_t records_rejected = 0;

    // Sessions and NAT traversal
    std::uint64_t sessions_direct = 0;
    std::uint64_t sessions_relay = 0;
    std::uint64_t connect_requests_sent = 0;
    std::uint64_t punch_probes_sent = 0;
    std::uint64_t handshakes_completed = 0;
    std::uint64_t punches_started = 0;    // sessions that began punching (attempts)
    std::uint64_t punches_succeeded = 0;  // ... and found a direct path

    // Relay (served to others)
    std::uint64_t relay_frames_forwarded = 0;
    std::uint64_t relay_bytes_forwarded = 0;

    // Packets
    std::uint64_t packets_received = 0;
    std::uint64_t reflections_answered = 0;
    std::uint64_t dropped_malformed = 0;           // transport: malformed or no session layer
    std::uint64_t dropped_frame_rejected = 0;      // failed authentication or replay
    std::uint64_t dropped_handshake_rejected = 0;  // forged, replayed or malformed handshakes
    std::uint64_t dropped_stranger = 0;            // accept_from = contacts

    // Messages
    std::uint64_t messages_queued = 0;  // in the outbox, not yet acknowledged
    std::uint64_t messages_delivered = 0;
    std::uint64_t messages_received = 0;
};

std::string render_metrics(const MetricsSnapshot& snapshot);

// Prometheus label values escape backslash, double quote and newline.
std::string escape_label_value(const std::string& value);

}  // namespace keyhole::node
