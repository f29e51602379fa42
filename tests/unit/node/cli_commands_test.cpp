// The keyhole CLI's messaging commands without a daemon: request building,
// rendering, and the control client's handling of events around replies
// (against a scripted socket peer).
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "chat_commands.h"
#include "control_client.h"
#include "keyhole/identity/peer_id.h"
#include "render.h"

namespace keyhole::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

std::string peer_text(std::uint8_t fill) {
    identity::PublicKeyBytes key{};
    key.fill(fill);
    return identity::PeerId(key).to_text();
}

Invocation invocation_with(std::vector<std::string> arguments) {
    Invocation invocation;
    invocation.arguments = std::move(arguments);
    return invocation;
}

// ---------------------------------------------------------------------------
// requests

TEST(CliSendRequest, BuildsCanonicalPeerAndText) {
    const std::string peer = peer_text(7);
    std::string shouted = peer;
    for (char& c : shouted) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto request = build_send_request(invocation_with({"  " + shouted, "hello there"}));
    ASSERT_TRUE(request) << request.error();
    EXPECT_EQ(*request, (json{{"cmd", "send"}, {"peer", peer}, {"text", "hello there"}}));
}

TEST(CliSendRequest, WaitWithoutValueMeansThirtySeconds) {
    auto invocation = invocation_with({peer_text(1), "hi"});
    invocation.options["wait"] = std::nullopt;
    auto request = build_send_request(invocation);
    ASSERT_TRUE(request) << request.error();
    EXPECT_EQ((*request)["wait_s"], 30);
    EXPECT_TRUE((*request)["wait_s"].is_number_integer());
}

TEST(CliSendRequest, WaitTakesFractionalSeconds) {
    auto invocation = invocation_with({peer_text(1), "hi"});
    invocation.options["wait"] = "2.5";
    auto request = build_send_request(invocation);
    ASSERT_TRUE(request) << request.error();
    EXPECT_DOUBLE_EQ((*request)["wait_s"].get<double>(), 2.5);
    EXPECT_EQ(seconds_text(2.5), "2.5");
    EXPECT_EQ(seconds_text(30), "30");
}

TEST(CliSendRequest, RejectsBadWaitValues) {
    for (const char* bad : {"0", "-1", "abc", "", "1e9", "nan"}) {
        auto invocation = invocation_with({peer_text(1), "hi"});
        invocation.options["wait"] = bad;
        EXPECT_FALSE(build_send_request(invocation)) << bad;
    }
}

TEST(CliSendRequest, RejectsBadIdsAndTexts) {
    const std::string peer = peer_text(3);
    EXPECT_FALSE(build_send_request(invocation_with({"not-an-id", "hi"})));
    std::string typo = peer;
    typo[10] = typo[10] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(build_send_request(invocation_with({typo, "hi"})));  // checksum
    EXPECT_FALSE(build_send_request(invocation_with({peer, ""})));
    EXPECT_FALSE(build_send_request(invocation_with({peer, "a\xff" "b"})));
    EXPECT_FALSE(build_send_request(invocation_with({peer})));
    EXPECT_FALSE(build_send_request(invocation_with({peer, "two", "texts"})));

    EXPECT_TRUE(build_send_request(invocation_with({peer, std::string(kMaxMessageBytes, 'x')})));
    EXPECT_FALSE(
        build_send_request(invocation_with({peer, std::string(kMaxMessageBytes + 1, 'x')})));
}

TEST(CliHistoryRequest, DefaultsAndLimit) {
    const std::string peer = peer_text(4);
    auto request = build_history_request(invocation_with({peer}));
    ASSERT_TRUE(request) << request.error();
    EXPECT_EQ(*request, (json{{"cmd", "history"}, {"peer", peer}, {"limit", 50}}));

    auto limited = invocation_with({peer});
    limited.options["limit"] = "5";
    request = build_history_request(limited);
    ASSERT_TRUE(request) << request.error();
    EXPECT_EQ((*request)["limit"], 5);

    for (const char* bad : {"0", "-3", "x", "5x", ""}) {
        limited.options["limit"] = bad;
        EXPECT_FALSE(build_history_request(limited)) << bad;
    }
    EXPECT_FALSE(build_history_request(invocation_with({})));
}

TEST(CliInboxRequest, CarriesCursorAndLimit) {
    EXPECT_EQ(build_inbox_request(12, 500),
              (json{{"cmd", "inbox"}, {"after_row", 12}, {"limit", 500}}));
}

