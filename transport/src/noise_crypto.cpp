// Noise primitives for the 25519_ChaChaPoly_BLAKE2b suite, the CipherState
// and the SymmetricState (Noise specification revision 34, sections 4, 5.1
// and 5.2). Every primitive is libsodium's; HMAC and HKDF are the
// constructions the specification defines, written on top of BLAKE2b.
#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "keyhole/transport/noise.h"

namespace keyhole::transport::noise {

namespace {

static_assert(crypto_generichash_blake2b_BYTES_MAX == kHashLen);
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == kKeyLen);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kTagLen);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);
static_assert(crypto_scalarmult_BYTES == kDhLen && crypto_scalarmult_SCALARBYTES == kDhLen);

using Span = std::span<const std::uint8_t>;

template <typename T>
void wipe(T& object) {
    sodium_memzero(&object, sizeof object);
}

// HMAC-BLAKE2b per RFC 2104 with B = BLOCKLEN = 128 and L = HASHLEN = 64,
// over the concatenation of `parts`.
void hmac_parts(Span key, std::initializer_list<Span> parts, HandshakeHash& out) {
    std::array<std::uint8_t, kBlockLen> block{};
    if (key.size() > kBlockLen) {
        crypto_generichash_blake2b(block.data(), kHashLen, key.data(), key.size(), nullptr, 0);
    } else if (!key.empty()) {
        std::memcpy(block.data(), key.data(), key.size());
    }

    std::array<std::uint8_t, kBlockLen> pad{};
    HandshakeHash inner{};
    crypto_generichash_blake2b_state state;

    for (std::size_t i = 0; i < kBlockLen; ++i) pad[i] = block[i] ^ 0x36;
    crypto_generichash_blake2b_init(&state, nullptr, 0, kHashLen);
    crypto_generichash_blake2b_update(&state, pad.data(), pad.size());
    for (Span part : parts)
        if (!part.empty()) crypto_generichash_blake2b_update(&state, part.data(), part.size());
    crypto_generichash_blake2b_final(&state, inner.data(), inner.size());

    for (std::size_t i = 0; i < kBlockLen; ++i) pad[i] = block[i] ^ 0x5c;
    crypto_generichash_blake2b_init(&state, nullptr, 0, kHashLen);
    crypto_generichash_blake2b_update(&state, pad.data(), pad.size());
    crypto_generichash_blake2b_update(&state, inner.data(), inner.size());
    crypto_generichash_blake2b_final(&state, out.data(), out.size());

    wipe(block);
    wipe(pad);
    wipe(inner);
    wipe(state);
}

// The 96-bit ChaChaPoly nonce: 32 zero bits, then n little-endian.
std::array<std::uint8_t, 12> chachapoly_nonce(std::uint64_t n) {
    std::array<std::uint8_t, 12> nonce{};
    for (std::size_t i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
    return nonce;
}

// ENCRYPT(k, n, ad, plaintext) with no policy checks (rekey uses n = 2^64-1).
Bytes aead_encrypt(const std::array<std::uint8_t, kKeyLen>& k, std::uint64_t n, Span ad,
                   Span plaintext) {
    Bytes out(plaintext.size() + kTagLen);
    const auto nonce = chachapoly_nonce(n);
    unsigned long long written = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &written, plaintext.data(),
                                              plaintext.size(), ad.data(), ad.size(), nullptr,
                                              nonce.data(), k.data());
    out.resize(static_cast<std::size_t>(written));
    return out;
}

}  // namespace

// ---------------------------------------------------------------- primitives

