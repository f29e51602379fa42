// The client side of one allocation at one relay, without I/O: what to send
// and when, and what the relay's answers mean (docs/protocol.md, "Relays").
// The caller owns the socket or TLS stream, feeds this the relay's
// allocate_challenge and allocate_result packets (parse_relay_packet), and
// sends what poll() and on_challenge() return.
//
//   RelayAllocationClient client(my_key, relay_key);
//   every tick:   if (auto packet = client.poll(now)) send(relay, *packet);
//   on 0x31:      if (auto confirm = client.on_challenge(challenge, now)) send(relay, *confirm);
//   on 0x33:      client.on_result(result, now);  then client.state()
//
// poll() sends the allocate_request when due: at start, again when no answer
// came (1 s doubling to 8 s), and at half the granted lifetime (refresh).
// Forwarding itself needs no state: encode_relay_send / encode_relay_reply.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/transport/relay_wire.h"

namespace keyhole::transport {

class RelayAllocationClient {
public:
    using Clock = std::chrono::steady_clock;
    enum class State {
        requesting,  // no allocation yet; a request is out (or about to be)
        granted,     // allocation held (and refreshed while poll() is called)
        refused,     // the relay said no: refusal() says why; poll() tries again after retry_after()
        expired,     // the grant ran out without a refresh answered
    };

    RelayAllocationClient(const identity::KeyPair& key, const identity::PeerId& relay);

    // The allocate_request to send now, if one is due.
    std::optional<std::vector<std::uint8_t>> poll(Clock::time_point now);
    // The confirm answering a challenge to our latest request; nothing for a
    // stale or unexpected challenge.
    std::optional<std::vector<std::uint8_t>> on_challenge(const AllocateChallenge& challenge, Clock::time_point now);
    // Takes the relay's verdict on our latest confirm; false if the result
    // answers nothing we sent (ignored).
    bool on_result(const AllocateResult& result, Clock::time_point now);

    State state(Clock::time_point now) const;
    std::optional<RelayCode> refusal() const { return refusal_; }
    Clock::time_point expires() const { return expires_; }
    // What the relay saw as our source (empty over TLS).
    const identity::Endpoint& observed() const { return observed_; }
    std::uint32_t packets_per_s() const { return packets_per_s_; }
    std::uint32_t bytes_per_s() const { return bytes_per_s_; }
    const identity::PeerId& relay() const { return relay_; }

    // How long a refused client waits before asking again.
    static constexpr auto kRetryAfterRefusal = std::chrono::seconds(30);

private:
    std::vector<std::uint8_t> make_request(Clock::time_point now);

    identity::KeyPair key_;
    identity::PeerId relay_;
    RelayNonce nonce_{};
    std::optional<RelayCookie> confirmed_cookie_;
    bool granted_ = false;
    std::optional<RelayCode> refusal_;
    Clock::time_point next_request_{};  // epoch: at once
    std::chrono::milliseconds backoff_{1000};
    Clock::time_point granted_at_{};
    Clock::time_point expires_{};
    identity::Endpoint observed_;
    std::uint32_t packets_per_s_ = 0;
    std::uint32_t bytes_per_s_ = 0;
};

}  // namespace keyhole::transport
