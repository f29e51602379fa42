#include "poll_wait.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>

namespace keyhole::cli {

namespace {

volatile std::sig_atomic_t interrupt_flag = 0;

extern "C" void on_interrupt(int) { interrupt_flag = 1; }

}  // namespace

void catch_interrupts() {
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: poll() returns EINTR
    ::sigaction(SIGINT, &action, nullptr);
}

bool interrupted() { return interrupt_flag != 0; }

Result<Readiness> wait_readable(const std::vector<int>& fds,
                                std::optional<std::chrono::steady_clock::time_point> deadline) {
    std::vector<pollfd> entries;
    entries.reserve(fds.size());
    for (int fd : fds) entries.push_back(pollfd{fd, POLLIN, 0});
    for (;;) {
        Readiness readiness;
        if (interrupted()) {
            readiness.interrupted = true;
            return readiness;
        }
        int timeout_ms = -1;
        if (deadline) {
            auto remaining = std::chrono::ceil<std::chrono::milliseconds>(
                *deadline - std::chrono::steady_clock::now());
            if (remaining.count() <= 0) {
                readiness.timed_out = true;
                return readiness;
            }
            timeout_ms = static_cast<int>(std::min<std::int64_t>(remaining.count(), 3600 * 1000));
        }
        int count = ::poll(entries.data(), entries.size(), timeout_ms);
        if (count < 0 && errno == EINTR) continue;  // the flag is checked above
        if (count < 0) return fail(std::string("cannot wait for input: ") + std::strerror(errno));
        if (count == 0) continue;  // the deadline check above decides
        readiness.ready.reserve(entries.size());
        for (const auto& entry : entries) {
            readiness.ready.push_back(entry.fd >= 0 &&
                                      (entry.revents & (POLLIN | POLLHUP | POLLERR)) != 0);
        }
        return readiness;
    }
}

}  // namespace keyhole::cli
