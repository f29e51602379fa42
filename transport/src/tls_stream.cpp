#include "keyhole/transport/tls_stream.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <vector>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>

namespace keyhole::transport {

namespace {

// TLS 1.3 only: its CertificateVerify signs the whole handshake with the
// certificate key, which is what binds the connection to the relay's key.
constexpr char kPriorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
constexpr std::size_t kReadChunk = 16384;

std::string tls_error(const char* what, int code) { return std::string(what) + ": " + gnutls_strerror(code); }

bool gnutls_ready() {
    static const bool ready = gnutls_global_init() >= 0;
    return ready;
}

}  // namespace

// ---------------------------------------------------------------------------
// Server identity: self-signed certificate over the Ed25519 identity key.

struct TlsServerIdentity::Impl {
    gnutls_certificate_credentials_t credentials = nullptr;
    ~Impl() {
        if (credentials) gnutls_certificate_free_credentials(credentials);
    }
};

TlsServerIdentity::TlsServerIdentity() : impl_(std::make_unique<Impl>()) {}
TlsServerIdentity::~TlsServerIdentity() = default;

Result<std::shared_ptr<TlsServerIdentity>> TlsServerIdentity::create(const identity::KeyPair& key) {
    if (!gnutls_ready()) return fail("cannot initialise GnuTLS");
    std::shared_ptr<TlsServerIdentity> identity(new TlsServerIdentity());

    auto seed = key.ed25519_seed();
    auto public_key = key.public_key();
    gnutls_datum_t x{public_key.data(), static_cast<unsigned>(public_key.size())};
    gnutls_datum_t k{seed.data(), static_cast<unsigned>(seed.size())};

    gnutls_privkey_t private_key = nullptr;
    gnutls_pubkey_t pubkey = nullptr;
    gnutls_x509_crt_t certificate = nullptr;
    auto cleanup = [&] {
        sodium_memzero(seed.data(), seed.size());
        if (private_key) gnutls_privkey_deinit(private_key);
        if (pubkey) gnutls_pubkey_deinit(pubkey);
        if (certificate) gnutls_x509_crt_deinit(certificate);
    };
    int rc = gnutls_privkey_init(&private_key);
    if (rc >= 0) rc = gnutls_privkey_import_ecc_raw(private_key, GNUTLS_ECC_CURVE_ED25519, &x, nullptr, &k);
    if (rc >= 0) rc = gnutls_pubkey_init(&pubkey);
    if (rc >= 0) rc = gnutls_pubkey_import_privkey(pubkey, private_key, 0, 0);
    if (rc >= 0) rc = gnutls_x509_crt_init(&certificate);
    if (rc >= 0) rc = gnutls_x509_crt_set_version(certificate, 3);
    std::array<std::uint8_t, 16> serial{};
    randombytes_buf(serial.data(), serial.size());
    serial[0] &= 0x7f;  // a positive integer
    if (rc >= 0) rc = gnutls_x509_crt_set_serial(certificate, serial.data(), serial.size());
    const auto now = std::time(nullptr);
    if (rc >= 0) rc = gnutls_x509_crt_set_activation_time(certificate, now - 24 * 3600);
    if (rc >= 0) rc = gnutls_x509_crt_set_expiration_time(certificate, now + 10LL * 365 * 24 * 3600);
    const std::string common_name = "keyhole relay " + key.id().to_text();
    if (rc >= 0)
        rc = gnutls_x509_crt_set_dn_by_oid(certificate, GNUTLS_OID_X520_COMMON_NAME, 0, common_name.data(),
                                           static_cast<unsigned>(common_name.size()));
    if (rc >= 0) rc = gnutls_x509_crt_set_pubkey(certificate, pubkey);
    if (rc >= 0) rc = gnutls_x509_crt_set_key_usage(certificate, GNUTLS_KEY_DIGITAL_SIGNATURE);
    if (rc >= 0) rc = gnutls_x509_crt_privkey_sign(certificate, certificate, private_key, GNUTLS_DIG_SHA512, 0);
    if (rc < 0) {
        cleanup();
        return fail(tls_error("cannot make the relay's TLS certificate", rc));
    }
    gnutls_pcert_st pcert{};
    rc = gnutls_pcert_import_x509(&pcert, certificate, 0);
    if (rc >= 0) rc = gnutls_certificate_allocate_credentials(&identity->impl_->credentials);
    if (rc < 0) {
        if (pcert.cert.data) gnutls_pcert_deinit(&pcert);
        cleanup();
        return fail(tls_error("cannot set up the relay's TLS credentials", rc));
    }
    // The credentials take ownership of the certificate's contents and the key.
    rc = gnutls_certificate_set_key(identity->impl_->credentials, nullptr, 0, &pcert, 1, private_key);
    if (rc < 0) {
        gnutls_pcert_deinit(&pcert);
        cleanup();
        return fail(tls_error("cannot set up the relay's TLS credentials", rc));
    }
    private_key = nullptr;
    cleanup();
    return identity;
}

// ---------------------------------------------------------------------------
// The stream.

struct TlsStream::Impl : std::enable_shared_from_this<TlsStream::Impl> {
    Impl(asio::io_context& io_context, bool is_server)
        : io(io_context), socket(io_context), handshake_timer(io_context), server(is_server) {}
    ~Impl() { release_session(); }

