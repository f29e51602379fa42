// The relay server (issue #5): allocations for clients that cannot be
// reached directly, and forwarding of opaque datagrams to and from them.
// Byte formats: docs/protocol.md, "Relays"; limits: docs/relay.md.
//
// No I/O here: on_packet() takes a relay packet from UDP or a TLS stream and
// answers through the Sender; the daemon routes a RelayPath to the UDP port
// or to the stream. Everything runs on the io_context thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <span>

#include "keyhole/identity/key_pair.h"
#include "keyhole/transport/relay_wire.h"
#include "relay_allocations.h"
#include "relay_cookie.h"
#include "relay_limits.h"
#include "relay_path.h"

namespace keyhole::node {

struct RelayStats {
    std::uint64_t packets_received = 0;
    std::uint64_t packets_malformed = 0;
    std::uint64_t frames_forwarded = 0;  // relay_deliver packets sent
    std::uint64_t bytes_forwarded = 0;   // inner datagram bytes in them
    std::uint64_t allocations = 0;       // live now
    std::uint64_t allocations_granted = 0;
    std::uint64_t allocations_refreshed = 0;
    std::uint64_t allocations_expired = 0;
    std::uint64_t errors_sent = 0;       // relay_error and refusing allocate_results
    // Refused packets by reason (index: transport::RelayCode), whether or not
    // an answer could be sent.
    std::array<std::uint64_t, transport::kRelayCodeCount> refusals{};
};

class RelayServer {
public:
    using Clock = std::chrono::steady_clock;
    using Sender = std::function<void(const RelayPath& to, std::span<const std::uint8_t> packet)>;
    using Now = std::function<Clock::time_point()>;

    RelayServer(const identity::KeyPair& key, RelayLimits limits, Sender sender, Now now = &Clock::now);
    RelayServer(const RelayServer&) = delete;
    RelayServer& operator=(const RelayServer&) = delete;

    // A packet of one of the server types (transport::is_relay_server_packet);
    // anything else is counted as malformed and dropped.
    void on_packet(std::span<const std::uint8_t> packet, const RelayPath& from);
    // The DHT on behalf of clients that hold an allocation on a TLS stream
    // (directory_publish, directory_lookup, directory_inbox; see relay_wire.h).
    // Without a handler those packets are refused as unknown.
    using DirectoryHandler = std::function<void(const RelayPath& from, const identity::PeerId& client,
                                                const transport::RelayPacket& request)>;
    void set_directory_handler(DirectoryHandler handler) { directory_ = std::move(handler); }
    std::uint64_t directory_requests() const { return directory_requests_; }

    // A TLS stream ended: its allocations and channels go.
    void on_stream_closed(std::uint64_t stream);
    // Housekeeping; the daemon calls it every second: expiry, idle channels, idle sources.
    void tick();

    const RelayStats& stats() const { return stats_; }
    std::size_t allocation_count() const { return table_.size(); }
    const RelayLimits& limits() const { return limits_; }
    const identity::PeerId& relay_id() const { return relay_; }

private:
    struct Source {
        TokenBucket packets;
        TokenBucket bytes;
        Clock::time_point last_seen{};
        Clock::time_point last_error{};
    };

    Source& source_for(const RelayPath& from, Clock::time_point now);
    void on_allocate_request(const transport::AllocateRequest& request, std::size_t size, const RelayPath& from,
                             Source& source, Clock::time_point now);
    void on_allocate_confirm(const transport::AllocateConfirm& confirm, std::size_t size, const RelayPath& from,
                             Source& source, Clock::time_point now);
    void on_send(const transport::RelaySend& send, std::size_t size, const RelayPath& from, Source& source,
                 Clock::time_point now);
    void on_reply(const transport::RelayReply& reply, std::size_t size, const RelayPath& from, Source& source,
                  Clock::time_point now);
    // Charges one packet of `size` bytes to the source, the allocation (if
    // any) and the total; the first limit hit is the refusal.
    transport::RelayCode charge(Source& source, Allocation* allocation, std::size_t size, Clock::time_point now);
    void on_directory(const transport::RelayPacket& request, std::size_t size, const RelayPath& from, Source& source,
                      Clock::time_point now);
    void forward(const RelayPath& to, transport::RelayChannel channel, std::span<const std::uint8_t> inner);
    // May an answer (error or refusal) of `answer_size` go to this source now?
    bool may_answer(Source& source, std::size_t provoking_size, std::size_t answer_size, Clock::time_point now);
    void refuse(transport::RelayCode code, const std::array<std::uint8_t, 8>& context, std::size_t provoking_size,
                const RelayPath& from, Source& source, Clock::time_point now);
    void refuse_allocation(transport::RelayCode code, const transport::RelayCookie& cookie, const RelayPath& from,
                           Source& source, Clock::time_point now);
    void note_refusal(transport::RelayCode code, const RelayPath& from);
    void update_counts();

    identity::KeyPair key_;
    identity::PeerId relay_;
    RelayLimits limits_;
    Sender sender_;
    Now now_;
    CookieJar cookies_;
    AllocationTable table_;
    std::map<RelayPath, Source> sources_;
    Source overflow_source_;  // shared by new sources while the table is full
    TokenBucket total_bytes_;
    TokenBucket error_budget_;
    RelayStats stats_;
    DirectoryHandler directory_;
    std::uint64_t directory_requests_ = 0;
    Clock::time_point last_log_{};
    std::uint64_t refusals_since_log_ = 0;
};

}  // namespace keyhole::node
