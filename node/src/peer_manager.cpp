#include "keyhole/node/peer_manager.h"

#include <algorithm>
#include <random>

#include <ifaddrs.h>
#include <net/if.h>
#include <sodium.h>

#include <spdlog/spdlog.h>

#include "connect_payload.h"
#include "keyhole/transport/relay_wire.h"
#include "relay_allocator.h"

namespace keyhole::node {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Noise prologue: binds every handshake to this protocol and version.
constexpr std::string_view kPrologue = "keyhole/v1";

// Inbox message kinds (first byte of a DHT inbox value).
constexpr std::uint8_t kInboxHello = 1;
constexpr std::uint8_t kInboxReply = 2;

// Frame kinds (first plaintext byte of a session frame).
constexpr std::uint8_t kFrameProbe = 0x01;
constexpr std::uint8_t kFrameProbeAck = 0x02;
constexpr std::uint8_t kFrameKeepalive = 0x03;
constexpr std::uint8_t kFramePayload = 0x10;

constexpr auto kPunchInterval = 50ms;       // per candidate, with up to ±10 ms jitter
constexpr auto kPunchDuration = 10s;
constexpr auto kHandshakeTimeout = 10s;
constexpr auto kFirstRetry = 1s;
constexpr auto kMaxRetry = 15s;  // a peer that comes back online is found within this
constexpr auto kHelloMaxAge = 120s;         // clock skew allowed on a connect request
constexpr auto kHelloMemory = 5min;         // ephemeral keys of seen connect requests
constexpr auto kReflectEvery = 30s;
constexpr auto kStartupReflectRetry = 50ms;  // during kReflectionGrace after start-up
constexpr auto kFirstReflectRetry = 250ms;    // then doubling up to kReflectEvery until someone answers
constexpr auto kReflectionGrace = 3s;        // after start-up, wait this long for our public endpoint
constexpr auto kTickBusy = 10ms;            // while punching
constexpr auto kTickIdle = 500ms;
constexpr int kKeepalivesMissedBeforeDead = 3;
constexpr auto kSilenceBeforeSuspicion = 3s;
constexpr std::size_t kReflectors = 8;       // nodes asked per reflection round
constexpr std::size_t kReflectorCandidates = 64;  // ... drawn from this many known DHT nodes
constexpr auto kNatSettle = 1s;             // start-up: with a public endpoint but one reflector, wait no longer
constexpr auto kRemapWait = 1s;             // after a path loss: wait this long for our new mapping
// A keepalive must be answered: unanswered, it is resent every
// kKeepaliveResend and the path counts as lost after kPathLossTimeout.
constexpr auto kKeepaliveResend = 1s;
constexpr auto kPathLossTimeout = 3s;
constexpr auto kNoPathRetry = 60s;            // after punching failed: try again (NATs change)
constexpr auto kNoPathRetryWithRelays = 5s;   // ... sooner when a relay can carry the session
constexpr auto kReconnectWithoutLookup = 1min;  // after a live path broke
constexpr auto kRelayProbeInterval = 200ms;   // probes through relays while there is no path
constexpr std::size_t kRelaysPerPeer = 4;     // relays a connect request and probes go through (stale ones cost a packet)
// Birthday probing; the numbers and the probability they give are derived in
// docs/nat-traversal.md. The endpoint-dependent side opens kBirthdaySockets
// sockets and probes the peer's mapping from each, kPoolRounds times; the
// other side probes kBirthdayPorts random ports of its public address,
// kSprayPerTick per tick, at most kSprayRounds times.
constexpr std::size_t kBirthdaySockets = 256;
constexpr int kPoolRounds = 5;
constexpr auto kPoolRoundEvery = 1s;
constexpr std::size_t kBirthdayPorts = 2048;
constexpr std::size_t kSprayPerTick = 10;
constexpr int kSprayRounds = 2;
constexpr std::uint16_t kLowestMappedPort = 1024;  // Linux NAT maps unprivileged ports to 1024-65535
constexpr std::size_t kMaxProbePools = 2;         // concurrent birthday attempts (file descriptors)

std::uint64_t wall_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

std::span<const std::uint8_t> prologue() {
    return {reinterpret_cast<const std::uint8_t*>(kPrologue.data()), kPrologue.size()};
}

std::uint64_t steady_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

void put_be64(std::vector<std::uint8_t>& out, std::uint64_t value) {
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

std::uint64_t get_be64(std::span<const std::uint8_t> in) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < 8 && i < in.size(); ++i) value = (value << 8) | in[i];
    return value;
}

// Public addresses among a peer's candidates (where its NAT maps it), minus
// `ours`: behind the same NAT, guessing ports of our own address is pointless.
std::vector<identity::Endpoint> public_candidates(const std::vector<identity::Endpoint>& candidates,
                                                  const std::optional<identity::Endpoint>& ours) {
    std::vector<identity::Endpoint> result;
    for (const auto& candidate : candidates) {
        if (!candidate.is_v4() || is_private_address(candidate)) continue;
        if (ours && ours->address_string() == candidate.address_string()) continue;
        result.push_back(candidate);
    }
    return result;
}

// `count` distinct ports in [kLowestMappedPort, 65535], uniformly at random.
std::vector<std::uint16_t> random_ports(std::size_t count) {
    const std::uint32_t range = 65536u - kLowestMappedPort;
    std::set<std::uint16_t> chosen;
    while (chosen.size() < count && chosen.size() < range)
        chosen.insert(static_cast<std::uint16_t>(kLowestMappedPort + randombytes_uniform(range)));
    std::vector<std::uint16_t> ports(chosen.begin(), chosen.end());
    // randombytes_uniform-driven shuffle: the order the ports are tried in is random too.
    for (std::size_t i = ports.size(); i > 1; --i) std::swap(ports[i - 1], ports[randombytes_uniform(static_cast<std::uint32_t>(i))]);
    return ports;
}

}  // namespace

const char* to_string(PeerState state) {
    switch (state) {
        case PeerState::idle: return "idle";
        case PeerState::looking_up: return "looking_up";
        case PeerState::connecting: return "connecting";
        case PeerState::up: return "up";
        case PeerState::down: return "down";
        case PeerState::no_path: return "no_path";
    }
    return "idle";
}

