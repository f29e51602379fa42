// Interoperability with an independent Noise implementation: the
// `noise-protocol` npm package, run by tests/noise_vectors/noise_interop.js.
// Skipped unless node is on PATH and the package is installed with
//   npm ci --prefix tests/noise_vectors --no-audit --no-fund
#include "keyhole/transport/noise.h"

#include <gtest/gtest.h>

#include "support/hex.h"
#include <sodium.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyhole/identity/key_pair.h"

#ifndef KEYHOLE_NOISE_VECTORS_DIR
#error "KEYHOLE_NOISE_VECTORS_DIR must name tests/noise_vectors (set by tests/CMakeLists.txt)"
#endif

extern char** environ;

namespace fs = std::filesystem;
namespace noise = keyhole::transport::noise;
using keyhole::Result;
using noise::Bytes;

namespace {

const fs::path kDir = KEYHOLE_NOISE_VECTORS_DIR;

using keyhole::testing::to_hex;

std::optional<Bytes> from_hex(const std::string& hex) { return keyhole::testing::parse_hex(hex); }

Bytes random_bytes(std::size_t n) {
    Bytes out(n);
    if (n > 0) randombytes_buf(out.data(), n);
    return out;
}

std::optional<fs::path> find_node() {
    const char* path = std::getenv("PATH");
    if (path == nullptr) return std::nullopt;
    std::string dirs = path;
    std::size_t start = 0;
    while (start <= dirs.size()) {
        const std::size_t end = std::min(dirs.find(':', start), dirs.size());
        const fs::path candidate = fs::path(dirs.substr(start, end - start)) / "node";
        if (!candidate.parent_path().empty() && ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        start = end + 1;
    }
    return std::nullopt;
}

// Why the interop tests cannot run here, or nothing if they can.
std::optional<std::string> unavailable() {
    if (!find_node()) return "node is not on PATH";
    if (!fs::exists(kDir / "node_modules" / "noise-protocol" / "package.json"))
        return "the noise-protocol npm package is not installed in " + kDir.string() +
               "/node_modules; install it with: npm ci --prefix tests/noise_vectors --no-audit "
               "--no-fund";
    return std::nullopt;
}

// noise_interop.js as a child process on a socket pair (stdin and stdout),
// one request line, one reply line.
class NodePeer {
public:
    explicit NodePeer(const std::vector<std::string>& args) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, sv[1], 0);
        posix_spawn_file_actions_adddup2(&actions, sv[1], 1);

        const std::string node = find_node()->string();
        const std::string script = (kDir / "noise_interop.js").string();
        std::vector<std::string> argv_strings{node, script};
        argv_strings.insert(argv_strings.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& s : argv_strings) argv.push_back(s.data());
        argv.push_back(nullptr);

        if (::posix_spawn(&pid_, node.c_str(), &actions, nullptr, argv.data(), environ) != 0)
            pid_ = -1;
        posix_spawn_file_actions_destroy(&actions);
        ::close(sv[1]);
        fd_ = sv[0];
    }

    ~NodePeer() {
        if (fd_ >= 0) ::close(fd_);  // EOF on its stdin: the script ends
        if (pid_ <= 0) return;
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }

    NodePeer(const NodePeer&) = delete;
    NodePeer& operator=(const NodePeer&) = delete;

    bool started() const { return pid_ > 0 && fd_ >= 0; }

