#include "keyhole/transport/transport.h"

#include <spdlog/spdlog.h>

#include "keyhole/transport/relay_wire.h"
#include "keyhole/transport/wire.h"

namespace keyhole::transport {

namespace {
// A hostile sender must not be able to flood the log.
constexpr auto kDropLogInterval = std::chrono::seconds(10);
}  // namespace

void Transport::on_packet(std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
    ++stats_.packets_received;
    // A relay's answers to this node as a relay client: the session layer's.
    if (is_relay_client_packet(datagram)) {
        if (session_handler_) session_handler_(datagram, from);
        else drop(datagram, from, "relay answer on a node without a session layer");
        return;
    }
    auto packet = parse_packet(datagram);
    if (!packet) {
        drop(datagram, from, packet.error().c_str());
        return;
    }
    if (auto* request = std::get_if<ReflectRequest>(&packet.value())) {
        const auto response = encode_reflect_response(request->nonce, from);
        if (!response.empty()) {
            sender_(from, response);
            ++stats_.reflections_answered;
        }
        return;
    }
    if (!session_handler_) {
        drop(datagram, from, "no session layer on this node");
        return;
    }
    session_handler_(datagram, from);
}

void Transport::drop(std::span<const std::uint8_t> datagram, const identity::Endpoint& from, const char* why) {
    ++stats_.packets_dropped;
    ++drops_since_log_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_drop_log_ >= kDropLogInterval) {
        spdlog::info("dropped {} keyhole packet(s); last: {} bytes from {}: {}", drops_since_log_, datagram.size(),
                     from.to_string(), why);
        last_drop_log_ = now;
        drops_since_log_ = 0;
    }
}

}  // namespace keyhole::transport
