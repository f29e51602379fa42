#include "relay_allocations.h"

namespace keyhole::node {

Allocation* AllocationTable::find_by_path(const RelayPath& path, Clock::time_point now) {
    const auto it = by_path_.find(path);
    if (it == by_path_.end()) return nullptr;
    Allocation* allocation = by_id_.at(it->second).get();
    if (allocation->expires <= now) {
        remove(allocation->id);
        ++expired_total_;
        return nullptr;
    }
    return allocation;
}

Allocation* AllocationTable::find_for_target(const identity::PeerId& owner, Clock::time_point now) {
    Allocation* best = nullptr;
    std::vector<std::uint64_t> expired;
    const auto [first, last] = by_owner_.equal_range(owner);
    for (auto it = first; it != last; ++it) {
        Allocation* allocation = by_id_.at(it->second).get();
        if (allocation->expires <= now) {
            expired.push_back(allocation->id);
            continue;
        }
        if (!best || allocation->refreshed > best->refreshed) best = allocation;
    }
    for (auto id : expired) remove(id);
    expired_total_ += expired.size();
    return best;
}

Allocation& AllocationTable::add(const identity::PeerId& owner, const RelayPath& path, Clock::time_point expires,
                                 const RelayLimits& limits, Clock::time_point now) {
    auto allocation = std::make_unique<Allocation>();
    allocation->id = next_id_++;
    allocation->owner = owner;
    allocation->path = path;
    allocation->expires = expires;
    allocation->refreshed = now;
    allocation->packets =
        TokenBucket(limits.allocation_packets_per_s, packet_burst(limits.allocation_packets_per_s), now);
    allocation->bytes = TokenBucket(limits.allocation_bytes_per_s, byte_burst(limits.allocation_bytes_per_s), now);
    Allocation& stored = *allocation;
    by_path_[path] = stored.id;
    by_owner_.emplace(owner, stored.id);
    by_id_.emplace(stored.id, std::move(allocation));
    return stored;
}

void AllocationTable::remove(std::uint64_t id) {
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    const Allocation& allocation = *it->second;
    if (auto path = by_path_.find(allocation.path); path != by_path_.end() && path->second == id) by_path_.erase(path);
    const auto [first, last] = by_owner_.equal_range(allocation.owner);
    for (auto owner = first; owner != last; ++owner) {
        if (owner->second == id) {
            by_owner_.erase(owner);
            break;
        }
    }
    by_id_.erase(it);
}

transport::RelayChannel AllocationTable::channel_for(Allocation& allocation, const RelayPath& remote,
                                                     std::uint32_t max_channels, Clock::time_point now) {
    if (const auto it = allocation.channel_of.find(remote); it != allocation.channel_of.end()) {
        allocation.channels[it->second].last_used = now;
        return it->second;
    }
    if (max_channels > 0 && allocation.channels.size() >= max_channels) {
        auto oldest = allocation.channels.begin();
        for (auto it = allocation.channels.begin(); it != allocation.channels.end(); ++it)
            if (it->second.last_used < oldest->second.last_used) oldest = it;
        drop_channel(allocation, oldest->first);
    }
    // Never 0 (the reply channel); ids are not reused while the allocation lives.
    if (allocation.next_channel == transport::kReplyChannel) ++allocation.next_channel;
    const auto id = allocation.next_channel++;
    allocation.channels[id] = RelayChannelState{remote, now};
    allocation.channel_of[remote] = id;
    return id;
}

const RelayChannelState* AllocationTable::channel(Allocation& allocation, transport::RelayChannel id,
                                                  Clock::time_point now) {
    const auto it = allocation.channels.find(id);
    if (it == allocation.channels.end()) return nullptr;
    it->second.last_used = now;
    return &it->second;
}

void AllocationTable::drop_channel(Allocation& allocation, transport::RelayChannel id) {
    const auto it = allocation.channels.find(id);
    if (it == allocation.channels.end()) return;
    allocation.channel_of.erase(it->second.remote);
    allocation.channels.erase(it);
}

std::size_t AllocationTable::expire(Clock::time_point now, std::chrono::seconds channel_idle) {
    std::vector<std::uint64_t> expired;
    for (auto& [id, allocation] : by_id_) {
        if (allocation->expires <= now) {
            expired.push_back(id);
            continue;
        }
        std::vector<transport::RelayChannel> idle;
        for (const auto& [channel, state] : allocation->channels)
            if (now - state.last_used >= channel_idle) idle.push_back(channel);
        for (auto channel : idle) drop_channel(*allocation, channel);
    }
    for (auto id : expired) remove(id);
    expired_total_ += expired.size();
    return expired.size();
}

std::size_t AllocationTable::remove_stream(std::uint64_t stream) {
    std::vector<std::uint64_t> held;
    for (auto& [id, allocation] : by_id_) {
        if (allocation->path.stream == stream) {
            held.push_back(id);
            continue;
        }
        std::vector<transport::RelayChannel> gone;
        for (const auto& [channel, state] : allocation->channels)
            if (state.remote.stream == stream) gone.push_back(channel);
        for (auto channel : gone) drop_channel(*allocation, channel);
    }
    for (auto id : held) remove(id);
    return held.size();
}

}  // namespace keyhole::node
