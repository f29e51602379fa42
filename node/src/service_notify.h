// Tells systemd how the daemon is doing (Type=notify): READY=1 once it
// serves, RELOADING=1 around SIGHUP, STOPPING=1 on the way out, and watchdog
// pings from the io_context, so a stuck event loop gets the service restarted.
// libsystemd's sd_notify is the reference implementation of the protocol
// (a datagram to $NOTIFY_SOCKET); without NOTIFY_SOCKET every call is a no-op.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

namespace keyhole::node {

class ServiceNotifier {
public:
    explicit ServiceNotifier(asio::io_context& io);

    // READY=1 with a one-line STATUS= for `systemctl status`; starts the
    // watchdog pings if the unit asked for them (WatchdogSec).
    void ready(const std::string& status);
    void reloading();
    // After a reload: READY=1 again with a new status line.
    void reloaded(const std::string& status);
    // STOPPING=1; stops the watchdog pings.
    void stopping();

    // The interval between pings: half of WATCHDOG_USEC, or nothing when the
    // watchdog is off (or meant for another process).
    std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_interval_; }

private:
    void send(const std::string& state);
    void schedule_watchdog();

    asio::steady_timer watchdog_timer_;
    std::optional<std::chrono::microseconds> watchdog_interval_;
    bool stopping_ = false;
};

}  // namespace keyhole::node
