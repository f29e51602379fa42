// Endpoint: IP address and port as a plain value.
//
// Text form: "1.2.3.4:5" for IPv4, "[::1]:5" for IPv6. Port 1..65535, decimal
// without sign or leading zeros. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d)
// are stored as plain IPv4 so that one host has one Endpoint value.
#include "keyhole/identity/endpoint.h"

#include <arpa/inet.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

namespace keyhole::identity {
namespace {

bool is_v4_mapped(const std::array<std::uint8_t, 16>& a) {
    for (int i = 0; i < 10; ++i) {
        if (a[i] != 0) return false;
    }
    return a[10] == 0xff && a[11] == 0xff;
}

// Quotes text for an error message, escaping anything not printable ASCII
// and cutting very long input short.
std::string quote(std::string_view text) {
    constexpr std::size_t kMax = 80;
    std::string out = "'";
    for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
        const auto u = static_cast<unsigned char>(text[i]);
        if (u >= 0x20 && u < 0x7f && u != '\\') {
            out.push_back(static_cast<char>(u));
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(u));
            out += buf;
        }
    }
    if (text.size() > kMax) out += "...";
    out += "'";
    return out;
}

// Parses a decimal port 1..65535 (no sign, no leading zeros).
bool parse_port(std::string_view text, std::uint16_t& port) {
    if (text.empty() || text.size() > 5 || text.front() == '0') return false;
    std::uint32_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (value < 1 || value > 65535) return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

}  // namespace

Endpoint Endpoint::ipv4(std::array<std::uint8_t, 4> address, std::uint16_t port) {
    Endpoint e;
    e.family_ = AF_INET;
    std::memcpy(e.address_.data(), address.data(), address.size());
    e.port_ = port;
    return e;
}

Endpoint Endpoint::ipv6(std::array<std::uint8_t, 16> address, std::uint16_t port) {
    if (is_v4_mapped(address)) {
        return ipv4({address[12], address[13], address[14], address[15]}, port);
    }
    Endpoint e;
    e.family_ = AF_INET6;
    e.address_ = address;
    e.port_ = port;
    return e;
}

Result<Endpoint> Endpoint::parse(std::string_view text) {
    auto bad = [&](const std::string& why) {
        return fail("invalid endpoint " + quote(text) + " (" + why + ")");
    };
    if (text.empty()) return fail("invalid endpoint '' (empty)");
    if (text.size() > 64) return bad("too long");

    std::string_view host;
    std::string_view port_text;
    bool v6 = false;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return bad("missing ']'");
        host = text.substr(1, close - 1);
        const auto rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') return bad("expected ':port' after ']'");
        port_text = rest.substr(1);
        v6 = true;
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad("missing ':port'");
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return bad("IPv6 addresses must be written in brackets, like [::1]:4000");
        }
    }

    std::uint16_t port = 0;
    if (!parse_port(port_text, port)) return bad("port must be a number from 1 to 65535");

    // inet_pton needs a NUL-terminated string; an embedded NUL would hide the rest.
    if (host.find('\0') != std::string_view::npos) return bad("NUL byte in address");
    const std::string host_str(host);
    if (v6) {
        std::array<std::uint8_t, 16> addr{};
        if (host_str.empty() || ::inet_pton(AF_INET6, host_str.c_str(), addr.data()) != 1) {
            return bad("not an IPv6 address");
        }
        return ipv6(addr, port);
    }
    std::array<std::uint8_t, 4> addr{};
    if (host_str.empty() || ::inet_pton(AF_INET, host_str.c_str(), addr.data()) != 1) {
        return bad("not an IPv4 address");
    }
    return ipv4(addr, port);
}

Result<Endpoint> Endpoint::from_sockaddr(const sockaddr* sa, socklen_t len) {
    if (sa == nullptr) return fail("invalid socket address (null)");
    if (len < static_cast<socklen_t>(sizeof(sa_family_t))) {
        return fail("invalid socket address (too short)");
    }
    sa_family_t family;
    std::memcpy(&family, reinterpret_cast<const char*>(sa) + offsetof(sockaddr, sa_family),
                sizeof family);
    if (family == AF_INET) {
        if (len < static_cast<socklen_t>(sizeof(sockaddr_in))) {
            return fail("invalid socket address (too short for IPv4)");
        }
        sockaddr_in sin;
        std::memcpy(&sin, sa, sizeof sin);
        std::array<std::uint8_t, 4> addr{};
        std::memcpy(addr.data(), &sin.sin_addr, addr.size());
        return ipv4(addr, ntohs(sin.sin_port));
    }
    if (family == AF_INET6) {
        if (len < static_cast<socklen_t>(sizeof(sockaddr_in6))) {
            return fail("invalid socket address (too short for IPv6)");
        }
        sockaddr_in6 sin6;
        std::memcpy(&sin6, sa, sizeof sin6);
        std::array<std::uint8_t, 16> addr{};
        std::memcpy(addr.data(), &sin6.sin6_addr, addr.size());
        return ipv6(addr, ntohs(sin6.sin6_port));
    }
    return fail("unsupported address family " + std::to_string(family));
}

socklen_t Endpoint::to_sockaddr(sockaddr_storage& out) const {
    std::memset(&out, 0, sizeof out);
    if (is_v4()) {
        sockaddr_in sin;
        std::memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port_);
        std::memcpy(&sin.sin_addr, address_.data(), 4);
        std::memcpy(&out, &sin, sizeof sin);
        return sizeof sin;
    }
    if (is_v6()) {
        sockaddr_in6 sin6;
        std::memset(&sin6, 0, sizeof sin6);
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port_);
        std::memcpy(&sin6.sin6_addr, address_.data(), 16);
        std::memcpy(&out, &sin6, sizeof sin6);
        return sizeof sin6;
    }
    return 0;
}

std::string Endpoint::address_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (is_v4()) {
        if (::inet_ntop(AF_INET, address_.data(), buf, sizeof buf) == nullptr) return {};
        return buf;
    }
    if (is_v6()) {
        if (::inet_ntop(AF_INET6, address_.data(), buf, sizeof buf) == nullptr) return {};
        return buf;
    }
    return {};
}

std::string Endpoint::to_string() const {
    if (is_v4()) return address_string() + ":" + std::to_string(port_);
    if (is_v6()) return "[" + address_string() + "]:" + std::to_string(port_);
    return {};
}

}  // namespace keyhole::identity
