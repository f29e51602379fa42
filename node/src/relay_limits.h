// The token bucket that enforces a relay's per-second limits (docs/relay.md).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "keyhole/node/config.h"

namespace keyhole::node {

// RelayLimits (the limits and their defaults) is in keyhole/node/config.h.

// Classic token bucket: `rate` tokens per second, at most `burst` stored.
// Starts full.
class TokenBucket {
public:
    using Clock = std::chrono::steady_clock;
    TokenBucket() = default;
    TokenBucket(double rate, double burst, Clock::time_point now) : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

    // Takes `amount` tokens if that many are there.
    bool take(double amount, Clock::time_point now) {
        refill(now);
        if (tokens_ < amount) return false;
        tokens_ -= amount;
        return true;
    }
    // Gives tokens back (a later check in the same packet refused it).
    void put_back(double amount) { tokens_ = std::min(burst_, tokens_ + amount); }
    bool full(Clock::time_point now) {
        refill(now);
        return tokens_ >= burst_;
    }

private:
    void refill(Clock::time_point now) {
        if (now <= last_) return;
        const double elapsed = std::chrono::duration<double>(now - last_).count();
        tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
        last_ = now;
    }

    double rate_ = 0;
    double burst_ = 0;
    double tokens_ = 0;
    Clock::time_point last_{};
};

// Buckets hold one second's worth, but always room for one largest datagram.
inline double byte_burst(std::uint64_t bytes_per_s) { return std::max<double>(static_cast<double>(bytes_per_s), 65536.0); }
inline double packet_burst(std::uint32_t packets_per_s) { return std::max<double>(packets_per_s, 1.0); }

}  // namespace keyhole::node
