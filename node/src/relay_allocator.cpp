#include "relay_allocator.h"

#include <algorithm>

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "keyhole/transport/packet.h"

namespace keyhole::node {

namespace {

using namespace std::chrono_literals;

constexpr auto kDiscoveryTimeout = 3s;
constexpr auto kRediscoverEvery = 60s;      // while fewer than kWanted relays are held
constexpr auto kCandidatePingEvery = 1s;    // until a candidate answers (at most kUdpPingsBeforeTls)
constexpr int kUdpPingsBeforeTls = 3;       // unanswered UDP pings before trying TLS
constexpr auto kFailedRelayPause = 60s;     // a dead or refusing relay is not chosen again before this
constexpr std::size_t kMaxCandidates = 32;
constexpr int kMissedPingsBeforeDead = 3;
constexpr std::size_t kMaxContactedRelays = 256;  // peers' relays we sent through
constexpr auto kDirectoryTimeout = 10s;
constexpr auto kRecordThroughRelayEvery = 5min;  // relays store it once; we repeat it

double ms_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

}  // namespace

struct RelayAllocator::Candidate {
    identity::PeerId id;
    identity::Endpoint udp;
    identity::Endpoint tcp;
    std::optional<double> rtt_ms;  // from the latest answered ping
    int pings_unanswered = 0;
    Clock::time_point next_ping{};
    Clock::time_point avoid_until{};
};

struct RelayAllocator::Allocation {
    Allocation(const identity::KeyPair& key, const Candidate& from) : client(key, from.id), id(from.id), udp(from.udp), tcp(from.tcp) {}
    transport::RelayAllocationClient client;
    identity::PeerId id;
    identity::Endpoint udp;
    identity::Endpoint tcp;
    bool use_tls = false;
    std::shared_ptr<transport::TlsStream> stream;  // when use_tls
    std::optional<double> rtt_ms;
    Clock::time_point since{};
    Clock::time_point last_answer{};  // any packet from the relay
    Clock::time_point next_ping{};
    bool was_granted = false;
};

RelayAllocator::RelayAllocator(asio::io_context& io, transport::UdpPort& udp, dht::DhtNode& dht,
                               const identity::KeyPair& key, const DaemonConfig& config,
                               RelayAllocatorCallbacks callbacks)
    : io_(io), udp_(udp), dht_(dht), key_(key), config_(config), callbacks_(std::move(callbacks)) {}

RelayAllocator::~RelayAllocator() { stop(); }

void RelayAllocator::stop() {
    *alive_ = false;
    for (auto& allocation : allocations_)
        if (allocation->stream) allocation->stream->close();
}

void RelayAllocator::need(const std::string& why) {
    if (needed_ || !config_.relay_fallback) return;
    needed_ = true;
    spdlog::info("using relays: {}", why);
    for (const auto& text : config_.relays)
        if (auto relay = parse_configured_relay(text)) merge(relay->id, relay->udp, relay->tcp);
}

RelayAllocator::Candidate* RelayAllocator::candidate(const identity::PeerId& id) {
    for (auto& c : candidates_)
        if (c->id == id) return c.get();
    return nullptr;
}

void RelayAllocator::merge(const identity::PeerId& id, const identity::Endpoint& udp, const identity::Endpoint& tcp) {
    if (id == key_.id() || !udp.is_v4()) return;  // never our own relay
    if (auto* known = candidate(id)) {
        known->udp = udp;
        known->tcp = tcp;
        return;
    }
    if (candidates_.size() >= kMaxCandidates) return;
    auto added = std::make_unique<Candidate>();
    added->id = id;
    added->udp = udp;
    added->tcp = tcp;
    candidates_.push_back(std::move(added));
}

void RelayAllocator::discover(Clock::time_point now) {
    if (discovering_ || now < next_discovery_) return;
    discovering_ = true;
    next_discovery_ = now + kRediscoverEvery;
    dht_.find_relays(kDiscoveryTimeout, [this, alive = alive_](std::vector<identity::RelayAnnouncement> found) {
        if (!*alive) return;
        discovering_ = false;
        for (const auto& announcement : found) merge(announcement.relay, announcement.udp, announcement.tcp);
        spdlog::debug("relay discovery: {} announcement(s), {} candidate(s)", found.size(), candidates_.size());
        // Ping the new ones now rather than at the next tick.
        const auto now = Clock::now();
        for (auto& c : candidates_)
            if (!c->rtt_ms && now >= c->next_ping) ping(*c, now);
    });
}

void RelayAllocator::ping(Candidate& c, Clock::time_point now) {
    transport::RelayNonce nonce{};
    randombytes_buf(nonce.data(), nonce.size());
    pings_[nonce] = {c.id, now};
    udp_.send_to(c.udp, transport::encode_allocate_request(key_.id(), nonce));
    ++c.pings_unanswered;
    c.next_ping = now + kCandidatePingEvery;
}

void RelayAllocator::choose(Clock::time_point now) {
    while (allocations_.size() < kWanted) {
        // Best measured round trip first; then, when UDP got no answer at all
        // (a network that drops it), one that offers TLS.
        Candidate* best = nullptr;
        bool tls = false;
        for (auto& c : candidates_) {
            if (now < c->avoid_until) continue;
            if (std::any_of(allocations_.begin(), allocations_.end(), [&](const auto& a) { return a->id == c->id; }))
                continue;
            if (c->rtt_ms && (!best || !best->rtt_ms || *c->rtt_ms < *best->rtt_ms)) {
                best = c.get();
                tls = false;
            }
        }
        if (!best) {
            for (auto& c : candidates_) {
                if (now < c->avoid_until || c->rtt_ms || c->pings_unanswered < kUdpPingsBeforeTls || c->tcp.empty())
                    continue;
                if (std::any_of(allocations_.begin(), allocations_.end(), [&](const auto& a) { return a->id == c->id; }))
                    continue;
                best = c.get();
                tls = true;
                break;
            }
        }
        if (!best) return;
        auto allocation = std::make_unique<Allocation>(key_, *best);
        allocation->since = now;
        allocation->last_answer = now;
        allocation->next_ping = now + std::chrono::seconds(config_.keepalive_interval_s);
        allocation->rtt_ms = best->rtt_ms;
        allocation->use_tls = tls;
        spdlog::info("allocating at relay {} ({} {}{})", best->id.to_text(), tls ? "TLS" : "UDP",
                     (tls ? best->tcp : best->udp).to_string(),
                     best->rtt_ms ? fmt::format(", rtt {:.1f} ms", *best->rtt_ms) : std::string());
        allocations_.push_back(std::move(allocation));
        if (tls) open_tls(*allocations_.back());
    }
}

void RelayAllocator::open_tls(Allocation& allocation) {
    const auto relay = allocation.id;
    transport::TlsStreamCallbacks callbacks;
    callbacks.on_ready = [this, alive = alive_, relay] {
        if (!*alive) return;
        spdlog::info("TLS connection to relay {} up", relay.to_text());
    };
    callbacks.on_packet = [this, alive = alive_, relay](std::span<const std::uint8_t> packet) {
        if (!*alive) return;
        for (auto& a : allocations_)
            if (a->id == relay && a->use_tls) {
                handle(packet, a->udp, a.get());
                return;
            }
    };
    callbacks.on_closed = [this, alive = alive_, relay](const std::string& reason) {
        if (!*alive) return;
        asio::post(io_, [this, alive, relay, reason] {
            if (*alive) drop_allocation(relay, "TLS connection closed: " + reason, Clock::now());
        });
    };
    allocation.stream = transport::TlsStream::connect(io_, allocation.tcp, relay, std::move(callbacks));
}

void RelayAllocator::send_to_relay(Allocation& allocation, std::span<const std::uint8_t> packet) {
    if (allocation.use_tls) {
        if (allocation.stream && allocation.stream->ready()) allocation.stream->send(packet);
        return;
    }
    udp_.send_to(allocation.udp, packet);
}

void RelayAllocator::tick(Clock::time_point now) {
    if (!needed_) return;
    if (allocations_.size() < kWanted) discover(now);
    for (auto& c : candidates_)
        if (!c->rtt_ms && now >= c->next_ping && c->pings_unanswered < kUdpPingsBeforeTls + 2 && now >= c->avoid_until)
            ping(*c, now);
    for (auto it = pings_.begin(); it != pings_.end();)
        it = now - it->second.sent > 10s ? pings_.erase(it) : std::next(it);

    // Dead relays first: nothing from it for three keepalive intervals (less
    // a tick, so the death is noticed within three intervals of the last
    // answer; pings go every interval, so that is two or three unanswered).
    const auto interval = std::chrono::seconds(config_.keepalive_interval_s);
    std::vector<identity::PeerId> dead;
    for (auto& a : allocations_) {
        const auto silence = now - a->last_answer;
        if (silence > interval * kMissedPingsBeforeDead - 500ms) dead.push_back(a->id);
    }
    for (const auto& id : dead) drop_allocation(id, "stopped answering", now);

    choose(now);
    for (auto& a : allocations_) {
        if (a->use_tls && (!a->stream || !a->stream->ready())) continue;
        if (auto request = a->client.poll(now)) send_to_relay(*a, *request);
        if (now >= a->next_ping) {
            transport::RelayNonce nonce{};
            randombytes_buf(nonce.data(), nonce.size());
            pings_[nonce] = {a->id, now};
            send_to_relay(*a, transport::encode_allocate_request(key_.id(), nonce));
            a->next_ping = now + interval;
        }
        if (a->client.state(now) == transport::RelayAllocationClient::State::refused) {
            const auto code = a->client.refusal();
            drop_allocation(a->id, std::string("refused: ") + (code ? transport::to_string(*code) : "?"), now);
            break;  // allocations_ changed; the next tick goes on
        }
    }
    report_if_changed();

    // Directory: lookups that got no answer, and our record for TLS relays.
    for (auto it = lookups_.begin(); it != lookups_.end();) {
        if (now - it->second.sent < kDirectoryTimeout) {
            ++it;
            continue;
        }
        auto done = std::move(it->second.done);
        it = lookups_.erase(it);
        done({});
    }
    if ((publish_record_now_ || now >= next_record_publish_) && callbacks_.signed_record) {
        const auto record = callbacks_.signed_record();
        bool sent = false;
        for (auto& a : allocations_)
            if (a->use_tls && a->client.state(now) == transport::RelayAllocationClient::State::granted && !record.empty()) {
                send_to_relay(*a, transport::encode_directory_publish(record));
                sent = true;
            }
        if (sent) {
            record_published_via_relay_ = true;
            publish_record_now_ = false;
            next_record_publish_ = now + kRecordThroughRelayEvery;
        }
    }
}

RelayAllocator::Allocation* RelayAllocator::directory_relay() {
    const auto now = Clock::now();
    for (auto& a : allocations_)
        if (a->use_tls && a->stream && a->stream->ready() &&
            a->client.state(now) == transport::RelayAllocationClient::State::granted)
            return a.get();
    return nullptr;
}

bool RelayAllocator::directory_available() const {
    return const_cast<RelayAllocator*>(this)->directory_relay() != nullptr;
}

void RelayAllocator::directory_lookup(const identity::PeerId& peer, std::function<void(std::vector<std::uint8_t>)> done) {
    auto* relay = directory_relay();
    if (!relay) {
        asio::post(io_, [done = std::move(done)] { done({}); });
        return;
    }
    transport::RelayNonce nonce{};
    randombytes_buf(nonce.data(), nonce.size());
    lookups_[nonce] = {std::move(done), Clock::now()};
    send_to_relay(*relay, transport::encode_directory_lookup(nonce, peer));
}

void RelayAllocator::directory_inbox(const identity::PeerId& peer, std::span<const std::uint8_t> message) {
    if (auto* relay = directory_relay()) send_to_relay(*relay, transport::encode_directory_inbox(peer, message));
}

void RelayAllocator::drop_allocation(const identity::PeerId& relay, const std::string& why, Clock::time_point now) {
    auto found = std::find_if(allocations_.begin(), allocations_.end(), [&](const auto& a) { return a->id == relay; });
    if (found == allocations_.end()) return;
    auto allocation = std::move(*found);
    allocations_.erase(found);
    if (allocation->stream) allocation->stream->close();
    if (auto* c = candidate(relay)) {
        c->avoid_until = now + kFailedRelayPause;
        c->rtt_ms.reset();
        c->pings_unanswered = 0;
    }
    const bool was_granted = allocation->was_granted;
    spdlog::warn("relay {} at {}: {}; {}", relay.to_text(), allocation->udp.to_string(), why,
                 was_granted ? "moving sessions away from it" : "trying another");
    if (was_granted) {
        ++relays_lost_;
        if (callbacks_.on_relay_lost) callbacks_.on_relay_lost(allocation->udp);
    }
    choose(now);
    report_if_changed();
}

void RelayAllocator::report_if_changed() {
    auto now_granted = granted();
    if (now_granted == reported_) return;
    reported_ = now_granted;
    if (callbacks_.on_relays_changed) callbacks_.on_relays_changed(reported_);
    publish_record_now_ = true;  // the record now lists other relays
}

std::vector<identity::RelayRef> RelayAllocator::granted() const {
    std::vector<identity::RelayRef> result;
    const auto now = Clock::now();
    for (const auto& a : allocations_)
        if (a->client.state(now) == transport::RelayAllocationClient::State::granted) result.push_back({a->id, a->udp});
    return result;
}

std::optional<identity::PeerId> RelayAllocator::relay_at(const identity::Endpoint& endpoint) const {
    for (const auto& a : allocations_)
        if (a->udp == endpoint) return a->id;
    for (const auto& c : candidates_)
        if (c->udp == endpoint) return c->id;
    return std::nullopt;
}

void RelayAllocator::on_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
    handle(datagram, from, nullptr);
}

