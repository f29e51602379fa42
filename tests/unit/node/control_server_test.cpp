#include "keyhole/node/control_server.h"

#include <grp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/temp_dir.h"
#include <asio/io_context.hpp>

namespace keyhole::node {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kPatience = 5s;  // upper bound for anything a test waits for

using keyhole::testing::TempDir;

sockaddr_un address_of(const fs::path& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    return address;
}

// A non-blocking POSIX client, so the test thread can keep running the
// server's io_context while it waits.
class TestClient {
public:
    explicit TestClient(const fs::path& path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        auto address = address_of(path);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    }
    ~TestClient() { close(); }
    TestClient(const TestClient&) = delete;
    TestClient& operator=(const TestClient&) = delete;

    bool connected() const { return connected_; }
    int fd() const { return fd_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    std::string buffer;

private:
    int fd_ = -1;
    bool connected_ = false;
};

bool file_exists(const fs::path& path) {
    struct stat status {};
    return ::lstat(path.c_str(), &status) == 0;
}

class ControlServerTest : public ::testing::Test {
protected:
    ControlServerTest() {
        server = std::make_unique<ControlServer>(
            io, [this](const ControlRequest& request, ControlReply reply) {
                handle(request, std::move(reply));
            });
    }

    // The test daemon's commands.
    void handle(const ControlRequest& request, ControlReply reply) {
        ++handled;
        if (request.command == "later") {
            kept_replies.push_back(std::move(reply));
        } else if (request.command == "big") {
            reply(make_ok_reply(request.id, {{"blob", std::string(1024 * 1024, 'b')}}));
        } else if (request.command == "throw") {
            throw std::runtime_error("handler bug");
        } else if (request.command == "stop") {
            server->stop();
        } else {
            reply(make_ok_reply(request.id, {{"cmd", request.command}}));
        }
    }

    Status start() { return server->start({socket_path, ""}); }

    void pump(std::chrono::milliseconds duration = 2ms) {
        if (io.stopped()) io.restart();
        io.run_for(duration);
    }

    bool pump_until(const std::function<bool()>& done) {
        auto deadline = std::chrono::steady_clock::now() + kPatience;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            pump();
        }
        return true;
    }

    bool send_all(TestClient& client, const std::string& data) {
        std::size_t sent = 0;
        auto deadline = std::chrono::steady_clock::now() + kPatience;
        while (sent < data.size()) {
            ssize_t count = ::send(client.fd(), data.data() + sent, data.size() - sent,
                                   MSG_DONTWAIT | MSG_NOSIGNAL);
            if (count > 0) {
                sent += static_cast<std::size_t>(count);
            } else if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (std::chrono::steady_clock::now() > deadline) return false;
                pump();
            } else {
                return false;
            }
        }
        return true;
    }

    // The next line from the server; nullopt if it closed or nothing came in time.
    std::optional<std::string> read_line(TestClient& client) {
        auto deadline = std::chrono::steady_clock::now() + kPatience;
        char chunk[65536];
        for (;;) {
            if (auto newline = client.buffer.find('\n'); newline != std::string::npos) {
                std::string line = client.buffer.substr(0, newline);
                client.buffer.erase(0, newline + 1);
                return line;
            }
            ssize_t count = ::recv(client.fd(), chunk, sizeof(chunk), MSG_DONTWAIT);
            if (count > 0) {
                client.buffer.append(chunk, static_cast<std::size_t>(count));
                continue;
            }
            if (count == 0) return std::nullopt;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return std::nullopt;
            if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
            pump();
        }
    }

    // True once the server has closed the connection (EOF after any pending data).
    bool closed_by_server(TestClient& client) {
        auto deadline = std::chrono::steady_clock::now() + kPatience;
        char chunk[65536];
        for (;;) {
            ssize_t count = ::recv(client.fd(), chunk, sizeof(chunk), MSG_DONTWAIT);
            if (count == 0) return true;
            if (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return true;  // reset
            if (std::chrono::steady_clock::now() > deadline) return false;
            if (count < 0) pump();
        }
    }

    json request(TestClient& client, const std::string& line) {
        if (!send_all(client, line + "\n")) return "send failed";
        auto reply = read_line(client);
        if (!reply) return "no reply";
        return json::parse(*reply, nullptr, false);
    }

    asio::io_context io;
    TempDir dir;
    fs::path socket_path = dir.path() / "control.sock";
    std::unique_ptr<ControlServer> server;
    std::vector<ControlReply> kept_replies;
    int handled = 0;
};

TEST_F(ControlServerTest, RequestGetsHandlersReplyWithIdEchoed) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(client.connected());
    auto reply = request(client, R"({"id":"abc-1","cmd":"status"})");
    EXPECT_EQ(reply, json({{"id", "abc-1"}, {"ok", true}, {"result", {{"cmd", "status"}}}}));
}