struct PeerManager::Slot {
    identity::PeerId id;
    PeerState state = PeerState::idle;
    // Our connect request in flight (we are the initiator).
    std::unique_ptr<transport::noise::Initiator> initiator;
    std::uint32_t handshake_index = 0;
    dht::DhtNode::InboxListen reply_listen = 0;  // on the peer's inbox, while we wait for its response
    Clock::time_point handshake_deadline{};
    // The established session and its paths.
    std::unique_ptr<transport::SecureSession> session;
    std::vector<identity::Endpoint> candidates;
    identity::NatClass peer_nat = identity::NatClass::unknown;
    std::optional<identity::Endpoint> path;
    LocalSocket path_socket;  // which of our sockets the path leaves from
    Clock::time_point punch_until{};
    // Birthday probing, endpoint-dependent side: extra sockets.
    std::shared_ptr<transport::ProbeSocketPool> probe_pool;
    std::vector<identity::Endpoint> pool_targets;
    int pool_rounds = 0;
    Clock::time_point next_pool_round{};
    // Birthday probing, endpoint-independent side: guessed ports.
    std::vector<identity::Endpoint> spray_addresses;
    std::vector<std::uint16_t> spray_ports;
    std::size_t spray_next = 0;
    int spray_rounds = 0;
    // Keepalives are answered; an unanswered one marks the path suspect.
    bool keepalive_unanswered = false;
    Clock::time_point unanswered_since{};
    Clock::time_point last_keepalive{};
    std::string detail;  // the last reason there is no path
    Clock::time_point next_probe{};
    Clock::time_point last_received{};
    Clock::time_point last_sent{};
    std::optional<double> rtt_ms;
    bool punching = false;                         // looking for a (better) path until punch_until
    std::vector<identity::RelayRef> peer_relays;  // where the peer holds relay allocations
    Clock::time_point next_relay_probe{};
    std::vector<std::uint8_t> hello_packet;  // our connect request as a relay carries it, while it is out
    std::optional<identity::IdentityRecord> last_record;  // from the last lookup
    std::uint64_t record_found = 0;                        // the attempt whose lookup found it
    Clock::time_point recently_up_until{};                 // reconnects until then skip the lookup
    // After a failure: when to try again.
    Clock::time_point retry_at{};
    std::chrono::seconds backoff = kFirstRetry;
    bool wanted = false;
    std::uint64_t attempt = 0;  // invalidates callbacks of older attempts
};

PeerManager::PeerManager(asio::io_context& io, transport::UdpPort& udp, dht::DhtNode& dht,
                         const identity::KeyPair& key, const DaemonConfig& config, PeerCallbacks callbacks)
    : io_(io), udp_(udp), dht_(dht), key_(key), noise_keys_(transport::noise::KeyPair::from_identity(key)),
      config_(config), callbacks_(std::move(callbacks)), tick_timer_(io) {
    RelayAllocatorCallbacks relay_callbacks;
    relay_callbacks.on_relays_changed = [this](const std::vector<identity::RelayRef>& relays) { on_relays_changed(relays); };
    relay_callbacks.on_relay_lost = [this](const identity::Endpoint& relay) { on_relay_lost(relay); };
    relay_callbacks.on_deliver = [this](std::span<const std::uint8_t> inner, const RelayHop& hop) {
        if (running_) handle_packet(inner, hop.endpoint, LocalSocket{nullptr, 0, hop});
    };
    relay_callbacks.signed_record = [this] {
        return callbacks_.signed_record ? callbacks_.signed_record() : std::vector<std::uint8_t>{};
    };
    relays_ = std::make_unique<RelayAllocator>(io, udp, dht, key, config, std::move(relay_callbacks));
}

PeerManager::~PeerManager() { stop(); }

void PeerManager::start() {
    running_ = true;
    started_at_ = Clock::now();
    // Our inbox holds connect requests to us, and our responses to others
    // (they listen here while they wait): only the requests are ours to read.
    dht_.listen_inbox(key_.id(), [this](std::vector<std::uint8_t> message) {
        if (running_ && !message.empty() && message[0] == kInboxHello) on_inbox_message(std::move(message));
    });
    schedule_tick();
}

void PeerManager::stop() {
    running_ = false;
    tick_timer_.cancel();
    relays_->stop();
    // Birthday-probing sockets call back into this object: close them now.
    for (auto& [id, s] : slots_) {
        if (s->probe_pool) s->probe_pool->close();
        if (s->path_socket.pool) s->path_socket.pool->close();
    }
}

PeerManager::Slot& PeerManager::slot(const identity::PeerId& peer) {
    auto& entry = slots_[peer];
    if (!entry) {
        entry = std::make_unique<Slot>();
        entry->id = peer;
    }
    return *entry;
}

PeerInfo PeerManager::info(const Slot& slot) const {
    PeerInfo result;
    result.id = slot.id;
    result.state = slot.state;
    result.path = slot.state == PeerState::up ? slot.path : std::nullopt;
    result.rtt_ms = slot.rtt_ms;
    result.peer_nat = slot.peer_nat;
    result.via_probe_socket = result.path && slot.path_socket.pool != nullptr;
    if (result.path && slot.path_socket.relay) {
        result.relay = slot.path_socket.relay->relay;
        if (auto known = relays_->relay_at(slot.path_socket.relay->endpoint)) result.relay = *known;
        for (const auto& relay : slot.peer_relays)
            if (relay.endpoint == slot.path_socket.relay->endpoint) result.relay = relay.relay;
    }
    result.detail = slot.state == PeerState::up ? std::string() : slot.detail;
    if (slot.session)
        result.last_seen_s = std::chrono::duration<double>(Clock::now() - slot.last_received).count();
    return result;
}

void PeerManager::set_state(Slot& slot, PeerState state) {
    if (slot.state == state) return;
    slot.state = state;
    if (state == PeerState::up)
        spdlog::info("session with {} up: {} {}{}", slot.id.to_text(), slot.path_socket.relay ? "through relay at" : "direct via",
                     slot.path ? slot.path->to_string() : "?", slot.path_socket.pool ? " (birthday-probing socket)" : "");
    if (state == PeerState::down) spdlog::info("session with {} down", slot.id.to_text());
    if (state == PeerState::no_path) spdlog::info("no direct path to {}: {}", slot.id.to_text(), slot.detail);
    if (callbacks_.on_state) callbacks_.on_state(info(slot));
}

std::uint32_t PeerManager::new_local_index() {
    for (;;) {
        const std::uint32_t index = randombytes_random();
        if (index != 0 && !by_index_.contains(index)) return index;
    }
}

// ---------------------------------------------------------------------------
// Initiator: lookup, connect request through the peer's DHT inbox

