// The HandshakeState for Noise_IK (Noise specification revision 34, section
// 5.3 and pattern IK in section 7.5), and the Initiator / Responder roles.
#include <sodium.h>

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "keyhole/transport/noise.h"

namespace keyhole::transport::noise {

namespace {

using Span = std::span<const std::uint8_t>;

// Minimum length of each message: its keys, tags and an empty payload's tag.
constexpr std::array<std::size_t, 2> kOverhead{kMessage1Overhead, kMessage2Overhead};

std::string message_name(int index) { return "message " + std::to_string(index + 1); }

void append(Bytes& out, Span data) { out.insert(out.end(), data.begin(), data.end()); }

}  // namespace

// IK:  <- s
//      ...
//      -> e, es, s, ss
//      <- e, ee, se
HandshakeState::HandshakeState(bool initiator, Span prologue, const KeyPair& s,
                               std::optional<PublicKey> rs, std::optional<KeyPair> fixed_e)
    : symmetric_(kProtocolName),
      initiator_(initiator),
      s_(s),
      fixed_e_(std::move(fixed_e)),
      rs_(initiator ? rs : std::nullopt) {
    symmetric_.mix_hash(prologue);
    // Pre-message "<- s": the responder's static public key.
    if (initiator_) {
        if (rs_) {
            symmetric_.mix_hash(*rs_);
        } else {
            failed_ = true;  // an IK initiator must know whom it calls
        }
    } else {
        symmetric_.mix_hash(s_.public_key);
    }
}

Status HandshakeState::check_turn(bool writing) const {
    if (failed_) return fail("noise: the handshake has failed; start a new one");
    if (next_message_ >= 2) return fail("noise: the handshake is already complete");
    const bool initiator_writes = next_message_ == 0;
    const bool we_write = initiator_writes == initiator_;
    if (writing && !we_write)
        return fail("noise: " + message_name(next_message_) + " comes from the peer; read it");
    if (!writing && we_write)
        return fail("noise: " + message_name(next_message_) + " is ours to write, not to read");
    return success();
}

Result<Bytes> HandshakeState::fail_handshake(std::string message) {
    failed_ = true;
    e_.reset();
    fixed_e_.reset();
    re_.reset();
    if (!initiator_) rs_.reset();  // never expose a key that was not authenticated
    // Inner errors carry their own "noise: " prefix; keep one at the front.
    for (auto at = message.find("noise: "); at != std::string::npos; at = message.find("noise: "))
        message.erase(at, 7);
    return fail("noise: " + message);
}

// ee, es, se, ss: MixKey(DH(...)) with the keys the spec assigns to our role.
Status HandshakeState::mix_dh(Token token) {
    const KeyPair* ephemeral = e_ ? &*e_ : nullptr;
    const KeyPair* local = nullptr;
    const std::optional<PublicKey>* remote = nullptr;
    switch (token) {
        case Token::ee:
            local = ephemeral;
            remote = &re_;
            break;
        case Token::es:  // initiator's e with responder's s
            local = initiator_ ? ephemeral : &s_;
            remote = initiator_ ? &rs_ : &re_;
            break;
        case Token::se:  // initiator's s with responder's e
            local = initiator_ ? &s_ : ephemeral;
            remote = initiator_ ? &re_ : &rs_;
            break;
        case Token::ss:
            local = &s_;
            remote = &rs_;
            break;
        default:
            return fail("noise: not a DH token");
    }
    if (local == nullptr || !remote->has_value()) return fail("noise: DH key missing");

    std::array<std::uint8_t, kDhLen> shared{};
    Status status = detail::dh(*local, **remote, shared);
    if (status) symmetric_.mix_key(shared);
    sodium_memzero(shared.data(), shared.size());
    return status;
}

namespace {
// The two message patterns of IK.
using Token = HandshakeState::Token;
constexpr std::array<Token, 4> kMessage1Tokens{Token::e, Token::es, Token::s, Token::ss};
constexpr std::array<Token, 3> kMessage2Tokens{Token::e, Token::ee, Token::se};
std::span<const Token> tokens_of(int message) {
    return message == 0 ? std::span<const Token>(kMessage1Tokens)
                        : std::span<const Token>(kMessage2Tokens);
}
}  // namespace

Result<Bytes> HandshakeState::write_message(Span payload) {
    if (Status turn = check_turn(true); !turn) return fail(turn.error());
    const int index = next_message_;
    // Caller error, not hostile input: refuse before touching any state.
    if (payload.size() > kMaxMessageLen - kOverhead[index])
        return fail("noise: payload of " + std::to_string(payload.size()) + " bytes is too large for " +
                    message_name(index));

    Bytes message;
    message.reserve(kOverhead[index] + payload.size());
    for (const Token token : tokens_of(index)) {
        switch (token) {
            case Token::e:
                if (fixed_e_) {
                    e_ = std::move(fixed_e_);
                    fixed_e_.reset();
                } else {
                    e_ = KeyPair::generate();
                }
                append(message, e_->public_key);
                symmetric_.mix_hash(e_->public_key);
                break;
            case Token::s: {
                auto encrypted = symmetric_.encrypt_and_hash(s_.public_key);
                if (!encrypted) return fail_handshake(encrypted.error());
                append(message, *encrypted);
                break;
            }
            default:
                if (Status mixed = mix_dh(token); !mixed)
                    return fail_handshake("writing " + message_name(index) + ": " + mixed.error());
        }
    }
    auto encrypted = symmetric_.encrypt_and_hash(payload);
    if (!encrypted) return fail_handshake(encrypted.error());
    append(message, *encrypted);
    ++next_message_;
    return message;
}

Result<Bytes> HandshakeState::read_message(Span message) {
    if (Status turn = check_turn(false); !turn) return fail(turn.error());
    const int index = next_message_;
    const std::string name = message_name(index);
    if (message.size() < kOverhead[index])
        return fail_handshake(name + " is too short (" + std::to_string(message.size()) +
                              " bytes, at least " + std::to_string(kOverhead[index]) + ")");
    if (message.size() > kMaxMessageLen)
        return fail_handshake(name + " is too long (" + std::to_string(message.size()) +
                              " bytes, at most " + std::to_string(kMaxMessageLen) + ")");

    std::size_t offset = 0;
    for (const Token token : tokens_of(index)) {
        switch (token) {
            case Token::e: {
                PublicKey re{};
                const Span bytes = message.subspan(offset, kDhLen);
                std::copy(bytes.begin(), bytes.end(), re.begin());
                offset += kDhLen;
                re_ = re;
                symmetric_.mix_hash(re);
                break;
            }
            case Token::s: {
                const std::size_t length = kDhLen + (symmetric_.has_key() ? kTagLen : 0);
                auto decrypted = symmetric_.decrypt_and_hash(message.subspan(offset, length));
                offset += length;
                if (!decrypted || decrypted->size() != kDhLen)
                    return fail_handshake(name + ": cannot decrypt the static key (" +
                                          (decrypted ? "bad length" : decrypted.error()) + ")");
                PublicKey rs{};
                std::copy(decrypted->begin(), decrypted->end(), rs.begin());
                rs_ = rs;
                break;
            }
            default:
                if (Status mixed = mix_dh(token); !mixed)
                    return fail_handshake(name + ": " + mixed.error());
        }
    }
    auto payload = symmetric_.decrypt_and_hash(message.subspan(offset));
    if (!payload) return fail_handshake(name + ": cannot decrypt the payload (" + payload.error() + ")");
    ++next_message_;
    return payload;
}

Result<Session> HandshakeState::split() {
    if (failed_) return fail("noise: the handshake has failed; nothing to split");
    if (next_message_ < 2) return fail("noise: the handshake is not complete yet");
    if (split_done_) return fail("noise: the handshake was already split");
    split_done_ = true;
    auto [c1, c2] = symmetric_.split();
    Session session;
    session.handshake_hash = symmetric_.handshake_hash();
    session.send = initiator_ ? std::move(c1) : std::move(c2);
    session.receive = initiator_ ? std::move(c2) : std::move(c1);
    e_.reset();  // the ephemeral secret is no longer needed
    return session;
}

// ---------------------------------------------------------------- roles

Initiator::Initiator(const KeyPair& static_keys, const PublicKey& responder_static, Span prologue)
    : state_(true, prologue, static_keys, responder_static, std::nullopt) {}

Initiator::Initiator(const KeyPair& static_keys, const PublicKey& responder_static, Span prologue,
                     const KeyPair& fixed_ephemeral)
    : state_(true, prologue, static_keys, responder_static, fixed_ephemeral) {}

Result<Bytes> Initiator::write_message1(Span payload) { return state_.write_message(payload); }

Result<Bytes> Initiator::read_message2(Span message) { return state_.read_message(message); }

Responder::Responder(const KeyPair& static_keys, Span prologue)
    : state_(false, prologue, static_keys, std::nullopt, std::nullopt) {}

Responder::Responder(const KeyPair& static_keys, Span prologue, const KeyPair& fixed_ephemeral)
    : state_(false, prologue, static_keys, std::nullopt, fixed_ephemeral) {}

Result<Bytes> Responder::read_message1(Span message) { return state_.read_message(message); }

Result<Bytes> Responder::write_message2(Span payload) { return state_.write_message(payload); }

}  // namespace keyhole::transport::noise
