#include "relay_announcer.h"

#include <spdlog/spdlog.h>

namespace keyhole::node {

namespace {

constexpr auto kRetryUnknownAddress = std::chrono::seconds(10);

std::uint64_t now_unix_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

}  // namespace

RelayAnnouncer::RelayAnnouncer(asio::io_context& io, dht::DhtNode& dht, const identity::KeyPair& key,
                               const RelayServer& server, std::function<std::optional<RelayEndpoints>()> endpoints,
                               std::chrono::milliseconds lifetime)
    : dht_(dht), key_(key), server_(server), endpoints_(std::move(endpoints)), lifetime_(lifetime),
      timer_(io) {}

void RelayAnnouncer::start() {
    running_ = true;
    announce();
}

void RelayAnnouncer::stop() {
    if (!running_) return;
    running_ = false;
    timer_.cancel();
    dht_.withdraw_relay();
}

void RelayAnnouncer::schedule(std::chrono::milliseconds delay) {
    timer_.expires_after(delay);
    timer_.async_wait([this](const asio::error_code& error) {
        if (!error && running_) announce();
    });
}

void RelayAnnouncer::announce() {
    const auto endpoints = endpoints_();
    if (!endpoints || endpoints->udp.empty()) {
        spdlog::info("relay: public address not known yet; announcing in {} s", kRetryUnknownAddress.count());
        schedule(kRetryUnknownAddress);
        return;
    }
    identity::RelayAnnouncement announcement;
    announcement.relay = key_.id();
    announcement.udp = endpoints->udp;
    announcement.tcp = endpoints->tcp;
    const auto& limits = server_.limits();
    announcement.capacity = limits.max_allocations;
    const auto used = static_cast<std::uint32_t>(std::min<std::size_t>(server_.allocation_count(), limits.max_allocations));
    announcement.free = limits.max_allocations - used;
    announcement.max_bandwidth = limits.total_bytes_per_s;
    announcement.issued_ms = now_unix_ms();
    announcement.expires_ms = announcement.issued_ms + static_cast<std::uint64_t>(lifetime_.count());
    if (auto announced = dht_.announce_relay(identity::encode_signed_announcement(announcement, key_)); !announced) {
        spdlog::warn("relay: cannot announce: {}; retrying in {} s", announced.error(), kRetryUnknownAddress.count());
        schedule(kRetryUnknownAddress);
        return;
    }
    if (!current_ || current_->udp != announcement.udp || current_->tcp != announcement.tcp)
        spdlog::info("relay: announcing UDP {}{}", announcement.udp.to_string(),
                     announcement.tcp.empty() ? std::string() : ", TLS/TCP " + announcement.tcp.to_string());
    current_ = announcement;
    schedule(lifetime_ / 2);
}

}  // namespace keyhole::node
