#include "keyhole/node/event_hub.h"

namespace keyhole::node {

void EventHub::publish(const std::string& name, nlohmann::json fields) {
    fields["event"] = name;
    const auto line = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    // A sink whose client has gone is a no-op (ControlReply holds a weak reference).
    for (auto& sink : sinks_) sink(line);
}

}  // namespace keyhole::node
