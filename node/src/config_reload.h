// SIGHUP: which settings a running daemon takes over from a re-read config,
// and which only a restart can change. Pure, so it is tested without a daemon.
#pragma once

#include <string>
#include <vector>

#include "keyhole/node/config.h"

namespace keyhole::node {

struct ReloadPlan {
    DaemonConfig config;                 // the running config with the live settings replaced
    std::vector<std::string> applied;    // "log_level: info -> debug"
    std::vector<std::string> ignored;    // "port: 4224 -> 4300" (needs a restart)
    bool metrics_port_changed = false;   // the metrics listener must be reopened
};

// Settings applied at once: log_level, keepalive_interval_s, lookup_timeout_s,
// accept_from, metrics_port. Every other change is listed in `ignored` and
// the running value is kept (sockets, identity, paths: a restart is needed).
ReloadPlan plan_reload(const DaemonConfig& running, const DaemonConfig& reread);

}  // namespace keyhole::node