    asio::io_context& io;
    asio::ip::tcp::socket socket;
    asio::steady_timer handshake_timer;
    bool server;
    std::shared_ptr<TlsServerIdentity> server_identity;
    gnutls_certificate_credentials_t client_credentials = nullptr;
    identity::PeerId expected_relay;
    gnutls_session_t session = nullptr;
    TlsStreamCallbacks callbacks;
    identity::Endpoint remote;

    bool handshake_done = false;
    bool closed = false;
    std::vector<std::uint8_t> cipher_in;       // received, not yet read by GnuTLS
    std::size_t cipher_in_offset = 0;
    std::vector<std::uint8_t> cipher_out;      // written by GnuTLS, not yet handed to the socket
    std::vector<std::uint8_t> writing;         // in flight on the socket
    bool write_in_flight = false;
    std::vector<std::uint8_t> plain_in;        // decrypted, not yet split into packets
    std::array<std::uint8_t, kReadChunk> read_buffer{};

    void release_session() {
        if (session) gnutls_deinit(session);
        session = nullptr;
        if (client_credentials) gnutls_certificate_free_credentials(client_credentials);
        client_credentials = nullptr;
    }

    // GnuTLS transport over our buffers.
    static ssize_t push(gnutls_transport_ptr_t self, const void* data, size_t size) {
        auto* impl = static_cast<Impl*>(self);
        const auto* bytes = static_cast<const std::uint8_t*>(data);
        impl->cipher_out.insert(impl->cipher_out.end(), bytes, bytes + size);
        return static_cast<ssize_t>(size);
    }
    static ssize_t pull(gnutls_transport_ptr_t self, void* data, size_t size) {
        auto* impl = static_cast<Impl*>(self);
        const std::size_t available = impl->cipher_in.size() - impl->cipher_in_offset;
        if (available == 0) {
            gnutls_transport_set_errno(impl->session, EAGAIN);
            return -1;
        }
        const std::size_t n = std::min(available, size);
        std::memcpy(data, impl->cipher_in.data() + impl->cipher_in_offset, n);
        impl->cipher_in_offset += n;
        if (impl->cipher_in_offset == impl->cipher_in.size()) {
            impl->cipher_in.clear();
            impl->cipher_in_offset = 0;
        }
        return static_cast<ssize_t>(n);
    }
    static int pull_timeout(gnutls_transport_ptr_t self, unsigned int) {
        auto* impl = static_cast<Impl*>(self);
        return impl->cipher_in.size() > impl->cipher_in_offset ? 1 : 0;
    }

    Status init_session() {
        if (!gnutls_ready()) return fail("cannot initialise GnuTLS");
        unsigned flags = (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS;
        int rc = gnutls_init(&session, flags);
        if (rc < 0) return fail(tls_error("gnutls_init", rc));
        rc = gnutls_priority_set_direct(session, kPriorities, nullptr);
        if (rc < 0) return fail(tls_error("TLS priorities", rc));
        if (server) {
            rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, server_identity->impl().credentials);
        } else {
            rc = gnutls_certificate_allocate_credentials(&client_credentials);
            if (rc >= 0) rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, client_credentials);
        }
        if (rc < 0) return fail(tls_error("TLS credentials", rc));
        gnutls_transport_set_ptr(session, this);
        gnutls_transport_set_push_function(session, &Impl::push);
        gnutls_transport_set_pull_function(session, &Impl::pull);
        gnutls_transport_set_pull_timeout_function(session, &Impl::pull_timeout);
        gnutls_handshake_set_timeout(session, 0);  // our own timer bounds the handshake
        return success();
    }

    void start() {
        if (auto ready = init_session(); !ready) {
            fail_stream(ready.error());
            return;
        }
        handshake_timer.expires_after(kTlsHandshakeTimeout);
        handshake_timer.async_wait([self = shared_from_this()](const asio::error_code& error) {
            if (!error && !self->handshake_done) self->fail_stream("TLS handshake timed out");
        });
        advance();
        read_next();
    }

