// The relay server on a real loopback UDP socket, with test clients built
// from the relay wire functions: allocation (challenge, confirm, refusals),
// forwarding both ways, limits, expiry and refresh.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <optional>

#include <asio/io_context.hpp>

#include "keyhole/identity/key_pair.h"
#include "keyhole/transport/relay_client.h"
#include "keyhole/transport/relay_wire.h"
#include "keyhole/transport/udp_port.h"
#include "relay_server.h"
#include "support/loopback_dht.h"

namespace {

using namespace std::chrono_literals;
using namespace keyhole::transport;
using keyhole::identity::Endpoint;
using keyhole::identity::KeyPair;
using keyhole::identity::PeerId;
using keyhole::node::RelayLimits;
using keyhole::node::RelayPath;
using keyhole::node::RelayServer;
using keyhole::testing::run_until;

Endpoint loopback() { return Endpoint::ipv4({127, 0, 0, 1}, 0); }

// A relay on its own loopback UDP port; its clock (steady time + offset) can be moved forward.
struct TestRelay {
    TestRelay(asio::io_context& io, RelayLimits limits)
        : key(KeyPair::generate()), udp(io) {
        EXPECT_TRUE(udp.open(loopback()).ok());
        server = std::make_unique<RelayServer>(
            key, limits, [this](const RelayPath& to, std::span<const std::uint8_t> packet) { udp.send_to(to.endpoint, packet); },
            [this] { return std::chrono::steady_clock::now() + offset; });
        udp.start_receiving([this](std::span<const std::uint8_t> packet, const Endpoint& from) {
            if (is_relay_server_packet(packet)) server->on_packet(packet, RelayPath{from, 0});
        });
    }
    ~TestRelay() { udp.close(); }
    Endpoint endpoint() const { return udp.local_endpoint(); }

    KeyPair key;
    UdpPort udp;
    std::chrono::steady_clock::duration offset{};
    std::unique_ptr<RelayServer> server;
};

// A client socket that keeps what it receives.
struct TestClient {
    explicit TestClient(asio::io_context& io_context, KeyPair key = KeyPair::generate()) : io(io_context), key(std::move(key)), udp(io_context) {
        EXPECT_TRUE(udp.open(loopback()).ok());
        udp.start_receiving([this](std::span<const std::uint8_t> packet, const Endpoint&) {
            received.emplace_back(packet.begin(), packet.end());
        });
    }
    ~TestClient() { udp.close(); }

    void send(const Endpoint& to, const std::vector<std::uint8_t>& packet) { udp.send_to(to, packet); }

    // The first received packet of type T (dropping others before it), within `limit`.
    template <typename T>
    std::optional<T> next(std::chrono::milliseconds limit = 2s) {
        std::optional<T> found;
        run_until(
            io,
            [&] {
                while (!found && !received.empty()) {
                    current = std::move(received.front());
                    received.pop_front();
                    auto parsed = parse_relay_packet(current);
                    if (parsed && std::holds_alternative<T>(parsed.value())) {
                        found = std::get<T>(parsed.value());
                    }
                }
                return found.has_value();
            },
            limit);
        return found;
    }

    // challenge + confirm; returns the result.
    std::optional<AllocateResult> allocate(const TestRelay& relay) {
        const RelayNonce nonce{1, 2, 3, 4, 5, 6, 7, 8};
        send(relay.endpoint(), encode_allocate_request(key.id(), nonce));
        auto challenge = next<AllocateChallenge>();
        if (!challenge) return std::nullopt;
        EXPECT_EQ(challenge->nonce, nonce);
        send(relay.endpoint(), encode_allocate_confirm(key, relay.key.id(), challenge->cookie));
        return next<AllocateResult>();
    }

