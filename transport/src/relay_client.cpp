#include "keyhole/transport/relay_client.h"

#include <algorithm>

#include <sodium.h>

namespace keyhole::transport {

namespace {
constexpr std::chrono::milliseconds kFirstRetry{1000};
constexpr std::chrono::milliseconds kMaxRetry{8000};
}  // namespace

RelayAllocationClient::RelayAllocationClient(const identity::KeyPair& key, const identity::PeerId& relay)
    : key_(key), relay_(relay) {}

std::vector<std::uint8_t> RelayAllocationClient::make_request(Clock::time_point now) {
    randombytes_buf(nonce_.data(), nonce_.size());
    confirmed_cookie_.reset();
    next_request_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, kMaxRetry);
    return encode_allocate_request(key_.id(), nonce_);
}

std::optional<std::vector<std::uint8_t>> RelayAllocationClient::poll(Clock::time_point now) {
    if (granted_ && now < expires_) {
        // Refresh at half the lifetime; until answered, retry with backoff.
        const auto half = granted_at_ + (expires_ - granted_at_) / 2;
        if (now < half || now < next_request_) return std::nullopt;
        return make_request(now);
    }
    if (now < next_request_) return std::nullopt;
    return make_request(now);
}

std::optional<std::vector<std::uint8_t>> RelayAllocationClient::on_challenge(const AllocateChallenge& challenge,
                                                                               Clock::time_point) {
    if (challenge.nonce != nonce_) return std::nullopt;  // not for our latest request
    confirmed_cookie_ = challenge.cookie;
    return encode_allocate_confirm(key_, relay_, challenge.cookie);
}

bool RelayAllocationClient::on_result(const AllocateResult& result, Clock::time_point now) {
    if (!confirmed_cookie_ || result.cookie != *confirmed_cookie_) return false;
    confirmed_cookie_.reset();
    backoff_ = kFirstRetry;
    observed_ = result.observed;
    if (result.code == RelayCode::ok) {
        granted_ = true;
        refusal_.reset();
        granted_at_ = now;
        expires_ = now + std::chrono::seconds(result.lifetime_s);
        packets_per_s_ = result.packets_per_s;
        bytes_per_s_ = result.bytes_per_s;
        next_request_ = granted_at_ + (expires_ - granted_at_) / 2;
        return true;
    }
    refusal_ = result.code;
    // A refused refresh leaves a still-valid grant in place until it expires.
    next_request_ = now + kRetryAfterRefusal;
    return true;
}

RelayAllocationClient::State RelayAllocationClient::state(Clock::time_point now) const {
    if (granted_ && now < expires_) return State::granted;
    if (granted_) return State::expired;
    if (refusal_) return State::refused;
    return State::requesting;
}

}  // namespace keyhole::transport
