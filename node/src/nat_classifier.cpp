#include "keyhole/node/nat_classifier.h"

#include <algorithm>

namespace keyhole::node {

bool is_private_address(const identity::Endpoint& endpoint) {
    if (!endpoint.is_v4()) return false;
    const auto* a = endpoint.address_bytes();
    return a[0] == 10 || a[0] == 127 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
           (a[0] == 169 && a[1] == 254) || (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] == 0;
}

bool NatClassifier::is_local(const identity::Endpoint& endpoint) const {
    return std::find(local_.begin(), local_.end(), endpoint) != local_.end();
}

void NatClassifier::observed(const identity::Endpoint& reflector, const identity::Endpoint& observed,
                             Clock::time_point now) {
    latest_ = Observation{observed, now};
    // A reflector on our own LAN sees our LAN address; only public reflectors
    // tell us about the NAT (unless we have no NAT, see nat_class()).
    if (is_private_address(reflector) && !is_local(observed)) return;
    by_reflector_ip_[reflector.address_string()] = Observation{observed, now};
}

identity::NatClass NatClassifier::nat_class(Clock::time_point now) const {
    std::vector<identity::Endpoint> recent;
    for (const auto& [ip, observation] : by_reflector_ip_)
        if (now - observation.when < kMemory) recent.push_back(observation.observed);
    if (recent.empty()) return identity::NatClass::unknown;
    if (std::all_of(recent.begin(), recent.end(), [this](const auto& seen) { return is_local(seen); }))
        return identity::NatClass::open;
    if (recent.size() < 2) return identity::NatClass::unknown;
    const bool all_same = std::all_of(recent.begin(), recent.end(), [&](const auto& seen) { return seen == recent.front(); });
    return all_same ? identity::NatClass::endpoint_independent : identity::NatClass::endpoint_dependent;
}

std::optional<identity::Endpoint> NatClassifier::public_endpoint(Clock::time_point now) const {
    if (!latest_ || now - latest_->when >= kMemory) return std::nullopt;
    return latest_->observed;
}

std::size_t NatClassifier::reflectors(Clock::time_point now) const {
    return static_cast<std::size_t>(std::count_if(by_reflector_ip_.begin(), by_reflector_ip_.end(),
                                                   [&](const auto& entry) { return now - entry.second.when < kMemory; }));
}

}  // namespace keyhole::node