void RelayAllocator::handle(std::span<const std::uint8_t> datagram, const identity::Endpoint& from,
                            Allocation* over_tls) {
    auto parsed = transport::parse_relay_packet(datagram);
    if (!parsed) return;
    const auto now = Clock::now();
    // Which of our allocations this came from (UDP: by source endpoint).
    Allocation* allocation = over_tls;
    if (!allocation)
        for (auto& a : allocations_)
            if (!a->use_tls && a->udp == from) allocation = a.get();
    if (allocation) allocation->last_answer = now;

    if (auto* challenge = std::get_if<transport::AllocateChallenge>(&parsed.value())) {
        if (auto ping = pings_.find(challenge->nonce); ping != pings_.end()) {
            const double rtt = ms_between(ping->second.sent, now);
            if (auto* c = candidate(ping->second.relay); c && (allocation || c->udp == from)) {
                c->rtt_ms = rtt;
                c->pings_unanswered = 0;
            }
            if (allocation && allocation->id == ping->second.relay) allocation->rtt_ms = rtt;
            pings_.erase(ping);
            return;
        }
        if (allocation)
            if (auto confirm = allocation->client.on_challenge(*challenge, now)) send_to_relay(*allocation, *confirm);
        return;
    }
    if (auto* result = std::get_if<transport::AllocateResult>(&parsed.value())) {
        if (!allocation || !allocation->client.on_result(*result, now)) return;
        if (result->code == transport::RelayCode::ok) {
            if (!allocation->was_granted)
                spdlog::info("relay {} granted an allocation ({} s, {} packets/s)", allocation->id.to_text(),
                             result->lifetime_s, result->packets_per_s);
            allocation->was_granted = true;
        } else {
            spdlog::info("relay {} refused an allocation: {}", allocation->id.to_text(), transport::to_string(result->code));
        }
        report_if_changed();
        return;
    }
    if (auto* deliver = std::get_if<transport::RelayDeliver>(&parsed.value())) {
        if (!transport::is_keyhole_packet(deliver->inner) || !callbacks_.on_deliver) return;
        // Only from relays: ours (any channel), or one we sent through
        // (channel 0, the answers). Anyone else could make us open forged
        // connect requests at line rate.
        const bool ours = allocation != nullptr;
        const bool sent_through = deliver->channel == transport::kReplyChannel && contacted_.contains(from);
        if (!ours && !sent_through) {
            ++deliveries_refused_;
            return;
        }
        RelayHop hop;
        hop.endpoint = allocation ? allocation->udp : from;
        hop.channel = deliver->channel;
        if (auto id = relay_at(hop.endpoint)) hop.relay = *id;
        callbacks_.on_deliver(deliver->inner, hop);
        return;
    }
    if (auto* record = std::get_if<transport::DirectoryRecord>(&parsed.value())) {
        auto pending = lookups_.find(record->nonce);
        if (!over_tls || pending == lookups_.end()) return;  // only asked over TLS
        auto done = std::move(pending->second.done);
        lookups_.erase(pending);
        done({record->signed_record.begin(), record->signed_record.end()});
        return;
    }
    if (auto* error = std::get_if<transport::RelayError>(&parsed.value())) {
        spdlog::debug("relay at {} reports: {}", from.to_string(), transport::to_string(error->code));
        // Our allocation is gone there (the relay restarted, or it expired
        // unnoticed) although the relay answers pings: allocate again now.
        if (allocation && error->code == transport::RelayCode::not_allocated &&
            allocation->client.state(now) != transport::RelayAllocationClient::State::requesting) {
            spdlog::info("relay {} no longer holds our allocation; allocating again", allocation->id.to_text());
            allocation->client = transport::RelayAllocationClient(key_, allocation->id);
            report_if_changed();
        }
    }
}

