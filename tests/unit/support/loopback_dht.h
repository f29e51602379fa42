// Test support: a real OpenDHT node on a real loopback UDP port, wired the way
// keyholed wires it, and a bounded way to run the io_context until something
// happens.
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <gtest/gtest.h>

#include "keyhole/dht/dht_node.h"
#include "keyhole/transport/packet.h"
#include "keyhole/transport/udp_port.h"

namespace keyhole::testing {

struct LoopbackDhtNode {
    LoopbackDhtNode(asio::io_context& io, std::uint32_t network, const std::vector<std::string>& bootstrap)
        : udp(io), dht(io, [this](const identity::Endpoint& to, std::span<const std::uint8_t> data) {
              return udp.send_to(to, data);
          }) {
        auto opened = udp.open(identity::Endpoint::ipv4({127, 0, 0, 1}, 0));
        EXPECT_TRUE(opened.ok()) << (opened ? "" : opened.error());
        udp.start_receiving([this](std::span<const std::uint8_t> data, const identity::Endpoint& from) {
            if (transport::is_keyhole_packet(data)) {
                if (on_keyhole_packet) on_keyhole_packet(data, from);
            } else {
                dht.deliver(data, from);
            }
        });
        auto started = dht.start({udp.local_endpoint(), bootstrap, network, std::nullopt});
        EXPECT_TRUE(started.ok()) << (started ? "" : started.error());
    }
    ~LoopbackDhtNode() {
        dht.stop();
        udp.close();
    }
    std::string address() const { return udp.local_endpoint().to_string(); }

    transport::UdpPort udp;
    dht::DhtNode dht;
    std::function<void(std::span<const std::uint8_t>, const identity::Endpoint&)> on_keyhole_packet;
};

template <typename Predicate>
bool run_until(asio::io_context& io, Predicate done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_for(std::chrono::milliseconds(20));
    }
    return done();
}

}  // namespace keyhole::testing
