// sd_notify as systemd sees it: datagrams on $NOTIFY_SOCKET, watchdog pings
// at half of WATCHDOG_USEC, and nothing at all without NOTIFY_SOCKET.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include <asio/io_context.hpp>
#include <gtest/gtest.h>

#include "service_notify.h"
#include "support/temp_dir.h"

namespace keyhole::node {
namespace {

using namespace std::chrono_literals;

// A datagram socket standing in for systemd's, named in NOTIFY_SOCKET for one scope.
class FakeSystemd {
public:
    FakeSystemd() {
        path_ = (dir_.path() / "notify").string();
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
        ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    }
    ~FakeSystemd() {
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("WATCHDOG_USEC");
        ::close(fd_);
    }
    // Every datagram received so far, joined with "|".
    std::string received() {
        std::string all;
        char buffer[4096];
        for (ssize_t count; (count = ::recv(fd_, buffer, sizeof(buffer), 0)) > 0;) {
            if (!all.empty()) all += "|";
            all.append(buffer, static_cast<std::size_t>(count));
        }
        return all;
    }

private:
    testing::TempDir dir_;
    std::string path_;
    int fd_ = -1;
};

TEST(ServiceNotify, ReadyReloadingAndStoppingReachSystemd) {
    FakeSystemd systemd;
    asio::io_context io;
    ServiceNotifier notifier(io);
    EXPECT_FALSE(notifier.watchdog_interval());
    notifier.ready("ID abc, UDP port 4224");
    notifier.reloading();
    notifier.reloaded("ID abc, UDP port 4224");
    notifier.stopping();
    EXPECT_EQ(systemd.received(),
              "READY=1\nSTATUS=ID abc, UDP port 4224|RELOADING=1\nSTATUS=reloading the configuration|"
              "READY=1\nSTATUS=ID abc, UDP port 4224|STOPPING=1\nSTATUS=shutting down");
}

TEST(ServiceNotify, WatchdogPingsAtHalfTheInterval) {
    FakeSystemd systemd;
    ::setenv("WATCHDOG_USEC", "200000", 1);  // 200 ms: pings every 100 ms
    asio::io_context io;
    ServiceNotifier notifier(io);
    ASSERT_TRUE(notifier.watchdog_interval());
    EXPECT_EQ(*notifier.watchdog_interval(), 100ms);
    notifier.ready("up");
    io.run_for(350ms);
    const std::string received = systemd.received();
    const auto pings = [&] {
        std::size_t count = 0;
        for (auto at = received.find("WATCHDOG=1"); at != std::string::npos; at = received.find("WATCHDOG=1", at + 1))
            ++count;
        return count;
    }();
    EXPECT_GE(pings, 2u) << received;
    EXPECT_LE(pings, 4u) << received;
    notifier.stopping();
    io.restart();
    io.run_for(250ms);
    const std::string after_stopping = systemd.received();
    EXPECT_EQ(after_stopping.find("WATCHDOG=1"), std::string::npos) << after_stopping;
}

TEST(ServiceNotify, NothingHappensWithoutNotifySocket) {
    ::unsetenv("NOTIFY_SOCKET");
    asio::io_context io;
    ServiceNotifier notifier(io);
    notifier.ready("up");
    notifier.stopping();
    SUCCEED();
}

}  // namespace
}  // namespace keyhole::node
