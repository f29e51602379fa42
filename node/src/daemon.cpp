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
#include "peer_event.h"
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

    transport::Transport transport([&udp](const identity::Endpoint& to, std::span<const std::uint8_t> datagram) {
        udp.send_to(to, datagram);
    });
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
    std::unique_ptr<MessageStore> store;
    EventHub events;
    std::optional<PeerManager> peers;
    std::optional<Delivery> delivery;
    if (key) {
        publisher.emplace(io, dht, *key, config.state_dir / "record.seq",
                          std::chrono::seconds(config.record_lifetime_s));
        auto opened_store = MessageStore::open(config.state_dir / "messages.sqlite");
        if (!opened_store) {
            spdlog::error("{}", opened_store.error());
            dht.stop();
            return 1;
        }
        store = std::move(opened_store).value();
        PeerCallbacks callbacks;
        callbacks.on_payload = [&delivery](const identity::PeerId& peer, std::span<const std::uint8_t> payload) {
            if (delivery) delivery->on_payload(peer, payload);
        };
        callbacks.on_state = [&delivery, &events](const PeerInfo& info) {
            events.publish("peer", peer_event(info));
            if (delivery) delivery->on_peer_state(info);
        };
        callbacks.accepts = [&config, &store](const identity::PeerId& peer) {
            return config.accept_from == AcceptFrom::anyone || store->is_contact(peer);
        };
        peers.emplace(io, udp, dht, *key, config, std::move(callbacks));
        delivery.emplace(io, *peers, *store, events);
        transport.set_session_handler([&peers](std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
            peers->on_packet(datagram, from);
        });
    }

    DaemonState state{config, key, udp, dht, transport, publisher ? &*publisher : nullptr,
                      std::chrono::steady_clock::now()};
    state.store = store.get();
    state.peers = peers ? &*peers : nullptr;
    state.delivery = delivery ? &*delivery : nullptr;
    state.events = &events;
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
        peers->start();
        delivery->start();
    }

    spdlog::info("keyholed running: {} on UDP {}, control socket {}",
                 key ? "ID " + key->id().to_text() : std::string("bootstrap-only node"),
                 udp.local_endpoint().to_string(), config.control_socket.string());

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& error, int signal_number) {
        if (error) return;
        spdlog::info("received signal {}, shutting down", signal_number);
        control.stop();
        if (delivery) delivery->stop();
        if (peers) peers->stop();
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
