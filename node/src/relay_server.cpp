#include "relay_server.h"

#include <cstring>
#include <type_traits>

#include <spdlog/spdlog.h>

namespace keyhole::node {

namespace {

using transport::RelayCode;

constexpr std::size_t kMaxSources = 65536;
// A source idle this long has full buckets again; forgetting it changes nothing.
constexpr auto kSourceIdle = std::chrono::seconds(5);
// At most one error or refusal per source this often.
constexpr auto kErrorInterval = std::chrono::milliseconds(100);
constexpr auto kLogInterval = std::chrono::seconds(10);

std::array<std::uint8_t, 8> key_context(const identity::PeerId& key) {
    std::array<std::uint8_t, 8> context{};
    std::memcpy(context.data(), key.key().data(), context.size());
    return context;
}

std::array<std::uint8_t, 8> channel_context(transport::RelayChannel channel) {
    return {static_cast<std::uint8_t>(channel >> 24), static_cast<std::uint8_t>(channel >> 16),
            static_cast<std::uint8_t>(channel >> 8), static_cast<std::uint8_t>(channel), 0, 0, 0, 0};
}

}  // namespace

RelayServer::RelayServer(const identity::KeyPair& key, RelayLimits limits, Sender sender, Now now)
    : key_(key), relay_(key.id()), limits_(limits), sender_(std::move(sender)), now_(std::move(now)) {
    const auto start = now_();
    overflow_source_ = Source{TokenBucket(limits_.source_packets_per_s, packet_burst(limits_.source_packets_per_s), start),
                              TokenBucket(limits_.source_bytes_per_s, byte_burst(limits_.source_bytes_per_s), start),
                              start, {}};
    total_bytes_ = TokenBucket(static_cast<double>(limits_.total_bytes_per_s), byte_burst(limits_.total_bytes_per_s),
                               start);
    error_budget_ = TokenBucket(limits_.errors_per_s, packet_burst(limits_.errors_per_s), start);
}

RelayServer::Source& RelayServer::source_for(const RelayPath& from, Clock::time_point now) {
    auto it = sources_.find(from);
    if (it == sources_.end()) {
        if (sources_.size() >= kMaxSources) return overflow_source_;
        it = sources_
                 .emplace(from, Source{TokenBucket(limits_.source_packets_per_s,
                                                   packet_burst(limits_.source_packets_per_s), now),
                                       TokenBucket(limits_.source_bytes_per_s, byte_burst(limits_.source_bytes_per_s),
                                                   now),
                                       now, {}})
                 .first;
    }
    it->second.last_seen = now;
    return it->second;
}

void RelayServer::on_packet(std::span<const std::uint8_t> packet, const RelayPath& from) {
    ++stats_.packets_received;
    auto parsed = transport::parse_relay_packet(packet);
    if (!parsed) {
        ++stats_.packets_malformed;
        return;
    }
    const auto now = now_();
    std::visit(
        [&](const auto& value) {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, transport::AllocateRequest>) {
                on_allocate_request(value, packet.size(), from, source_for(from, now), now);
            } else if constexpr (std::is_same_v<T, transport::AllocateConfirm>) {
                on_allocate_confirm(value, packet.size(), from, source_for(from, now), now);
            } else if constexpr (std::is_same_v<T, transport::RelaySend>) {
                on_send(value, packet.size(), from, source_for(from, now), now);
            } else if constexpr (std::is_same_v<T, transport::RelayReply>) {
                on_reply(value, packet.size(), from, source_for(from, now), now);
            } else if constexpr (std::is_same_v<T, transport::DirectoryPublish> ||
                                 std::is_same_v<T, transport::DirectoryLookup> ||
                                 std::is_same_v<T, transport::DirectoryInbox>) {
                on_directory(parsed.value(), packet.size(), from, source_for(from, now), now);
            } else {
                ++stats_.packets_malformed;  // a client-bound type sent to the relay
            }
        },
        parsed.value());
}

void RelayServer::on_directory(const transport::RelayPacket& request, std::size_t size, const RelayPath& from,
                               Source& source, Clock::time_point now) {
    // Only for allocation holders on a TLS stream: a stream's source cannot
    // be spoofed, and the answer (a record) may be larger than the request.
    Allocation* allocation = from.is_stream() ? table_.find_by_path(from, now) : nullptr;
    if (!allocation || !directory_) {
        refuse(RelayCode::not_allocated, {}, size, from, source, now);
        return;
    }
    if (const auto code = charge(source, allocation, size, now); code != RelayCode::ok) {
        refuse(code, {}, size, from, source, now);
        return;
    }
    ++directory_requests_;
    directory_(from, allocation->owner, request);
}

