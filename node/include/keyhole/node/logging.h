// spdlog set-up for the daemon. Under systemd (JOURNAL_STREAM set) lines go to
// stderr without timestamps of our own; the journal adds them.
#pragma once

#include <string>

#include "keyhole/result.h"

namespace keyhole::node {

void setup_logging();
// Accepts trace, debug, info, warn, error, critical, off.
Status set_log_level(const std::string& level);

}  // namespace keyhole::node