    asio::io_context& io;
    KeyPair key;
    UdpPort udp;
    std::deque<std::vector<std::uint8_t>> received;
    std::vector<std::uint8_t> current;  // backing store of the last parsed packet's spans
};

std::vector<std::uint8_t> bytes_of(std::span<const std::uint8_t> span) { return {span.begin(), span.end()}; }

TEST(RelayServer, GrantsAnAllocationAfterChallengeAndConfirm) {
    asio::io_context io;
    TestRelay relay(io, {});
    TestClient client(io);
    auto result = client.allocate(relay);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->code, RelayCode::ok);
    EXPECT_EQ(result->lifetime_s, 600u);
    EXPECT_EQ(result->observed, client.udp.local_endpoint());
    EXPECT_EQ(relay.server->allocation_count(), 1u);
    EXPECT_EQ(relay.server->stats().allocations_granted, 1u);
}

TEST(RelayServer, RequestAloneCreatesNoState) {
    asio::io_context io;
    TestRelay relay(io, {});
    TestClient client(io);
    client.send(relay.endpoint(), encode_allocate_request(client.key.id(), {}));
    ASSERT_TRUE(client.next<AllocateChallenge>());
    EXPECT_EQ(relay.server->allocation_count(), 0u);
}

TEST(RelayServer, BadCookieIsRefusedWithReason) {
    asio::io_context io;
    TestRelay relay(io, {});
    TestClient client(io);
    RelayCookie forged{};
    forged.fill(0x42);
    client.send(relay.endpoint(), encode_allocate_confirm(client.key, relay.key.id(), forged));
    auto result = client.next<AllocateResult>();
    ASSERT_TRUE(result);
    EXPECT_EQ(result->code, RelayCode::bad_cookie);
    EXPECT_EQ(relay.server->allocation_count(), 0u);
    EXPECT_EQ(relay.server->stats().refusals[static_cast<int>(RelayCode::bad_cookie)], 1u);
}

TEST(RelayServer, BadSignatureIsRefusedWithReason) {
    asio::io_context io;
    TestRelay relay(io, {});
    TestClient client(io);
    client.send(relay.endpoint(), encode_allocate_request(client.key.id(), {}));
    auto challenge = client.next<AllocateChallenge>();
    ASSERT_TRUE(challenge);
    // Signed for another relay: the signature does not hold for this one.
    const auto other_relay = KeyPair::generate();
    client.send(relay.endpoint(), encode_allocate_confirm(client.key, other_relay.id(), challenge->cookie));
    auto result = client.next<AllocateResult>();
    ASSERT_TRUE(result);
    EXPECT_EQ(result->code, RelayCode::bad_signature);
    EXPECT_EQ(relay.server->allocation_count(), 0u);
}

TEST(RelayServer, ConfirmReplayedFromAnotherSourceIsRefused) {
    asio::io_context io;
    TestRelay relay(io, {});
    TestClient client(io);
    TestClient attacker(io);
    client.send(relay.endpoint(), encode_allocate_request(client.key.id(), {}));
    auto challenge = client.next<AllocateChallenge>();
    ASSERT_TRUE(challenge);
    const auto confirm = encode_allocate_confirm(client.key, relay.key.id(), challenge->cookie);
    attacker.send(relay.endpoint(), confirm);  // the client's own bytes, from elsewhere
    auto result = attacker.next<AllocateResult>();
    ASSERT_TRUE(result);
    EXPECT_EQ(result->code, RelayCode::bad_cookie);
    EXPECT_EQ(relay.server->allocation_count(), 0u);
    // The real client still gets its allocation with the same confirm.
    client.send(relay.endpoint(), confirm);
    auto granted = client.next<AllocateResult>();
    ASSERT_TRUE(granted);
    EXPECT_EQ(granted->code, RelayCode::ok);
}