void RelayServer::on_allocate_request(const transport::AllocateRequest& request, std::size_t size,
                                      const RelayPath& from, Source& source, Clock::time_point now) {
    if (const auto code = charge(source, nullptr, size, now); code != RelayCode::ok) {
        std::array<std::uint8_t, 8> context{};
        std::copy(request.nonce.begin(), request.nonce.end(), context.begin());
        refuse(code, context, size, from, source, now);
        return;
    }
    // Stateless: nothing is stored until the confirm comes back with the cookie.
    const auto challenge = transport::encode_allocate_challenge(request.nonce, cookies_.make(from, request.client, now));
    sender_(from, challenge);
}

void RelayServer::on_allocate_confirm(const transport::AllocateConfirm& confirm, std::size_t size,
                                      const RelayPath& from, Source& source, Clock::time_point now) {
    if (const auto code = charge(source, nullptr, size, now); code != RelayCode::ok) {
        refuse_allocation(code, confirm.cookie, from, source, now);
        return;
    }
    // Cookie first: it is cheap, and only a client that receives at `from`
    // can make the relay verify a signature.
    if (!cookies_.check(confirm.cookie, from, confirm.client, now)) {
        refuse_allocation(RelayCode::bad_cookie, confirm.cookie, from, source, now);
        return;
    }
    if (!identity::verify_signature(confirm.client.key(),
                                    transport::allocation_signed_message(relay_, confirm.client, confirm.cookie),
                                    confirm.signature)) {
        refuse_allocation(RelayCode::bad_signature, confirm.cookie, from, source, now);
        return;
    }
    const auto expires = now + std::chrono::seconds(limits_.allocation_lifetime_s);
    Allocation* allocation = table_.find_by_path(from, now);
    if (allocation && allocation->owner != confirm.client) {
        // The socket at `from` now answers for another key (a restarted
        // daemon with a new identity): the old allocation goes.
        table_.remove(allocation->id);
        allocation = nullptr;
    }
    if (allocation) {
        allocation->expires = expires;
        allocation->refreshed = now;
        ++stats_.allocations_refreshed;
    } else {
        (void)table_.find_for_target(confirm.client, now);  // drops the key's expired allocations
        if (table_.count_for(confirm.client) >= limits_.max_allocations_per_key) {
            refuse_allocation(RelayCode::per_key_limit, confirm.cookie, from, source, now);
            return;
        }
        if (table_.size() >= limits_.max_allocations) {
            table_.expire(now, std::chrono::seconds(limits_.channel_idle_s));
            if (table_.size() >= limits_.max_allocations) {
                refuse_allocation(RelayCode::capacity, confirm.cookie, from, source, now);
                return;
            }
        }
        table_.add(confirm.client, from, expires, limits_, now);
        ++stats_.allocations_granted;
        spdlog::debug("relay: allocation for {} at {}", confirm.client.to_text(), from.to_string());
    }
    update_counts();
    transport::AllocateResult result;
    result.cookie = confirm.cookie;
    result.code = RelayCode::ok;
    result.lifetime_s = limits_.allocation_lifetime_s;
    if (!from.is_stream() && from.endpoint.is_v4()) result.observed = from.endpoint;
    result.packets_per_s = limits_.allocation_packets_per_s;
    result.bytes_per_s = limits_.allocation_bytes_per_s;
    sender_(from, transport::encode_allocate_result(result));
}

void RelayServer::on_send(const transport::RelaySend& send, std::size_t size, const RelayPath& from, Source& source,
                          Clock::time_point now) {
    Allocation* target = table_.find_for_target(send.target, now);
    if (!target) {
        update_counts();
        refuse(RelayCode::unknown_target, key_context(send.target), size, from, source, now);
        return;
    }
    if (const auto code = charge(source, target, size, now); code != RelayCode::ok) {
        refuse(code, key_context(send.target), size, from, source, now);
        return;
    }
    const auto channel = table_.channel_for(*target, from, limits_.max_channels_per_allocation, now);
    forward(target->path, channel, send.inner);
}

void RelayServer::on_reply(const transport::RelayReply& reply, std::size_t size, const RelayPath& from,
                           Source& source, Clock::time_point now) {
    Allocation* allocation = table_.find_by_path(from, now);
    if (!allocation) {
        update_counts();
        refuse(RelayCode::not_allocated, channel_context(reply.channel), size, from, source, now);
        return;
    }
    const RelayChannelState* channel = table_.channel(*allocation, reply.channel, now);
    if (!channel) {
        refuse(RelayCode::unknown_channel, channel_context(reply.channel), size, from, source, now);
        return;
    }
    const RelayPath remote = channel->remote;
    if (const auto code = charge(source, allocation, size, now); code != RelayCode::ok) {
        refuse(code, channel_context(reply.channel), size, from, source, now);
        return;
    }
    forward(remote, transport::kReplyChannel, reply.inner);
}

