#include "keyhole/transport/transport.h"

#include <spdlog/spdlog.h>

namespace keyhole::transport {

namespace {
// A hostile sender must not be able to flood the log.
constexpr auto kDropLogInterval = std::chrono::seconds(10);
}  // namespace

void Transport::on_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
    ++stats_.packets_received;
    ++stats_.packets_dropped;
    ++drops_since_log_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_drop_log_ >= kDropLogInterval) {
        spdlog::info("dropped {} keyhole packet(s) (no session layer yet); last: {} bytes from {}",
                     drops_since_log_, datagram.size(), from.to_string());
        last_drop_log_ = now;
        drops_since_log_ = 0;
    }
}

}  // namespace keyhole::transport
