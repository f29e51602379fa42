#include "relay_cookie.h"

#include <cstring>

#include <sodium.h>

namespace keyhole::node {

namespace {

constexpr char kCookieContext[] = "keyhole/v1/relay-cookie";

std::uint64_t bucket_of(CookieJar::Clock::time_point now) {
    return static_cast<std::uint64_t>(now.time_since_epoch() / kCookieSecretLifetime);
}

}  // namespace

CookieJar::CookieJar() {
    if (sodium_init() < 0) {
        // Cannot happen once the identity key exists; randombytes would abort anyway.
    }
    randombytes_buf(current_.data(), current_.size());
    randombytes_buf(previous_.data(), previous_.size());
}

CookieJar::~CookieJar() {
    sodium_memzero(current_.data(), current_.size());
    sodium_memzero(previous_.data(), previous_.size());
}

void CookieJar::rotate(Clock::time_point now) {
    const auto bucket = bucket_of(now);
    if (!started_) {
        started_ = true;
        bucket_ = bucket;
        return;
    }
    if (bucket <= bucket_) return;
    if (bucket == bucket_ + 1) {
        previous_ = current_;
    } else {
        randombytes_buf(previous_.data(), previous_.size());  // both old secrets are stale
    }
    randombytes_buf(current_.data(), current_.size());
    bucket_ = bucket;
}

transport::RelayCookie CookieJar::compute(const Secret& secret, std::uint64_t bucket, const RelayPath& source,
                                          const identity::PeerId& client) {
    // context || family(1) || address(16) || port(2) || stream(8) || client key(32) || bucket(8)
    std::array<std::uint8_t, sizeof kCookieContext - 1 + 1 + 16 + 2 + 8 + 32 + 8> input{};
    std::size_t at = 0;
    std::memcpy(input.data(), kCookieContext, sizeof kCookieContext - 1);
    at += sizeof kCookieContext - 1;
    input[at++] = source.endpoint.is_v4() ? 4 : source.endpoint.is_v6() ? 6 : 0;
    std::memcpy(input.data() + at, source.endpoint.address_bytes(), source.endpoint.address_size());
    at += 16;
    input[at++] = static_cast<std::uint8_t>(source.endpoint.port() >> 8);
    input[at++] = static_cast<std::uint8_t>(source.endpoint.port() & 0xff);
    for (int shift = 56; shift >= 0; shift -= 8) input[at++] = static_cast<std::uint8_t>(source.stream >> shift);
    std::memcpy(input.data() + at, client.key().data(), 32);
    at += 32;
    for (int shift = 56; shift >= 0; shift -= 8) input[at++] = static_cast<std::uint8_t>(bucket >> shift);
    transport::RelayCookie cookie{};
    crypto_generichash(cookie.data(), cookie.size(), input.data(), at, secret.data(), secret.size());
    return cookie;
}

transport::RelayCookie CookieJar::make(const RelayPath& source, const identity::PeerId& client, Clock::time_point now) {
    rotate(now);
    return compute(current_, bucket_, source, client);
}

bool CookieJar::check(const transport::RelayCookie& cookie, const RelayPath& source, const identity::PeerId& client,
                      Clock::time_point now) {
    rotate(now);
    const auto current = compute(current_, bucket_, source, client);
    const auto previous = compute(previous_, bucket_ - 1, source, client);
    // Constant time: the cookie is a MAC.
    return sodium_memcmp(cookie.data(), current.data(), cookie.size()) == 0 ||
           sodium_memcmp(cookie.data(), previous.data(), cookie.size()) == 0;
}

}  // namespace keyhole::node