TEST(CliContactsRequest, AddRemoveList) {
    const std::string peer = peer_text(5);
    auto add = build_contacts_request(invocation_with({"add", peer, "Alice Liddell"}));
    ASSERT_TRUE(add) << add.error();
    EXPECT_EQ(*add, (json{{"cmd", "contacts_add"}, {"peer", peer}, {"name", "Alice Liddell"}}));

    auto unnamed = build_contacts_request(invocation_with({"add", peer}));
    ASSERT_TRUE(unnamed) << unnamed.error();
    EXPECT_EQ((*unnamed)["name"], "");

    auto remove = build_contacts_request(invocation_with({"remove", peer}));
    ASSERT_TRUE(remove) << remove.error();
    EXPECT_EQ(*remove, (json{{"cmd", "contacts_remove"}, {"peer", peer}}));

    auto list = build_contacts_request(invocation_with({"list"}));
    ASSERT_TRUE(list) << list.error();
    EXPECT_EQ(*list, (json{{"cmd", "contacts_list"}}));

    EXPECT_FALSE(build_contacts_request(invocation_with({})));
    EXPECT_FALSE(build_contacts_request(invocation_with({"frobnicate"})));
    EXPECT_FALSE(build_contacts_request(invocation_with({"add"})));
    EXPECT_FALSE(build_contacts_request(invocation_with({"add", "bad-id"})));
    EXPECT_FALSE(build_contacts_request(invocation_with({"remove", peer, "extra"})));
    EXPECT_FALSE(build_contacts_request(invocation_with({"list", "extra"})));
}

TEST(CliCommandTable, MessagingCommandsAndTheirOptions) {
    for (const char* name : {"send", "inbox", "history", "chat", "peers", "contacts"}) {
        EXPECT_NE(find_command(name), nullptr) << name;
    }
    ASSERT_NE(find_command("send"), nullptr);
    const auto* wait = find_command("send")->find_option("wait");
    ASSERT_NE(wait, nullptr);
    EXPECT_EQ(wait->value, CommandOption::Value::optional);
    ASSERT_NE(find_command("inbox"), nullptr);
    EXPECT_NE(find_command("inbox")->find_option("follow"), nullptr);
    EXPECT_EQ(find_command("lookup")->find_option("follow"), nullptr);
}

// ---------------------------------------------------------------------------
// rendering

TEST(CliRender, InboxLine) {
    const std::string from = peer_text(9);
    json message{{"row", 3},          {"message_id", std::string(32, 'a')},
                 {"from", from},      {"sequence", 1},
                 {"text", "hi there"}, {"sent_unix_ms", 1700000000123},
                 {"stored_unix_ms", 1700000000200}};
    EXPECT_EQ(inbox_line(message), "2023-11-14 22:13:20  " + from.substr(0, 8) + "…  hi there");
}

TEST(CliRender, MultiLineTextStaysInItsColumn) {
    json message{{"from", peer_text(9)}, {"text", "one\ntwo"}, {"sent_unix_ms", 0}};
    std::string line = inbox_line(message);
    EXPECT_NE(line.find("one\n" + std::string(19 + 2 + 8 + 1 + 2, ' ') + "two"), std::string::npos)
        << line;
}

TEST(CliRender, PeersTextCannotDriveTheTerminal) {
    EXPECT_EQ(terminal_safe("a\x1b[31mb"), "a\xEF\xBF\xBD[31mb");
    EXPECT_EQ(terminal_safe("tab\tok"), "tab\tok");
    EXPECT_EQ(terminal_safe("bad\xff"), "bad\xEF\xBF\xBD");
    EXPECT_EQ(terminal_safe("\xC2\x9B" "2J"), "\xEF\xBF\xBD" "2J");       // C1 CSI
    EXPECT_EQ(terminal_safe("x\xE2\x80\xAEy"), "x\xEF\xBF\xBDy");         // RTL override
    EXPECT_EQ(terminal_safe("grüße ✓"), "grüße ✓");
    EXPECT_TRUE(is_valid_utf8("grüße ✓"));
    EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
    EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
    EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
}

TEST(CliRender, HistoryLines) {
    json out{{"direction", "out"}, {"text", "sent"}, {"sent_unix_ms", 1700000000000},
             {"delivered", true}};
    json pending{{"direction", "out"}, {"text", "pending"}, {"sent_unix_ms", 1700000000000},
                 {"delivered", false}};
    json in{{"direction", "in"}, {"text", "got"}, {"sent_unix_ms", 1700000000000},
            {"delivered", false}};
    EXPECT_EQ(history_line(out), "2023-11-14 22:13:20  > sent ✓");
    EXPECT_EQ(history_line(pending), "2023-11-14 22:13:20  > pending");
    EXPECT_EQ(history_line(in), "2023-11-14 22:13:20  < got");
}

