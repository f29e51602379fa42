// The JSON shape of a stored message, shared by inbox/history replies and
// "message" events, so a followed inbox prints the same fields as a fetched one.
#pragma once

#include <nlohmann/json.hpp>

#include "keyhole/node/message_store.h"

namespace keyhole::node {

inline nlohmann::json message_json(const StoredMessage& message) {
    nlohmann::json result{{"row", message.row},
                          {"message_id", message.message_id},
                          {"sequence", message.sequence},
                          {"text", message.text},
                          {"sent_unix_ms", message.sent_unix_ms},
                          {"stored_unix_ms", message.stored_unix_ms}};
    if (message.direction == MessageDirection::incoming) {
        result["from"] = message.peer.to_text();
        result["direction"] = "in";
    } else {
        result["to"] = message.peer.to_text();
        result["direction"] = "out";
        result["delivered"] = message.delivered;
    }
    return result;
}

}  // namespace keyhole::node
