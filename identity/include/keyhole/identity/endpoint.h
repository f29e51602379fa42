// Endpoint: an IP address and UDP/TCP port, IPv4 or IPv6, as a plain value.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <netinet/in.h>
#include <sys/socket.h>

#include "keyhole/result.h"

namespace keyhole::identity {

class Endpoint {
public:
    Endpoint() = default;

    // "1.2.3.4:5", "[::1]:5". No name resolution here.
    static Result<Endpoint> parse(std::string_view text);
    static Result<Endpoint> from_sockaddr(const sockaddr* sa, socklen_t len);
    static Endpoint ipv4(std::array<std::uint8_t, 4> address, std::uint16_t port);
    static Endpoint ipv6(std::array<std::uint8_t, 16> address, std::uint16_t port);

    bool is_v4() const { return family_ == AF_INET; }
    bool is_v6() const { return family_ == AF_INET6; }
    bool empty() const { return family_ == AF_UNSPEC; }
    std::uint16_t port() const { return port_; }
    // 4 bytes for IPv4, 16 for IPv6.
    const std::uint8_t* address_bytes() const { return address_.data(); }
    std::size_t address_size() const { return is_v4() ? 4 : is_v6() ? 16 : 0; }

    // Writes a sockaddr_in / sockaddr_in6; returns its length (0 when empty).
    socklen_t to_sockaddr(sockaddr_storage& out) const;
    std::string to_string() const;       // "1.2.3.4:5" or "[::1]:5"
    std::string address_string() const; // without the port

    friend bool operator==(const Endpoint&, const Endpoint&) = default;
    friend auto operator<=>(const Endpoint&, const Endpoint&) = default;

private:
    sa_family_t family_ = AF_UNSPEC;
    std::array<std::uint8_t, 16> address_{};
    std::uint16_t port_ = 0;
};

}  // namespace keyhole::identity