TEST_F(ControlServerTest, GarbageLineGetsJsonErrorAndNextRequestStillWorks) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    auto error = request(client, "this is not json");
    EXPECT_EQ(error["ok"], false);
    EXPECT_EQ(error["error"]["code"], error_code::parse_error);
    EXPECT_TRUE(error["id"].is_null());
    EXPECT_EQ(handled, 0);

    auto missing_cmd = request(client, R"({"id":9})");
    EXPECT_EQ(missing_cmd["error"]["code"], error_code::invalid_request);
    EXPECT_EQ(missing_cmd["id"], 9);

    auto reply = request(client, R"({"id":2,"cmd":"id"})");
    EXPECT_EQ(reply["ok"], true);
    EXPECT_EQ(reply["id"], 2);
}

TEST_F(ControlServerTest, OversizedLineGetsLineTooLongAndConnectionStillWorks) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(send_all(client, std::string(kMaxControlLine + 10, 'x') + "\n"));
    auto error = read_line(client);
    ASSERT_TRUE(error);
    auto parsed = json::parse(*error);
    EXPECT_EQ(parsed["error"]["code"], error_code::line_too_long);
    EXPECT_EQ(handled, 0);

    auto reply = request(client, R"({"id":3,"cmd":"id"})");
    EXPECT_EQ(reply["ok"], true);
    EXPECT_EQ(reply["id"], 3);
    EXPECT_EQ(handled, 1);
}

TEST_F(ControlServerTest, OversizedLineSentInOneGoWithNextRequestOnlyLosesItself) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    std::string data =
        std::string(3 * kMaxControlLine, '{') + "\n" + R"({"id":4,"cmd":"id"})" + "\n";
    ASSERT_TRUE(send_all(client, data));
    auto first = read_line(client);
    auto second = read_line(client);
    ASSERT_TRUE(first && second);
    EXPECT_EQ(json::parse(*first)["error"]["code"], error_code::line_too_long);
    EXPECT_EQ(json::parse(*second)["id"], 4);
}

TEST_F(ControlServerTest, PipelinedCrlfRequestsAndBlankLinesAreHandled) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(send_all(client, "{\"id\":1,\"cmd\":\"a\"}\r\n\n\r\n{\"id\":2,\"cmd\":\"b\"}\n"));
    auto first = read_line(client);
    auto second = read_line(client);
    ASSERT_TRUE(first && second);
    EXPECT_EQ(json::parse(*first)["result"]["cmd"], "a");
    EXPECT_EQ(json::parse(*second)["result"]["cmd"], "b");
    EXPECT_EQ(handled, 2);
}

TEST_F(ControlServerTest, RequestSplitAcrossWritesIsReassembled) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(send_all(client, R"({"id":5,"cm)"));
    pump(10ms);
    ASSERT_TRUE(send_all(client, R"(d":"split"})"
                                 "\n"));
    auto reply = read_line(client);
    ASSERT_TRUE(reply);
    EXPECT_EQ(json::parse(*reply)["result"]["cmd"], "split");
}

TEST_F(ControlServerTest, SocketFileIsOwnerOnly) {
    ASSERT_TRUE(start());
    struct stat status {};
    ASSERT_EQ(::stat(socket_path.c_str(), &status), 0);
    EXPECT_TRUE(S_ISSOCK(status.st_mode));
    EXPECT_EQ(status.st_mode & 07777, 0600u);
}