TEST(RelayServer, ForwardsSendToTheOwnerAndRepliesBack) {
    asio::io_context io;
    TestRelay relay(io, {});
    TestClient owner(io);
    TestClient peer(io);
    ASSERT_EQ(owner.allocate(relay)->code, RelayCode::ok);

    const std::vector<std::uint8_t> hello{0x6b, 0x68, 0x01, 0x20, 'h', 'e', 'l', 'l', 'o'};
    peer.send(relay.endpoint(), encode_relay_send(owner.key.id(), hello));
    auto deliver = owner.next<RelayDeliver>();
    ASSERT_TRUE(deliver);
    EXPECT_NE(deliver->channel, kReplyChannel);
    EXPECT_EQ(bytes_of(deliver->inner), hello);
    const auto channel = deliver->channel;

    const std::vector<std::uint8_t> answer{'w', 'o', 'r', 'l', 'd'};
    owner.send(relay.endpoint(), encode_relay_reply(channel, answer));
    auto back = peer.next<RelayDeliver>();
    ASSERT_TRUE(back);
    EXPECT_EQ(back->channel, kReplyChannel);
    EXPECT_EQ(bytes_of(back->inner), answer);

    // The same remote keeps its channel.
    peer.send(relay.endpoint(), encode_relay_send(owner.key.id(), hello));
    auto again = owner.next<RelayDeliver>();
    ASSERT_TRUE(again);
    EXPECT_EQ(again->channel, channel);
    EXPECT_EQ(relay.server->stats().frames_forwarded, 3u);
    EXPECT_EQ(relay.server->stats().bytes_forwarded, 2 * hello.size() + answer.size());
}

TEST(RelayServer, UnknownTargetAndUnknownChannelGetErrors) {
    asio::io_context io;
    TestRelay relay(io, {});
    TestClient owner(io);
    TestClient peer(io);
    const auto nobody = KeyPair::generate().id();
    peer.send(relay.endpoint(), encode_relay_send(nobody, std::vector<std::uint8_t>(40, 1)));
    auto error = peer.next<RelayError>();
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, RelayCode::unknown_target);
    EXPECT_TRUE(std::equal(error->context.begin(), error->context.end(), nobody.key().begin()));

    // A reply from a source without an allocation. (Its error may be
    // withheld: errors to one source are spaced 100 ms apart.)
    peer.send(relay.endpoint(), encode_relay_reply(5, std::vector<std::uint8_t>(40, 1)));
    ASSERT_EQ(owner.allocate(relay)->code, RelayCode::ok);
    owner.send(relay.endpoint(), encode_relay_reply(99, std::vector<std::uint8_t>(40, 1)));
    auto unknown = owner.next<RelayError>();
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->code, RelayCode::unknown_channel);
    EXPECT_GE(relay.server->stats().refusals[static_cast<int>(RelayCode::not_allocated)], 1u);
}

TEST(RelayServer, ErrorsAreNeverLargerThanTheProvokingPacket) {
    asio::io_context io;
    TestRelay relay(io, {});
    TestClient peer(io);
    // A 9-byte reply (1 inner byte) from an unallocated source: the 13-byte
    // error would amplify, so nothing is sent back.
    peer.send(relay.endpoint(), encode_relay_reply(5, std::vector<std::uint8_t>{1}));
    EXPECT_FALSE(peer.next<RelayError>(300ms));
    EXPECT_EQ(relay.server->stats().refusals[static_cast<int>(RelayCode::not_allocated)], 1u);
    EXPECT_EQ(relay.server->stats().errors_sent, 0u);
}

TEST(RelayServer, PerKeyAllocationLimitIsRefusedWithReason) {
    asio::io_context io;
    RelayLimits limits;
    limits.max_allocations_per_key = 2;
    TestRelay relay(io, limits);
    const auto key = KeyPair::generate();
    TestClient first(io, key), second(io, key), third(io, key);
    EXPECT_EQ(first.allocate(relay)->code, RelayCode::ok);
    EXPECT_EQ(second.allocate(relay)->code, RelayCode::ok);
    auto refused = third.allocate(relay);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, RelayCode::per_key_limit);
    EXPECT_EQ(relay.server->allocation_count(), 2u);
    // Another key is still served.
    TestClient other(io);
    EXPECT_EQ(other.allocate(relay)->code, RelayCode::ok);
}