    void read_next() {
        if (closed) return;
        socket.async_read_some(asio::buffer(read_buffer),
                               [self = shared_from_this()](const asio::error_code& error, std::size_t n) {
                                   if (self->closed) return;
                                   if (error) {
                                       self->fail_stream(error == asio::error::eof ? "connection closed by peer"
                                                                                   : error.message());
                                       return;
                                   }
                                   self->cipher_in.insert(self->cipher_in.end(), self->read_buffer.begin(),
                                                          self->read_buffer.begin() + n);
                                   self->advance();
                                   self->read_next();
                               });
    }

    // Moves the handshake or the record layer forward with what has arrived.
    void advance() {
        if (closed) return;
        if (!handshake_done) {
            const int rc = gnutls_handshake(session);
            flush();
            if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) return;
            if (rc < 0) {
                if (gnutls_error_is_fatal(rc)) {
                    fail_stream(tls_error("TLS handshake failed", rc));
                    return;
                }
                return;  // a warning alert; the handshake goes on
            }
            if (!server) {
                if (auto verified = verify_relay_key(); !verified) {
                    fail_stream(verified.error());
                    return;
                }
            }
            handshake_done = true;
            handshake_timer.cancel();
            if (callbacks.on_ready) callbacks.on_ready();
            if (closed) return;
        }
        std::array<std::uint8_t, kReadChunk> plain{};
        for (int round = 0; round < 1024 && !closed; ++round) {
            const auto n = gnutls_record_recv(session, plain.data(), plain.size());
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) break;
            if (n == 0) {
                fail_stream("connection closed by peer");
                return;
            }
            if (n < 0) {
                if (gnutls_error_is_fatal(static_cast<int>(n))) {
                    fail_stream(tls_error("TLS receive failed", static_cast<int>(n)));
                    return;
                }
                continue;
            }
            plain_in.insert(plain_in.end(), plain.begin(), plain.begin() + n);
            split_packets();
        }
        flush();
    }

    void split_packets() {
        std::size_t offset = 0;
        while (!closed && plain_in.size() - offset >= 2) {
            const std::size_t length = (std::size_t{plain_in[offset]} << 8) | plain_in[offset + 1];
            if (length == 0) {
                fail_stream("malformed stream: empty packet");
                return;
            }
            if (plain_in.size() - offset - 2 < length) break;
            const std::span<const std::uint8_t> packet(plain_in.data() + offset + 2, length);
            offset += 2 + length;
            if (callbacks.on_packet) callbacks.on_packet(packet);
        }
        if (!closed) plain_in.erase(plain_in.begin(), plain_in.begin() + static_cast<std::ptrdiff_t>(offset));
    }

    Status verify_relay_key() {
        unsigned count = 0;
        const gnutls_datum_t* chain = gnutls_certificate_get_peers(session, &count);
        if (chain == nullptr || count == 0) return fail("relay sent no TLS certificate");
        gnutls_x509_crt_t certificate = nullptr;
        int rc = gnutls_x509_crt_init(&certificate);
        if (rc >= 0) rc = gnutls_x509_crt_import(certificate, &chain[0], GNUTLS_X509_FMT_DER);
        if (rc < 0) {
            if (certificate) gnutls_x509_crt_deinit(certificate);
            return fail(tls_error("relay's TLS certificate is unreadable", rc));
        }
        const int algorithm = gnutls_x509_crt_get_pk_algorithm(certificate, nullptr);
        gnutls_ecc_curve_t curve{};
        gnutls_datum_t x{}, y{};
        rc = algorithm == GNUTLS_PK_EDDSA_ED25519 ? gnutls_x509_crt_get_pk_ecc_raw(certificate, &curve, &x, &y)
                                                   : GNUTLS_E_UNKNOWN_PK_ALGORITHM;
        gnutls_x509_crt_deinit(certificate);
        if (rc < 0) return fail("relay's TLS certificate is not over an Ed25519 key");
        const bool match = curve == GNUTLS_ECC_CURVE_ED25519 && x.size == identity::kPublicKeySize &&
                           std::memcmp(x.data, expected_relay.key().data(), identity::kPublicKeySize) == 0;
        gnutls_free(x.data);
        gnutls_free(y.data);
        if (!match) return fail("relay's TLS certificate is not over the expected relay key");
        return success();
    }

    bool send(std::span<const std::uint8_t> packet) {
        if (closed || !handshake_done || packet.empty() || packet.size() > kMaxStreamPacket) return false;
        if (cipher_out.size() + writing.size() > kMaxStreamBacklog) return false;
        std::vector<std::uint8_t> framed(2 + packet.size());
        framed[0] = static_cast<std::uint8_t>(packet.size() >> 8);
        framed[1] = static_cast<std::uint8_t>(packet.size() & 0xff);
        std::memcpy(framed.data() + 2, packet.data(), packet.size());
        std::size_t sent = 0;
        while (sent < framed.size()) {
            const auto n = gnutls_record_send(session, framed.data() + sent, framed.size() - sent);
            if (n < 0) {
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;  // push never blocks
                fail_stream(tls_error("TLS send failed", static_cast<int>(n)));
                return false;
            }
            sent += static_cast<std::size_t>(n);
        }
        flush();
        return true;
    }

    void flush() {
        if (closed || write_in_flight || cipher_out.empty()) return;
        writing.swap(cipher_out);
        cipher_out.clear();
        write_in_flight = true;
        asio::async_write(socket, asio::buffer(writing), [self = shared_from_this()](const asio::error_code& error, std::size_t) {
            self->write_in_flight = false;
            self->writing.clear();
            if (self->closed) return;
            if (error) {
                self->fail_stream(error.message());
                return;
            }
            self->flush();
        });
    }

    void fail_stream(const std::string& reason) {
        if (closed) return;
        auto on_closed = std::move(callbacks.on_closed);
        shut();
        if (on_closed) on_closed(reason);
    }

    void shut() {
        if (closed) return;
        closed = true;
        // Not cleared here: close() may run inside one of these callbacks.
        asio::post(io, [self = shared_from_this()] { self->callbacks = {}; });
        handshake_timer.cancel();
        asio::error_code ignored;
        socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
    }
};

