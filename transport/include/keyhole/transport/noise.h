// The session handshake: Noise_IK_25519_ChaChaPoly_BLAKE2b (Noise Protocol
// Framework, revision 34), built only from libsodium primitives.
//
//   IK:  <- s
//        ...
//        -> e, es, s, ss     message 1: 32 + 48 + payload + 16 bytes
//        <- e, ee, se        message 2: 32 + payload + 16 bytes
//
// The objects follow the specification's CipherState, SymmetricState and
// HandshakeState (sections 5.1-5.3) with HASHLEN = 64, BLOCKLEN = 128:
// HASH is BLAKE2b-512, HMAC is RFC 2104 over BLAKE2b (not BLAKE2b's keyed
// mode), HKDF is the specification's two- or three-output construction,
// the cipher is ChaCha20-Poly1305 (IETF) with the nonce 0x00000000 ||
// little-endian 64-bit n, and DH is X25519 with an all-zero result rejected.
//
// Noise static keys are the X25519 keys derived from the daemon's Ed25519
// identity, so a peer's static public key follows from its PeerId.
//
// Anything read from the network is hostile: every failure is an Error value
// and a handshake that failed once stays failed. Secrets are wiped with
// sodium_memzero when they are no longer needed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keyhole/identity/key_pair.h"
#include "keyhole/identity/peer_id.h"
#include "keyhole/result.h"

namespace keyhole::transport::noise {

inline constexpr std::string_view kProtocolName = "Noise_IK_25519_ChaChaPoly_BLAKE2b";

inline constexpr std::size_t kDhLen = 32;     // X25519 keys and outputs
inline constexpr std::size_t kKeyLen = 32;    // ChaChaPoly key
inline constexpr std::size_t kTagLen = 16;    // Poly1305 tag
inline constexpr std::size_t kHashLen = 64;   // BLAKE2b-512
inline constexpr std::size_t kBlockLen = 128; // BLAKE2b block, for HMAC
// Every Noise message, handshake or transport, is at most this long.
inline constexpr std::size_t kMaxMessageLen = 65535;
// Message sizes without payload: e + encrypted s + payload tag, and e + tag.
inline constexpr std::size_t kMessage1Overhead = kDhLen + (kDhLen + kTagLen) + kTagLen;  // 96
inline constexpr std::size_t kMessage2Overhead = kDhLen + kTagLen;                       // 48
// Largest plaintext that fits in one transport message.
inline constexpr std::size_t kMaxPlaintextLen = kMaxMessageLen - kTagLen;
// The nonce 2^64-1 is reserved (used by rekey) and never encrypts a message.
inline constexpr std::uint64_t kMaxNonce = UINT64_MAX;

using Bytes = std::vector<std::uint8_t>;
using PublicKey = std::array<std::uint8_t, kDhLen>;
using HandshakeHash = std::array<std::uint8_t, kHashLen>;

// 32 secret bytes, wiped when destroyed or overwritten.
class SecretKey {
public:
    SecretKey() = default;
    explicit SecretKey(std::span<const std::uint8_t, 32> bytes);
    SecretKey(const SecretKey& other) noexcept;
    SecretKey& operator=(const SecretKey& other) noexcept;
    ~SecretKey();

    std::span<const std::uint8_t, 32> bytes() const { return bytes_; }
    const std::uint8_t* data() const { return bytes_.data(); }

private:
    std::array<std::uint8_t, 32> bytes_{};
};

// An X25519 key pair: our Noise static key, or an ephemeral.
struct KeyPair {
    SecretKey secret;
    PublicKey public_key{};

    static KeyPair generate();
    // Computes the public half; refuses a secret whose public key is all zero.
    static Result<KeyPair> from_secret(std::span<const std::uint8_t> secret);
    // The Noise static key of a daemon: its Ed25519 identity converted to X25519.
    static KeyPair from_identity(const identity::KeyPair& identity);
};

// A peer's Noise static public key, derived from the Ed25519 key in its ID.
// Fails for an ID whose key is not a valid Ed25519 point.
Result<PublicKey> static_key_of(const identity::PeerId& peer);

// Spec section 5.1. Holds k (or none) and the counter n. Move-only: a copy
// would be a second user of the same (k, n) pairs. A moved-from or destroyed
// CipherState has its key wiped.
class CipherState {
public:
    CipherState() = default;
    explicit CipherState(std::span<const std::uint8_t, kKeyLen> key) { initialize_key(key); }
    CipherState(CipherState&& other) noexcept;
    CipherState& operator=(CipherState&& other) noexcept;
    CipherState(const CipherState&) = delete;
    CipherState& operator=(const CipherState&) = delete;
    ~CipherState();

