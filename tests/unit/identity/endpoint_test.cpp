#include "keyhole/identity/endpoint.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <string>

using keyhole::identity::Endpoint;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST(Endpoint, ParsesIpv4) {
    auto e = Endpoint::parse("192.0.2.7:4000");
    ASSERT_TRUE(e) << e.error();
    EXPECT_TRUE(e->is_v4());
    EXPECT_FALSE(e->is_v6());
    EXPECT_EQ(e->port(), 4000);
    ASSERT_EQ(e->address_size(), 4u);
    const std::uint8_t expected[4] = {192, 0, 2, 7};
    EXPECT_EQ(std::memcmp(e->address_bytes(), expected, 4), 0);
    EXPECT_EQ(e->to_string(), "192.0.2.7:4000");
    EXPECT_EQ(e->address_string(), "192.0.2.7");
    EXPECT_EQ(*e, Endpoint::ipv4({192, 0, 2, 7}, 4000));
}

TEST(Endpoint, ParsesIpv6) {
    auto e = Endpoint::parse("[2001:db8::1]:65535");
    ASSERT_TRUE(e) << e.error();
    EXPECT_TRUE(e->is_v6());
    EXPECT_EQ(e->port(), 65535);
    ASSERT_EQ(e->address_size(), 16u);
    EXPECT_EQ(e->address_bytes()[0], 0x20);
    EXPECT_EQ(e->address_bytes()[15], 0x01);
    EXPECT_EQ(e->to_string(), "[2001:db8::1]:65535");
    EXPECT_EQ(e->address_string(), "2001:db8::1");

    auto loopback = Endpoint::parse("[::1]:5");
    ASSERT_TRUE(loopback) << loopback.error();
    EXPECT_EQ(loopback->to_string(), "[::1]:5");
}

TEST(Endpoint, TextRoundTripsToTheSameValue) {
    for (const char* text : {"1.2.3.4:5", "0.0.0.0:1", "255.255.255.255:65535", "[::]:80",
                             "[fe80::1:2:3:4]:9000", "[2001:db8:1:2:3:4:5:6]:1"}) {
        auto e = Endpoint::parse(text);
        ASSERT_TRUE(e) << text << ": " << e.error();
        EXPECT_EQ(e->to_string(), text);
        auto again = Endpoint::parse(e->to_string());
        ASSERT_TRUE(again) << again.error();
        EXPECT_EQ(*again, *e);
    }
}

TEST(Endpoint, NormalisesIpv4MappedIpv6ToIpv4) {
    auto e = Endpoint::parse("[::ffff:10.1.2.3]:7");
    ASSERT_TRUE(e) << e.error();
    EXPECT_TRUE(e->is_v4());
    EXPECT_EQ(e->to_string(), "10.1.2.3:7");
    EXPECT_EQ(*e, Endpoint::ipv4({10, 1, 2, 3}, 7));
}

TEST(Endpoint, RejectsPortZeroAndOutOfRange) {
    for (const char* text : {"1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:123456",
                             "[::1]:0", "1.2.3.4:-1", "1.2.3.4:+5", "1.2.3.4:05",
                             "1.2.3.4: 5", "1.2.3.4:5 ", "1.2.3.4:", "1.2.3.4:x"}) {
        auto e = Endpoint::parse(text);
        ASSERT_FALSE(e) << text;
        EXPECT_TRUE(contains(e.error(), "port must be a number from 1 to 65535")) << e.error();
        EXPECT_TRUE(contains(e.error(), text)) << e.error();
    }
}