void PeerManager::connect(const identity::PeerId& peer) {
    if (!running_ || peer == key_.id()) return;
    auto& s = slot(peer);
    s.wanted = true;
    if (s.state == PeerState::up || s.state == PeerState::looking_up || s.state == PeerState::connecting) return;
    if (Clock::now() < s.retry_at) return;  // tick() retries when the backoff ends
    set_state(s, PeerState::looking_up);
    const auto attempt = ++s.attempt;
    // Rebuilding a session that just broke: the peer's record was verified
    // minutes ago and the handshake needs nothing from it; skip the DHT round trip.
    if (s.recently_up_until > Clock::now()) {
        start_handshake_when_ready(peer, attempt, s.last_record.value_or(identity::IdentityRecord{}));
        return;
    }
    if (use_relay_directory()) {
        relays_->directory_lookup(peer, [this, peer, attempt](std::vector<std::uint8_t> found) {
            if (!running_) return;
            const auto now_s = static_cast<std::uint64_t>(wall_ms() / 1000);
            on_record_found(peer, attempt,
                            found.empty() ? Result<identity::IdentityRecord>(fail("not found (asked a relay)"))
                                          : identity::decode_verified(found, peer, now_s));
        });
        return;
    }
    // The handshake starts on the first verified record; the full lookup
    // (highest sequence) may still wait on slow nodes and only reports failure.
    dht_.lookup(
        peer, std::chrono::seconds(config_.lookup_timeout_s),
        [this, peer, attempt](Result<identity::IdentityRecord> record) {
            if (running_) on_record_found(peer, attempt, std::move(record));
        },
        [this, peer, attempt](const identity::IdentityRecord& record) {
            if (running_) on_record_found(peer, attempt, record);
        });
}

void PeerManager::on_record_found(const identity::PeerId& peer, std::uint64_t attempt,
                                  Result<identity::IdentityRecord> record) {
    auto& s = slot(peer);
    // The lookup found a newer record than the first one. Before our connect
    // request is out, it is the one to use; after, it may name relays the
    // request has not gone through yet: send it there too.
    if (record && s.attempt == attempt && s.record_found == attempt && s.state == PeerState::looking_up) {
        s.last_record = record.value();
        return;
    }
    if (record && s.attempt == attempt && s.record_found == attempt && s.initiator && !s.hello_packet.empty()) {
        for (const auto& relay : record->relays) {
            if (std::any_of(s.peer_relays.begin(), s.peer_relays.end(),
                            [&](const auto& known) { return known.endpoint == relay.endpoint; }))
                continue;
            s.peer_relays.push_back(relay);
            relays_->send(RelayHop{relay.endpoint, transport::kReplyChannel, relay.relay}, s.id, s.hello_packet);
        }
        return;
    }
    if (s.attempt != attempt || s.state != PeerState::looking_up || s.record_found == attempt) return;
    if (!record) {
        failed(s, "lookup: " + record.error());
        return;
    }
    s.record_found = attempt;
    s.last_record = record.value();
    start_handshake_when_ready(peer, attempt, record.value());
}

bool PeerManager::use_relay_directory() const {
    return relays_->directory_available() && dht_.health().good_nodes == 0;
}

void PeerManager::start_handshake_when_ready(const identity::PeerId& peer, std::uint64_t attempt,
                                             const identity::IdentityRecord& record) {
    auto& s = slot(peer);
    if (!running_ || s.attempt != attempt || s.state != PeerState::looking_up) return;
    // Our candidates and NAT class go into the connect request: wait (briefly)
    // until reflection told us where we are, at start-up and after a mapping change.
    const auto now = Clock::now();
    const bool classified = nat_.nat_class(now) != identity::NatClass::unknown;
    const bool settled = classified || (nat_.public_endpoint(now) && now >= started_at_ + kNatSettle);
    const bool starting = !settled && now < started_at_ + kReflectionGrace;
    const bool remapping = now < fresh_reflection_until_;
    if (!starting && !remapping) {
        start_handshake(s, s.last_record.value_or(record));  // a newer record may have come meanwhile
        return;
    }
    auto pause = std::make_shared<asio::steady_timer>(io_, 100ms);
    pause->async_wait([this, peer, attempt, record, pause](const asio::error_code& error) {
        if (!error) start_handshake_when_ready(peer, attempt, record);
    });
}

void PeerManager::start_handshake(Slot& s, const identity::IdentityRecord& record) {
    auto responder_static = transport::noise::static_key_of(s.id);
    if (!responder_static) {
        failed(s, responder_static.error());
        return;
    }
    if (s.handshake_index) by_index_.erase(s.handshake_index);
    s.handshake_index = new_local_index();
    s.initiator = std::make_unique<transport::noise::Initiator>(noise_keys_, responder_static.value(), prologue());
    Hello hello{key_.id(), s.handshake_index, wall_ms(), our_candidates(), nat_class(), our_relays()};
    auto message1 = s.initiator->write_message1(encode_hello(hello));
    if (!message1) {
        failed(s, message1.error());
        return;
    }
    by_index_[s.handshake_index] = &s;
    s.handshake_deadline = Clock::now() + kHandshakeTimeout;
    std::vector<std::uint8_t> inbox{kInboxHello};
    inbox.insert(inbox.end(), message1->begin(), message1->end());
    // The response will be stored in the peer's inbox: listen there until it comes.
    stop_reply_listen(s);
    const auto peer = s.id;
    const auto index = s.handshake_index;
    s.reply_listen = dht_.listen_inbox(peer, [this, peer, index](std::vector<std::uint8_t> message) {
        if (!running_ || message.size() <= 5 || message[0] != kInboxReply) return;
        const std::uint32_t to = (std::uint32_t{message[1]} << 24) | (std::uint32_t{message[2]} << 16) |
                                 (std::uint32_t{message[3]} << 8) | message[4];
        // Responses to other initiators share the inbox: skip them quietly.
        auto found = slots_.find(peer);
        if (to != index || found == slots_.end() || found->second->handshake_index != index) return;
        on_inbox_message(std::move(message));
    });
    // The peer's relays (from its record, or from the last session, which is
    // newer) carry the request at once: one round trip instead of a DHT put.
    for (const auto& relay : record.relays)
        if (std::none_of(s.peer_relays.begin(), s.peer_relays.end(),
                         [&](const auto& known) { return known.endpoint == relay.endpoint; }))
            s.peer_relays.push_back(relay);
    s.hello_packet = transport::encode_handshake(inbox);
    for (std::size_t i = 0; i < s.peer_relays.size() && i < kRelaysPerPeer; ++i)
        relays_->send(RelayHop{s.peer_relays[i].endpoint, transport::kReplyChannel, s.peer_relays[i].relay}, s.id,
                      s.hello_packet);
    if (use_relay_directory())
        relays_->directory_inbox(s.id, inbox);
    else
        dht_.send_to_inbox(s.id, std::move(inbox));
    ++stats_.connect_requests_sent;
    set_state(s, PeerState::connecting);
    spdlog::debug("connect request sent to {} ({} candidates; record {}, through {} relay(s))", s.id.to_text(),
                  hello.candidates.size(), record.sequence, std::min(s.peer_relays.size(), kRelaysPerPeer));
}

