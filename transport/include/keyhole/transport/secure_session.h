// An established session: the keys a Noise IK handshake agreed on, used to
// seal and open frames. Each frame carries the receiver's session index and a
// 64-bit counter that is also the AEAD nonce; a replay window rejects repeats.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "keyhole/identity/peer_id.h"
#include "keyhole/result.h"
#include "keyhole/transport/noise.h"
#include "keyhole/transport/replay_window.h"
#include "keyhole/transport/wire.h"

namespace keyhole::transport {

// A session is replaced by a fresh handshake after this many frames or this
// long, whichever comes first, so no key protects too much traffic.
constexpr std::uint64_t kRekeyAfterFrames = 1ull << 24;
constexpr std::chrono::minutes kRekeyAfterTime{10};

class SecureSession {
public:
    SecureSession(identity::PeerId peer, std::uint32_t local_index, std::uint32_t remote_index,
                  noise::Session keys);

    // A complete frame datagram carrying `plaintext`.
    Result<std::vector<std::uint8_t>> seal(std::span<const std::uint8_t> plaintext);
    // Authenticates and decrypts a frame addressed to local_index(); a replayed
    // or forged frame is an error and changes nothing.
    Result<std::vector<std::uint8_t>> open(const Frame& frame);

    bool wants_rekey(std::chrono::steady_clock::time_point now) const;

    const identity::PeerId& peer() const { return peer_; }
    std::uint32_t local_index() const { return local_index_; }
    std::uint32_t remote_index() const { return remote_index_; }

private:
    identity::PeerId peer_;
    std::uint32_t local_index_;
    std::uint32_t remote_index_;
    noise::Session keys_;
    std::uint64_t next_counter_ = 0;
    ReplayWindow replay_;
    std::chrono::steady_clock::time_point established_;
};

}  // namespace keyhole::transport