TEST(Endpoint, RejectsMalformedText) {
    struct Case {
        const char* text;
        const char* why;
    };
    for (const Case& c : {Case{"", "empty"},
                          Case{"1.2.3.4", "missing ':port'"},
                          Case{"1.2.3:5", "not an IPv4 address"},
                          Case{"1.2.3.256:5", "not an IPv4 address"},
                          Case{"01.2.3.4:5", "not an IPv4 address"},
                          Case{"example.com:5", "not an IPv4 address"},
                          Case{":5", "not an IPv4 address"},
                          Case{"::1:5", "brackets"},
                          Case{"[::1]", "expected ':port' after ']'"},
                          Case{"[::1]5", "expected ':port' after ']'"},
                          Case{"[::1:5", "missing ']'"},
                          Case{"[]:5", "not an IPv6 address"},
                          Case{"[1.2.3.4]:5", "not an IPv6 address"},
                          Case{"[fe80::1%eth0]:5", "not an IPv6 address"},
                          Case{"[::1]:5:6", "port"}}) {
        auto e = Endpoint::parse(c.text);
        ASSERT_FALSE(e) << c.text;
        EXPECT_TRUE(contains(e.error(), c.why)) << c.text << " -> " << e.error();
    }
}

TEST(Endpoint, RejectsOverlongAndBinaryInputWithoutEchoingItRaw) {
    auto e = Endpoint::parse(std::string(10000, '1'));
    ASSERT_FALSE(e);
    EXPECT_LT(e.error().size(), 200u);

    const std::string binary("1.2.3.4\0:5", 10);
    auto b = Endpoint::parse(binary);
    ASSERT_FALSE(b);
    EXPECT_TRUE(contains(b.error(), "\\x00")) << b.error();
}

TEST(Endpoint, FromSockaddrIpv4) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(4242);
    ASSERT_EQ(inet_pton(AF_INET, "203.0.113.9", &sin.sin_addr), 1);
    auto e = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
    ASSERT_TRUE(e) << e.error();
    EXPECT_EQ(e->to_string(), "203.0.113.9:4242");
}

TEST(Endpoint, FromSockaddrIpv6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(1);
    ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::42", &sin6.sin6_addr), 1);
    auto e = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
    ASSERT_TRUE(e) << e.error();
    EXPECT_TRUE(e->is_v6());
    EXPECT_EQ(e->to_string(), "[2001:db8::42]:1");
}

TEST(Endpoint, FromSockaddrTurnsIpv4MappedIntoIpv4) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(5000);
    ASSERT_EQ(inet_pton(AF_INET6, "::ffff:198.51.100.1", &sin6.sin6_addr), 1);
    auto e = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
    ASSERT_TRUE(e) << e.error();
    EXPECT_TRUE(e->is_v4());
    EXPECT_EQ(e->to_string(), "198.51.100.1:5000");
    EXPECT_EQ(*e, *Endpoint::parse("198.51.100.1:5000"));
}

TEST(Endpoint, FromSockaddrRejectsBadInput) {
    EXPECT_FALSE(Endpoint::from_sockaddr(nullptr, 0));

    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    auto short_v4 = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin - 1);
    ASSERT_FALSE(short_v4);
    EXPECT_TRUE(contains(short_v4.error(), "too short")) << short_v4.error();

    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    EXPECT_FALSE(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sockaddr_in)));
    EXPECT_FALSE(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6), 1));

    sockaddr_storage unix_like{};
    unix_like.ss_family = AF_UNIX;
    auto unsupported = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&unix_like),
                                               sizeof unix_like);
    ASSERT_FALSE(unsupported);
    EXPECT_TRUE(contains(unsupported.error(), "unsupported address family")) << unsupported.error();
}

TEST(Endpoint, ToSockaddrRoundTrips) {
    for (const char* text : {"127.0.0.1:9", "[::1]:9", "[2001:db8::7]:65000"}) {
        auto e = Endpoint::parse(text);
        ASSERT_TRUE(e) << e.error();
        sockaddr_storage storage{};
        const socklen_t len = e->to_sockaddr(storage);
        EXPECT_EQ(len, e->is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
        auto back = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), len);
        ASSERT_TRUE(back) << back.error();
        EXPECT_EQ(*back, *e);
    }
}

TEST(Endpoint, EmptyEndpointHasNoSockaddrOrText) {
    const Endpoint e;
    EXPECT_TRUE(e.empty());
    sockaddr_storage storage{};
    EXPECT_EQ(e.to_sockaddr(storage), 0u);
    EXPECT_EQ(e.to_string(), "");
    EXPECT_EQ(e.address_size(), 0u);
}