void PeerManager::failed(Slot& s, const std::string& why) {
    spdlog::info("connecting to {} failed: {}; next try in {} s", s.id.to_text(), why, s.backoff.count());
    if (s.handshake_index && !s.session) by_index_.erase(s.handshake_index);
    s.initiator.reset();
    stop_reply_listen(s);
    s.detail = why;
    s.retry_at = Clock::now() + s.backoff;
    s.backoff = std::min(s.backoff * 2, std::chrono::duration_cast<std::chrono::seconds>(kMaxRetry));
    set_state(s, PeerState::down);
}

void PeerManager::on_inbox_message(std::vector<std::uint8_t> message, const std::optional<RelayHop>& via) {
    if (message.empty()) return;
    const auto body = std::span<const std::uint8_t>(message).subspan(1);
    if (message[0] == kInboxHello) {
        on_hello(body, via);
    } else if (message[0] == kInboxReply && body.size() > 4) {
        const std::uint32_t index = (std::uint32_t{body[0]} << 24) | (std::uint32_t{body[1]} << 16) |
                                    (std::uint32_t{body[2]} << 8) | body[3];
        on_reply(index, body.subspan(4));
    } else {
        ++stats_.handshakes_rejected;
    }
}

void PeerManager::on_reply(std::uint32_t initiator_index, std::span<const std::uint8_t> noise_message) {
    auto found = by_index_.find(initiator_index);
    if (found == by_index_.end() || !found->second->initiator) {
        ++stats_.handshakes_rejected;  // stale, replayed, or not ours
        return;
    }
    Slot& s = *found->second;
    auto payload = s.initiator->read_message2(noise_message);
    if (!payload) {
        ++stats_.handshakes_rejected;
        spdlog::debug("connect response from {} rejected: {}", s.id.to_text(), payload.error());
        return;
    }
    auto reply = decode_reply(payload.value());
    auto keys = s.initiator->split();
    s.initiator.reset();
    stop_reply_listen(s);
    if (!reply || !keys) {
        ++stats_.handshakes_rejected;
        failed(s, reply ? keys.error() : reply.error());
        return;
    }
    s.peer_nat = reply->nat;
    if (!reply->relays.empty()) s.peer_relays = reply->relays;
    session_established(s,
                        std::make_unique<transport::SecureSession>(s.id, s.handshake_index,
                                                                   reply->responder_index, std::move(keys).value()),
                        reply->candidates);
}

// ---------------------------------------------------------------------------
// Responder

void PeerManager::on_hello(std::span<const std::uint8_t> noise_message, const std::optional<RelayHop>& via) {
    transport::noise::Responder responder(noise_keys_, prologue());
    auto payload = responder.read_message1(noise_message);
    if (!payload) {
        ++stats_.handshakes_rejected;
        return;
    }
    auto hello = decode_hello(payload.value());
    if (!hello) {
        ++stats_.handshakes_rejected;
        return;
    }
    // The Noise static key authenticates the initiator; it must be the one
    // its claimed ID stands for, or anyone could claim any ID.
    auto expected = transport::noise::static_key_of(hello->initiator);
    if (!expected || !responder.remote_static() || *responder.remote_static() != expected.value() ||
        hello->initiator == key_.id()) {
        ++stats_.handshakes_rejected;
        spdlog::warn("connect request claiming {} rejected: key does not match the ID", hello->initiator.to_text());
        return;
    }
    const auto now_ms = wall_ms();
    const auto age_ms = now_ms > hello->timestamp_ms ? now_ms - hello->timestamp_ms : hello->timestamp_ms - now_ms;
    if (age_ms > static_cast<std::uint64_t>(std::chrono::milliseconds(kHelloMaxAge).count())) {
        ++stats_.handshakes_rejected;
        return;
    }
    // Single use: the initiator's ephemeral key opens message 1.
    std::array<std::uint8_t, 32> ephemeral{};
    std::copy_n(noise_message.begin(), ephemeral.size(), ephemeral.begin());
    if (!seen_hellos_.insert(ephemeral).second) {
        ++stats_.handshakes_rejected;
        spdlog::debug("replayed connect request from {} ignored", hello->initiator.to_text());
        return;
    }
    hello_order_.emplace_back(Clock::now(), ephemeral);
    if (callbacks_.accepts && !callbacks_.accepts(hello->initiator)) {
        ++stats_.strangers_ignored;
        spdlog::info("connect request from {} ignored (accept_from = contacts)", hello->initiator.to_text());
        return;
    }
    auto& s = slot(hello->initiator);
    // Both sides connecting at once: the request from the lower ID wins.
    if (s.initiator) {
        if (key_.id() < hello->initiator) return;
        by_index_.erase(s.handshake_index);
        s.initiator.reset();
        stop_reply_listen(s);
    }
    const std::uint32_t local_index = new_local_index();
    auto message2 =
        responder.write_message2(encode_reply({local_index, now_ms, our_candidates(), nat_class(), our_relays()}));
    auto keys = responder.split();
    if (!message2 || !keys) {
        ++stats_.handshakes_rejected;
        return;
    }
    std::vector<std::uint8_t> inbox{kInboxReply};
    for (int shift = 24; shift >= 0; shift -= 8) inbox.push_back(static_cast<std::uint8_t>(hello->initiator_index >> shift));
    inbox.insert(inbox.end(), message2->begin(), message2->end());
    // Back the way the request came (a relay), or through the initiator's
    // relays, and always into our inbox, where the initiator listens.
    const auto wrapped = transport::encode_handshake(inbox);
    if (via) {
        relays_->send(*via, hello->initiator, wrapped);
    } else {
        for (std::size_t i = 0; i < hello->relays.size() && i < kRelaysPerPeer; ++i)
            relays_->send(RelayHop{hello->relays[i].endpoint, transport::kReplyChannel, hello->relays[i].relay},
                          hello->initiator, wrapped);
    }
    dht_.send_to_inbox(key_.id(), std::move(inbox));
    s.handshake_index = local_index;
    s.peer_nat = hello->nat;
    s.peer_relays = hello->relays;
    session_established(s,
                        std::make_unique<transport::SecureSession>(s.id, local_index, hello->initiator_index,
                                                                   std::move(keys).value()),
                        hello->candidates);
}

// ---------------------------------------------------------------------------
// Sessions, punching, frames

