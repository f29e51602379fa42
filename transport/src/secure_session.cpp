#include "keyhole/transport/secure_session.h"

namespace keyhole::transport {

SecureSession::SecureSession(identity::PeerId peer, std::uint32_t local_index, std::uint32_t remote_index,
                             noise::Session keys)
    : peer_(peer), local_index_(local_index), remote_index_(remote_index), keys_(std::move(keys)),
      established_(std::chrono::steady_clock::now()) {}

Result<std::vector<std::uint8_t>> SecureSession::seal(std::span<const std::uint8_t> plaintext) {
    if (next_counter_ >= kRekeyAfterFrames * 2) return fail("session exhausted; a new handshake is needed");
    const auto header = encode_frame_header({remote_index_, next_counter_});
    auto ciphertext = keys_.send.encrypt(next_counter_, header, plaintext);
    if (!ciphertext) return fail(ciphertext.error());
    ++next_counter_;
    std::vector<std::uint8_t> datagram(header.begin(), header.end());
    datagram.insert(datagram.end(), ciphertext->begin(), ciphertext->end());
    return datagram;
}

Result<std::vector<std::uint8_t>> SecureSession::open(const Frame& frame) {
    if (frame.header.receiver_index != local_index_) return fail("frame for another session");
    if (!replay_.may_accept(frame.header.counter)) return fail("replayed or too old frame");
    auto plaintext = keys_.receive.decrypt(frame.header.counter, frame.associated_data, frame.ciphertext);
    if (!plaintext) return fail("frame failed authentication");
    replay_.accept(frame.header.counter);
    return std::move(plaintext).value();
}

bool SecureSession::wants_rekey(std::chrono::steady_clock::time_point now) const {
    return next_counter_ >= kRekeyAfterFrames || now - established_ >= kRekeyAfterTime;
}

}  // namespace keyhole::transport