    // Sends "command hex", returns the bytes of "ok hex" or the error text.
    Result<Bytes> call(const std::string& command, const Bytes& data = {}) {
        const std::string line = command + " " + to_hex(data) + "\n";
        std::size_t sent = 0;
        while (sent < line.size()) {
            const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return keyhole::fail("cannot write to node");
            sent += static_cast<std::size_t>(n);
        }
        std::string reply;
        if (!read_line(reply)) return keyhole::fail("no reply from node to '" + command + "'");
        if (reply.rfind("ok ", 0) == 0 || reply == "ok") {
            auto bytes = from_hex(reply.size() > 3 ? reply.substr(3) : "");
            if (!bytes) return keyhole::fail("bad hex from node: " + reply);
            return *bytes;
        }
        return keyhole::fail(reply);
    }

private:
    bool read_line(std::string& line) {
        while (true) {
            const auto newline = buffer_.find('\n');
            if (newline != std::string::npos) {
                line = buffer_.substr(0, newline);
                buffer_.erase(0, newline + 1);
                return true;
            }
            pollfd pfd{fd_, POLLIN, 0};
            if (::poll(&pfd, 1, 20000) <= 0) return false;
            char chunk[65536];
            const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n <= 0) return false;
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    pid_t pid_ = -1;
    int fd_ = -1;
    std::string buffer_;
};

#define SKIP_UNLESS_NODE_AVAILABLE()                                        \
    do {                                                                    \
        if (auto reason = unavailable()) GTEST_SKIP() << "interop: " << *reason; \
    } while (0)

// Transport messages both ways, then a rekey of both directions, then more.
void exchange_transport(noise::Session& session, NodePeer& node) {
    for (int phase = 0; phase < 2; ++phase) {
        for (std::size_t size : {0u, 1u, 100u, 1400u}) {
            SCOPED_TRACE("phase " + std::to_string(phase) + ", size " + std::to_string(size));
            const Bytes up = random_bytes(size);
            auto c = session.send.encrypt_with_ad({}, up);
            ASSERT_TRUE(c.ok()) << c.error();
            auto p = node.call("dec", *c);
            ASSERT_TRUE(p.ok()) << p.error();
            EXPECT_EQ(*p, up);

            const Bytes down = random_bytes(size + 3);
            auto c2 = node.call("enc", down);
            ASSERT_TRUE(c2.ok()) << c2.error();
            auto p2 = session.receive.decrypt_with_ad({}, *c2);
            ASSERT_TRUE(p2.ok()) << p2.error();
            EXPECT_EQ(*p2, down);
        }
        // The explicit-nonce interface with the counter node expects.
        const Bytes up = random_bytes(33);
        auto c = session.send.encrypt(session.send.nonce(), {}, up);
        ASSERT_TRUE(c.ok());
        session.send.set_nonce(session.send.nonce() + 1);
        auto p = node.call("dec", *c);
        ASSERT_TRUE(p.ok()) << p.error();
        EXPECT_EQ(*p, up);
        // A tampered message is refused by node too (explicit nonce, so our
        // counter stays in step with node's, which a failure does not move).
        auto bad = session.send.encrypt(session.send.nonce(), {}, up);
        ASSERT_TRUE(bad.ok());
        (*bad)[0] ^= 1;
        EXPECT_FALSE(node.call("dec", *bad).ok());

        if (phase == 0) {
            ASSERT_TRUE(session.send.rekey().ok());
            ASSERT_TRUE(node.call("rekey_rx").ok());
            ASSERT_TRUE(session.receive.rekey().ok());
            ASSERT_TRUE(node.call("rekey_tx").ok());
        }
    }
}

TEST(NoiseInterop, KeyholeInitiatorWithNoiseProtocolResponder) {
    SKIP_UNLESS_NODE_AVAILABLE();
    for (std::size_t size : {0u, 24u, 1000u}) {
        SCOPED_TRACE("payload size " + std::to_string(size));
        const auto ours = noise::KeyPair::generate();
        const auto theirs = noise::KeyPair::generate();
        const Bytes prologue = random_bytes(size % 50);
        NodePeer node({"responder", to_hex(theirs.secret.bytes()), to_hex(prologue)});
        ASSERT_TRUE(node.started());

        noise::Initiator initiator(ours, theirs.public_key, prologue);
        const Bytes payload1 = random_bytes(size);
        auto message1 = initiator.write_message1(payload1);
        ASSERT_TRUE(message1.ok());
        auto read1 = node.call("read", *message1);
        ASSERT_TRUE(read1.ok()) << read1.error();
        EXPECT_EQ(*read1, payload1);
        auto learned = node.call("rs");
        ASSERT_TRUE(learned.ok()) << learned.error();
        EXPECT_EQ(to_hex(*learned), to_hex(ours.public_key));

        const Bytes payload2 = random_bytes(size / 2);
        auto message2 = node.call("write", payload2);
        ASSERT_TRUE(message2.ok()) << message2.error();
        auto read2 = initiator.read_message2(*message2);
        ASSERT_TRUE(read2.ok()) << read2.error();
        EXPECT_EQ(*read2, payload2);

        auto session = initiator.split();
        ASSERT_TRUE(session.ok());
        auto hash = node.call("hash");
        ASSERT_TRUE(hash.ok()) << hash.error();
        EXPECT_EQ(to_hex(*hash), to_hex(session->handshake_hash));
        exchange_transport(*session, node);
    }
}

TEST(NoiseInterop, NoiseProtocolInitiatorWithKeyholeResponder) {
    SKIP_UNLESS_NODE_AVAILABLE();
    // The responder's key derived from an Ed25519 identity, as the daemon does.
    const auto identity = keyhole::identity::KeyPair::generate();
    const auto ours = noise::KeyPair::from_identity(identity);
    auto our_public = noise::static_key_of(identity.id());
    ASSERT_TRUE(our_public.ok());
    const auto theirs = noise::KeyPair::generate();
    const Bytes prologue = random_bytes(12);

    NodePeer node({"initiator", to_hex(theirs.secret.bytes()), to_hex(*our_public),
                   to_hex(prologue)});
    ASSERT_TRUE(node.started());

    const Bytes payload1 = random_bytes(77);
    auto message1 = node.call("write", payload1);
    ASSERT_TRUE(message1.ok()) << message1.error();
    noise::Responder responder(ours, prologue);
    auto read1 = responder.read_message1(*message1);
    ASSERT_TRUE(read1.ok()) << read1.error();
    EXPECT_EQ(*read1, payload1);
    ASSERT_TRUE(responder.remote_static().has_value());
    EXPECT_EQ(*responder.remote_static(), theirs.public_key);

    const Bytes payload2 = random_bytes(5);
    auto message2 = responder.write_message2(payload2);
    ASSERT_TRUE(message2.ok());
    auto read2 = node.call("read", *message2);
    ASSERT_TRUE(read2.ok()) << read2.error();
    EXPECT_EQ(*read2, payload2);

    auto session = responder.split();
    ASSERT_TRUE(session.ok());
    auto hash = node.call("hash");
    ASSERT_TRUE(hash.ok()) << hash.error();
    EXPECT_EQ(to_hex(*hash), to_hex(session->handshake_hash));
    exchange_transport(*session, node);
}

TEST(NoiseInterop, NoiseProtocolRejectsTamperedMessages) {
    SKIP_UNLESS_NODE_AVAILABLE();
    const auto ours = noise::KeyPair::generate();
    const auto theirs = noise::KeyPair::generate();
    noise::Initiator initiator(ours, theirs.public_key, {});
    auto message1 = initiator.write_message1(random_bytes(8));
    ASSERT_TRUE(message1.ok());
    for (std::size_t i : {std::size_t{0}, std::size_t{40}, message1->size() - 1}) {
        NodePeer node({"responder", to_hex(theirs.secret.bytes()), ""});
        ASSERT_TRUE(node.started());
        Bytes tampered = *message1;
        tampered[i] ^= 0x01;
        EXPECT_FALSE(node.call("read", tampered).ok()) << "byte " << i;
    }
}

}  // namespace