void PeerManager::session_established(Slot& s, std::unique_ptr<transport::SecureSession> session,
                                      std::vector<identity::Endpoint> candidates) {
    if (s.session && s.session->local_index() != session->local_index()) by_index_.erase(s.session->local_index());
    drop_probing(s);
    if (s.path_socket.pool) s.path_socket.pool->close();
    by_index_[session->local_index()] = &s;
    s.session = std::move(session);
    ++stats_.handshakes_completed;
    s.candidates = std::move(candidates);
    s.path.reset();
    s.path_socket = {};
    s.rtt_ms.reset();
    s.keepalive_unanswered = false;
    const auto now = Clock::now();
    s.last_received = now;
    s.backoff = kFirstRetry;
    set_state(s, PeerState::connecting);
    begin_punching(s);
    schedule_tick();
}

void PeerManager::begin_punching(Slot& s) {
    const auto now = Clock::now();
    ++stats_.punches_started;
    s.punching = true;
    s.punch_until = now + kPunchDuration;
    s.next_probe = now;
    s.next_relay_probe = now;
    const auto mine = nat_class();
    const auto theirs = public_candidates(s.candidates, public_endpoint());
    std::string plan = "plain";
    // Endpoint-dependent here, endpoint-independent (or not yet known) there:
    // many sockets, each a new mapping the peer's guesses may hit.
    std::size_t pools_open = 0;
    for (const auto& [id, other] : slots_) pools_open += other->probe_pool ? 1 : 0;
    if (config_.birthday_probing && mine == identity::NatClass::endpoint_dependent && !theirs.empty() &&
        pools_open < kMaxProbePools &&
        (s.peer_nat == identity::NatClass::endpoint_independent || s.peer_nat == identity::NatClass::unknown)) {
        const auto local = udp_.local_endpoint();
        const auto peer = s.id;
        auto pool = transport::ProbeSocketPool::open(
            io_, local, kBirthdaySockets,
            [this, peer](const std::shared_ptr<transport::ProbeSocketPool>& pool, std::size_t socket,
                         std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
                if (!running_ || !transport::is_keyhole_packet(datagram)) return;
                // Only the session's own pool: while probing, or the one socket its path kept.
                auto found = slots_.find(peer);
                if (found == slots_.end() ||
                    (found->second->probe_pool != pool && found->second->path_socket.pool != pool))
                    return;
                handle_packet(datagram, from, LocalSocket{pool, socket, std::nullopt});
            });
        if (pool) {
            s.probe_pool = std::move(pool).value();
            s.pool_targets = theirs;
            s.pool_rounds = 0;
            s.next_pool_round = now;
            plan = "birthday: " + std::to_string(kBirthdaySockets) + " extra sockets";
        } else {
            spdlog::warn("birthday probing towards {} not possible: {}", s.id.to_text(), pool.error());
        }
    }
    // Endpoint-independent here, endpoint-dependent there: guess which ports
    // the peer's NAT gave its extra sockets.
    if (config_.birthday_probing &&
        (mine == identity::NatClass::endpoint_independent || mine == identity::NatClass::unknown) &&
        s.peer_nat == identity::NatClass::endpoint_dependent && !theirs.empty()) {
        s.spray_addresses.clear();
        for (const auto& candidate : theirs)
            if (std::none_of(s.spray_addresses.begin(), s.spray_addresses.end(),
                             [&](const auto& a) { return a.address_string() == candidate.address_string(); }))
                s.spray_addresses.push_back(candidate);
        s.spray_ports = random_ports(kBirthdayPorts);
        s.spray_next = 0;
        s.spray_rounds = 1;
        plan = "birthday: guessing " + std::to_string(kBirthdayPorts) + " ports";
    }
    spdlog::debug("handshake with {} done; punching {} candidate(s), our NAT {}, theirs {} ({})", s.id.to_text(),
                  s.candidates.size(), identity::to_string(mine), identity::to_string(s.peer_nat), plan);
}

void PeerManager::stop_reply_listen(Slot& s) {
    if (s.reply_listen) dht_.stop_listening(s.reply_listen);
    s.reply_listen = 0;
}

void PeerManager::drop_probing(Slot& s) {
    if (s.probe_pool && s.probe_pool != s.path_socket.pool) s.probe_pool->close();
    s.probe_pool.reset();
    s.pool_targets.clear();
    s.spray_ports.clear();
    s.spray_addresses.clear();
}

void PeerManager::drop_session(Slot& s) {
    if (s.state == PeerState::up) s.recently_up_until = Clock::now() + kReconnectWithoutLookup;
    if (s.session) by_index_.erase(s.session->local_index());
    s.session.reset();
    drop_probing(s);
    if (s.path_socket.pool) s.path_socket.pool->close();
    s.path_socket = {};
    s.path.reset();
    s.keepalive_unanswered = false;
    s.punching = false;
}

void PeerManager::path_found(Slot& s, const identity::Endpoint& remote, const LocalSocket& via) {
    const bool was_up = s.state == PeerState::up;
    const bool was_relayed = was_up && relayed(s);
    if (s.path_socket.pool && s.path_socket.pool != via.pool) s.path_socket.pool->close();  // moved off it
    s.path = remote;
    s.path_socket = via;
    s.detail.clear();
    if (via.relay) {
        // Through a relay: punching goes on; a direct path replaces this one.
        if (!was_relayed) ++stats_.relayed_sessions;
        set_state(s, PeerState::up);
        return;
    }
    const bool punched = !was_up || was_relayed;
    if (was_relayed) {
        ++stats_.relay_to_direct;
        spdlog::info("session with {} moved from the relay to a direct path via {}", s.id.to_text(), remote.to_string());
    }
    s.punching = false;
    if (s.probe_pool) {
        if (via.pool == s.probe_pool) s.probe_pool->close_all_except(via.index);
        else s.probe_pool->close();
        s.probe_pool.reset();  // the path keeps its socket alive through path_socket
    }
    s.spray_ports.clear();
    if (punched) ++stats_.punches_succeeded;
    set_state(s, PeerState::up);
}

bool PeerManager::relayed(const Slot& s) const { return s.path && s.path_socket.relay.has_value(); }

void PeerManager::send_control(Slot& s, std::uint8_t kind, const identity::Endpoint& to,
                               std::span<const std::uint8_t> body, const LocalSocket& via) {
    std::vector<std::uint8_t> plaintext{kind};
    plaintext.insert(plaintext.end(), body.begin(), body.end());
    auto datagram = s.session->seal(plaintext);
    if (!datagram) return;
    if (via.relay)
        relays_->send(*via.relay, s.id, datagram.value());
    else if (via.pool)
        via.pool->send_from(via.index, to, datagram.value());
    else
        udp_.send_to(to, datagram.value());
    s.last_sent = Clock::now();
}

