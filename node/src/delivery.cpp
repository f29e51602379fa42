#include "keyhole/node/delivery.h"

#include <algorithm>

#include <msgpack.hpp>
#include <spdlog/spdlog.h>

#include "message_json.h"

namespace keyhole::node {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kWindow = 128;  // unacknowledged messages in flight per peer
constexpr auto kFirstRetransmit = 500ms;
constexpr auto kMaxRetransmit = 8000ms;
constexpr auto kTick = 100ms;

// A message travels in chunks, so that no datagram exceeds a common path MTU
// and a 64 KiB message fits at all: [1, id, sequence, sent_ms, total, offset, bytes].
constexpr std::uint32_t kKindChunk = 1;
constexpr std::size_t kChunkSize = 1024;
constexpr std::size_t kMaxPartialMessages = 256;  // per peer, being reassembled
constexpr std::uint32_t kKindAck = 2;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::vector<std::uint8_t> to_bytes(const msgpack::sbuffer& buffer) {
    return {reinterpret_cast<const std::uint8_t*>(buffer.data()),
            reinterpret_cast<const std::uint8_t*>(buffer.data()) + buffer.size()};
}

std::vector<std::uint8_t> encode_chunk(const StoredMessage& message, std::size_t offset) {
    const auto length = std::min(kChunkSize, message.text.size() - offset);
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_array(7);
    packer.pack(kKindChunk);
    packer.pack(message.message_id);
    packer.pack(message.sequence);
    packer.pack(message.sent_unix_ms);
    packer.pack(static_cast<std::uint32_t>(message.text.size()));
    packer.pack(static_cast<std::uint32_t>(offset));
    packer.pack_bin(static_cast<std::uint32_t>(length));
    packer.pack_bin_body(message.text.data() + offset, static_cast<std::uint32_t>(length));
    return to_bytes(buffer);
}

std::vector<std::uint8_t> encode_ack(const std::string& message_id) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_array(2);
    packer.pack(kKindAck);
    packer.pack(message_id);
    return to_bytes(buffer);
}


}  // namespace

Delivery::Delivery(asio::io_context& io, PeerManager& peers, MessageStore& store, EventHub& events)
    : io_(io), peers_(peers), store_(store), events_(events), tick_timer_(io) {}

void Delivery::start() {
    running_ = true;
    for (const auto& peer : store_.peers_with_pending()) pump(peer);
    schedule_tick();
}

void Delivery::stop() {
    running_ = false;
    tick_timer_.cancel();
    for (auto& [id, list] : waiters_)
        for (auto& waiter : list) waiter.timer->cancel();
}

Result<StoredMessage> Delivery::send(const identity::PeerId& peer, std::string_view text) {
    auto stored = store_.enqueue_outgoing(peer, text, now_ms());
    if (stored) pump(peer);
    return stored;
}

void Delivery::wait_for_delivery(const std::string& message_id, std::chrono::milliseconds timeout,
                                 std::function<void(bool)> done) {
    if (auto message = store_.find(message_id); message && message->delivered) {
        done(true);
        return;
    }
    auto timer = std::make_shared<asio::steady_timer>(io_, timeout);
    waiters_[message_id].push_back({done, timer});
    timer->async_wait([this, message_id, timer](const asio::error_code& error) {
        if (error) return;
        auto found = waiters_.find(message_id);
        if (found == waiters_.end()) return;
        auto& list = found->second;
        for (auto it = list.begin(); it != list.end(); ++it) {
            if (it->timer == timer) {
                auto callback = std::move(it->done);
                list.erase(it);
                if (list.empty()) waiters_.erase(found);
                callback(false);
                return;
            }
        }
    });
}

void Delivery::pump(const identity::PeerId& peer) {
    if (!running_) return;
    if (!peers_.is_up(peer)) {
        peers_.connect(peer);
        return;
    }
    auto& flying = in_flight_[peer];
    if (flying.size() >= kWindow) return;
    // What is in flight is the oldest part of the outbox: this many rows cover the window.
    for (const auto& message : store_.pending_outgoing(peer, kWindow + flying.size())) {
        if (flying.size() >= kWindow) break;
        if (flying.contains(message.message_id)) continue;
        transmit(message);
    }
}

void Delivery::transmit(const StoredMessage& message) {
    std::size_t offset = 0;
    do {
        peers_.send(message.peer, encode_chunk(message, offset));
        offset += kChunkSize;
    } while (offset < message.text.size());
    auto& entry = in_flight_[message.peer][message.message_id];
    entry.retransmit_after = entry.retransmit_after.count() == 0
                                 ? std::chrono::duration_cast<std::chrono::milliseconds>(kFirstRetransmit)
                                 : std::min(entry.retransmit_after * 2,
                                            std::chrono::duration_cast<std::chrono::milliseconds>(kMaxRetransmit));
    entry.last_sent = Clock::now();
    ++entry.transmissions;
}

void Delivery::on_payload(const identity::PeerId& peer, std::span<const std::uint8_t> payload) {
    try {
        std::size_t offset = 0;
        auto handle = msgpack::unpack(reinterpret_cast<const char*>(payload.data()), payload.size(), offset, nullptr,
                                      nullptr, msgpack::unpack_limit(8, 0, 64, kChunkSize, 0, 2));
        const auto& object = handle.get();
        if (offset != payload.size() || object.type != msgpack::type::ARRAY || object.via.array.size < 2) return;
        const auto* items = object.via.array.ptr;
        const auto kind = items[0].as<std::uint32_t>();
        const auto message_id = items[1].as<std::string>();
        if (kind == kKindAck && object.via.array.size == 2) {
            acknowledged(peer, message_id);
        } else if (kind == kKindChunk && object.via.array.size == 7 && items[6].type == msgpack::type::BIN) {
            Chunk chunk{message_id,
                        items[2].as<std::uint64_t>(),
                        items[3].as<std::int64_t>(),
                        items[4].as<std::uint32_t>(),
                        items[5].as<std::uint32_t>(),
                        std::string_view(items[6].via.bin.ptr, items[6].via.bin.size)};
            on_chunk(peer, chunk);
        }
    } catch (const std::exception& error) {
        spdlog::debug("malformed payload from {}: {}", peer.to_text(), error.what());
    }
}

