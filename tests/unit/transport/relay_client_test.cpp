// The client side of an allocation as a state machine: what it sends when,
// and which answers it takes.
#include <gtest/gtest.h>

#include "keyhole/transport/relay_client.h"

namespace {

using namespace std::chrono_literals;
using namespace keyhole::transport;
using keyhole::identity::Endpoint;
using keyhole::identity::KeyPair;
using State = RelayAllocationClient::State;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;

AllocateRequest request_of(const std::vector<std::uint8_t>& bytes) {
    auto parsed = parse_relay_packet(bytes);
    EXPECT_TRUE(parsed.ok());
    return std::get<AllocateRequest>(parsed.value());
}

AllocateConfirm confirm_of(const std::vector<std::uint8_t>& bytes) {
    auto parsed = parse_relay_packet(bytes);
    EXPECT_TRUE(parsed.ok());
    return std::get<AllocateConfirm>(parsed.value());
}

struct Fixture {
    KeyPair me = KeyPair::generate();
    KeyPair relay = KeyPair::generate();
    RelayAllocationClient client{me, relay.id()};
    RelayCookie cookie{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

    // Runs one full exchange at `now` with the relay answering `code`.
    void exchange(std::chrono::steady_clock::time_point now, RelayCode code, std::uint32_t lifetime = 600) {
        auto request = client.poll(now);
        ASSERT_TRUE(request);
        auto confirm = client.on_challenge({request_of(*request).nonce, cookie}, now);
        ASSERT_TRUE(confirm);
        EXPECT_TRUE(client.on_result({confirm_of(*confirm).cookie, code, code == RelayCode::ok ? lifetime : 0,
                                      Endpoint::ipv4({198, 51, 100, 1}, 5000), 500, 1000},
                                     now));
    }
};

TEST(RelayAllocationClient, FullExchangeGrantsAnAllocation) {
    Fixture f;
    auto request = f.client.poll(t0);
    ASSERT_TRUE(request);
    EXPECT_EQ(request_of(*request).client, f.me.id());
    EXPECT_EQ(f.client.state(t0), State::requesting);
    auto confirm = f.client.on_challenge({request_of(*request).nonce, f.cookie}, t0);
    ASSERT_TRUE(confirm);
    const auto parsed = confirm_of(*confirm);
    EXPECT_EQ(parsed.cookie, f.cookie);
    EXPECT_TRUE(keyhole::identity::verify_signature(
        f.me.public_key(), allocation_signed_message(f.relay.id(), f.me.id(), f.cookie), parsed.signature));
    EXPECT_TRUE(f.client.on_result({f.cookie, RelayCode::ok, 600, Endpoint::ipv4({198, 51, 100, 1}, 5000), 500, 1000}, t0));
    EXPECT_EQ(f.client.state(t0), State::granted);
    EXPECT_EQ(f.client.expires(), t0 + 600s);
    EXPECT_EQ(f.client.observed(), Endpoint::ipv4({198, 51, 100, 1}, 5000));
    EXPECT_EQ(f.client.packets_per_s(), 500u);
}

TEST(RelayAllocationClient, RetriesWithBackoffAndIgnoresStaleChallenges) {
    Fixture f;
    auto first = f.client.poll(t0);
    ASSERT_TRUE(first);
    EXPECT_FALSE(f.client.poll(t0 + 500ms));
    auto second = f.client.poll(t0 + 1s);
    ASSERT_TRUE(second);
    EXPECT_NE(request_of(*first).nonce, request_of(*second).nonce);
    EXPECT_FALSE(f.client.poll(t0 + 2500ms));  // next after 2 s
    EXPECT_TRUE(f.client.poll(t0 + 3s));
    // A challenge to an older request is not answered.
    EXPECT_FALSE(f.client.on_challenge({request_of(*first).nonce, f.cookie}, t0 + 3s));
}

TEST(RelayAllocationClient, ResultForSomethingElseIsIgnored) {
    Fixture f;
    EXPECT_FALSE(f.client.on_result({f.cookie, RelayCode::ok, 600, {}, 1, 1}, t0));  // nothing confirmed yet
    auto request = f.client.poll(t0);
    ASSERT_TRUE(f.client.on_challenge({request_of(*request).nonce, f.cookie}, t0));
    RelayCookie other = f.cookie;
    other[0] ^= 1;
    EXPECT_FALSE(f.client.on_result({other, RelayCode::ok, 600, {}, 1, 1}, t0));
    EXPECT_EQ(f.client.state(t0), State::requesting);
}

TEST(RelayAllocationClient, RefreshesAtHalfTheLifetime) {
    Fixture f;
    f.exchange(t0, RelayCode::ok, 600);
    EXPECT_FALSE(f.client.poll(t0 + 299s));
    ASSERT_TRUE(f.client.poll(t0 + 300s));
    EXPECT_EQ(f.client.state(t0 + 300s), State::granted);
    // Unanswered refreshes: retried; the grant runs out at its expiry.
    EXPECT_TRUE(f.client.poll(t0 + 301s));
    EXPECT_EQ(f.client.state(t0 + 600s), State::expired);
    f.exchange(t0 + 700s, RelayCode::ok, 600);
    EXPECT_EQ(f.client.state(t0 + 700s), State::granted);
    EXPECT_EQ(f.client.expires(), t0 + 1300s);
}

TEST(RelayAllocationClient, RefusalSaysWhyAndWaitsBeforeAskingAgain) {
    Fixture f;
    f.exchange(t0, RelayCode::capacity);
    EXPECT_EQ(f.client.state(t0), State::refused);
    EXPECT_EQ(f.client.refusal(), RelayCode::capacity);
    EXPECT_FALSE(f.client.poll(t0 + 10s));
    EXPECT_TRUE(f.client.poll(t0 + RelayAllocationClient::kRetryAfterRefusal));
}

}  // namespace