bool PeerManager::send(const identity::PeerId& peer, std::span<const std::uint8_t> payload) {
    auto found = slots_.find(peer);
    if (found == slots_.end()) return false;
    Slot& s = *found->second;
    if (s.state != PeerState::up || !s.session || !s.path) return false;
    send_control(s, kFramePayload, *s.path, payload, s.path_socket);
    return true;
}

bool PeerManager::is_up(const identity::PeerId& peer) const {
    auto found = slots_.find(peer);
    return found != slots_.end() && found->second->state == PeerState::up;
}

void PeerManager::suspect(const identity::PeerId& peer) {
    auto found = slots_.find(peer);
    if (found == slots_.end()) return;
    Slot& s = *found->second;
    if (s.state != PeerState::up || !s.session || Clock::now() - s.last_received < kSilenceBeforeSuspicion) return;
    spdlog::info("{} stopped answering; rebuilding the session", s.id.to_text());
    drop_session(s);
    s.detail = "peer stopped answering";
    set_state(s, PeerState::down);
    refresh_reflection();  // our NAT mapping may be what changed
    s.retry_at = Clock::now();
    connect(s.id);
}

void PeerManager::on_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
    if (transport::is_relay_client_packet(datagram)) {
        relays_->on_packet(datagram, from);
        return;
    }
    handle_packet(datagram, from, {});
}

void PeerManager::handle_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from,
                                const LocalSocket& via) {
    auto packet = transport::parse_packet(datagram);
    if (!packet) return;
    if (auto* frame = std::get_if<transport::Frame>(&packet.value())) {
        on_frame(*frame, from, via);
    } else if (auto* response = std::get_if<transport::ReflectResponse>(&packet.value())) {
        if (!via.pool && !via.relay) on_reflect_response(*response, from);
    } else if (auto* handshake = std::get_if<transport::Handshake>(&packet.value())) {
        // Connect requests and responses are taken from relays only (else
        // they come through the DHT inbox); Noise authenticates them.
        if (via.relay) on_inbox_message({handshake->message.begin(), handshake->message.end()}, via.relay);
    }
}

void PeerManager::on_frame(const transport::Frame& frame, const identity::Endpoint& from, const LocalSocket& via) {
    auto found = by_index_.find(frame.header.receiver_index);
    if (found == by_index_.end() || !found->second->session ||
        found->second->session->local_index() != frame.header.receiver_index) {
        ++stats_.frames_rejected;
        return;
    }
    Slot& s = *found->second;
    auto plaintext = s.session->open(frame);
    if (!plaintext || plaintext->empty()) {
        ++stats_.frames_rejected;
        return;
    }
    const auto now = Clock::now();
    s.last_received = now;
    const std::uint8_t kind = (*plaintext)[0];
    const auto body = std::span<const std::uint8_t>(*plaintext).subspan(1);
    switch (kind) {
        case kFrameProbe:
            send_control(s, kFrameProbeAck, from, body, via);
            // A direct probe while we use a relay: the direct path works.
            if (!s.path || (relayed(s) && !via.relay)) path_found(s, from, via);
            break;
        case kFrameProbeAck: {
            // An answer through a relay while a direct path is in use says
            // nothing about the direct path.
            const bool about_current = !(s.path && !relayed(s) && via.relay);
            if (about_current && body.size() == 8) s.rtt_ms = static_cast<double>(steady_ns() - get_be64(body)) / 1e6;
            if (about_current) s.keepalive_unanswered = false;
            if (!s.path || s.state != PeerState::up || (relayed(s) && !via.relay)) path_found(s, from, via);
            break;
        }
        case kFrameKeepalive:
        case kFramePayload:
            // An authenticated frame from a new address: the peer's NAT mapping
            // changed (or it moved); follow it, as WireGuard does. Probes do not
            // move the path: during punching they come from every candidate.
            // A relay never takes over from a working direct path this way.
            if ((s.path != from || s.path_socket != via) && !(s.path && !relayed(s) && via.relay && !s.keepalive_unanswered)) {
                if (s.path) spdlog::info("path to {} moved: {} -> {}", s.id.to_text(), s.path->to_string(), from.to_string());
                path_found(s, from, via);
            }
            // A keepalive carrying a timestamp asks for an answer (path liveness).
            if (kind == kFrameKeepalive && body.size() == 8) send_control(s, kFrameProbeAck, from, body, via);
            if (kind == kFramePayload && callbacks_.on_payload) callbacks_.on_payload(s.id, body);
            break;
        default:
            ++stats_.frames_rejected;
    }
}

// ---------------------------------------------------------------------------
// Address reflection: other keyhole nodes tell us the address they see.

void PeerManager::send_reflect_requests() {
    const auto now = Clock::now();
    for (auto it = reflect_pending_.begin(); it != reflect_pending_.end();)
        it = now - it->second > 10s ? reflect_pending_.erase(it) : std::next(it);
    // Nodes that answered before first (most of the DHT may sit behind NATs
    // that drop our requests), then others at random, one per IP address.
    std::vector<identity::Endpoint> targets;
    const auto add = [&targets](const identity::Endpoint& node) {
        if (targets.size() >= kReflectors) return;
        for (const auto& known : targets)
            if (known.address_string() == node.address_string()) return;
        targets.push_back(node);
    };
    for (const auto& node : answered_reflectors_) {
        if (targets.size() >= kReflectors / 2) break;
        add(node);
    }
    // Bootstrap nodes given as addresses are public by definition.
    for (const auto& entry : config_.bootstrap)
        if (auto node = identity::Endpoint::parse(entry); node && node->is_v4()) add(node.value());
    auto others = dht_.known_nodes(kReflectorCandidates);
    for (std::size_t i = others.size(); i > 1; --i)
        std::swap(others[i - 1], others[randombytes_uniform(static_cast<std::uint32_t>(i))]);
    for (const auto& node : others) add(node);
    for (const auto& node : targets) {
        transport::ReflectNonce nonce{};
        randombytes_buf(nonce.data(), nonce.size());
        reflect_pending_[nonce] = now;
        udp_.send_to(node, transport::encode_reflect_request(nonce));
    }
}

