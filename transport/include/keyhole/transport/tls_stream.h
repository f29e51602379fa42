// TLS over TCP for relays (GnuTLS), for clients whose network drops UDP.
// The stream carries the same keyhole packets as UDP, each prefixed with its
// length as 2 bytes big-endian (docs/protocol.md, "Relays over TLS").
//
// Binding: the relay's certificate is a self-signed X.509 certificate over
// its Ed25519 identity key. A client accepts the connection only if the
// certificate's public key equals the relay key it expected (from the
// relay's signed announcement); TLS 1.3's CertificateVerify proves the relay
// holds that key. No CA is involved.
//
// Everything runs on the io_context thread. GnuTLS is driven over memory
// buffers (custom push/pull), so it never blocks the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/result.h"

namespace keyhole::transport {

// Largest packet a stream carries (the length prefix is 2 bytes).
constexpr std::size_t kMaxStreamPacket = 65535;
// Output queued beyond this is dropped (send() returns false), like a full
// UDP socket buffer: relayed traffic is datagrams, a slow reader loses some.
constexpr std::size_t kMaxStreamBacklog = 1 << 20;
constexpr auto kTlsHandshakeTimeout = std::chrono::seconds(10);

// A relay's TLS credentials: the self-signed certificate over its identity key.
class TlsServerIdentity {
public:
    static Result<std::shared_ptr<TlsServerIdentity>> create(const identity::KeyPair& key);
    ~TlsServerIdentity();
    TlsServerIdentity(const TlsServerIdentity&) = delete;
    TlsServerIdentity& operator=(const TlsServerIdentity&) = delete;

    struct Impl;
    Impl& impl() { return *impl_; }

private:
    TlsServerIdentity();
    std::unique_ptr<Impl> impl_;
};

struct TlsStreamCallbacks {
    // Handshake done (client: and the relay key checked).
    std::function<void()> on_ready;
    // One whole packet (at least 1 byte, at most kMaxStreamPacket).
    std::function<void(std::span<const std::uint8_t> packet)> on_packet;
    // The stream ended: peer closed, handshake or verification failed, I/O
    // error, malformed framing. Called at most once, never after close().
    std::function<void(const std::string& reason)> on_closed;
};

class TlsStream {
public:
    // Server side of an accepted connection.
    static std::shared_ptr<TlsStream> accept(asio::ip::tcp::socket socket,
                                             std::shared_ptr<TlsServerIdentity> identity, TlsStreamCallbacks callbacks);
    // Client side: connects to `relay_endpoint` and accepts the connection only
    // if the relay's certificate key is `expected_relay`.
    static std::shared_ptr<TlsStream> connect(asio::io_context& io, const identity::Endpoint& relay_endpoint,
                                              const identity::PeerId& expected_relay, TlsStreamCallbacks callbacks);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    // Queues one packet. False if the stream is not ready, the packet is empty
    // or too large, or the backlog is full (the packet is dropped).
    bool send(std::span<const std::uint8_t> packet);
    // Closes the socket (the destructor does too); no callback runs afterwards.
    void close();

    bool ready() const;
    identity::Endpoint remote_endpoint() const;
    std::size_t backlog() const;

    struct Impl;

private:
    explicit TlsStream(std::shared_ptr<Impl> impl);
    std::shared_ptr<Impl> impl_;  // kept alive by pending I/O until close()
};

}  // namespace keyhole::transport
