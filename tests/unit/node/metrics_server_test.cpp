// The metrics port over real loopback TCP: answers a scrape, cuts off slow
// and oversized requests, and refuses connections beyond its limit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <gtest/gtest.h>

#include "metrics_server.h"

namespace keyhole::node {
namespace {

using namespace std::chrono_literals;

// Runs the server's io_context on a thread for the test's lifetime.
class RunningServer {
public:
    explicit RunningServer(MetricsServerLimits limits)
        : server_(io_, [] { return std::string("keyhole_up 1\n"); }, limits) {
        auto started = server_.start(0);
        EXPECT_TRUE(started.ok()) << started.error();
        port_ = server_.port();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~RunningServer() {
        asio::post(io_, [this] { server_.stop(); });
        guard_.reset();
        thread_.join();
    }
    std::uint16_t port() const { return port_; }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
    MetricsServer server_;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Everything the server sends until it closes, or nothing if it stays open past `limit`.
std::optional<std::string> read_until_closed(int fd, std::chrono::milliseconds limit) {
    std::string received;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) return std::nullopt;
        pollfd entry{fd, POLLIN, 0};
        if (::poll(&entry, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
        char chunk[4096];
        const ssize_t count = ::recv(fd, chunk, sizeof(chunk), 0);
        if (count <= 0) return received;
        received.append(chunk, static_cast<std::size_t>(count));
    }
}

void send_all(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        const ssize_t count = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (count <= 0) return;  // the server may close early; that is the point of some tests
        sent += static_cast<std::size_t>(count);
    }
}

std::optional<std::string> scrape(std::uint16_t port) {
    const int fd = connect_to(port);
    if (fd < 0) return std::nullopt;
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    auto response = read_until_closed(fd, 3s);
    ::close(fd);
    return response;
}

TEST(MetricsServer, AnswersAScrape) {
    RunningServer server({});
    const auto response = scrape(server.port());
    ASSERT_TRUE(response);
    EXPECT_EQ(response->rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_NE(response->find("\r\n\r\nkeyhole_up 1\n"), std::string::npos);
}

TEST(MetricsServer, CutsOffASlowClient) {
    RunningServer server({.max_connections = 8, .deadline = 300ms});
    const int fd = connect_to(server.port());
    ASSERT_GE(fd, 0);
    send_all(fd, "GET /metr");  // and then nothing more
    const auto started = std::chrono::steady_clock::now();
    const auto response = read_until_closed(fd, 3s);
    ::close(fd);
    ASSERT_TRUE(response) << "the connection stayed open";
    EXPECT_TRUE(response->empty());
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
    EXPECT_TRUE(scrape(server.port()));
}

TEST(MetricsServer, RefusesAnEndlessRequest) {
    RunningServer server({});
    const int fd = connect_to(server.port());
    ASSERT_GE(fd, 0);
    send_all(fd, std::string(64 * 1024, 'a'));
    const auto response = read_until_closed(fd, 3s);
    ::close(fd);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->rfind("HTTP/1.1 431 ", 0), 0u);
    EXPECT_TRUE(scrape(server.port()));
}

TEST(MetricsServer, ConnectionsBeyondTheLimitAreClosed) {
    RunningServer server({.max_connections = 2, .deadline = 500ms});
    const int idle_a = connect_to(server.port());
    const int idle_b = connect_to(server.port());
    ASSERT_GE(idle_a, 0);
    ASSERT_GE(idle_b, 0);
    std::this_thread::sleep_for(100ms);  // both accepted
    const int extra = connect_to(server.port());
    ASSERT_GE(extra, 0);
    const auto refused = read_until_closed(extra, 400ms);
    ::close(extra);
    ASSERT_TRUE(refused) << "a third connection was served";
    EXPECT_TRUE(refused->empty());
    // Once the idle ones time out, scrapes work again.
    EXPECT_TRUE(read_until_closed(idle_a, 2s));
    EXPECT_TRUE(read_until_closed(idle_b, 2s));
    ::close(idle_a);
    ::close(idle_b);
    EXPECT_TRUE(scrape(server.port()));
}

}  // namespace
}  // namespace keyhole::node
