// Sessions with peers: finding them (DHT lookup), the Noise IK handshake
// through their DHT inbox, hole punching over every candidate pair, keepalives
// and dead-path detection. Application payloads ride on the sessions; what
// they mean is the delivery layer's business.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <array>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "keyhole/dht/dht_node.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/node/config.h"
#include "keyhole/transport/noise.h"
#include "keyhole/transport/probe_socket_pool.h"
#include "keyhole/transport/secure_session.h"
#include "keyhole/transport/udp_port.h"
#include "keyhole/transport/wire.h"

#include "keyhole/node/nat_classifier.h"

namespace keyhole::node {

// no_path: the handshake worked but punching found no direct path (both NATs
// endpoint-dependent, or UDP filtered); the session waits for a relay.
enum class PeerState { idle, looking_up, connecting, up, down, no_path };
const char* to_string(PeerState state);

struct PeerInfo {
    identity::PeerId id;
    PeerState state = PeerState::idle;
    std::optional<identity::Endpoint> path;  // the direct path in use
    std::optional<double> rtt_ms;
    std::optional<double> last_seen_s;
    identity::NatClass peer_nat = identity::NatClass::unknown;  // as the peer announced it
    bool via_probe_socket = false;  // the path was found by birthday probing
    std::optional<identity::PeerId> relay;  // the path goes through this relay
    std::string detail;             // why there is no path (last failure), for a person
};

struct PeerCallbacks {
    // An application payload arrived on the session with `peer`.
    std::function<void(const identity::PeerId& peer, std::span<const std::uint8_t> payload)> on_payload;
    // The session with `peer` changed state (up: a verified path exists).
    std::function<void(const PeerInfo& info)> on_state;
    // May `peer` open a session with us? (accept_from)
    std::function<bool(const identity::PeerId& peer)> accepts;
    // The relays holding allocations for us changed (to go into our record).
    std::function<void(const std::vector<identity::RelayRef>& relays)> on_relays_changed;
    // Our signed record as published (relays store it for a node without DHT access).
    std::function<std::vector<std::uint8_t>()> signed_record;
};

struct PeerStats {
    std::uint64_t strangers_ignored = 0;     // connect requests refused by accept_from
    std::uint64_t handshakes_rejected = 0;   // forged, replayed or malformed
    std::uint64_t frames_rejected = 0;       // failed authentication or replay
    std::uint64_t punch_probes_sent = 0;
    std::uint64_t connect_requests_sent = 0;
    std::uint64_t handshakes_completed = 0;  // as initiator or responder
    std::uint64_t punches_started = 0;       // sessions that began punching
    std::uint64_t punches_succeeded = 0;     // ... and found a direct path
    std::uint64_t birthday_probes_sent = 0;  // probes to guessed ports / from extra sockets
    std::uint64_t paths_lost = 0;            // live paths whose keepalives went unanswered
    std::uint64_t relayed_sessions = 0;      // sessions that came up through a relay
    std::uint64_t relay_to_direct = 0;       // ... and later moved to a direct path
};

// A path through a relay: the relay's UDP endpoint and the channel. Channel 0
// (transport::kReplyChannel): we reach the peer with relay_send (the peer
// holds the allocation); else we hold it and answer on that channel.
struct RelayHop {
    identity::Endpoint endpoint;
    std::uint32_t channel = 0;
    identity::PeerId relay;  // the relay's key, for display (zero if unknown)
    friend bool operator==(const RelayHop& a, const RelayHop& b) {
        return a.endpoint == b.endpoint && a.channel == b.channel;
    }
};

// How a datagram arrived / leaves: the daemon's shared port (no pool), one
// of a birthday-probing pool's sockets, or through a relay.
struct LocalSocket {
    std::shared_ptr<transport::ProbeSocketPool> pool;
    std::size_t index = 0;
    std::optional<RelayHop> relay;
    friend bool operator==(const LocalSocket&, const LocalSocket&) = default;
};

class RelayAllocator;

class PeerManager {
public:
    PeerManager(asio::io_context& io, transport::UdpPort& udp, dht::DhtNode& dht, const identity::KeyPair& key,
                const DaemonConfig& config, PeerCallbacks callbacks);
    ~PeerManager();

    // Starts listening on our DHT inbox, address reflection and the timers.
    void start();
    void stop();

    // A datagram with the keyhole magic prefix arrived on the shared port.
    void on_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from);

    // Brings a session with `peer` up if it is not up or on its way.
    void connect(const identity::PeerId& peer);
    // Sends `payload` on the live session; false when there is none.
    bool send(const identity::PeerId& peer, std::span<const std::uint8_t> payload);
    bool is_up(const identity::PeerId& peer) const;
    // The delivery layer's hint that `peer` stopped acknowledging: if nothing
    // at all came from it for a while, the session is dropped and rebuilt now
    // instead of after the keepalive timeout (e.g. the peer restarted).
    void suspect(const identity::PeerId& peer);