TEST(CliRender, MessageJsonLineDropsTheEventKey) {
    json event{{"event", "message"}, {"row", 5}, {"text", "x"}};
    auto line = message_json_line(event);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(json::parse(line), (json{{"row", 5}, {"text", "x"}}));
}

TEST(CliRender, PeersTable) {
    const std::string a = peer_text(1);
    const std::string b = peer_text(2);
    json result{{"peers",
                 {{{"id", a}, {"path", "direct"}, {"endpoint", "127.0.0.1:4301"}, {"rtt_ms", 0.42},
                   {"last_seen_s", 3}, {"state", "up"}},
                  {{"id", b}, {"path", "none"}, {"endpoint", nullptr}, {"rtt_ms", nullptr},
                   {"last_seen_s", nullptr}, {"state", "connecting"}}}}};
    std::ostringstream out;
    print_peers(result, out);
    std::istringstream lines(out.str());
    std::string header, first, second;
    std::getline(lines, header);
    std::getline(lines, first);
    std::getline(lines, second);
    EXPECT_EQ(header.rfind("ID", 0), 0u);
    for (const char* column : {"PATH", "ENDPOINT", "RTT", "LAST SEEN", "STATE"}) {
        EXPECT_NE(header.find(column), std::string::npos) << column;
    }
    EXPECT_EQ(first.rfind(a, 0), 0u);
    EXPECT_NE(first.find("127.0.0.1:4301"), std::string::npos);
    EXPECT_NE(first.find("0.4 ms"), std::string::npos);
    EXPECT_NE(first.find("3 s ago"), std::string::npos);
    EXPECT_EQ(second.rfind(b, 0), 0u);
    EXPECT_NE(second.find("connecting"), std::string::npos);
    // Columns line up: PATH starts at the same offset in every line.
    EXPECT_EQ(header.find("PATH"), first.find("direct"));
    EXPECT_EQ(header.find("PATH"), second.find("none"));

    std::ostringstream empty;
    print_peers(json{{"peers", json::array()}}, empty);
    EXPECT_EQ(empty.str(), "no sessions\n");
}

TEST(CliRender, PeerEvents) {
    const std::string peer = peer_text(6);
    auto event = [&](const char* state, json endpoint) {
        return json{{"event", "peer"}, {"peer", peer}, {"state", state}, {"path", "direct"},
                    {"endpoint", endpoint}};
    };
    EXPECT_EQ(peer_event_text(event("looking_up", nullptr), true),
              "looking up " + peer.substr(0, 8) + "…");
    EXPECT_EQ(peer_event_text(event("connecting", nullptr), true), "connecting…");
    EXPECT_EQ(peer_event_text(event("up", "127.0.0.1:4301"), true),
              "session up (direct, 127.0.0.1:4301)");
    EXPECT_EQ(peer_event_text(event("up", "127.0.0.1:4301"), false), "session up (direct)");
    EXPECT_EQ(peer_event_text(event("down", nullptr), false), "session down");
    EXPECT_EQ(peer_event_text(json{{"event", "delivered"}}, true), std::nullopt);

    std::string upper = peer;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_TRUE(same_peer(upper, peer));
    EXPECT_FALSE(same_peer(peer_text(7), peer));
    EXPECT_FALSE(same_peer(nullptr, peer));
}

// ---------------------------------------------------------------------------
// the control client around events

// Accepts one connection, answers each request line with the lines that
// `script` returns for it (the request's id substituted for "$ID"), and then
// closes once the script has no more answers.
class ScriptedDaemon {
public:
    using Script = std::function<std::vector<std::string>(const json& request)>;

    explicit ScriptedDaemon(Script script) : script_(std::move(script)) {
        std::string pattern = "/tmp/kh-cli-XXXXXX";
        directory_ = mkdtemp(pattern.data());
        path_ = directory_ / "s";
        listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
            ::listen(listener_, 4) != 0) {
            throw std::runtime_error("cannot listen");
        }
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedDaemon() {
        ::shutdown(listener_, SHUT_RDWR);
        thread_.join();
        ::close(listener_);
        std::error_code ignored;
        fs::remove_all(directory_, ignored);
    }
    const fs::path& path() const { return path_; }

private:
    void serve() {
        int client = ::accept(listener_, nullptr, nullptr);
        if (client < 0) return;
        std::string buffer;
        char chunk[4096];
        for (;;) {
            auto newline = buffer.find('\n');
            if (newline == std::string::npos) {
                ssize_t count = ::recv(client, chunk, sizeof(chunk), 0);
                if (count <= 0) break;
                buffer.append(chunk, static_cast<std::size_t>(count));
                continue;
            }
            json request = json::parse(buffer.substr(0, newline));
            buffer.erase(0, newline + 1);
            auto lines = script_(request);
            if (lines.empty()) break;
            for (auto line : lines) {
                for (auto at = line.find("$ID"); at != std::string::npos; at = line.find("$ID")) {
                    line.replace(at, 3, request["id"].dump());
                }
                line += '\n';
                (void)::send(client, line.data(), line.size(), MSG_NOSIGNAL);
            }
        }
        ::close(client);
    }

