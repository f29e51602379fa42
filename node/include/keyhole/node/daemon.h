// keyholed: wires the UDP port, OpenDHT, the record publisher, the control
// socket and (optionally) the metrics port onto one io_context, tells systemd
// when it is ready, re-reads its settings on SIGHUP, and runs until
// SIGTERM/SIGINT.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>

#include "keyhole/node/config.h"
#include "keyhole/result.h"

namespace keyhole::node {

// How SIGHUP gets fresh settings: the config file the daemon was started
// with, re-read, with the same command-line flags on top.
struct ReloadSource {
    std::optional<std::filesystem::path> config_file;  // for log lines; none: flags only
    std::function<Result<DaemonConfig>()> read;        // empty: SIGHUP changes nothing
};

// Returns the process exit code.
int run_daemon(const DaemonConfig& config, ReloadSource reload = {});

}  // namespace keyhole::node
