// Relays over TLS/TCP on loopback: a client allocates and exchanges frames
// over TLS with a UDP peer; a client that expects another relay key refuses
// the connection.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <optional>

#include <asio/io_context.hpp>
#include <asio/write.hpp>

#include "keyhole/identity/key_pair.h"
#include "keyhole/transport/relay_wire.h"
#include "keyhole/transport/tls_stream.h"
#include "keyhole/transport/udp_port.h"
#include "relay_server.h"
#include "relay_tls_listener.h"
#include "support/loopback_dht.h"

namespace {

using namespace std::chrono_literals;
using namespace keyhole::transport;
using keyhole::identity::Endpoint;
using keyhole::identity::KeyPair;
using keyhole::node::RelayLimits;
using keyhole::node::RelayPath;
using keyhole::node::RelayServer;
using keyhole::node::RelayTlsListener;
using keyhole::testing::run_until;

Endpoint loopback() { return Endpoint::ipv4({127, 0, 0, 1}, 0); }

// A relay with a UDP port and a TLS listener, both on loopback.
struct TlsRelay {
    explicit TlsRelay(asio::io_context& io) : key(KeyPair::generate()), udp(io) {
        EXPECT_TRUE(udp.open(loopback()).ok());
        server = std::make_unique<RelayServer>(key, RelayLimits{},
                                               [this](const RelayPath& to, std::span<const std::uint8_t> packet) {
                                                   if (to.is_stream())
                                                       tls->send(to.stream, packet);
                                                   else
                                                       udp.send_to(to.endpoint, packet);
                                               });
        auto identity = TlsServerIdentity::create(key);
        EXPECT_TRUE(identity.ok()) << (identity ? "" : identity.error());
        tls = std::make_unique<RelayTlsListener>(io, identity.value(), *server, 100);
        auto listening = tls->listen(loopback());
        EXPECT_TRUE(listening.ok()) << (listening ? "" : listening.error());
        udp.start_receiving([this](std::span<const std::uint8_t> packet, const Endpoint& from) {
            if (is_relay_server_packet(packet)) server->on_packet(packet, RelayPath{from, 0});
        });
    }
    ~TlsRelay() {
        tls->stop();
        udp.close();
    }
    KeyPair key;
    UdpPort udp;
    std::unique_ptr<RelayServer> server;
    std::unique_ptr<RelayTlsListener> tls;
};

struct TlsClient {
    TlsClient(asio::io_context& io, const Endpoint& relay, const keyhole::identity::PeerId& expected) {
        TlsStreamCallbacks callbacks;
        callbacks.on_ready = [this] { ready = true; };
        callbacks.on_packet = [this](std::span<const std::uint8_t> packet) { received.emplace_back(packet.begin(), packet.end()); };
        callbacks.on_closed = [this](const std::string& reason) { closed = reason; };
        stream = TlsStream::connect(io, relay, expected, std::move(callbacks));
    }
    bool ready = false;
    std::optional<std::string> closed;
    std::deque<std::vector<std::uint8_t>> received;
    std::shared_ptr<TlsStream> stream;
};

template <typename T>
std::optional<T> take(asio::io_context& io, std::deque<std::vector<std::uint8_t>>& queue, std::vector<std::uint8_t>& keep) {
    std::optional<T> found;
    run_until(
        io,
        [&] {
            while (!found && !queue.empty()) {
                keep = std::move(queue.front());
                queue.pop_front();
                auto parsed = parse_relay_packet(keep);
                if (parsed && std::holds_alternative<T>(parsed.value())) found = std::get<T>(parsed.value());
            }
            return found.has_value();
        },
        3s);
    return found;
}

TEST(RelayTls, AllocatesAndForwardsOverTls) {
    asio::io_context io;
    TlsRelay relay(io);
    const auto client_key = KeyPair::generate();
    TlsClient client(io, relay.tls->local_endpoint(), relay.key.id());
    ASSERT_TRUE(run_until(io, [&] { return client.ready || client.closed; }, 5s));
    ASSERT_TRUE(client.ready) << client.closed.value_or("");

    std::vector<std::uint8_t> keep;
    ASSERT_TRUE(client.stream->send(encode_allocate_request(client_key.id(), {9, 9, 9, 9, 9, 9, 9, 9})));
    auto challenge = take<AllocateChallenge>(io, client.received, keep);
    ASSERT_TRUE(challenge);
    ASSERT_TRUE(client.stream->send(encode_allocate_confirm(client_key, relay.key.id(), challenge->cookie)));
    auto result = take<AllocateResult>(io, client.received, keep);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->code, RelayCode::ok);
    EXPECT_TRUE(result->observed.empty());  // not reported over TLS

