// The birthday-probing socket pool on real loopback sockets.
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include <asio/io_context.hpp>

#include "keyhole/transport/probe_socket_pool.h"
#include "keyhole/transport/udp_port.h"

namespace {

using keyhole::identity::Endpoint;
using keyhole::transport::ProbeSocketPool;
using keyhole::transport::UdpPort;

Endpoint loopback(std::uint16_t port) { return Endpoint::ipv4({127, 0, 0, 1}, port); }

struct Received {
    std::size_t socket;
    std::vector<std::uint8_t> data;
    Endpoint from;
};

TEST(ProbeSocketPool, EverySocketHasItsOwnPortAndReceives) {
    asio::io_context io;
    std::vector<Received> received;
    auto pool = ProbeSocketPool::open(io, loopback(0), 16,
                                      [&](const std::shared_ptr<ProbeSocketPool>&, std::size_t socket,
                                          std::span<const std::uint8_t> datagram, const Endpoint& from) {
                                          received.push_back({socket, {datagram.begin(), datagram.end()}, from});
                                      });
    ASSERT_TRUE(pool) << pool.error();
    EXPECT_EQ(pool.value()->size(), 16u);
    EXPECT_EQ(pool.value()->open_count(), 16u);

    // A peer socket: each pool socket sends to it; the peer sees 16 source ports.
    UdpPort peer(io);
    ASSERT_TRUE(peer.open(loopback(0)));
    std::set<std::uint16_t> ports;
    std::vector<Endpoint> sources;
    peer.start_receiving([&](std::span<const std::uint8_t>, const Endpoint& from) {
        ports.insert(from.port());
        sources.push_back(from);
    });
    const std::vector<std::uint8_t> probe{1, 2, 3};
    for (std::size_t i = 0; i < 16; ++i) EXPECT_EQ(pool.value()->send_from(i, peer.local_endpoint(), probe), 0);
    for (int i = 0; i < 200 && ports.size() < 16; ++i) io.run_for(std::chrono::milliseconds(5));
    EXPECT_EQ(ports.size(), 16u);

    // Answers reach the right socket index.
    ASSERT_FALSE(sources.empty());
    peer.send_to(sources[3], probe);
    for (int i = 0; i < 200 && received.empty(); ++i) io.run_for(std::chrono::milliseconds(5));
    ASSERT_EQ(received.size(), 1u);
    EXPECT_EQ(received[0].data, probe);
    EXPECT_EQ(received[0].from, peer.local_endpoint());
    EXPECT_LT(received[0].socket, 16u);
    pool.value()->close();
}

TEST(ProbeSocketPool, KeepsOnlyTheChosenSocket) {
    asio::io_context io;
    std::vector<std::size_t> receivers;
    auto pool = ProbeSocketPool::open(io, loopback(0), 8,
                                      [&](const std::shared_ptr<ProbeSocketPool>&, std::size_t socket,
                                          std::span<const std::uint8_t>, const Endpoint&) { receivers.push_back(socket); });
    ASSERT_TRUE(pool) << pool.error();
    UdpPort peer(io);
    ASSERT_TRUE(peer.open(loopback(0)));
    std::vector<Endpoint> sources(8);
    std::size_t seen = 0;
    peer.start_receiving([&](std::span<const std::uint8_t> datagram, const Endpoint& from) {
        if (!datagram.empty() && datagram[0] < 8) sources[datagram[0]] = from;
        ++seen;
    });
    for (std::uint8_t i = 0; i < 8; ++i) pool.value()->send_from(i, peer.local_endpoint(), std::vector<std::uint8_t>{i});
    for (int i = 0; i < 200 && seen < 8; ++i) io.run_for(std::chrono::milliseconds(5));
    ASSERT_EQ(seen, 8u);

    pool.value()->close_all_except(5);
    EXPECT_EQ(pool.value()->open_count(), 1u);
    EXPECT_TRUE(pool.value()->is_open(5));
    EXPECT_NE(pool.value()->send_from(2, peer.local_endpoint(), std::vector<std::uint8_t>{9}), 0);  // closed
    for (std::size_t i = 0; i < 8; ++i) peer.send_to(sources[i], std::vector<std::uint8_t>{7});
    for (int i = 0; i < 40; ++i) io.run_for(std::chrono::milliseconds(5));
    EXPECT_EQ(receivers, std::vector<std::size_t>{5});
    pool.value()->close();
    io.run_for(std::chrono::milliseconds(10));  // cancelled waits finish; nothing dangles (ASan)
}

}  // namespace
