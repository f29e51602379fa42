#include "keyhole/node/daemon.h"

#include <algorithm>
#include <csignal>
#include <optional>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "control_commands.h"
#include "daemon_state.h"
#include "keyhole/node/control_server.h"
#include "keyhole/node/state_lock.h"
#include "keyhole/transport/packet.h"

namespace keyhole::node {

namespace {

Result<identity::Endpoint> bind_endpoint(const DaemonConfig& config) {
    // Port 1 only to get through the parser, which rightly refuses port 0 for
    // peers; for binding, 0 means "any free port".
    auto parsed = identity::Endpoint::parse(config.bind_address + ":1");
    if (!parsed || !parsed->is_v4())
        return fail("bind address '" + config.bind_address + "' is not an IPv4 address");
    std::array<std::uint8_t, 4> address{};
    std::copy_n(parsed->address_bytes(), address.size(), address.begin());
    return identity::Endpoint::ipv4(address, config.port);
}

}  // namespace

int run_daemon(const DaemonConfig& config) {
    auto lock = StateLock::acquire(config.state_dir);
    if (!lock) {
        spdlog::error("{}", lock.error());
        return 1;
    }

    std::optional<identity::KeyPair> key;
    if (!config.bootstrap_only) {
        auto loaded = identity::KeyPair::load_or_create(config.state_dir / "identity.key");
        if (!loaded) {
            spdlog::error("{}", loaded.error());
            return 1;
        }
        key = std::move(loaded).value();
    }

    asio::io_context io;
    transport::UdpPort udp(io);
    auto endpoint = bind_endpoint(config);
    if (!endpoint) {
        spdlog::error("{}", endpoint.error());
        return 1;
    }
    if (auto opened = udp.open(endpoint.value()); !opened) {
        spdlog::error("{}", opened.error());
        return 1;
    }

    transport::Transport transport;
    dht::DhtNode dht(io, [&udp](const identity::Endpoint& to, std::span<const std::uint8_t> datagram) {
        return udp.send_to(to, datagram);
    });
    // One port, two protocols: keyhole packets carry a magic prefix, the rest is OpenDHT's.
    udp.start_receiving([&](std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
        if (transport::is_keyhole_packet(datagram))
            transport.on_packet(datagram, from);
        else
            dht.deliver(datagram, from);
    });
    if (auto started = dht.start({udp.local_endpoint(), config.bootstrap, config.dht_network}); !started) {
        spdlog::error("{}", started.error());
        return 1;
    }

    std::optional<RecordPublisher> publisher;
    if (key)
        publisher.emplace(io, dht, *key, config.state_dir / "record.seq",
                          std::chrono::seconds(config.record_lifetime_s));

    DaemonState state{config, key, udp, dht, transport, publisher ? &*publisher : nullptr,
                      std::chrono::steady_clock::now()};
    ControlServer control(io, [&state](const ControlRequest& request, ControlReply reply) {
        handle_control_request(state, request, std::move(reply));
    });
    if (auto started = control.start({config.control_socket, config.control_group}); !started) {
        spdlog::error("{}", started.error());
        dht.stop();
        return 1;
    }
    // Published only once nothing else can make start-up fail.
    if (publisher) {
        if (auto started = publisher->start(); !started) {
            spdlog::error("{}", started.error());
            control.stop();
            dht.stop();
            return 1;
        }
    }

    spdlog::info("keyholed running: {} on UDP {}, control socket {}",
                 key ? "ID " + key->id().to_text() : std::string("bootstrap-only node"),
                 udp.local_endpoint().to_string(), config.control_socket.string());

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& error, int signal_number) {
        if (error) return;
        spdlog::info("received signal {}, shutting down", signal_number);
        control.stop();
        if (publisher) publisher->stop();
        dht.stop();
        udp.close();
        io.stop();
    });
    io.run();
    spdlog::info("keyholed stopped");
    return 0;
}

}  // namespace keyhole::node
