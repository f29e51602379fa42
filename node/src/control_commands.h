// The daemon's control command table: turns a parsed request into a reply.
#pragma once

#include "daemon_state.h"
#include "keyhole/node/control_server.h"

namespace keyhole::node {

void handle_control_request(DaemonState& state, const ControlRequest& request, ControlReply reply);

}  // namespace keyhole::node
