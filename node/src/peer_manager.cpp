#include "keyhole/node/peer_manager.h"

#include <algorithm>
#include <random>

#include <ifaddrs.h>
#include <net/if.h>
#include <sodium.h>

#include <spdlog/spdlog.h>

#include "connect_payload.h"

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

}  // namespace

const char* to_string(PeerState state) {
    switch (state) {
        case PeerState::idle: return "idle";
        case PeerState::looking_up: return "looking_up";
        case PeerState::connecting: return "connecting";
        case PeerState::up: return "up";
        case PeerState::down: return "down";
    }
    return "idle";
}

struct PeerManager::Slot {
    identity::PeerId id;
    PeerState state = PeerState::idle;
    // Our connect request in flight (we are the initiator).
    std::unique_ptr<transport::noise::Initiator> initiator;
    std::uint32_t handshake_index = 0;
    Clock::time_point handshake_deadline{};
    // The established session and its paths.
    std::unique_ptr<transport::SecureSession> session;
    std::vector<identity::Endpoint> candidates;
    std::optional<identity::Endpoint> path;
    Clock::time_point punch_until{};
    Clock::time_point next_probe{};
    Clock::time_point last_received{};
    Clock::time_point last_sent{};
    std::optional<double> rtt_ms;
    // After a failure: when to try again.
    Clock::time_point retry_at{};
    std::chrono::seconds backoff = kFirstRetry;
    bool wanted = false;
    std::uint64_t attempt = 0;  // invalidates callbacks of older attempts
};

PeerManager::PeerManager(asio::io_context& io, transport::UdpPort& udp, dht::DhtNode& dht,
                         const identity::KeyPair& key, const DaemonConfig& config, PeerCallbacks callbacks)
    : io_(io), udp_(udp), dht_(dht), key_(key), noise_keys_(transport::noise::KeyPair::from_identity(key)),
      config_(config), callbacks_(std::move(callbacks)), tick_timer_(io) {}

PeerManager::~PeerManager() { stop(); }

void PeerManager::start() {
    running_ = true;
    started_at_ = Clock::now();
    dht_.listen_inbox(key_.id(), [this](std::vector<std::uint8_t> message) {
        if (running_) on_inbox_message(std::move(message));
    });
    schedule_tick();
}

void PeerManager::stop() {
    running_ = false;
    tick_timer_.cancel();
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
    if (slot.session)
        result.last_seen_s = std::chrono::duration<double>(Clock::now() - slot.last_received).count();
    return result;
}

void PeerManager::set_state(Slot& slot, PeerState state) {
    if (slot.state == state) return;
    slot.state = state;
    if (state == PeerState::up)
        spdlog::info("session with {} up: direct via {}", slot.id.to_text(), slot.path ? slot.path->to_string() : "?");
    if (state == PeerState::down) spdlog::info("session with {} down", slot.id.to_text());
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
    dht_.lookup(peer, std::chrono::seconds(config_.lookup_timeout_s),
                [this, peer, attempt](Result<identity::IdentityRecord> record) {
                    if (!running_) return;
                    auto& s = slot(peer);
                    if (s.attempt != attempt || s.state != PeerState::looking_up) return;
                    if (!record) {
                        failed(s, "lookup: " + record.error());
                        return;
                    }
                    start_handshake_when_ready(peer, attempt, record.value());
                });
}

void PeerManager::start_handshake_when_ready(const identity::PeerId& peer, std::uint64_t attempt,
                                             const identity::IdentityRecord& record) {
    auto& s = slot(peer);
    if (!running_ || s.attempt != attempt || s.state != PeerState::looking_up) return;
    if (public_endpoint_ || Clock::now() >= started_at_ + kReflectionGrace) {
        start_handshake(s, record);
        return;
    }
    auto pause = std::make_shared<asio::steady_timer>(io_, 100ms);
    pause->async_wait([this, peer, attempt, record, pause](const asio::error_code& error) {
        if (!error) start_handshake_when_ready(peer, attempt, record);
    });
}

void PeerManager::start_handshake(Slot& s, const identity::IdentityRecord&) {
    auto responder_static = transport::noise::static_key_of(s.id);
    if (!responder_static) {
        failed(s, responder_static.error());
        return;
    }
    if (s.handshake_index) by_index_.erase(s.handshake_index);
    s.handshake_index = new_local_index();
    s.initiator = std::make_unique<transport::noise::Initiator>(noise_keys_, responder_static.value(), prologue());
    Hello hello{key_.id(), s.handshake_index, wall_ms(), our_candidates()};
    auto message1 = s.initiator->write_message1(encode_hello(hello));
    if (!message1) {
        failed(s, message1.error());
        return;
    }
    by_index_[s.handshake_index] = &s;
    s.handshake_deadline = Clock::now() + kHandshakeTimeout;
    std::vector<std::uint8_t> inbox{kInboxHello};
    inbox.insert(inbox.end(), message1->begin(), message1->end());
    dht_.send_to_inbox(s.id, std::move(inbox));
    ++stats_.connect_requests_sent;
    set_state(s, PeerState::connecting);
    spdlog::debug("connect request sent to {} ({} candidates)", s.id.to_text(), hello.candidates.size());
}

