// NAT classification from reflected addresses (docs/nat-traversal.md).
#include <gtest/gtest.h>

#include "keyhole/node/nat_classifier.h"

namespace {

using keyhole::identity::Endpoint;
using keyhole::identity::NatClass;
using keyhole::node::NatClassifier;

Endpoint at(const char* text) { return Endpoint::parse(text).value(); }

struct NatClassifierTest : ::testing::Test {
    NatClassifier nat;
    NatClassifier::Clock::time_point now = NatClassifier::Clock::now();
    void SetUp() override { nat.set_local_endpoints({at("10.0.1.2:4000")}); }
};

TEST_F(NatClassifierTest, UnknownWithoutAnswers) {
    EXPECT_EQ(nat.nat_class(now), NatClass::unknown);
    EXPECT_FALSE(nat.public_endpoint(now));
}

TEST_F(NatClassifierTest, OneReflectorIsNotEnoughToClassify) {
    nat.observed(at("203.0.113.10:4222"), at("198.51.100.7:4000"), now);
    EXPECT_EQ(nat.nat_class(now), NatClass::unknown);
    EXPECT_EQ(nat.public_endpoint(now), at("198.51.100.7:4000"));
}

TEST_F(NatClassifierTest, SameMappingFromTwoAddressesIsEndpointIndependent) {
    nat.observed(at("203.0.113.10:4222"), at("198.51.100.7:4000"), now);
    nat.observed(at("203.0.113.11:4222"), at("198.51.100.7:4000"), now);
    EXPECT_EQ(nat.nat_class(now), NatClass::endpoint_independent);
}

TEST_F(NatClassifierTest, DifferentPortsAreEndpointDependent) {
    nat.observed(at("203.0.113.10:4222"), at("198.51.100.7:31001"), now);
    nat.observed(at("203.0.113.11:4222"), at("198.51.100.7:52877"), now);
    EXPECT_EQ(nat.nat_class(now), NatClass::endpoint_dependent);
}

TEST_F(NatClassifierTest, TwoPortsOfOneReflectorCountOnce) {
    // Two nodes on one host do not see us from different addresses.
    nat.observed(at("203.0.113.10:4222"), at("198.51.100.7:31001"), now);
    nat.observed(at("203.0.113.10:4223"), at("198.51.100.7:52877"), now);
    EXPECT_EQ(nat.nat_class(now), NatClass::unknown);
}

TEST_F(NatClassifierTest, OurOwnAddressMeansNoNat) {
    nat.set_local_endpoints({at("203.0.113.5:4000")});
    nat.observed(at("203.0.113.10:4222"), at("203.0.113.5:4000"), now);
    EXPECT_EQ(nat.nat_class(now), NatClass::open);
}

TEST_F(NatClassifierTest, ReflectorsOnOurLanAreIgnored) {
    // A neighbour behind the same NAT sees our LAN address: no evidence.
    nat.observed(at("203.0.113.10:4222"), at("198.51.100.7:4000"), now);
    nat.observed(at("203.0.113.11:4222"), at("198.51.100.7:4000"), now);
    nat.observed(at("10.0.1.3:4000"), at("10.0.1.9:4000"), now);
    EXPECT_EQ(nat.nat_class(now), NatClass::endpoint_independent);
    EXPECT_EQ(nat.reflectors(now), 2u);
}

TEST_F(NatClassifierTest, OldObservationsExpire) {
    nat.observed(at("203.0.113.10:4222"), at("198.51.100.7:31001"), now);
    nat.observed(at("203.0.113.11:4222"), at("198.51.100.7:52877"), now);
    const auto later = now + NatClassifier::kMemory + std::chrono::seconds(1);
    EXPECT_EQ(nat.nat_class(later), NatClass::unknown);
    EXPECT_FALSE(nat.public_endpoint(later));
}

TEST(PrivateAddress, KnowsTheRanges) {
    for (const char* text : {"10.1.2.3:1", "127.0.0.1:1", "172.16.0.1:1", "172.31.255.1:1", "192.168.1.1:1",
                             "169.254.0.1:1", "100.64.0.1:1"})
        EXPECT_TRUE(keyhole::node::is_private_address(at(text))) << text;
    for (const char* text : {"203.0.113.1:1", "198.51.100.1:1", "172.32.0.1:1", "8.8.8.8:1", "100.128.0.1:1"})
        EXPECT_FALSE(keyhole::node::is_private_address(at(text))) << text;
}

}  // namespace