void PeerManager::on_reflect_response(const transport::ReflectResponse& response, const identity::Endpoint& from) {
    if (reflect_pending_.erase(response.nonce) == 0) return;  // not asked, or asked long ago
    const auto now = Clock::now();
    const auto before = nat_.public_endpoint(now);
    nat_.set_local_endpoints(host_candidates());
    nat_.observed(from, response.observed, now);
    std::erase(answered_reflectors_, from);
    answered_reflectors_.insert(answered_reflectors_.begin(), from);
    if (answered_reflectors_.size() > kReflectors) answered_reflectors_.pop_back();
    fresh_reflection_until_ = {};  // our current mapping is known again
    if (before != response.observed && nat_class() != identity::NatClass::endpoint_dependent)
        spdlog::info("public endpoint as other nodes see it: {}", response.observed.to_string());
    if (const auto nat = nat_.nat_class(now); nat != announced_nat_) {
        spdlog::info("NAT: {} (public {}, {} reflector(s))", identity::to_string(nat), response.observed.to_string(),
                     nat_.reflectors(now));
        announced_nat_ = nat;
    }
}

std::optional<identity::Endpoint> PeerManager::public_endpoint() const { return nat_.public_endpoint(Clock::now()); }

identity::NatClass PeerManager::nat_class() const { return nat_.nat_class(Clock::now()); }

void PeerManager::refresh_reflection() {
    // A lost path usually means our NAT mapping changed: learn the new one
    // before telling the peer where to punch.
    fresh_reflection_until_ = Clock::now() + kRemapWait;
    next_reflect_ = Clock::now();
    send_reflect_requests();
}

std::vector<identity::Endpoint> PeerManager::host_candidates() const {
    std::vector<identity::Endpoint> candidates;
    const auto local = udp_.local_endpoint();
    const bool wildcard = local.is_v4() && local.address_string() == "0.0.0.0";
    if (!wildcard) {
        candidates.push_back(local);
    } else if (ifaddrs* list = nullptr; getifaddrs(&list) == 0) {
        for (auto* entry = list; entry && candidates.size() < kMaxCandidates - 1; entry = entry->ifa_next) {
            if (!entry->ifa_addr || entry->ifa_addr->sa_family != AF_INET) continue;
            if (!(entry->ifa_flags & IFF_UP) || (entry->ifa_flags & IFF_LOOPBACK)) continue;
            auto address = identity::Endpoint::from_sockaddr(entry->ifa_addr, sizeof(sockaddr_in));
            if (!address) continue;
            std::array<std::uint8_t, 4> bytes{};
            std::copy_n(address->address_bytes(), 4, bytes.begin());
            candidates.push_back(identity::Endpoint::ipv4(bytes, local.port()));
        }
        freeifaddrs(list);
    }
    return candidates;
}

std::vector<identity::Endpoint> PeerManager::our_candidates() const {
    auto candidates = host_candidates();
    const auto reflexive = public_endpoint();
    if (reflexive && std::find(candidates.begin(), candidates.end(), *reflexive) == candidates.end())
        candidates.push_back(*reflexive);
    return candidates;
}

// ---------------------------------------------------------------------------
// Timers

void PeerManager::schedule_tick() {
    if (!running_) return;
    bool punching = false;
    for (const auto& [id, s] : slots_) punching = punching || (s->session && s->punching && (!s->path || relayed(*s)));
    const auto now = Clock::now();
    const bool awaiting_reflection =
        (nat_class() == identity::NatClass::unknown && now < started_at_ + kReflectionGrace) || now < fresh_reflection_until_;
    const auto delay = punching ? kTickBusy : awaiting_reflection ? kStartupReflectRetry : kTickIdle;
    const auto when = now + delay;
    if (tick_timer_.expiry() > now && tick_timer_.expiry() <= when) return;  // sooner one pending
    tick_timer_.expires_at(when);
    tick_timer_.async_wait([this](const asio::error_code& error) {
        if (!error && running_) tick();
    });
}

void PeerManager::send_punch_probes(Slot& s, Clock::time_point now) {
    thread_local std::minstd_rand jitter(static_cast<unsigned>(steady_ns()));
    std::vector<std::uint8_t> stamp;
    put_be64(stamp, steady_ns());
    if (now >= s.next_probe) {
        for (const auto& candidate : s.candidates) {
            send_control(s, kFrameProbe, candidate, stamp);
            ++stats_.punch_probes_sent;
        }
        s.next_probe = now + kPunchInterval + std::chrono::milliseconds(jitter() % 21) - 10ms;
    }
    // Through the peer's relays while there is no path at all.
    if (!s.path && now >= s.next_relay_probe) {
        for (std::size_t i = 0; i < s.peer_relays.size() && i < kRelaysPerPeer; ++i) {
            const auto& relay = s.peer_relays[i];
            send_control(s, kFrameProbe, relay.endpoint, stamp,
                         LocalSocket{nullptr, 0, RelayHop{relay.endpoint, transport::kReplyChannel, relay.relay}});
        }
        s.next_relay_probe = now + kRelayProbeInterval;
    }
    // Endpoint-dependent side: one probe from every extra socket to the
    // peer's mapping opens a new mapping per socket; repeated for lost packets.
    if (s.probe_pool && s.pool_rounds < kPoolRounds && now >= s.next_pool_round) {
        for (std::size_t socket = 0; socket < s.probe_pool->size(); ++socket)
            for (const auto& target : s.pool_targets) {
                send_control(s, kFrameProbe, target, stamp, LocalSocket{s.probe_pool, socket, std::nullopt});
                ++stats_.punch_probes_sent;
                ++stats_.birthday_probes_sent;
            }
        ++s.pool_rounds;
        s.next_pool_round = now + kPoolRoundEvery;
    }
    // Endpoint-independent side: guessed ports of the peer's address; each
    // probe also opens our NAT for answers from that port.
    for (std::size_t i = 0; i < kSprayPerTick && s.spray_next < s.spray_ports.size(); ++i, ++s.spray_next) {
        for (const auto& address : s.spray_addresses) {
            std::array<std::uint8_t, 4> bytes{};
            std::copy_n(address.address_bytes(), bytes.size(), bytes.begin());
            send_control(s, kFrameProbe, identity::Endpoint::ipv4(bytes, s.spray_ports[s.spray_next]), stamp);
            ++stats_.punch_probes_sent;
            ++stats_.birthday_probes_sent;
        }
    }
    if (!s.spray_ports.empty() && s.spray_next == s.spray_ports.size()) {
        if (s.spray_rounds < kSprayRounds) {
            s.spray_ports = random_ports(kBirthdayPorts);
            s.spray_next = 0;
            ++s.spray_rounds;
        } else {
            s.spray_ports.clear();
        }
    }
}

