// Fills a MetricsSnapshot from the running daemon's parts. Counters that no
// part keeps itself (sessions that came up, messages delivered and
// received) are counted by the daemon in DaemonCounters.
#pragma once

#include <cstdint>
#include <string>

#include "daemon_state.h"
#include "metrics.h"

namespace keyhole::node {

struct DaemonCounters {
    std::uint64_t sessions_came_up = 0;  // peer state changes to "up"
    std::uint64_t messages_delivered = 0;
    std::uint64_t messages_received = 0;

    // Counts one event line from the EventHub ("delivered", "message").
    void on_event_line(const std::string& line);
};

MetricsSnapshot collect_metrics(DaemonState& state, const DaemonCounters& counters);

// Outgoing messages not yet acknowledged, over every peer.
std::uint64_t count_queued_messages(const MessageStore& store);

}  // namespace keyhole::node
