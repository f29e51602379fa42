// keyholed: wires the UDP port, OpenDHT, the record publisher and the control
// socket onto one io_context, and runs until SIGTERM/SIGINT.
#pragma once

#include "keyhole/node/config.h"

namespace keyhole::node {

// Returns the process exit code.
int run_daemon(const DaemonConfig& config);

}  // namespace keyhole::node