void PeerManager::path_lost(Slot& s) {
    ++stats_.paths_lost;
    spdlog::info("path to {} via {} stopped answering; looking for a new one", s.id.to_text(),
                 s.path ? s.path->to_string() : "?");
    drop_session(s);
    s.detail = "path lost; reconnecting";
    set_state(s, PeerState::down);
    refresh_reflection();
    s.retry_at = Clock::now();
    s.backoff = kFirstRetry;
    connect(s.id);
}

void PeerManager::tick() {
    const auto now = Clock::now();
    const auto keepalive = std::chrono::seconds(config_.keepalive_interval_s);
    const auto dead_after = keepalive * kKeepalivesMissedBeforeDead + 2s;

    if (now >= next_reflect_) {
        send_reflect_requests();
        if (nat_class() != identity::NatClass::unknown && now >= fresh_reflection_until_) {
            reflect_retry_ = kReflectEvery;
        } else if (now < started_at_ + kReflectionGrace || now < fresh_reflection_until_) {
            // Connect requests wait for our public endpoint: ask often.
            reflect_retry_ = std::chrono::duration_cast<std::chrono::milliseconds>(kStartupReflectRetry);
        } else {
            reflect_retry_ = reflect_retry_.count() == 0 || reflect_retry_ >= kReflectEvery
                                 ? std::chrono::duration_cast<std::chrono::milliseconds>(kFirstReflectRetry)
                                 : std::min(reflect_retry_ * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kReflectEvery));
        }
        next_reflect_ = now + reflect_retry_;
    }
    check_relay_need(now);
    relays_->tick(now);
    while (!hello_order_.empty() && now - hello_order_.front().first > kHelloMemory) {
        seen_hellos_.erase(hello_order_.front().second);
        hello_order_.pop_front();
    }

    for (auto& [id, slot_ptr] : slots_) {
        Slot& s = *slot_ptr;
        if (s.state == PeerState::connecting && s.initiator && now > s.handshake_deadline) {
            failed(s, "no connect response within " + std::to_string(kHandshakeTimeout.count()) + " s");
            continue;
        }
        if (s.session && s.punching && (!s.path || relayed(s))) {
            if (now > s.punch_until && s.path) {
                drop_probing(s);  // no direct path: the session stays on the relay
                s.punching = false;
            } else if (now > s.punch_until) {
                const bool both_dependent = nat_class() == identity::NatClass::endpoint_dependent &&
                                            s.peer_nat == identity::NatClass::endpoint_dependent;
                const bool relays_known = !s.peer_relays.empty() || !our_relays().empty();
                drop_session(s);
                s.detail = both_dependent ? "no direct path: both NATs are endpoint-dependent (symmetric); waiting for a relay"
                                          : "no direct path found by punching within " +
                                                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kPunchDuration).count()) +
                                                " s; waiting for a relay";
                if (relays_known) s.detail = "no path found directly or through a relay; trying again";
                relays_->need("punching to " + s.id.to_text() + " found no direct path");
                s.retry_at = now + (relays_known ? kNoPathRetryWithRelays : kNoPathRetry);
                set_state(s, PeerState::no_path);
                continue;
            } else {
                send_punch_probes(s, now);
            }
        }
        if (s.state == PeerState::up && s.session && s.path) {
            if (now - s.last_received > dead_after) {
                spdlog::info("no frames from {} for {} s: path dead", s.id.to_text(),
                             std::chrono::duration_cast<std::chrono::seconds>(now - s.last_received).count());
                drop_session(s);
                s.detail = "path dead";
                set_state(s, PeerState::down);
                s.retry_at = now;
            } else if (s.keepalive_unanswered && now - s.unanswered_since > kPathLossTimeout) {
                path_lost(s);
                continue;
            } else if (s.session->wants_rekey(now) && !s.initiator && key_.id() < s.id) {
                // A fresh handshake replaces the session. Until it is up, sends
                // wait and unacknowledged messages are retransmitted after it.
                s.state = PeerState::idle;
                connect(s.id);
            } else if (s.keepalive_unanswered ? now - s.last_keepalive >= kKeepaliveResend : now - s.last_sent >= keepalive) {
                // Keepalives carry a timestamp and are answered like probes: an
                // answer proves the path works both ways.
                std::vector<std::uint8_t> stamp;
                put_be64(stamp, steady_ns());
                send_control(s, kFrameKeepalive, *s.path, stamp, s.path_socket);
                if (!s.keepalive_unanswered) s.unanswered_since = now;
                s.keepalive_unanswered = true;
                s.last_keepalive = now;
            }
        }
        if (s.wanted && (s.state == PeerState::down || s.state == PeerState::idle || s.state == PeerState::no_path) &&
            now >= s.retry_at)
            connect(s.id);
    }
    schedule_tick();
}

// ---------------------------------------------------------------------------
// Relays

void PeerManager::check_relay_need(Clock::time_point now) {
    if (relays_->needed() || !config_.relay_fallback) return;
    if (nat_class() == identity::NatClass::endpoint_dependent)
        relays_->need("our NAT is endpoint-dependent (symmetric): direct paths need luck");
    else if (now > started_at_ + kReflectionGrace + 2s && !public_endpoint())
        relays_->need("no node answers our UDP: it may be blocked on this network");
}

std::vector<identity::RelayRef> PeerManager::our_relays() const { return relays_->granted(); }

void PeerManager::on_relays_changed(const std::vector<identity::RelayRef>& relays) {
    std::string list;
    for (const auto& relay : relays) list += (list.empty() ? "" : ", ") + relay.relay.to_text() + " at " + relay.endpoint.to_string();
    spdlog::info("relays in use: {}", list.empty() ? "none" : list);
    if (callbacks_.on_relays_changed) callbacks_.on_relays_changed(relays);
    // Peers we gave up on can be reached now (or reach us) through them.
    const auto now = Clock::now();
    for (auto& [id, s] : slots_)
        if (s->wanted && (s->state == PeerState::no_path || s->state == PeerState::down)) s->retry_at = now;
}

void PeerManager::on_relay_lost(const identity::Endpoint& relay_endpoint) {
    std::vector<Slot*> affected;
    for (auto& [id, s] : slots_)
        if (s->session && relayed(*s) && s->path_socket.relay->endpoint == relay_endpoint) affected.push_back(s.get());
    for (auto* s : affected) path_lost(*s);
}

std::vector<PeerInfo> PeerManager::peers() const {
    std::vector<PeerInfo> result;
    for (const auto& [id, s] : slots_) result.push_back(info(*s));
    return result;
}

std::size_t PeerManager::sessions_up() const {
    return static_cast<std::size_t>(
        std::count_if(slots_.begin(), slots_.end(), [](const auto& entry) { return entry.second->state == PeerState::up; }));
}

}  // namespace keyhole::node