void PeerManager::failed(Slot& s, const std::string& why) {
    spdlog::info("connecting to {} failed: {}; next try in {} s", s.id.to_text(), why, s.backoff.count());
    if (s.handshake_index && !s.session) by_index_.erase(s.handshake_index);
    s.initiator.reset();
    s.retry_at = Clock::now() + s.backoff;
    s.backoff = std::min(s.backoff * 2, std::chrono::duration_cast<std::chrono::seconds>(kMaxRetry));
    set_state(s, PeerState::down);
}

void PeerManager::on_inbox_message(std::vector<std::uint8_t> message) {
    if (message.empty()) return;
    const auto body = std::span<const std::uint8_t>(message).subspan(1);
    if (message[0] == kInboxHello) {
        on_hello(body);
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
    if (!reply || !keys) {
        ++stats_.handshakes_rejected;
        failed(s, reply ? keys.error() : reply.error());
        return;
    }
    session_established(s,
                        std::make_unique<transport::SecureSession>(s.id, s.handshake_index,
                                                                   reply->responder_index, std::move(keys).value()),
                        reply->candidates);
}

// ---------------------------------------------------------------------------
// Responder

void PeerManager::on_hello(std::span<const std::uint8_t> noise_message) {
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
    }
    const std::uint32_t local_index = new_local_index();
    auto message2 = responder.write_message2(encode_reply({local_index, now_ms, our_candidates()}));
    auto keys = responder.split();
    if (!message2 || !keys) {
        ++stats_.handshakes_rejected;
        return;
    }
    std::vector<std::uint8_t> inbox{kInboxReply};
    for (int shift = 24; shift >= 0; shift -= 8) inbox.push_back(static_cast<std::uint8_t>(hello->initiator_index >> shift));
    inbox.insert(inbox.end(), message2->begin(), message2->end());
    dht_.send_to_inbox(hello->initiator, std::move(inbox));
    s.handshake_index = local_index;
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
    by_index_[session->local_index()] = &s;
    s.session = std::move(session);
    ++stats_.handshakes_completed;
    s.candidates = std::move(candidates);
    s.path.reset();
    s.rtt_ms.reset();
    const auto now = Clock::now();
    s.punch_until = now + kPunchDuration;
    s.next_probe = now;
    s.last_received = now;
    s.backoff = kFirstRetry;
    set_state(s, PeerState::connecting);
    spdlog::debug("handshake with {} done; punching {} candidate(s)", s.id.to_text(), s.candidates.size());
    schedule_tick();
}

void PeerManager::send_control(Slot& s, std::uint8_t kind, const identity::Endpoint& to,
                               std::span<const std::uint8_t> body) {
    std::vector<std::uint8_t> plaintext{kind};
    plaintext.insert(plaintext.end(), body.begin(), body.end());
    auto datagram = s.session->seal(plaintext);
    if (!datagram) return;
    udp_.send_to(to, datagram.value());
    s.last_sent = Clock::now();
}

bool PeerManager::send(const identity::PeerId& peer, std::span<const std::uint8_t> payload) {
    auto found = slots_.find(peer);
    if (found == slots_.end()) return false;
    Slot& s = *found->second;
    if (s.state != PeerState::up || !s.session || !s.path) return false;
    send_control(s, kFramePayload, *s.path, payload);
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
    by_index_.erase(s.session->local_index());
    s.session.reset();
    s.path.reset();
    set_state(s, PeerState::down);
    s.retry_at = Clock::now();
    connect(s.id);
}

void PeerManager::on_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
    auto packet = transport::parse_packet(datagram);
    if (!packet) return;
    if (auto* frame = std::get_if<transport::Frame>(&packet.value())) {
        on_frame(*frame, from);
    } else if (auto* response = std::get_if<transport::ReflectResponse>(&packet.value())) {
        on_reflect_response(*response, from);
    }
}

