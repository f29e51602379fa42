// Sliding replay window over 64-bit frame counters (as in WireGuard, RFC 6479
// style): a counter is accepted once, and only if it is not older than the
// window behind the highest counter seen.
#pragma once

#include <array>
#include <cstdint>

namespace keyhole::transport {

class ReplayWindow {
public:
    static constexpr std::uint64_t kSize = 1024;  // counters remembered behind the highest

    // True if `counter` may be accepted (not seen, not too old). Does not record it.
    bool may_accept(std::uint64_t counter) const;
    // Records `counter` as seen; call only after the frame authenticated.
    void accept(std::uint64_t counter);

private:
    bool seen(std::uint64_t counter) const;
    std::array<std::uint64_t, kSize / 64> bits_{};
    std::uint64_t highest_ = 0;
    bool any_ = false;
};

}  // namespace keyhole::transport