namespace detail {

void ensure_sodium() {
    static const bool ready = sodium_init() >= 0;
    if (!ready) {
        std::fputs("keyhole: libsodium initialisation failed\n", stderr);
        std::abort();
    }
}

HandshakeHash hash(Span data) {
    HandshakeHash out{};
    crypto_generichash_blake2b(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
    return out;
}

HandshakeHash hmac(Span key, Span data) {
    HandshakeHash out{};
    hmac_parts(key, {data}, out);
    return out;
}

HkdfOutput::~HkdfOutput() {
    wipe(out1);
    wipe(out2);
    wipe(out3);
}

void hkdf(std::span<const std::uint8_t, kHashLen> chaining_key, Span input_key_material,
          int num_outputs, HkdfOutput& out) {
    HandshakeHash temp_key{};
    hmac_parts(chaining_key, {input_key_material}, temp_key);
    const std::uint8_t one = 0x01, two = 0x02, three = 0x03;
    hmac_parts(temp_key, {Span(&one, 1)}, out.out1);
    hmac_parts(temp_key, {Span(out.out1), Span(&two, 1)}, out.out2);
    if (num_outputs == 3)
        hmac_parts(temp_key, {Span(out.out2), Span(&three, 1)}, out.out3);
    else
        wipe(out.out3);
    wipe(temp_key);
}

Status dh(const KeyPair& local, const PublicKey& remote, std::span<std::uint8_t, kDhLen> out) {
    ensure_sodium();
    // libsodium refuses an all-zero result itself; check again regardless.
    if (crypto_scalarmult(out.data(), local.secret.data(), remote.data()) != 0 ||
        sodium_is_zero(out.data(), out.size())) {
        sodium_memzero(out.data(), out.size());
        return fail("noise: DH result is all zero (low-order public key)");
    }
    return success();
}

}  // namespace detail

// ---------------------------------------------------------------- keys

SecretKey::SecretKey(std::span<const std::uint8_t, 32> bytes) {
    std::memcpy(bytes_.data(), bytes.data(), bytes_.size());
}

SecretKey::SecretKey(const SecretKey& other) noexcept : bytes_(other.bytes_) {}

SecretKey& SecretKey::operator=(const SecretKey& other) noexcept {
    bytes_ = other.bytes_;
    return *this;
}

SecretKey::~SecretKey() { wipe(bytes_); }

KeyPair KeyPair::generate() {
    detail::ensure_sodium();
    std::array<std::uint8_t, 32> secret{};
    KeyPair kp;
    crypto_box_keypair(kp.public_key.data(), secret.data());
    kp.secret = SecretKey(secret);
    wipe(secret);
    return kp;
}

Result<KeyPair> KeyPair::from_secret(Span secret) {
    detail::ensure_sodium();
    if (secret.size() != kDhLen)
        return fail("noise: an X25519 secret key is 32 bytes, not " + std::to_string(secret.size()));
    KeyPair kp;
    kp.secret = SecretKey(secret.first<kDhLen>());
    if (crypto_scalarmult_base(kp.public_key.data(), kp.secret.data()) != 0 ||
        sodium_is_zero(kp.public_key.data(), kp.public_key.size()))
        return fail("noise: X25519 secret key yields no public key");
    return kp;
}

KeyPair KeyPair::from_identity(const identity::KeyPair& identity) {
    auto secret = identity.x25519_secret();
    KeyPair kp;
    kp.secret = SecretKey(secret);
    kp.public_key = identity.x25519_public();
    wipe(secret);
    return kp;
}

Result<PublicKey> static_key_of(const identity::PeerId& peer) {
    detail::ensure_sodium();
    PublicKey out{};
    if (crypto_sign_ed25519_pk_to_curve25519(out.data(), peer.key().data()) != 0 ||
        sodium_is_zero(out.data(), out.size()))
        return fail("noise: peer ID " + peer.to_hex() + " is not a valid Ed25519 key");
    return out;
}

// ---------------------------------------------------------------- CipherState

CipherState::CipherState(CipherState&& other) noexcept
    : k_(other.k_), has_key_(other.has_key_), n_(other.n_) {
    other.wipe();
}

CipherState& CipherState::operator=(CipherState&& other) noexcept {
    if (this != &other) {
        k_ = other.k_;
        has_key_ = other.has_key_;
        n_ = other.n_;
        other.wipe();
    }
    return *this;
}

CipherState::~CipherState() { wipe(); }

void CipherState::wipe() {
    noise::wipe(k_);
    has_key_ = false;
    n_ = 0;
}

void CipherState::initialize_key(std::span<const std::uint8_t, kKeyLen> key) {
    std::memcpy(k_.data(), key.data(), k_.size());
    has_key_ = true;
    n_ = 0;
}

Result<Bytes> CipherState::encrypt(std::uint64_t nonce, Span ad, Span plaintext) const {
    if (!has_key_) return fail("noise: cipher has no key");
    if (nonce == kMaxNonce) return fail("noise: nonce 2^64-1 is reserved");
    if (plaintext.size() > kMaxPlaintextLen)
        return fail("noise: plaintext of " + std::to_string(plaintext.size()) +
                    " bytes exceeds the Noise message limit");
    return aead_encrypt(k_, nonce, ad, plaintext);
}

Result<Bytes> CipherState::decrypt(std::uint64_t nonce, Span ad, Span ciphertext) const {
    if (!has_key_) return fail("noise: cipher has no key");
    if (nonce == kMaxNonce) return fail("noise: nonce 2^64-1 is reserved");
    if (ciphertext.size() < kTagLen)
        return fail("noise: ciphertext of " + std::to_string(ciphertext.size()) +
                    " bytes is shorter than its tag");
    if (ciphertext.size() > kMaxMessageLen)
        return fail("noise: ciphertext of " + std::to_string(ciphertext.size()) +
                    " bytes exceeds the Noise message limit");
    Bytes out(ciphertext.size() - kTagLen);
    const auto n = chachapoly_nonce(nonce);
    unsigned long long written = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &written, nullptr, ciphertext.data(),
                                                  ciphertext.size(), ad.data(), ad.size(),
                                                  n.data(), k_.data()) != 0)
        return fail("noise: decryption failed (wrong key, nonce or associated data, or tampered)");
    out.resize(static_cast<std::size_t>(written));
    return out;
}

