// Waiting on several descriptors at once (the daemon's connections, stdin)
// for the commands that stream, and stopping cleanly on Ctrl-C.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "keyhole/result.h"

namespace keyhole::cli {

// From now on SIGINT only sets a flag, and interrupts the wait below, so a
// streaming command can end with its normal exit status. Idempotent.
void catch_interrupts();
bool interrupted();

struct Readiness {
    bool interrupted = false;   // SIGINT arrived (see catch_interrupts)
    bool timed_out = false;
    std::vector<bool> ready;    // per descriptor: readable, hung up or in error
};

// Waits until one of `fds` is readable, `deadline` passes (never, without
// one) or SIGINT arrives. Negative descriptors are ignored.
Result<Readiness> wait_readable(
    const std::vector<int>& fds,
    std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

}  // namespace keyhole::cli