TEST_F(ControlServerTest, MissingParentDirectoryIsCreatedPrivate) {
    socket_path = dir.path() / "run" / "keyhole" / "control.sock";
    ASSERT_TRUE(start());
    struct stat status {};
    ASSERT_EQ(::stat(socket_path.parent_path().c_str(), &status), 0);
    EXPECT_EQ(status.st_mode & 07777, 0700u);
}

TEST_F(ControlServerTest, SecondServerOnSamePathFailsWhileFirstRuns) {
    ASSERT_TRUE(start());
    ControlServer second(io, [](const ControlRequest&, ControlReply) {});
    auto started = second.start({socket_path, ""});
    ASSERT_FALSE(started);
    EXPECT_EQ(started.error(),
              "control socket " + socket_path.string() + " is in use by another daemon");
    // The first server is unharmed.
    TestClient client(socket_path);
    EXPECT_EQ(request(client, R"({"id":1,"cmd":"x"})")["ok"], true);
}

TEST_F(ControlServerTest, StaleSocketFileIsReplaced) {
    int stale = ::socket(AF_UNIX, SOCK_STREAM, 0);
    auto address = address_of(socket_path);
    ASSERT_EQ(::bind(stale, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ::close(stale);  // the file stays; nobody listens on it
    ASSERT_TRUE(file_exists(socket_path));

    auto started = start();
    ASSERT_TRUE(started) << started.error();
    TestClient client(socket_path);
    EXPECT_EQ(request(client, R"({"id":1,"cmd":"x"})")["ok"], true);
}

TEST_F(ControlServerTest, NonSocketFileAtPathIsLeftAlone) {
    std::ofstream(socket_path) << "precious";
    auto started = start();
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().find("not a socket"), std::string::npos) << started.error();
    std::ifstream in(socket_path);
    std::string contents;
    in >> contents;
    EXPECT_EQ(contents, "precious");
}

TEST_F(ControlServerTest, GroupSocketIsGroupReadableAndOwnedByTheGroup) {
    const group* own_group = ::getgrgid(::getegid());
    if (!own_group) GTEST_SKIP() << "the test's own group has no name";
    socket_path = dir.path() / "shared" / "control.sock";
    auto started = server->start({socket_path, own_group->gr_name});
    ASSERT_TRUE(started) << started.error();
    struct stat status {};
    ASSERT_EQ(::stat(socket_path.c_str(), &status), 0);
    EXPECT_EQ(status.st_mode & 07777, 0660u);
    EXPECT_EQ(status.st_gid, ::getegid());
    ASSERT_EQ(::stat(socket_path.parent_path().c_str(), &status), 0);
    EXPECT_EQ(status.st_mode & 07777, 0750u);  // the group must be able to reach the socket
}

TEST_F(ControlServerTest, UnknownGroupFails) {
    auto started = server->start({socket_path, "keyhole-no-such-group-x"});
    ASSERT_FALSE(started);
    EXPECT_EQ(started.error(), "control group 'keyhole-no-such-group-x' does not exist");
    EXPECT_FALSE(file_exists(socket_path));
}

TEST_F(ControlServerTest, StopRemovesSocketFileAndClosesClients) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(pump_until([&] { return server->connection_count() == 1; }));
    server->stop();
    EXPECT_FALSE(file_exists(socket_path));
    EXPECT_EQ(server->connection_count(), 0u);
    EXPECT_TRUE(closed_by_server(client));
}

TEST_F(ControlServerTest, CanRestartAfterStop) {
    ASSERT_TRUE(start());
    server->stop();
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    EXPECT_EQ(request(client, R"({"id":1,"cmd":"x"})")["ok"], true);
}

TEST_F(ControlServerTest, ConnectionCountFollowsClients) {
    ASSERT_TRUE(start());
    {
        TestClient first(socket_path);
        TestClient second(socket_path);
        ASSERT_TRUE(pump_until([&] { return server->connection_count() == 2; }));
    }
    EXPECT_TRUE(pump_until([&] { return server->connection_count() == 0; }));
}

TEST_F(ControlServerTest, ClientsBeyondTheLimitAreRefused) {
    ASSERT_TRUE(start());
    std::vector<std::unique_ptr<TestClient>> clients;
    for (int i = 0; i < 64; ++i) clients.push_back(std::make_unique<TestClient>(socket_path));
    ASSERT_TRUE(pump_until([&] { return server->connection_count() == 64; }));
    TestClient extra(socket_path);
    EXPECT_TRUE(closed_by_server(extra));
    EXPECT_EQ(server->connection_count(), 64u);
    EXPECT_EQ(request(*clients.back(), R"({"id":1,"cmd":"x"})")["ok"], true);
}

