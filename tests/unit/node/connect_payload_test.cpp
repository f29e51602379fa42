// The connect request/response payloads (inside the Noise messages).
#include <gtest/gtest.h>

#include <sodium.h>

#include "connect_payload.h"
#include "keyhole/identity/key_pair.h"

namespace {

using keyhole::identity::Endpoint;
using keyhole::identity::NatClass;
using namespace keyhole::node;

TEST(ConnectPayload, HelloRoundTripsWithNatClass) {
    ASSERT_GE(sodium_init(), 0);
    const auto key = keyhole::identity::KeyPair::generate();
    Hello hello{key.id(), 42, 1'700'000'000'000ull,
                {Endpoint::parse("10.0.1.2:4000").value(), Endpoint::parse("203.0.113.7:31000").value()},
                NatClass::endpoint_dependent, {}};
    auto decoded = decode_hello(encode_hello(hello));
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(decoded->initiator, key.id());
    EXPECT_EQ(decoded->initiator_index, 42u);
    EXPECT_EQ(decoded->candidates, hello.candidates);
    EXPECT_EQ(decoded->nat, NatClass::endpoint_dependent);
}

TEST(ConnectPayload, ReplyRoundTripsWithNatClass) {
    Reply reply{9, 5, {Endpoint::parse("198.51.100.3:4000").value()}, NatClass::endpoint_independent, {}};
    auto decoded = decode_reply(encode_reply(reply));
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(decoded->responder_index, 9u);
    EXPECT_EQ(decoded->candidates, reply.candidates);
    EXPECT_EQ(decoded->nat, NatClass::endpoint_independent);
}

TEST(ConnectPayload, RejectsTruncatedAndTrailingBytes) {
    auto bytes = encode_reply({9, 5, {}, NatClass::open, {}});
    for (std::size_t size = 0; size < bytes.size(); ++size)
        EXPECT_FALSE(decode_reply({bytes.data(), size})) << size;
    bytes.push_back(0);
    EXPECT_FALSE(decode_reply(bytes));
}

TEST(ConnectPayload, UnknownNatValueReadsAsUnknown) {
    auto bytes = encode_reply({9, 5, {}, NatClass::open, {}});
    bytes[bytes.size() - 2] = 0x7f;  // a positive fixint the enum does not know (the empty relay list follows)
    auto decoded = decode_reply(bytes);
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(decoded->nat, NatClass::unknown);
}

TEST(ConnectPayload, RelaysRoundTripAndAreCapped) {
    ASSERT_GE(sodium_init(), 0);
    std::vector<keyhole::identity::RelayRef> relays;
    for (int i = 0; i < 6; ++i)
        relays.push_back({keyhole::identity::KeyPair::generate().id(),
                          Endpoint::parse("203.0.113." + std::to_string(80 + i) + ":4222").value()});
    Hello hello{keyhole::identity::KeyPair::generate().id(), 1, 2, {}, NatClass::endpoint_dependent, relays};
    auto decoded_hello = decode_hello(encode_hello(hello));
    ASSERT_TRUE(decoded_hello) << decoded_hello.error();
    ASSERT_EQ(decoded_hello->relays.size(), kMaxPayloadRelays);
    EXPECT_EQ(decoded_hello->relays[0], relays[0]);
    Reply reply{3, 4, {}, NatClass::open, {relays[1]}};
    auto decoded_reply = decode_reply(encode_reply(reply));
    ASSERT_TRUE(decoded_reply) << decoded_reply.error();
    EXPECT_EQ(decoded_reply->relays, std::vector<keyhole::identity::RelayRef>{relays[1]});
}

}  // namespace