    std::vector<PeerInfo> peers() const;
    std::size_t sessions_up() const;
    std::optional<identity::Endpoint> public_endpoint() const;
    identity::NatClass nat_class() const;
    const PeerStats& stats() const { return stats_; }
    // The relays this node holds allocations at (empty when it needs none).
    const RelayAllocator& relays() const { return *relays_; }

private:
    struct Slot;
    Slot& slot(const identity::PeerId& peer);
    void set_state(Slot& slot, PeerState state);
    PeerInfo info(const Slot& slot) const;

    void start_handshake(Slot& slot, const identity::IdentityRecord& record);
    // Right after start-up our public endpoint may not be known yet; a
    // connect request without it could not be punched through our NAT.
    void start_handshake_when_ready(const identity::PeerId& peer, std::uint64_t attempt,
                                    const identity::IdentityRecord& record);
    // `via`: the relay hop a connect request or response came through, if any.
    void on_inbox_message(std::vector<std::uint8_t> message, const std::optional<RelayHop>& via = std::nullopt);
    void on_hello(std::span<const std::uint8_t> noise_message, const std::optional<RelayHop>& via);
    void on_reply(std::uint32_t initiator_index, std::span<const std::uint8_t> noise_message);
    void session_established(Slot& slot, std::unique_ptr<transport::SecureSession> session,
                             std::vector<identity::Endpoint> candidates);
    void handle_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from, const LocalSocket& via);
    void on_frame(const transport::Frame& frame, const identity::Endpoint& from, const LocalSocket& via);
    void send_control(Slot& slot, std::uint8_t kind, const identity::Endpoint& to,
                      std::span<const std::uint8_t> body = {}, const LocalSocket& via = {});
    void path_found(Slot& slot, const identity::Endpoint& remote, const LocalSocket& via);
    void drop_probing(Slot& slot);
    void stop_reply_listen(Slot& slot);
    void drop_session(Slot& slot);
    void failed(Slot& slot, const std::string& why);

    // Punching (timers.cpp-style: everything this daemon sends on its own
    // while punching is decided in tick(); these set up and send).
    void begin_punching(Slot& slot);
    void send_punch_probes(Slot& slot, std::chrono::steady_clock::time_point now);
    void path_lost(Slot& slot);
    void refresh_reflection();
    bool relayed(const Slot& slot) const;
    // Relays: when this node needs them, and what changes when they do.
    void check_relay_need(std::chrono::steady_clock::time_point now);
    void on_relays_changed(const std::vector<identity::RelayRef>& relays);
    void on_relay_lost(const identity::Endpoint& relay_endpoint);
    std::vector<identity::RelayRef> our_relays() const;
    // No DHT nodes, but a relay over TLS: look up and send connect requests through it.
    bool use_relay_directory() const;
    void on_record_found(const identity::PeerId& peer, std::uint64_t attempt, Result<identity::IdentityRecord> record);

    void send_reflect_requests();
    void on_reflect_response(const transport::ReflectResponse& response, const identity::Endpoint& from);
    std::vector<identity::Endpoint> host_candidates() const;  // interface addresses with our port
    std::vector<identity::Endpoint> our_candidates() const;   // ... plus the reflexive one

    // Session timers (punch, keepalive, dead path, retries, reflection); the
    // delivery layer has its own retransmission timer.
    void schedule_tick();
    void tick();

    std::uint32_t new_local_index();

    asio::io_context& io_;
    transport::UdpPort& udp_;
    dht::DhtNode& dht_;
    const identity::KeyPair& key_;
    transport::noise::KeyPair noise_keys_;
    const DaemonConfig& config_;
    PeerCallbacks callbacks_;
    asio::steady_timer tick_timer_;
    bool running_ = false;
    std::chrono::steady_clock::time_point started_at_{};

    std::map<identity::PeerId, std::unique_ptr<Slot>> slots_;
    std::map<std::uint32_t, Slot*> by_index_;          // our session / handshake index -> slot
    std::set<std::array<std::uint8_t, 32>> seen_hellos_;  // initiator ephemerals: single use
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::array<std::uint8_t, 32>>> hello_order_;

    std::map<transport::ReflectNonce, std::chrono::steady_clock::time_point> reflect_pending_;
    NatClassifier nat_;
    std::vector<identity::Endpoint> answered_reflectors_;  // most recent first
    identity::NatClass announced_nat_ = identity::NatClass::unknown;  // last class logged
    std::chrono::steady_clock::time_point fresh_reflection_until_{};  // after a path loss: wait for new mapping
    std::chrono::steady_clock::time_point next_reflect_{};
    std::chrono::milliseconds reflect_retry_{0};
    std::unique_ptr<RelayAllocator> relays_;
    PeerStats stats_;
};

}  // namespace keyhole::node
