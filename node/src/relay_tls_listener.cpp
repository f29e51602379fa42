#include "relay_tls_listener.h"

#include <cstring>
#include <vector>

#include <asio/post.hpp>
#include <spdlog/spdlog.h>

#include "keyhole/transport/relay_wire.h"

namespace keyhole::node {

RelayTlsListener::RelayTlsListener(asio::io_context& io, std::shared_ptr<transport::TlsServerIdentity> identity,
                                   RelayServer& server, std::uint32_t max_connections)
    : io_(io), acceptor_(io), identity_(std::move(identity)), server_(server), max_connections_(max_connections) {}

RelayTlsListener::~RelayTlsListener() { stop(); }

Status RelayTlsListener::listen(const identity::Endpoint& bind_to) {
    sockaddr_storage storage{};
    const socklen_t length = bind_to.to_sockaddr(storage);
    asio::ip::tcp::endpoint endpoint;
    if (length == 0 || length > endpoint.capacity()) return fail("relay TCP: no address to listen on");
    std::memcpy(endpoint.data(), &storage, length);
    endpoint.resize(length);
    asio::error_code error;
    acceptor_.open(endpoint.protocol(), error);
    if (!error) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
    if (!error) acceptor_.bind(endpoint, error);
    if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
    if (error) {
        asio::error_code ignored;
        acceptor_.close(ignored);
        return fail("relay TCP: cannot listen on " + bind_to.to_string() + ": " + error.message());
    }
    const auto bound = acceptor_.local_endpoint(error);
    auto parsed = identity::Endpoint::from_sockaddr(bound.data(), static_cast<socklen_t>(bound.size()));
    if (parsed) local_ = parsed.value();
    accept_next();
    return success();
}

void RelayTlsListener::accept_next() {
    acceptor_.async_accept([this, alive = alive_](const asio::error_code& error, asio::ip::tcp::socket socket) {
        if (!*alive) return;
        if (error) {
            if (error == asio::error::operation_aborted || !acceptor_.is_open()) return;
            spdlog::debug("relay TCP accept: {}", error.message());
            accept_next();
            return;
        }
        asio::error_code peer_error;
        const auto peer = socket.remote_endpoint(peer_error);
        auto remote = peer_error ? Result<identity::Endpoint>(fail("no peer"))
                                 : identity::Endpoint::from_sockaddr(peer.data(), static_cast<socklen_t>(peer.size()));
        if (!remote || streams_.size() >= max_connections_ ||
            connections_from(remote.value()) >= kMaxTlsConnectionsPerAddress) {
            asio::error_code ignored;
            socket.close(ignored);  // over a limit: refused before any TLS work
            accept_next();
            return;
        }
        const auto id = next_stream_++;
        transport::TlsStreamCallbacks callbacks;
        callbacks.on_packet = [this, alive, id](std::span<const std::uint8_t> packet) {
            if (!*alive) return;
            const auto entry = streams_.find(id);
            if (entry == streams_.end()) return;
            entry->second.last_packet = std::chrono::steady_clock::now();
            if (!transport::is_relay_server_packet(packet)) return;  // nothing else is served over TLS
            server_.on_packet(packet, RelayPath{entry->second.remote, id});
        };
        callbacks.on_closed = [this, alive, id](const std::string& reason) {
            if (!*alive) return;
            spdlog::debug("relay TLS stream {} closed: {}", id, reason);
            closed(id);
        };
        streams_.emplace(id, Entry{transport::TlsStream::accept(std::move(socket), identity_, std::move(callbacks)),
                                   remote.value(), std::chrono::steady_clock::now()});
        accept_next();
    });
}

void RelayTlsListener::closed(std::uint64_t stream) {
    // Not erased inside the stream's own callback: released on the next turn of the loop.
    auto it = streams_.find(stream);
    if (it == streams_.end()) return;
    auto holder = std::move(it->second.stream);
    streams_.erase(it);
    server_.on_stream_closed(stream);
    asio::post(io_, [holder = std::move(holder)] {});
}

void RelayTlsListener::send(std::uint64_t stream, std::span<const std::uint8_t> packet) {
    const auto it = streams_.find(stream);
    if (it != streams_.end()) (void)it->second.stream->send(packet);
}

std::size_t RelayTlsListener::connections_from(const identity::Endpoint& remote) const {
    std::size_t n = 0;
    for (const auto& [id, entry] : streams_)
        n += entry.remote.address_string() == remote.address_string();
    return n;
}

void RelayTlsListener::close_idle(std::chrono::steady_clock::duration idle) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::uint64_t> idle_streams;
    for (const auto& [id, entry] : streams_)
        if (now - entry.last_packet >= idle) idle_streams.push_back(id);
    for (auto id : idle_streams) {
        spdlog::debug("relay TLS stream {} idle; closed", id);
        streams_.at(id).stream->close();
        closed(id);
    }
}

void RelayTlsListener::stop() {
    *alive_ = false;
    asio::error_code ignored;
    acceptor_.close(ignored);
    for (auto& [id, entry] : streams_) entry.stream->close();
    streams_.clear();
}

}  // namespace keyhole::node
