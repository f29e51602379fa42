#include "relay_node.h"

#include <ctime>

#include <spdlog/spdlog.h>

#include "keyhole/transport/relay_wire.h"

namespace keyhole::node {

namespace {

constexpr auto kTickInterval = std::chrono::seconds(1);
constexpr auto kDirectoryLookupTimeout = std::chrono::seconds(10);

std::uint64_t now_unix_s() { return static_cast<std::uint64_t>(std::time(nullptr)); }

std::optional<identity::Endpoint> with_port(const std::string& ipv4, std::uint16_t port) {
    auto parsed = identity::Endpoint::parse(ipv4 + ":1");
    if (!parsed || !parsed->is_v4()) return std::nullopt;
    std::array<std::uint8_t, 4> address{};
    std::copy_n(parsed->address_bytes(), 4, address.begin());
    return identity::Endpoint::ipv4(address, port);
}

}  // namespace

RelayNode::RelayNode(asio::io_context& io, transport::UdpPort& udp, dht::DhtNode& dht, const identity::KeyPair& key,
                     const DaemonConfig& config)
    : udp_(udp), dht_(dht), config_(config),
      server_(key, config.relay_limits,
              [this](const RelayPath& to, std::span<const std::uint8_t> packet) {
                  if (to.is_stream()) {
                      if (tls_) tls_->send(to.stream, packet);
                  } else {
                      udp_.send_to(to.endpoint, packet);
                  }
              }),
      announcer_(io, dht, key, server_, [this] { return public_endpoints(); }), tick_(io) {
    auto identity = transport::TlsServerIdentity::create(key);
    if (!identity) {
        spdlog::warn("relay: no TLS/TCP: {}", identity.error());
        return;
    }
    tls_ = std::make_unique<RelayTlsListener>(io, identity.value(), server_, config.relay_limits.max_tls_connections);
    server_.set_directory_handler([this](const RelayPath& from, const identity::PeerId& client,
                                         const transport::RelayPacket& request) { serve_directory(from, client, request); });
}

void RelayNode::serve_directory(const RelayPath& from, const identity::PeerId& client,
                                const transport::RelayPacket& request) {
    if (auto* publish = std::get_if<transport::DirectoryPublish>(&request)) {
        // Only the allocation owner's own record, and only one that verifies.
        auto record = identity::decode_verified_any_owner(publish->signed_record, now_unix_s());
        if (!record || record->owner != client) {
            spdlog::debug("relay: record from {} not stored: {}", client.to_text(),
                          record ? "not the client's own" : record.error());
            return;
        }
        dht_.store_record(record.value(), {publish->signed_record.begin(), publish->signed_record.end()});
    } else if (auto* lookup = std::get_if<transport::DirectoryLookup>(&request)) {
        dht_.lookup_signed(lookup->target, kDirectoryLookupTimeout,
                           [this, from, nonce = lookup->nonce](std::vector<std::uint8_t> found) {
                               if (running_ && tls_) tls_->send(from.stream, transport::encode_directory_record(nonce, found));
                           });
    } else if (auto* inbox = std::get_if<transport::DirectoryInbox>(&request)) {
        if (inbox->message.size() <= dht::kMaxInboxMessage)
            dht_.send_to_inbox(inbox->target, {inbox->message.begin(), inbox->message.end()});
    }
}

RelayNode::~RelayNode() { stop(); }

void RelayNode::start() {
    running_ = true;
    if (tls_) {
        const auto port = config_.relay_tcp_port != 0 ? config_.relay_tcp_port : udp_.local_endpoint().port();
        auto bind_to = with_port(config_.bind_address, port);
        auto listening = bind_to ? tls_->listen(*bind_to) : Status(fail("bad bind address"));
        if (!listening) {
            spdlog::warn("relay: no TLS/TCP: {}", listening.error());
            tls_.reset();
        }
    }
    spdlog::info("relay mode: UDP {}{}, at most {} allocations", udp_.local_endpoint().to_string(),
                 tls_ ? ", TLS/TCP " + tls_->local_endpoint().to_string() : std::string(),
                 config_.relay_limits.max_allocations);
    schedule_tick();
    announcer_.start();
}

void RelayNode::stop() {
    if (!running_) return;
    running_ = false;
    tick_.cancel();
    announcer_.stop();
    if (tls_) tls_->stop();
}

bool RelayNode::on_datagram(std::span<const std::uint8_t> datagram, const identity::Endpoint& from) {
    if (!running_ || !transport::is_relay_server_packet(datagram)) return false;
    server_.on_packet(datagram, RelayPath{from, 0});
    return true;
}

identity::Endpoint RelayNode::tls_endpoint() const { return tls_ ? tls_->local_endpoint() : identity::Endpoint(); }

std::optional<RelayEndpoints> RelayNode::public_endpoints() const {
    // The address to announce: configured, else a specific bind address,
    // else the IP DHT nodes see us at (OpenDHT gives no port: ours is the bound one).
    std::string address = config_.relay_public_address;
    if (address.empty() && config_.bind_address != "0.0.0.0") address = config_.bind_address;
    if (address.empty()) {
        for (const auto& candidate : dht_.health().public_addresses) {
            if (with_port(candidate, 1)) {
                address = candidate;
                break;
            }
        }
    }
    if (address.empty()) return std::nullopt;
    auto udp = with_port(address, udp_.local_endpoint().port());
    if (!udp) return std::nullopt;
    RelayEndpoints endpoints;
    endpoints.udp = *udp;
    if (tls_) {
        if (auto tcp = with_port(address, tls_->local_endpoint().port())) endpoints.tcp = *tcp;
    }
    return endpoints;
}

void RelayNode::schedule_tick() {
    tick_.expires_after(kTickInterval);
    tick_.async_wait([this](const asio::error_code& error) {
        if (error || !running_) return;
        server_.tick();
        if (tls_) tls_->close_idle(std::chrono::seconds(config_.relay_limits.allocation_lifetime_s));
        schedule_tick();
    });
}

}  // namespace keyhole::node
