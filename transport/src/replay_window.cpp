#include "keyhole/transport/replay_window.h"

namespace keyhole::transport {

bool ReplayWindow::seen(std::uint64_t counter) const {
    const std::uint64_t bit = counter % kSize;
    return (bits_[bit / 64] >> (bit % 64)) & 1u;
}

bool ReplayWindow::may_accept(std::uint64_t counter) const {
    if (!any_ || counter > highest_) return true;
    if (highest_ - counter >= kSize) return false;
    return !seen(counter);
}

void ReplayWindow::accept(std::uint64_t counter) {
    if (!any_) {
        any_ = true;
        highest_ = counter;
        bits_.fill(0);
    } else if (counter > highest_) {
        // Clear the slots the window slides over; they now stand for new counters.
        const std::uint64_t advance = counter - highest_;
        if (advance >= kSize) {
            bits_.fill(0);
        } else {
            for (std::uint64_t c = highest_ + 1; c <= counter; ++c) {
                const std::uint64_t bit = c % kSize;
                bits_[bit / 64] &= ~(std::uint64_t{1} << (bit % 64));
            }
        }
        highest_ = counter;
    }
    const std::uint64_t bit = counter % kSize;
    bits_[bit / 64] |= std::uint64_t{1} << (bit % 64);
}

}  // namespace keyhole::transport