TlsStream::TlsStream(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsStream::~TlsStream() { close(); }

std::shared_ptr<TlsStream> TlsStream::accept(asio::ip::tcp::socket socket,
                                             std::shared_ptr<TlsServerIdentity> identity, TlsStreamCallbacks callbacks) {
    auto& io = static_cast<asio::io_context&>(socket.get_executor().context());
    auto impl = std::make_shared<Impl>(io, /*is_server=*/true);
    impl->socket = std::move(socket);
    impl->server_identity = std::move(identity);
    impl->callbacks = std::move(callbacks);
    asio::error_code error;
    const auto peer = impl->socket.remote_endpoint(error);
    if (!error) {
        auto endpoint = identity::Endpoint::from_sockaddr(peer.data(), static_cast<socklen_t>(peer.size()));
        if (endpoint) impl->remote = endpoint.value();
    }
    asio::ip::tcp::no_delay no_delay(true);
    impl->socket.set_option(no_delay, error);
    std::shared_ptr<TlsStream> stream(new TlsStream(impl));
    asio::post(io, [impl] { impl->start(); });
    return stream;
}

std::shared_ptr<TlsStream> TlsStream::connect(asio::io_context& io, const identity::Endpoint& relay_endpoint,
                                              const identity::PeerId& expected_relay, TlsStreamCallbacks callbacks) {
    auto impl = std::make_shared<Impl>(io, /*is_server=*/false);
    impl->expected_relay = expected_relay;
    impl->callbacks = std::move(callbacks);
    impl->remote = relay_endpoint;
    std::shared_ptr<TlsStream> stream(new TlsStream(impl));
    sockaddr_storage storage{};
    const socklen_t length = relay_endpoint.to_sockaddr(storage);
    asio::ip::tcp::endpoint target;
    if (length == 0 || length > target.capacity()) {
        asio::post(io, [impl] { impl->fail_stream("no relay TCP endpoint"); });
        return stream;
    }
    std::memcpy(target.data(), &storage, length);
    target.resize(length);
    impl->socket.async_connect(target, [impl](const asio::error_code& error) {
        if (impl->closed) return;
        if (error) {
            impl->fail_stream("cannot connect to relay: " + error.message());
            return;
        }
        asio::error_code ignored;
        impl->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
        impl->start();
    });
    return stream;
}

bool TlsStream::send(std::span<const std::uint8_t> packet) { return impl_->send(packet); }

void TlsStream::close() { impl_->shut(); }

bool TlsStream::ready() const { return impl_->handshake_done && !impl_->closed; }
identity::Endpoint TlsStream::remote_endpoint() const { return impl_->remote; }
std::size_t TlsStream::backlog() const { return impl_->cipher_out.size() + impl_->writing.size(); }

}  // namespace keyhole::transport