RelayCode RelayServer::charge(Source& source, Allocation* allocation, std::size_t size, Clock::time_point now) {
    const double bytes = static_cast<double>(size);
    if (!source.packets.take(1, now)) return RelayCode::rate_limited;
    if (!source.bytes.take(bytes, now)) {
        source.packets.put_back(1);
        return RelayCode::rate_limited;
    }
    if (!allocation) return RelayCode::ok;  // allocation traffic: tiny, bounded by the source
    RelayCode code = RelayCode::ok;
    if (!allocation->packets.take(1, now)) {
        code = RelayCode::rate_limited;
    } else if (!allocation->bytes.take(bytes, now)) {
        allocation->packets.put_back(1);
        code = RelayCode::rate_limited;
    } else if (!total_bytes_.take(bytes, now)) {
        allocation->packets.put_back(1);
        allocation->bytes.put_back(bytes);
        code = RelayCode::bandwidth;
    }
    if (code != RelayCode::ok) {
        source.packets.put_back(1);
        source.bytes.put_back(bytes);
    }
    return code;
}

void RelayServer::forward(const RelayPath& to, transport::RelayChannel channel, std::span<const std::uint8_t> inner) {
    sender_(to, transport::encode_relay_deliver(channel, inner));
    ++stats_.frames_forwarded;
    stats_.bytes_forwarded += inner.size();
}

bool RelayServer::may_answer(Source& source, std::size_t provoking_size, std::size_t answer_size,
                             Clock::time_point now) {
    // Never larger than what provoked it, at most one per source per 100 ms,
    // and a global budget: refusals cannot be turned into a flood either.
    if (answer_size > provoking_size) return false;
    if (source.last_error != Clock::time_point{} && now - source.last_error < kErrorInterval) return false;
    if (!error_budget_.take(1, now)) return false;
    source.last_error = now;
    return true;
}

void RelayServer::refuse(RelayCode code, const std::array<std::uint8_t, 8>& context, std::size_t provoking_size,
                         const RelayPath& from, Source& source, Clock::time_point now) {
    note_refusal(code, from);
    if (!may_answer(source, provoking_size, transport::kRelayErrorSize, now)) return;
    sender_(from, transport::encode_relay_error({code, context}));
    ++stats_.errors_sent;
}

void RelayServer::refuse_allocation(RelayCode code, const transport::RelayCookie& cookie, const RelayPath& from,
                                    Source& source, Clock::time_point now) {
    note_refusal(code, from);
    if (!may_answer(source, transport::kAllocateConfirmSize, transport::kAllocateResultSize, now)) return;
    transport::AllocateResult result;
    result.cookie = cookie;
    result.code = code;
    if (!from.is_stream() && from.endpoint.is_v4()) result.observed = from.endpoint;
    sender_(from, transport::encode_allocate_result(result));
    ++stats_.errors_sent;
}

void RelayServer::note_refusal(RelayCode code, const RelayPath& from) {
    ++stats_.refusals[static_cast<std::size_t>(code)];
    ++refusals_since_log_;
    const auto now = Clock::now();
    if (now - last_log_ >= kLogInterval) {
        spdlog::info("relay refused {} packet(s); last from {}: {}", refusals_since_log_, from.to_string(),
                     transport::to_string(code));
        last_log_ = now;
        refusals_since_log_ = 0;
    }
}

void RelayServer::update_counts() {
    stats_.allocations = table_.size();
    stats_.allocations_expired = table_.expired_total();
}

void RelayServer::on_stream_closed(std::uint64_t stream) {
    table_.remove_stream(stream);
    for (auto it = sources_.begin(); it != sources_.end();) {
        if (it->first.stream == stream)
            it = sources_.erase(it);
        else
            ++it;
    }
    update_counts();
}

void RelayServer::tick() {
    const auto now = now_();
    table_.expire(now, std::chrono::seconds(limits_.channel_idle_s));
    update_counts();
    for (auto it = sources_.begin(); it != sources_.end();) {
        if (now - it->second.last_seen >= kSourceIdle)
            it = sources_.erase(it);
        else
            ++it;
    }
}

}  // namespace keyhole::node