    // InitializeKey: sets k and n = 0.
    void initialize_key(std::span<const std::uint8_t, kKeyLen> key);
    bool has_key() const { return has_key_; }
    void set_nonce(std::uint64_t n) { n_ = n; }
    std::uint64_t nonce() const { return n_; }

    // EncryptWithAd / DecryptWithAd with the internal counter. Without a key
    // the input is returned unchanged (as the spec says). The counter moves
    // only on success; a failed decryption leaves the state as it was.
    Result<Bytes> encrypt_with_ad(std::span<const std::uint8_t> ad,
                                  std::span<const std::uint8_t> plaintext);
    Result<Bytes> decrypt_with_ad(std::span<const std::uint8_t> ad,
                                  std::span<const std::uint8_t> ciphertext);

    // ENCRYPT(k, nonce, ad, plaintext) and DECRYPT with a nonce chosen by the
    // caller (a transport that sends n on the wire and keeps a replay window).
    // They need a key, refuse nonce 2^64-1, and leave the internal counter alone.
    Result<Bytes> encrypt(std::uint64_t nonce, std::span<const std::uint8_t> ad,
                          std::span<const std::uint8_t> plaintext) const;
    Result<Bytes> decrypt(std::uint64_t nonce, std::span<const std::uint8_t> ad,
                          std::span<const std::uint8_t> ciphertext) const;

    // Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes).
    // n is unchanged. Fails only without a key.
    Status rekey();

private:
    void wipe();

    std::array<std::uint8_t, kKeyLen> k_{};
    bool has_key_ = false;
    std::uint64_t n_ = 0;
};

// Spec section 5.2: chaining key ck, handshake hash h and a CipherState.
class SymmetricState {
public:
    explicit SymmetricState(std::string_view protocol_name);
    SymmetricState(SymmetricState&&) noexcept = default;
    SymmetricState& operator=(SymmetricState&&) noexcept = default;
    SymmetricState(const SymmetricState&) = delete;
    SymmetricState& operator=(const SymmetricState&) = delete;
    ~SymmetricState();

    void mix_key(std::span<const std::uint8_t> input_key_material);
    void mix_hash(std::span<const std::uint8_t> data);
    void mix_key_and_hash(std::span<const std::uint8_t> input_key_material);
    const HandshakeHash& handshake_hash() const { return h_; }
    bool has_key() const { return cipher_.has_key(); }
    Result<Bytes> encrypt_and_hash(std::span<const std::uint8_t> plaintext);
    Result<Bytes> decrypt_and_hash(std::span<const std::uint8_t> ciphertext);
    // Returns (c1, c2): c1 encrypts initiator -> responder.
    std::pair<CipherState, CipherState> split() const;

private:
    std::array<std::uint8_t, kHashLen> ck_{};
    HandshakeHash h_{};
    CipherState cipher_;
};

// What a completed handshake leaves: one CipherState per direction and the
// handshake hash h (a channel binding, e.g. for signatures over the session).
struct Session {
    CipherState send;
    CipherState receive;
    HandshakeHash handshake_hash{};
};

// Spec section 5.3 for the IK pattern. Use Initiator / Responder below, which
// fix the roles and the message order; this is their common engine.
class HandshakeState {
public:
    enum class Token : std::uint8_t { e, s, ee, es, se, ss };

    // rs: the responder's static key, required for the initiator and ignored
    // for the responder. fixed_e: deterministic tests only.
    HandshakeState(bool initiator, std::span<const std::uint8_t> prologue, const KeyPair& s,
                   std::optional<PublicKey> rs, std::optional<KeyPair> fixed_e);
    HandshakeState(HandshakeState&&) noexcept = default;
    HandshakeState& operator=(HandshakeState&&) noexcept = default;

