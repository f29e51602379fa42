// What kind of NAT we sit behind, from the addresses other keyhole nodes see
// us at (address reflection). DESIGN-BRIEF section 4 and docs/nat-traversal.md:
// the same public address and port seen from two reflectors at different
// public addresses means endpoint-independent mapping; different ports mean
// endpoint-dependent ("symmetric"); our own address means no NAT at all.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "keyhole/identity/endpoint.h"
#include "keyhole/identity/record.h"

namespace keyhole::node {

// Private, loopback, link-local and shared (CGN) IPv4 space: addresses a
// reflector on the same LAN would see us at, which say nothing about the NAT.
bool is_private_address(const identity::Endpoint& endpoint);

class NatClassifier {
public:
    using Clock = std::chrono::steady_clock;
    // Observations older than this are forgotten: mappings change.
    static constexpr auto kMemory = std::chrono::minutes(2);

    // `local` are our own addresses (interface address + bound port).
    void set_local_endpoints(std::vector<identity::Endpoint> local) { local_ = std::move(local); }

    // `reflector` (the node that answered) saw our datagram come from `observed`.
    void observed(const identity::Endpoint& reflector, const identity::Endpoint& observed, Clock::time_point now);

    identity::NatClass nat_class(Clock::time_point now) const;
    // The address peers should try: for endpoint-independent NAT (or none) the
    // stable mapping; for endpoint-dependent NAT only the address is
    // meaningful, the port is the one the latest reflector saw.
    std::optional<identity::Endpoint> public_endpoint(Clock::time_point now) const;
    // Distinct public reflectors heard from recently.
    std::size_t reflectors(Clock::time_point now) const;

private:
    struct Observation {
        identity::Endpoint observed;
        Clock::time_point when;
    };
    bool is_local(const identity::Endpoint& endpoint) const;

    std::vector<identity::Endpoint> local_;
    std::map<std::string, Observation> by_reflector_ip_;  // key: reflector address without port
    std::optional<Observation> latest_;
};

}  // namespace keyhole::node
