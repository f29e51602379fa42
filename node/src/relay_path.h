// Where a relay packet came from and where an answer goes: a UDP endpoint,
// or a TLS stream (stream != 0; endpoint is then the TCP peer address).
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "keyhole/identity/endpoint.h"

namespace keyhole::node {

struct RelayPath {
    identity::Endpoint endpoint;
    std::uint64_t stream = 0;  // 0: UDP

    bool is_stream() const { return stream != 0; }
    std::string to_string() const {
        return stream ? "tls#" + std::to_string(stream) + " " + endpoint.to_string() : endpoint.to_string();
    }
    friend bool operator==(const RelayPath&, const RelayPath&) = default;
    friend auto operator<=>(const RelayPath&, const RelayPath&) = default;
};

}  // namespace keyhole::node