TEST(RelayServer, TotalAllocationLimitIsRefusedWithReason) {
    asio::io_context io;
    RelayLimits limits;
    limits.max_allocations = 2;
    TestRelay relay(io, limits);
    TestClient a(io), b(io), c(io);
    EXPECT_EQ(a.allocate(relay)->code, RelayCode::ok);
    EXPECT_EQ(b.allocate(relay)->code, RelayCode::ok);
    auto refused = c.allocate(relay);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, RelayCode::capacity);
    EXPECT_EQ(relay.server->stats().refusals[static_cast<int>(RelayCode::capacity)], 1u);
    // A refresh by a holder still works at capacity.
    EXPECT_EQ(a.allocate(relay)->code, RelayCode::ok);
}

TEST(RelayServer, AllocationExpiresUnlessRefreshed) {
    asio::io_context io;
    RelayLimits limits;
    limits.allocation_lifetime_s = 600;
    TestRelay relay(io, limits);
    TestClient owner(io);
    TestClient peer(io);
    ASSERT_EQ(owner.allocate(relay)->code, RelayCode::ok);
    const std::vector<std::uint8_t> inner(32, 7);

    relay.offset = 400s;
    auto refreshed = owner.allocate(relay);  // a new challenge and confirm refresh it
    ASSERT_TRUE(refreshed);
    EXPECT_EQ(refreshed->code, RelayCode::ok);
    EXPECT_EQ(relay.server->stats().allocations_refreshed, 1u);
    EXPECT_EQ(relay.server->allocation_count(), 1u);

    relay.offset = 900s;  // 500 s after the refresh: still alive
    peer.send(relay.endpoint(), encode_relay_send(owner.key.id(), inner));
    ASSERT_TRUE(owner.next<RelayDeliver>());

    relay.offset = 1001s;  // 601 s after the refresh: gone
    relay.server->tick();
    EXPECT_EQ(relay.server->allocation_count(), 0u);
    EXPECT_EQ(relay.server->stats().allocations_expired, 1u);
    peer.send(relay.endpoint(), encode_relay_send(owner.key.id(), inner));
    auto error = peer.next<RelayError>();
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, RelayCode::unknown_target);
}

TEST(RelayServer, FloodingClientIsLimitedWhileAnotherKeepsItsThroughput) {
    asio::io_context io;
    RelayLimits limits;
    limits.allocation_packets_per_s = 200;
    limits.allocation_bytes_per_s = 1'000'000;
    limits.source_packets_per_s = 100'000;
    limits.source_bytes_per_s = 100'000'000;
    TestRelay relay(io, limits);
    TestClient flooded_owner(io), flooder(io);
    TestClient owner(io), peer(io);
    ASSERT_EQ(flooded_owner.allocate(relay)->code, RelayCode::ok);
    ASSERT_EQ(owner.allocate(relay)->code, RelayCode::ok);

    const std::vector<std::uint8_t> frame(1024, 0xab);
    const auto flood = encode_relay_send(flooded_owner.key.id(), frame);
    const auto polite = encode_relay_send(owner.key.id(), frame);
    const auto start = std::chrono::steady_clock::now();
    constexpr int kRounds = 100;
    for (int round = 0; round < kRounds; ++round) {
        for (int i = 0; i < 20; ++i) flooder.send(relay.endpoint(), flood);  // 2,000 packets/s
        peer.send(relay.endpoint(), polite);                                  // 100 packets/s
        io.restart();
        io.run_for(10ms);
    }
    run_until(io, [&] { return owner.received.size() >= kRounds; }, 2s);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    auto count_delivers = [](const std::deque<std::vector<std::uint8_t>>& packets) {
        std::size_t n = 0;
        for (const auto& p : packets) n += p.size() > 3 && p[3] == 0x36;
        return n;
    };
    // The polite peer's frames all arrive.
    EXPECT_EQ(count_delivers(owner.received), static_cast<std::size_t>(kRounds));
    // The flooded allocation gets its burst plus its rate, not the flood.
    const auto flooded = count_delivers(flooded_owner.received);
    EXPECT_LE(flooded, static_cast<std::size_t>(200 + 200 * seconds + 20));
    EXPECT_LT(flooded, static_cast<std::size_t>(kRounds * 20));
    // The flooder was told.
    bool told = false;
    for (const auto& p : flooder.received) {
        auto parsed = parse_relay_packet(p);
        if (parsed && std::holds_alternative<RelayError>(parsed.value()))
            told = told || std::get<RelayError>(parsed.value()).code == RelayCode::rate_limited;
    }
    EXPECT_TRUE(told);
    EXPECT_GT(relay.server->stats().refusals[static_cast<int>(RelayCode::rate_limited)], 0u);
}