void Delivery::on_chunk(const identity::PeerId& peer, const Chunk& chunk) {
    // Reject what could not be a chunk of a message we would store.
    if (chunk.total > kMaxMessageText || chunk.offset % kChunkSize != 0 ||
        (chunk.total > 0 && chunk.offset >= chunk.total) ||
        chunk.bytes.size() != std::min<std::size_t>(kChunkSize, chunk.total - std::min(chunk.offset, chunk.total)))
        return;
    auto& partials = partial_[peer];
    auto found = partials.find(chunk.message_id);
    if (found == partials.end()) {
        if (partials.size() >= kMaxPartialMessages) partials.erase(partials.begin());
        Partial partial{chunk.sequence, chunk.sent_ms, std::string(chunk.total, '\0'),
                        std::vector<bool>((chunk.total + kChunkSize - 1) / kChunkSize + (chunk.total == 0), false), 0};
        found = partials.emplace(chunk.message_id, std::move(partial)).first;
    }
    auto& partial = found->second;
    if (partial.sequence != chunk.sequence || partial.sent_ms != chunk.sent_ms || partial.text.size() != chunk.total) {
        partials.erase(found);  // contradicts earlier chunks: start over on the next retransmission
        return;
    }
    const auto index = chunk.offset / kChunkSize;
    if (!partial.have[index]) {
        partial.have[index] = true;
        ++partial.chunks_received;
        std::copy(chunk.bytes.begin(), chunk.bytes.end(), partial.text.begin() + static_cast<std::ptrdiff_t>(chunk.offset));
    }
    if (partial.chunks_received < partial.have.size()) return;

    auto presentable = store_.store_incoming(peer, chunk.message_id, partial.sequence, partial.text, partial.sent_ms,
                                             now_ms());
    partials.erase(found);
    if (!presentable) {
        spdlog::warn("message {} from {} not stored: {}", chunk.message_id, peer.to_text(), presentable.error());
        return;  // not acknowledged: the sender keeps it
    }
    // On disk now (or it was already): acknowledge, then tell subscribers.
    peers_.send(peer, encode_ack(chunk.message_id));
    for (const auto& message : presentable.value()) events_.publish("message", message_json(message));
}

void Delivery::acknowledged(const identity::PeerId& peer, const std::string& message_id) {
    // Only the peer a message went to may acknowledge it.
    const auto sent = store_.find(message_id);
    if (!sent || sent->peer != peer || sent->direction != MessageDirection::outgoing) return;
    auto updated = store_.mark_delivered(message_id, now_ms());
    if (updated && updated->has_value() && (*updated)->peer == peer) {
        const auto& message = **updated;
        events_.publish("delivered", {{"message_id", message_id},
                                      {"to", peer.to_text()},
                                      {"elapsed_ms", message.delivered_unix_ms.value_or(0) - message.sent_unix_ms}});
        if (auto found = waiters_.find(message_id); found != waiters_.end()) {
            auto list = std::move(found->second);
            waiters_.erase(found);
            for (auto& waiter : list) {
                waiter.timer->cancel();
                waiter.done(true);
            }
        }
    }
    auto& flying = in_flight_[peer];
    flying.erase(message_id);
    // Refill in batches: each refill reads the outbox, so not on every ack.
    if (flying.size() <= kWindow / 2) pump(peer);
}

void Delivery::on_peer_state(const PeerInfo& info) {
    if (info.state == PeerState::up) {
        // A new path: whatever was in flight may be lost; send it all again.
        in_flight_.erase(info.id);
        pump(info.id);
    }
}

void Delivery::schedule_tick() {
    tick_timer_.expires_after(kTick);
    tick_timer_.async_wait([this](const asio::error_code& error) {
        if (error || !running_) return;
        const auto now = Clock::now();
        for (auto& [peer, flying] : in_flight_) {
            if (flying.empty()) continue;
            if (!peers_.is_up(peer)) {
                peers_.connect(peer);
                continue;
            }
            std::vector<std::string> due;
            for (const auto& [id, entry] : flying)
                if (now - entry.last_sent >= entry.retransmit_after) due.push_back(id);
            // Sent four times (3.5 s) without an ack: the peer may be gone.
            if (std::any_of(flying.begin(), flying.end(),
                            [](const auto& entry) { return entry.second.transmissions >= 4; }))
                peers_.suspect(peer);
            if (!peers_.is_up(peer)) continue;
            for (const auto& id : due) {
                auto message = store_.find(id);
                if (!message || message->delivered) {
                    flying.erase(id);
                    continue;
                }
                transmit(*message);
            }
        }
        // Peers with queued messages but nothing in flight (e.g. offline at
        // send time): once a second is enough, and spares the idle daemon.
        if (++ticks_ % 10 == 0)
            for (const auto& peer : store_.peers_with_pending())
                if (in_flight_[peer].empty()) pump(peer);
        schedule_tick();
    });
}

}  // namespace keyhole::node
