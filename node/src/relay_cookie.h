// Allocation cookies: a relay stays stateless towards an allocate request
// until the client proves it receives at its source address, by echoing the
// cookie in its confirm (docs/protocol.md, "Relays"). As WireGuard's
// cookie.c: a keyed hash under a secret that rotates every two minutes; the
// previous secret is kept, so a cookie is good for two to four minutes.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "keyhole/identity/peer_id.h"
#include "keyhole/transport/relay_wire.h"
#include "relay_path.h"

namespace keyhole::node {

constexpr auto kCookieSecretLifetime = std::chrono::seconds(120);

class CookieJar {
public:
    using Clock = std::chrono::steady_clock;
    CookieJar();
    ~CookieJar();
    CookieJar(const CookieJar&) = delete;
    CookieJar& operator=(const CookieJar&) = delete;

    transport::RelayCookie make(const RelayPath& source, const identity::PeerId& client, Clock::time_point now);
    // True if `cookie` was made for this source and client under the current
    // or the previous secret.
    bool check(const transport::RelayCookie& cookie, const RelayPath& source, const identity::PeerId& client,
               Clock::time_point now);

private:
    using Secret = std::array<std::uint8_t, 32>;
    void rotate(Clock::time_point now);
    static transport::RelayCookie compute(const Secret& secret, std::uint64_t bucket, const RelayPath& source,
                                          const identity::PeerId& client);

    Secret current_{};
    Secret previous_{};
    std::uint64_t bucket_ = 0;
    bool started_ = false;
};

}  // namespace keyhole::node
