// Keeps our signed identity record in the DHT: signs it with a sequence
// number that only goes up (persisted in the state dir, so restarts raise it
// too), publishes it, and re-signs it at half its lifetime.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "keyhole/dht/dht_node.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/record.h"
#include "keyhole/result.h"

namespace keyhole::node {

class RecordPublisher {
public:
    RecordPublisher(asio::io_context& io, dht::DhtNode& dht, const identity::KeyPair& key,
                    std::filesystem::path sequence_file, std::chrono::seconds lifetime);

    Status start();
    // Withdraws the record from our announce list; storing nodes let it expire.
    void stop();

    // The relays that reach us; a change is signed and published at once.
    void set_relays(const std::vector<identity::RelayRef>& relays);

    std::uint64_t sequence() const { return current_.sequence; }
    // The record as last signed (empty before start()).
    const std::vector<std::uint8_t>& signed_record() const { return signed_; }
    bool published() const { return published_; }

private:
    Status publish_new_sequence();
    void schedule_refresh(std::chrono::seconds delay);
    std::chrono::seconds refresh_interval() const { return lifetime_ / 2; }

    asio::steady_timer refresh_timer_;
    dht::DhtNode& dht_;
    const identity::KeyPair& key_;
    std::filesystem::path sequence_file_;
    std::chrono::seconds lifetime_;
    identity::IdentityRecord current_;
    std::vector<std::uint8_t> signed_;
    bool published_ = false;
};

}  // namespace keyhole::node
