// Control clients that sent "subscribe" get every event line from here:
// message, delivered, peer (see docs/protocol.md, "Events").
#pragma once

#include <functional>
#include <list>
#include <string>

#include <nlohmann/json.hpp>

namespace keyhole::node {

class EventHub {
public:
    using Sink = std::function<void(std::string line)>;
    void subscribe(Sink sink) { sinks_.push_back(std::move(sink)); }
    // Sends {"event": name, ...fields} to every subscriber.
    void publish(const std::string& name, nlohmann::json fields);

private:
    std::list<Sink> sinks_;
};

}  // namespace keyhole::node