    // Process the next message pattern. A failure while processing poisons
    // the state for good; a call out of turn or an oversized payload does not.
    Result<Bytes> write_message(std::span<const std::uint8_t> payload);
    Result<Bytes> read_message(std::span<const std::uint8_t> message);
    // After the last message: the two CipherStates ordered for our role.
    // Works once; afterwards the state is spent.
    Result<Session> split();

    bool complete() const { return next_message_ == 2 && !failed_; }
    bool failed() const { return failed_; }
    const std::optional<PublicKey>& remote_static() const { return rs_; }
    const HandshakeHash& handshake_hash() const { return symmetric_.handshake_hash(); }

private:
    Status check_turn(bool writing) const;
    Status mix_dh(Token token);
    Result<Bytes> fail_handshake(std::string message);

    SymmetricState symmetric_;
    bool initiator_;
    KeyPair s_;
    std::optional<KeyPair> e_;
    std::optional<KeyPair> fixed_e_;
    std::optional<PublicKey> rs_;
    std::optional<PublicKey> re_;
    int next_message_ = 0;
    bool failed_ = false;
    bool split_done_ = false;
};

// The side that knows whom it calls: it has the responder's static key
// (from the responder's PeerId) before the first message.
class Initiator {
public:
    Initiator(const KeyPair& static_keys, const PublicKey& responder_static,
              std::span<const std::uint8_t> prologue);
    // Deterministic tests only (test vectors): never reuse an ephemeral key.
    Initiator(const KeyPair& static_keys, const PublicKey& responder_static,
              std::span<const std::uint8_t> prologue, const KeyPair& fixed_ephemeral);

    // -> e, es, s, ss, payload. Once.
    Result<Bytes> write_message1(std::span<const std::uint8_t> payload = {});
    // <- e, ee, se, payload: returns the responder's payload.
    Result<Bytes> read_message2(std::span<const std::uint8_t> message);
    // After read_message2: send = initiator -> responder, receive = back.
    Result<Session> split() { return state_.split(); }

    bool complete() const { return state_.complete(); }
    const HandshakeHash& handshake_hash() const { return state_.handshake_hash(); }

private:
    HandshakeState state_;
};

// The side that is called: it learns who is calling from message 1.
class Responder {
public:
    Responder(const KeyPair& static_keys, std::span<const std::uint8_t> prologue);
    // Deterministic tests only (test vectors): never reuse an ephemeral key.
    Responder(const KeyPair& static_keys, std::span<const std::uint8_t> prologue,
              const KeyPair& fixed_ephemeral);

    // Returns the initiator's payload. Afterwards remote_static() holds the
    // initiator's authenticated static key: compare it with the key of the
    // PeerId it claims before answering.
    Result<Bytes> read_message1(std::span<const std::uint8_t> message);
    const std::optional<PublicKey>& remote_static() const { return state_.remote_static(); }
    // <- e, ee, se, payload. Only after a successful read_message1.
    Result<Bytes> write_message2(std::span<const std::uint8_t> payload = {});
    // After write_message2: send = responder -> initiator, receive = from it.
    Result<Session> split() { return state_.split(); }

    bool complete() const { return state_.complete(); }
    const HandshakeHash& handshake_hash() const { return state_.handshake_hash(); }

private:
    HandshakeState state_;
};

// The primitives under the objects above, exposed for tests.
namespace detail {
// sodium_init() once; aborts if libsodium cannot start (nothing works then).
void ensure_sodium();
HandshakeHash hash(std::span<const std::uint8_t> data);
HandshakeHash hmac(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data);
// HKDF(chaining_key, input_key_material, num_outputs) with 2 or 3 outputs;
// the third is all zero when num_outputs is 2.
struct HkdfOutput {
    HandshakeHash out1{}, out2{}, out3{};
    ~HkdfOutput();
};
void hkdf(std::span<const std::uint8_t, kHashLen> chaining_key,
          std::span<const std::uint8_t> input_key_material, int num_outputs, HkdfOutput& out);
// X25519 into out; fails if the result is all zero (low-order peer key).
Status dh(const KeyPair& local, const PublicKey& remote, std::span<std::uint8_t, kDhLen> out);
}  // namespace detail

}  // namespace keyhole::transport::noise
