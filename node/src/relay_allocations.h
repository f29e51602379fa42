// The relay's allocations: who holds one (client key, bound to the source
// path it proved), until when, its rate buckets, and its channels (one per
// remote path that sent to it, so the owner can answer).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "keyhole/identity/peer_id.h"
#include "keyhole/transport/relay_wire.h"
#include "relay_limits.h"
#include "relay_path.h"

namespace keyhole::node {

struct RelayChannelState {
    RelayPath remote;
    std::chrono::steady_clock::time_point last_used;
};

struct Allocation {
    std::uint64_t id = 0;
    identity::PeerId owner;
    RelayPath path;
    std::chrono::steady_clock::time_point expires;
    std::chrono::steady_clock::time_point refreshed;
    TokenBucket packets;
    TokenBucket bytes;
    std::map<transport::RelayChannel, RelayChannelState> channels;
    std::map<RelayPath, transport::RelayChannel> channel_of;
    transport::RelayChannel next_channel = 1;
};

class AllocationTable {
public:
    using Clock = std::chrono::steady_clock;

    std::size_t size() const { return by_id_.size(); }
    std::size_t count_for(const identity::PeerId& owner) const { return by_owner_.count(owner); }

    // Live allocations only (an expired one is removed on the way).
    Allocation* find_by_path(const RelayPath& path, Clock::time_point now);
    // The owner's most recently refreshed live allocation.
    Allocation* find_for_target(const identity::PeerId& owner, Clock::time_point now);

    Allocation& add(const identity::PeerId& owner, const RelayPath& path, Clock::time_point expires,
                    const RelayLimits& limits, Clock::time_point now);
    void remove(std::uint64_t id);

    // The channel for `remote` on `allocation`, made if new; when the
    // allocation has `max_channels`, the least recently used one is reused.
    transport::RelayChannel channel_for(Allocation& allocation, const RelayPath& remote, std::uint32_t max_channels,
                                        Clock::time_point now);
    const RelayChannelState* channel(Allocation& allocation, transport::RelayChannel id, Clock::time_point now);

    // Removes expired allocations and idle channels; returns allocations removed.
    std::size_t expire(Clock::time_point now, std::chrono::seconds channel_idle);
    // Removes every allocation held over `stream` and every channel to it.
    std::size_t remove_stream(std::uint64_t stream);
    // Allocations that ran out, whether found on use or by expire().
    std::uint64_t expired_total() const { return expired_total_; }

private:
    void drop_channel(Allocation& allocation, transport::RelayChannel id);

    std::map<std::uint64_t, std::unique_ptr<Allocation>> by_id_;
    std::map<RelayPath, std::uint64_t> by_path_;
    std::multimap<identity::PeerId, std::uint64_t> by_owner_;
    std::uint64_t next_id_ = 1;
    std::uint64_t expired_total_ = 0;
};

}  // namespace keyhole::node