TEST_F(ControlServerTest, ReplyAfterClientLeftIsANoOp) {
    ASSERT_TRUE(start());
    {
        TestClient client(socket_path);
        ASSERT_TRUE(send_all(client, R"({"id":1,"cmd":"later"})"
                                     "\n"));
        ASSERT_TRUE(pump_until([&] { return kept_replies.size() == 1; }));
    }
    ASSERT_TRUE(pump_until([&] { return server->connection_count() == 0; }));
    kept_replies.front()(make_ok_reply(1, "too late"));
    pump(10ms);
    server.reset();
    kept_replies.front()(make_ok_reply(1, "after the server is gone"));
}

TEST_F(ControlServerTest, HalfClosedClientStillGetsLateReply) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(send_all(client, R"({"id":"late","cmd":"later"})"));  // no newline: EOF ends it
    ::shutdown(client.fd(), SHUT_WR);
    ASSERT_TRUE(pump_until([&] { return kept_replies.size() == 1; }));
    pump(20ms);
    EXPECT_EQ(server->connection_count(), 1u);

    kept_replies.front()(make_ok_reply("late", "done"));
    auto reply = read_line(client);
    ASSERT_TRUE(reply);
    EXPECT_EQ(json::parse(*reply)["id"], "late");
    // Once the daemon drops the reply handle, nothing more can come: close.
    kept_replies.clear();
    EXPECT_TRUE(closed_by_server(client));
    EXPECT_EQ(server->connection_count(), 0u);
}

TEST_F(ControlServerTest, LastReplyCopyMayBeDroppedOnAnotherThread) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(send_all(client, R"({"cmd":"later"})" "\n"));
    ::shutdown(client.fd(), SHUT_WR);
    ASSERT_TRUE(pump_until([&] { return kept_replies.size() == 1; }));
    std::thread([reply = std::move(kept_replies.front())]() mutable { reply = nullptr; }).join();
    kept_replies.clear();
    EXPECT_TRUE(closed_by_server(client));
    EXPECT_EQ(server->connection_count(), 0u);
}

TEST_F(ControlServerTest, ClientThatNeverReadsIsDisconnected) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(pump_until([&] { return server->connection_count() == 1; }));
    std::string requests;
    for (int i = 0; i < 24; ++i)
        requests += R"({"cmd":"big"})"
                    "\n";
    ASSERT_TRUE(send_all(client, requests));
    EXPECT_TRUE(pump_until([&] { return server->connection_count() == 0; }));
    EXPECT_TRUE(closed_by_server(client));
}

TEST_F(ControlServerTest, HandlerExceptionBecomesInternalError) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    auto reply = request(client, R"({"id":1,"cmd":"throw"})");
    EXPECT_EQ(reply["error"]["code"], error_code::internal);
    EXPECT_EQ(request(client, R"({"id":2,"cmd":"x"})")["ok"], true);
}

TEST_F(ControlServerTest, HandlerMayStopTheServer) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(send_all(client, R"({"cmd":"stop"})"
                                 "\n"
                                 R"({"cmd":"x"})"
                                 "\n"));
    EXPECT_TRUE(closed_by_server(client));
    EXPECT_EQ(handled, 1);
    EXPECT_FALSE(file_exists(socket_path));
}

TEST_F(ControlServerTest, DestroyingServerWithClientsConnectedIsSafe) {
    ASSERT_TRUE(start());
    TestClient client(socket_path);
    ASSERT_TRUE(send_all(client, R"({"cmd":"later"})"
                                 "\n"));
    ASSERT_TRUE(pump_until([&] { return kept_replies.size() == 1; }));
    server.reset();
    pump(10ms);
    kept_replies.front()(make_ok_reply(nullptr, "nobody listens"));
    EXPECT_TRUE(closed_by_server(client));
    EXPECT_FALSE(file_exists(socket_path));
}

}  // namespace
}  // namespace keyhole::node
