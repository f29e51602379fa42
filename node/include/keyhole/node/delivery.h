// Reliable, ordered, exactly-once chat delivery over sessions: the sender
// keeps every message in its outbox until the peer acknowledges it (and
// retransmits with backoff); the receiver stores a message in its inbox
// before acknowledging it, and drops duplicates by message id.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "keyhole/node/event_hub.h"
#include "keyhole/node/message_store.h"
#include "keyhole/node/peer_manager.h"

namespace keyhole::node {

class Delivery {
public:
    Delivery(asio::io_context& io, PeerManager& peers, MessageStore& store, EventHub& events);

    // Resumes what an earlier run left queued.
    void start();
    void stop();

    // Queues durably (on disk when this returns) and starts sending.
    Result<StoredMessage> send(const identity::PeerId& peer, std::string_view text);
    // Calls `done(true)` when `message_id` is acknowledged, `done(false)` after `timeout`.
    void wait_for_delivery(const std::string& message_id, std::chrono::milliseconds timeout,
                           std::function<void(bool delivered)> done);

    void on_payload(const identity::PeerId& peer, std::span<const std::uint8_t> payload);
    void on_peer_state(const PeerInfo& info);

private:
    struct InFlight {
        std::chrono::steady_clock::time_point last_sent;
        std::chrono::milliseconds retransmit_after;
        int transmissions = 0;
    };
    struct Waiter {
        std::function<void(bool)> done;
        std::shared_ptr<asio::steady_timer> timer;
    };

    struct Chunk {
        std::string message_id;
        std::uint64_t sequence;
        std::int64_t sent_ms;
        std::uint32_t total;
        std::uint32_t offset;
        std::string_view bytes;
    };
    struct Partial {  // a message being reassembled from its chunks
        std::uint64_t sequence;
        std::int64_t sent_ms;
        std::string text;
        std::vector<bool> have;
        std::size_t chunks_received;
    };
    void on_chunk(const identity::PeerId& peer, const Chunk& chunk);
    void pump(const identity::PeerId& peer);
    void transmit(const StoredMessage& message);
    void acknowledged(const identity::PeerId& peer, const std::string& message_id);
    void schedule_tick();

    asio::io_context& io_;
    PeerManager& peers_;
    MessageStore& store_;
    EventHub& events_;
    asio::steady_timer tick_timer_;
    bool running_ = false;
    std::uint64_t ticks_ = 0;
    std::map<identity::PeerId, std::map<std::string, InFlight>> in_flight_;
    std::map<std::string, std::vector<Waiter>> waiters_;
    std::map<identity::PeerId, std::map<std::string, Partial>> partial_;
};

}  // namespace keyhole::node
