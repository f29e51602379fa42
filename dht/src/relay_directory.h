// Relay announcements in the DHT: every relay puts its signed announcement
// under one well-known key, "keyhole/v1/relays"; clients get them all and
// keep the verified ones. A value type of its own (0x4b52) lets keyhole
// storing nodes refuse forged announcements; readers verify regardless.
//
// Threads: OpenDHT's callbacks post to the io_context (post_to_loop); the
// work is dropped once stop() ran or the directory is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <opendht/dhtrunner.h>
#include <opendht/infohash.h>
#include <opendht/value.h>

#include "keyhole/identity/relay_announcement.h"
#include "keyhole/result.h"

namespace keyhole::dht {

// 'K' 'R'.
constexpr ::dht::ValueType::Id kRelayValueTypeId = 0x4b52;
constexpr auto kRelayStorageLifetime = std::chrono::minutes(10);

::dht::InfoHash relays_key();
// One value id per (relay, issued): a refresh is a new value, so a stale
// copy never hides a newer one (as record_value_id does with the sequence).
::dht::Value::Id relay_value_id(const identity::RelayAnnouncement& announcement);
const ::dht::ValueType& relay_value_type();

using RelaysCallback = std::function<void(std::vector<identity::RelayAnnouncement>)>;

class RelayDirectory : public std::enable_shared_from_this<RelayDirectory> {
public:
    RelayDirectory(asio::io_context& io, ::dht::DhtRunner& runner);

    // Verifies the announcement (a relay never publishes something readers
    // would refuse), then puts it, permanent, replacing the previous one.
    Status announce(std::vector<std::uint8_t> signed_announcement);
    void withdraw();
    void find(std::chrono::milliseconds timeout, RelaysCallback done);
    // No callback runs after this.
    void stop();

    bool announced_stored() const { return stored_; }
    std::uint64_t rejected() const { return rejected_; }

private:
    struct Find;
    void put_current();
    void put_finished(bool ok, ::dht::Value::Id id);
    void run_get(const std::shared_ptr<Find>& find);
    void get_finished(const std::shared_ptr<Find>& find);
    void finish(const std::shared_ptr<Find>& find);
    template <typename F>
    void post_to_loop(F&& work);

    asio::io_context& io_;
    ::dht::DhtRunner& runner_;
    bool running_ = true;
    std::shared_ptr<::dht::Value> announced_;
    bool stored_ = false;
    asio::steady_timer retry_timer_;
    std::chrono::seconds backoff_{1};
    std::uint64_t rejected_ = 0;
};

}  // namespace keyhole::dht