Result<Bytes> CipherState::encrypt_with_ad(Span ad, Span plaintext) {
    if (!has_key_) return Bytes(plaintext.begin(), plaintext.end());
    if (n_ == kMaxNonce) return fail("noise: nonce exhausted, rekey or start a new session");
    auto out = encrypt(n_, ad, plaintext);
    if (out) ++n_;
    return out;
}

Result<Bytes> CipherState::decrypt_with_ad(Span ad, Span ciphertext) {
    if (!has_key_) return Bytes(ciphertext.begin(), ciphertext.end());
    if (n_ == kMaxNonce) return fail("noise: nonce exhausted, rekey or start a new session");
    auto out = decrypt(n_, ad, ciphertext);
    if (out) ++n_;
    return out;
}

Status CipherState::rekey() {
    if (!has_key_) return fail("noise: cannot rekey a cipher without a key");
    static constexpr std::array<std::uint8_t, kKeyLen> zeros{};
    Bytes block = aead_encrypt(k_, kMaxNonce, {}, zeros);
    std::memcpy(k_.data(), block.data(), k_.size());
    sodium_memzero(block.data(), block.size());
    return success();
}

// ---------------------------------------------------------------- SymmetricState

SymmetricState::SymmetricState(std::string_view protocol_name) {
    detail::ensure_sodium();
    const Span name(reinterpret_cast<const std::uint8_t*>(protocol_name.data()),
                    protocol_name.size());
    if (name.size() <= kHashLen) {
        std::memcpy(h_.data(), name.data(), name.size());  // zero-padded
    } else {
        h_ = detail::hash(name);
    }
    ck_ = h_;
}

SymmetricState::~SymmetricState() {
    wipe(ck_);
    wipe(h_);
}

void SymmetricState::mix_key(Span input_key_material) {
    detail::HkdfOutput out;
    detail::hkdf(ck_, input_key_material, 2, out);
    ck_ = out.out1;
    // HASHLEN is 64: temp_k is truncated to 32 bytes.
    cipher_.initialize_key(std::span<const std::uint8_t>(out.out2).first<kKeyLen>());
}

void SymmetricState::mix_hash(Span data) {
    crypto_generichash_blake2b_state state;
    crypto_generichash_blake2b_init(&state, nullptr, 0, kHashLen);
    crypto_generichash_blake2b_update(&state, h_.data(), h_.size());
    if (!data.empty()) crypto_generichash_blake2b_update(&state, data.data(), data.size());
    crypto_generichash_blake2b_final(&state, h_.data(), h_.size());
    wipe(state);
}

void SymmetricState::mix_key_and_hash(Span input_key_material) {
    detail::HkdfOutput out;
    detail::hkdf(ck_, input_key_material, 3, out);
    ck_ = out.out1;
    mix_hash(out.out2);
    cipher_.initialize_key(std::span<const std::uint8_t>(out.out3).first<kKeyLen>());
}

Result<Bytes> SymmetricState::encrypt_and_hash(Span plaintext) {
    auto ciphertext = cipher_.encrypt_with_ad(h_, plaintext);
    if (ciphertext) mix_hash(*ciphertext);
    return ciphertext;
}

Result<Bytes> SymmetricState::decrypt_and_hash(Span ciphertext) {
    auto plaintext = cipher_.decrypt_with_ad(h_, ciphertext);
    if (plaintext) mix_hash(ciphertext);
    return plaintext;
}

std::pair<CipherState, CipherState> SymmetricState::split() const {
    detail::HkdfOutput out;
    detail::hkdf(ck_, {}, 2, out);
    std::pair<CipherState, CipherState> result;
    result.first.initialize_key(std::span<const std::uint8_t>(out.out1).first<kKeyLen>());
    result.second.initialize_key(std::span<const std::uint8_t>(out.out2).first<kKeyLen>());
    return result;
}

}  // namespace keyhole::transport::noise