void RelayAllocator::send(const RelayHop& hop, const identity::PeerId& peer, std::span<const std::uint8_t> datagram) {
    const auto packet = hop.channel == transport::kReplyChannel ? transport::encode_relay_send(peer, datagram)
                                                                : transport::encode_relay_reply(hop.channel, datagram);
    if (hop.channel == transport::kReplyChannel) {
        // Its answers come back from there: remember it (bounded; relays are few).
        if (contacted_.size() >= kMaxContactedRelays && !contacted_.contains(hop.endpoint)) contacted_.clear();
        contacted_.insert(hop.endpoint);
    }
    for (auto& a : allocations_)
        if (a->use_tls && a->udp == hop.endpoint) {
            if (a->stream && a->stream->ready()) a->stream->send(packet);
            return;
        }
    udp_.send_to(hop.endpoint, packet);
}

std::vector<RelayAllocator::Status> RelayAllocator::status() const {
    std::vector<Status> result;
    const auto now = Clock::now();
    for (const auto& a : allocations_) {
        Status entry;
        entry.id = a->id;
        entry.endpoint = a->use_tls ? a->tcp : a->udp;
        entry.transport = a->use_tls ? "tls" : "udp";
        switch (a->client.state(now)) {
            case transport::RelayAllocationClient::State::granted: entry.state = "granted"; break;
            case transport::RelayAllocationClient::State::refused: entry.state = "refused"; break;
            default: entry.state = "allocating";
        }
        entry.rtt_ms = a->rtt_ms;
        result.push_back(entry);
    }
    return result;
}

}  // namespace keyhole::node