void PeerManager::on_frame(const transport::Frame& frame, const identity::Endpoint& from) {
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
            send_control(s, kFrameProbeAck, from, body);
            if (!s.path) {
                s.path = from;
                set_state(s, PeerState::up);
            }
            break;
        case kFrameProbeAck:
            if (body.size() == 8) s.rtt_ms = static_cast<double>(steady_ns() - get_be64(body)) / 1e6;
            if (!s.path || s.state != PeerState::up) {
                s.path = from;
                set_state(s, PeerState::up);
            }
            break;
        case kFrameKeepalive:
        case kFramePayload:
            // An authenticated frame from a new address: the peer's NAT mapping
            // changed (or it moved); follow it, as WireGuard does.
            if (s.path != from) {
                if (s.path) spdlog::info("path to {} moved: {} -> {}", s.id.to_text(), s.path->to_string(), from.to_string());
                s.path = from;
                set_state(s, PeerState::up);
            }
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
    for (const auto& node : dht_.known_nodes(4)) {
        transport::ReflectNonce nonce{};
        randombytes_buf(nonce.data(), nonce.size());
        reflect_pending_[nonce] = now;
        udp_.send_to(node, transport::encode_reflect_request(nonce));
    }
}

void PeerManager::on_reflect_response(const transport::ReflectResponse& response, const identity::Endpoint&) {
    if (reflect_pending_.erase(response.nonce) == 0) return;  // not asked, or asked long ago
    if (public_endpoint_ != response.observed)
        spdlog::info("public endpoint as other nodes see it: {}", response.observed.to_string());
    public_endpoint_ = response.observed;
}

std::vector<identity::Endpoint> PeerManager::our_candidates() const {
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
    if (public_endpoint_ && std::find(candidates.begin(), candidates.end(), *public_endpoint_) == candidates.end())
        candidates.push_back(*public_endpoint_);
    return candidates;
}

// ---------------------------------------------------------------------------
// Timers

void PeerManager::schedule_tick() {
    if (!running_) return;
    bool punching = false;
    for (const auto& [id, s] : slots_) punching = punching || (s->session && !s->path);
    const bool awaiting_reflection = !public_endpoint_ && Clock::now() < started_at_ + kReflectionGrace;
    const auto delay = punching ? kTickBusy : awaiting_reflection ? kStartupReflectRetry : kTickIdle;
    const auto when = Clock::now() + delay;
    if (tick_timer_.expiry() > Clock::now() && tick_timer_.expiry() <= when) return;  // sooner one pending
    tick_timer_.expires_at(when);
    tick_timer_.async_wait([this](const asio::error_code& error) {
        if (!error && running_) tick();
    });
}

void PeerManager::tick() {
    const auto now = Clock::now();
    thread_local std::minstd_rand jitter(static_cast<unsigned>(steady_ns()));
    const auto keepalive = std::chrono::seconds(config_.keepalive_interval_s);
    const auto dead_after = keepalive * kKeepalivesMissedBeforeDead + 2s;

    if (now >= next_reflect_) {
        send_reflect_requests();
        if (public_endpoint_) {
            reflect_retry_ = kReflectEvery;
        } else if (now < started_at_ + kReflectionGrace) {
            // Connect requests wait for our public endpoint during start-up: ask often.
            reflect_retry_ = std::chrono::duration_cast<std::chrono::milliseconds>(kStartupReflectRetry);
        } else {
            reflect_retry_ = reflect_retry_.count() == 0 ? std::chrono::duration_cast<std::chrono::milliseconds>(kFirstReflectRetry)
                                                         : std::min(reflect_retry_ * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kReflectEvery));
        }
        next_reflect_ = now + reflect_retry_;
    }
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
        if (s.session && !s.path) {
            if (now > s.punch_until) {
                // TODO(relay issue): fall back to a relay here.
                by_index_.erase(s.session->local_index());
                s.session.reset();
                failed(s, "no direct path found by punching");
                continue;
            }
            if (now >= s.next_probe) {
                std::vector<std::uint8_t> stamp;
                put_be64(stamp, steady_ns());
                for (const auto& candidate : s.candidates) {
                    send_control(s, kFrameProbe, candidate, stamp);
                    ++stats_.punch_probes_sent;
                }
                s.next_probe = now + kPunchInterval + std::chrono::milliseconds(jitter() % 21) - 10ms;
            }
        }
        if (s.state == PeerState::up && s.session && s.path) {
            if (now - s.last_received > dead_after) {
                spdlog::info("no frames from {} for {} s: path dead", s.id.to_text(),
                             std::chrono::duration_cast<std::chrono::seconds>(now - s.last_received).count());
                by_index_.erase(s.session->local_index());
                s.session.reset();
                s.path.reset();
                set_state(s, PeerState::down);
                s.retry_at = now;
            } else if (s.session->wants_rekey(now) && !s.initiator && key_.id() < s.id) {
                // A fresh handshake replaces the session. Until it is up, sends
                // wait and unacknowledged messages are retransmitted after it.
                s.state = PeerState::idle;
                connect(s.id);
            } else if (now - s.last_sent >= keepalive) {
                send_control(s, kFrameKeepalive, *s.path);
            }
        }
        if (s.wanted && (s.state == PeerState::down || s.state == PeerState::idle) && now >= s.retry_at)
            connect(s.id);
    }
    schedule_tick();
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