    Script script_;
    fs::path directory_;
    fs::path path_;
    int listener_ = -1;
    std::thread thread_;
};

TEST(CliControlClient, QueuesEventsThatArriveBeforeTheReply) {
    ScriptedDaemon daemon([](const json& request) -> std::vector<std::string> {
        if (request["cmd"] == "subscribe") {
            return {R"({"event":"peer","peer":"p","state":"up"})",
                    R"({"id":999,"ok":true,"result":{"someone":"else"}})",
                    R"({"id":$ID,"ok":true,"result":{"subscribed":true}})",
                    R"({"event":"message","row":1,"text":"after"})"};
        }
        return {};
    });
    auto client = ControlClient::connect(daemon.path(), 5s);
    ASSERT_TRUE(client) << client.error();
    auto reply = client->call(json{{"cmd", "subscribe"}});
    ASSERT_TRUE(reply) << reply.error();
    ASSERT_TRUE(reply->ok);
    EXPECT_EQ(reply->result, (json{{"subscribed", true}}));

    auto first = client->read_event(5s);
    ASSERT_TRUE(first) << first.error();
    ASSERT_TRUE(*first);
    EXPECT_EQ((**first)["event"], "peer");  // the one read while waiting for the reply
    auto second = client->read_event(5s);
    ASSERT_TRUE(second) << second.error();
    ASSERT_TRUE(*second);
    EXPECT_EQ((**second)["text"], "after");
}

TEST(CliControlClient, ReadEventTimesOutThenReportsTheDaemonLeaving) {
    ScriptedDaemon daemon([](const json& request) -> std::vector<std::string> {
        if (request["cmd"] == "subscribe") {
            return {R"({"id":$ID,"ok":true,"result":{"subscribed":true}})"};
        }
        return {};  // anything else: hang up
    });
    auto client = ControlClient::connect(daemon.path(), 5s);
    ASSERT_TRUE(client) << client.error();
    ASSERT_TRUE(client->call(json{{"cmd", "subscribe"}}));

    auto start = std::chrono::steady_clock::now();
    auto nothing = client->read_event(100ms);
    ASSERT_TRUE(nothing) << nothing.error();
    EXPECT_FALSE(*nothing);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms);

    auto immediate = client->read_event(0ms);
    ASSERT_TRUE(immediate) << immediate.error();
    EXPECT_FALSE(*immediate);

    auto id = client->send_request(json{{"cmd", "bye"}});
    ASSERT_TRUE(id) << id.error();
    auto gone = client->read_event(5s);
    EXPECT_FALSE(gone);
}

TEST(CliControlClient, PollReplyWaitsWithoutBlocking) {
    ScriptedDaemon daemon([](const json& request) -> std::vector<std::string> {
        if (request["cmd"] == "slow") {
            std::this_thread::sleep_for(200ms);
            return {R"({"event":"delivered","message_id":"m"})",
                    R"({"id":$ID,"ok":false,"error":{"code":"timeout","message":"late"}})"};
        }
        return {};
    });
    auto client = ControlClient::connect(daemon.path(), 5s);
    ASSERT_TRUE(client) << client.error();
    auto id = client->send_request(json{{"cmd", "slow"}});
    ASSERT_TRUE(id) << id.error();
    auto early = client->poll_reply(*id, 0ms);
    ASSERT_TRUE(early) << early.error();
    EXPECT_FALSE(*early);

    auto reply = client->poll_reply(*id, 5s);
    ASSERT_TRUE(reply) << reply.error();
    ASSERT_TRUE(*reply);
    EXPECT_FALSE((*reply)->ok);
    EXPECT_EQ((*reply)->error_code, "timeout");
    EXPECT_EQ((*reply)->error_message, "late");

    auto event = client->read_event(0ms);
    ASSERT_TRUE(event) << event.error();
    ASSERT_TRUE(*event);
    EXPECT_EQ((**event)["event"], "delivered");
}

}  // namespace
}  // namespace keyhole::cli