    // A UDP peer reaches the TLS client through the relay, and back.
    UdpPort peer(io);
    ASSERT_TRUE(peer.open(loopback()).ok());
    std::deque<std::vector<std::uint8_t>> peer_received;
    peer.start_receiving([&](std::span<const std::uint8_t> packet, const Endpoint&) {
        peer_received.emplace_back(packet.begin(), packet.end());
    });
    const std::vector<std::uint8_t> frame(1024, 0x5a);
    peer.send_to(relay.udp.local_endpoint(), encode_relay_send(client_key.id(), frame));
    auto deliver = take<RelayDeliver>(io, client.received, keep);
    ASSERT_TRUE(deliver);
    EXPECT_EQ(std::vector<std::uint8_t>(deliver->inner.begin(), deliver->inner.end()), frame);

    const std::vector<std::uint8_t> answer(300, 0x33);
    ASSERT_TRUE(client.stream->send(encode_relay_reply(deliver->channel, answer)));
    std::vector<std::uint8_t> keep_peer;
    auto back = take<RelayDeliver>(io, peer_received, keep_peer);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->channel, kReplyChannel);
    EXPECT_EQ(std::vector<std::uint8_t>(back->inner.begin(), back->inner.end()), answer);

    // Closing the stream ends the allocation.
    client.stream->close();
    ASSERT_TRUE(run_until(io, [&] { return relay.server->allocation_count() == 0; }, 3s));
    peer.close();
}

TEST(RelayTls, ClientExpectingAnotherRelayKeyRejectsTheConnection) {
    asio::io_context io;
    TlsRelay relay(io);
    const auto someone_else = KeyPair::generate();
    TlsClient client(io, relay.tls->local_endpoint(), someone_else.id());
    ASSERT_TRUE(run_until(io, [&] { return client.ready || client.closed; }, 5s));
    EXPECT_FALSE(client.ready);
    ASSERT_TRUE(client.closed);
    EXPECT_NE(client.closed->find("not over the expected relay key"), std::string::npos) << *client.closed;
    EXPECT_FALSE(client.stream->send(encode_allocate_request(someone_else.id(), {})));
}

TEST(RelayTls, GarbageOnTheTcpPortDoesNotDisturbTheRelay) {
    asio::io_context io;
    TlsRelay relay(io);
    asio::ip::tcp::socket raw(io);
    const auto port = relay.tls->local_endpoint().port();
    raw.connect(asio::ip::tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port));
    const std::string junk(2000, 'x');
    asio::write(raw, asio::buffer(junk));
    run_until(io, [&] { return relay.tls->connections() == 0; }, 3s);
    EXPECT_EQ(relay.tls->connections(), 0u);
    // A proper client still gets in.
    TlsClient client(io, relay.tls->local_endpoint(), relay.key.id());
    ASSERT_TRUE(run_until(io, [&] { return client.ready || client.closed; }, 5s));
    EXPECT_TRUE(client.ready) << client.closed.value_or("");
}

}  // namespace

namespace {

TEST(RelayTls, IdleStreamsAreClosedAndEndTheirAllocations) {
    asio::io_context io;
    TlsRelay relay(io);
    const auto client_key = KeyPair::generate();
    TlsClient client(io, relay.tls->local_endpoint(), relay.key.id());
    ASSERT_TRUE(run_until(io, [&] { return client.ready || client.closed; }, 5s));
    ASSERT_TRUE(client.ready);
    std::vector<std::uint8_t> keep;
    ASSERT_TRUE(client.stream->send(encode_allocate_request(client_key.id(), {})));
    auto challenge = take<AllocateChallenge>(io, client.received, keep);
    ASSERT_TRUE(challenge);
    ASSERT_TRUE(client.stream->send(encode_allocate_confirm(client_key, relay.key.id(), challenge->cookie)));
    ASSERT_TRUE(take<AllocateResult>(io, client.received, keep));
    EXPECT_EQ(relay.server->allocation_count(), 1u);

    relay.tls->close_idle(std::chrono::hours(1));  // not idle that long: kept
    EXPECT_EQ(relay.tls->connections(), 1u);
    relay.tls->close_idle(std::chrono::seconds(0));
    EXPECT_EQ(relay.tls->connections(), 0u);
    EXPECT_EQ(relay.server->allocation_count(), 0u);
    EXPECT_TRUE(run_until(io, [&] { return client.closed.has_value(); }, 3s));
}

TEST(RelayTls, OneAddressCannotHoldMoreThanItsShareOfConnections) {
    asio::io_context io;
    TlsRelay relay(io);
    const auto port = relay.tls->local_endpoint().port();
    std::vector<std::unique_ptr<asio::ip::tcp::socket>> sockets;
    for (std::size_t i = 0; i < keyhole::node::kMaxTlsConnectionsPerAddress + 4; ++i) {
        sockets.push_back(std::make_unique<asio::ip::tcp::socket>(io));
        sockets.back()->connect(asio::ip::tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port));
    }
    run_until(io, [] { return false; }, 300ms);
    EXPECT_EQ(relay.tls->connections(), keyhole::node::kMaxTlsConnectionsPerAddress);
}

}  // namespace
