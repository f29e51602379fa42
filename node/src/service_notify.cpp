#include "service_notify.h"

#include <cstdint>
#include <cstring>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

namespace keyhole::node {

ServiceNotifier::ServiceNotifier(asio::io_context& io) : watchdog_timer_(io) {
    std::uint64_t usec = 0;
    // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is us.
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        watchdog_interval_ = std::chrono::microseconds(usec / 2);
}

void ServiceNotifier::send(const std::string& state) {
    const int result = sd_notify(0, state.c_str());
    // 0: no NOTIFY_SOCKET (not under systemd), nothing to do.
    if (result < 0) spdlog::warn("sd_notify failed: {}", std::strerror(-result));
}

void ServiceNotifier::ready(const std::string& status) {
    send("READY=1\nSTATUS=" + status);
    if (watchdog_interval_) {
        spdlog::debug("systemd watchdog: pinging every {} ms",
                      std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog_interval_).count());
        schedule_watchdog();
    }
}

void ServiceNotifier::reloading() { send("RELOADING=1\nSTATUS=reloading the configuration"); }

void ServiceNotifier::reloaded(const std::string& status) { send("READY=1\nSTATUS=" + status); }

void ServiceNotifier::stopping() {
    stopping_ = true;
    watchdog_timer_.cancel();
    send("STOPPING=1\nSTATUS=shutting down");
}

// Pinged from the event loop itself: if the loop stalls, the pings stop and
// systemd restarts the service.
void ServiceNotifier::schedule_watchdog() {
    if (stopping_ || !watchdog_interval_) return;
    watchdog_timer_.expires_after(*watchdog_interval_);
    watchdog_timer_.async_wait([this](const asio::error_code& error) {
        if (error || stopping_) return;
        send("WATCHDOG=1");
        schedule_watchdog();
    });
}

}  // namespace keyhole::node