TEST(RelayServer, PerSourceLimitRefusesAllocationFloods) {
    asio::io_context io;
    RelayLimits limits;
    limits.source_packets_per_s = 10;
    TestRelay relay(io, limits);
    TestClient client(io);
    for (int i = 0; i < 50; ++i) client.send(relay.endpoint(), encode_allocate_request(client.key.id(), {}));
    run_until(io, [&] { return client.received.size() >= 11; }, 1s);
    std::size_t challenges = 0, errors = 0;
    for (const auto& p : client.received) {
        challenges += p[3] == 0x31;
        errors += p[3] == 0x3f;
    }
    EXPECT_LE(challenges, 11u);
    EXPECT_GE(errors, 1u);
    EXPECT_GE(relay.server->stats().refusals[static_cast<int>(RelayCode::rate_limited)], 39u);
}

TEST(RelayServer, TotalBandwidthLimitRefusesWithReason) {
    asio::io_context io;
    RelayLimits limits;
    limits.total_bytes_per_s = 1;  // the bucket holds one largest datagram, then nothing
    TestRelay relay(io, limits);
    TestClient owner(io), peer(io);
    ASSERT_EQ(owner.allocate(relay)->code, RelayCode::ok);
    const std::vector<std::uint8_t> frame(30000, 1);
    for (int i = 0; i < 4; ++i) peer.send(relay.endpoint(), encode_relay_send(owner.key.id(), frame));
    auto error = peer.next<RelayError>();
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, RelayCode::bandwidth);
    EXPECT_GE(relay.server->stats().refusals[static_cast<int>(RelayCode::bandwidth)], 1u);
}

TEST(RelayServer, HostileBytesAreCountedAndDropped) {
    asio::io_context io;
    TestRelay relay(io, {});
    const std::vector<std::uint8_t> garbage{0x6b, 0x68, 0x01, 0x30, 1, 2, 3};
    relay.server->on_packet(garbage, RelayPath{Endpoint::ipv4({127, 0, 0, 1}, 9), 0});
    const auto challenge = encode_allocate_challenge({}, {});
    relay.server->on_packet(challenge, RelayPath{Endpoint::ipv4({127, 0, 0, 1}, 9), 0});
    EXPECT_EQ(relay.server->stats().packets_malformed, 2u);
}

}  // namespace

namespace {

// The client state machine (transport/relay_client.h) against the real relay.
TEST(RelayServer, ClientStateMachineAllocatesAndIsRefusedWithReason) {
    using keyhole::transport::RelayAllocationClient;
    asio::io_context io;
    RelayLimits limits;
    limits.max_allocations_per_key = 1;
    TestRelay relay(io, limits);
    const auto key = KeyPair::generate();
    auto run = [&](TestClient& socket, RelayAllocationClient& client) {
        const auto now = std::chrono::steady_clock::now();
        socket.send(relay.endpoint(), *client.poll(now));
        auto challenge = socket.next<AllocateChallenge>();
        if (!challenge) return;
        socket.send(relay.endpoint(), *client.on_challenge(*challenge, now));
        auto result = socket.next<AllocateResult>();
        if (result) client.on_result(*result, now);
    };
    TestClient first_socket(io, key), second_socket(io, key);
    RelayAllocationClient first(key, relay.key.id()), second(key, relay.key.id());
    run(first_socket, first);
    EXPECT_EQ(first.state(std::chrono::steady_clock::now()), RelayAllocationClient::State::granted);
    EXPECT_EQ(first.observed(), first_socket.udp.local_endpoint());
    run(second_socket, second);
    EXPECT_EQ(second.state(std::chrono::steady_clock::now()), RelayAllocationClient::State::refused);
    EXPECT_EQ(second.refusal(), RelayCode::per_key_limit);
}

}  // namespace
