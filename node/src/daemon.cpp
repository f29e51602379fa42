#include "keyhole/node/daemon.h"

#include <algorithm>
#include <csignal>
#include <optional>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "config_reload.h"
#include "control_commands.h"
#include "daemon_state.h"
#include "keyhole/node/control_server.h"
#include "keyhole/node/logging.h"
#include "keyhole/node/state_lock.h"
#include "keyhole/transport/packet.h"
#include "metrics_collector.h"
#include "metrics_server.h"
#include "peer_event.h"
#include "relay_node.h"
#include "service_notify.h"

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

// One line for `systemctl status` (sd_notify STATUS=).
std::string service_status(const DaemonState& state) {
    std::string who = state.key ? "ID " + state.key->id().to_text() : std::string("bootstrap-only node");
    return who + ", UDP port " + std::to_string(state.udp.local_endpoint().port());
}

// Logs the changes of a reload where they can be seen: at the more verbose
// of the old and the new log level, then switches to the new one.
void log_reload(const ReloadPlan& plan, const std::string& old_level, const std::string& source) {
    const auto old_parsed = spdlog::level::from_str(old_level);
    const auto new_parsed = spdlog::level::from_str(plan.config.log_level);
    spdlog::set_level(std::min(old_parsed, new_parsed));
    if (plan.applied.empty() && plan.ignored.empty()) spdlog::info("reload of {}: nothing changed", source);
    for (const auto& change : plan.applied) spdlog::info("reload of {}: {}", source, change);
    for (const auto& change : plan.ignored)
        spdlog::warn("reload of {}: {} needs a restart; keeping the running value", source, change);
    spdlog::set_level(new_parsed);
}

}  // namespace

int run_daemon(const DaemonConfig& initial_config, ReloadSource reload) {
    // The running settings. Parts that read settings live (peer manager,
    // accept filter, control commands) hold references to this object, so a
    // reload changes them in place without touching sessions.
    DaemonConfig config = initial_config;

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
    std::optional<RelayNode> relay;  // relay mode (issue #5)
    // One port, two protocols: keyhole packets carry a magic prefix, the rest is OpenDHT's.
    udp.start_receiving([&](std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
        if (relay && relay->on_datagram(datagram, from)) return;  // relay-server packets 0x30/0x32/0x35/0x37
        if (transport::is_keyhole_packet(datagram))
            transport.on_packet(datagram, from);
        else
            dht.deliver(datagram, from);
    });
    if (auto started = dht.start({udp.local_endpoint(), config.bootstrap, config.dht_network,
                                       key ? std::optional(key->id()) : std::nullopt}); !started) {
        spdlog::error("{}", started.error());
        return 1;
    }

    DaemonCounters counters;
    std::optional<RecordPublisher> publisher;
    std::unique_ptr<MessageStore> store;
    EventHub events;
    // Counts delivered and received messages for the metrics.
    events.subscribe([&counters](std::string line) { counters.on_event_line(line); });
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
        callbacks.on_state = [&delivery, &events, &counters](const PeerInfo& info) {
            if (info.state == PeerState::up) ++counters.sessions_came_up;
            events.publish("peer", peer_event(info));
            if (delivery) delivery->on_peer_state(info);
        };
        callbacks.accepts = [&config, &store](const identity::PeerId& peer) {
            return config.accept_from == AcceptFrom::anyone || store->is_contact(peer);
        };
        callbacks.on_relays_changed = [&publisher](const std::vector<identity::RelayRef>& relays) {
            if (publisher) publisher->set_relays(relays);
        };
        callbacks.signed_record = [&publisher] { return publisher ? publisher->signed_record() : std::vector<std::uint8_t>{}; };
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
    MetricsServer metrics(io, [&state, &counters] { return render_metrics(collect_metrics(state, counters)); });
    if (config.metrics_port != 0) {
        // Asked for explicitly, so a port that cannot be had is a start-up error.
        if (auto started = metrics.start(config.metrics_port); !started) {
            spdlog::error("{}", started.error());
            control.stop();
            dht.stop();
            return 1;
        }
    }
    // Published only once nothing else can make start-up fail.
    if (publisher) {
        if (auto started = publisher->start(); !started) {
            spdlog::error("{}", started.error());
            metrics.stop();
            control.stop();
            dht.stop();
            return 1;
        }
        peers->start();
        delivery->start();
    }
    if (config.relay && key) {
        relay.emplace(io, udp, dht, *key, config);
        relay->start();
        state.relay = &relay->server();
    } else if (config.relay) {
        spdlog::warn("relay mode needs an identity; a --bootstrap-only node does not relay");
    }

    spdlog::info("keyholed {} running: {} on UDP {}, control socket {}", KEYHOLE_VERSION,
                 key ? "ID " + key->id().to_text() : std::string("bootstrap-only node"),
                 udp.local_endpoint().to_string(), config.control_socket.string());
    // The control socket listens and the DHT runs: clients may come.
    ServiceNotifier notifier(io);
    notifier.ready(service_status(state));

    // SIGHUP: re-read the settings; a bad file keeps the running ones.
    asio::signal_set hangup(io, SIGHUP);
    std::function<void()> wait_for_hangup = [&] {
        hangup.async_wait([&](const asio::error_code& error, int) {
            if (error) return;
            notifier.reloading();
            const std::string source = reload.config_file ? reload.config_file->string() : "the command line";
            if (!reload.read) {
                spdlog::info("SIGHUP: nothing to re-read");
            } else if (auto reread = reload.read(); !reread) {
                spdlog::error("reload failed, keeping the running configuration: {}", reread.error());
            } else {
                const ReloadPlan plan = plan_reload(config, *reread);
                const std::string old_level = config.log_level;
                config = plan.config;
                log_reload(plan, old_level, source);
                if (plan.metrics_port_changed) {
                    metrics.stop();
                    if (config.metrics_port != 0) {
                        if (auto started = metrics.start(config.metrics_port); !started)
                            spdlog::error("{}", started.error());
                    } else {
                        spdlog::info("metrics off");
                    }
                }
            }
            notifier.reloaded(service_status(state));
            wait_for_hangup();
        });
    };
    wait_for_hangup();

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& error, int signal_number) {
        if (error) return;
        spdlog::info("received signal {}, shutting down", signal_number);
        notifier.stopping();
        std::error_code ignored;
        hangup.cancel(ignored);
        metrics.stop();
        control.stop();
        if (delivery) delivery->stop();
        if (peers) peers->stop();
        if (publisher) publisher->stop();
        if (relay) relay->stop();  // withdraws the announcement before the DHT stops
        dht.stop();
        udp.close();
        io.stop();
    });
    io.run();
    spdlog::info("keyholed stopped");
    return 0;
}

}  // namespace keyhole::node
