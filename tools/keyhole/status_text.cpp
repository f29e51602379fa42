#include "status_text.h"

#include <algorithm>
#include <cstdio>

#include "render.h"

namespace keyhole::cli {

namespace {

using nlohmann::json;

std::int64_t integer_or(const json& value, std::int64_t fallback) {
    return value.is_number_integer() ? value.get<std::int64_t>() : fallback;
}

std::string count_text(std::int64_t count, const char* one, const char* many) {
    return std::to_string(count) + " " + (count == 1 ? one : many);
}

std::string dht_text(const json& status) {
    const auto good = integer_or(field(status, "dht_nodes"), 0);
    const auto dubious = integer_or(field(status, "dht_nodes_dubious"), 0);
    std::string text;
    if (good == 0) {
        text = dubious > 0 ? "connecting (" + count_text(dubious, "unconfirmed node", "unconfirmed nodes") + ")"
                           : "not connected: no nodes known";
    } else {
        text = std::string(good < 8 ? "thin" : "healthy") + ", " + count_text(good, "node", "nodes");
        if (dubious > 0) text += " (+" + std::to_string(dubious) + " unconfirmed)";
    }
    return text;
}

std::string record_text(const json& status) {
    const json& sequence = field(status, "record_sequence");
    if (field(status, "record_published") == true)
        return "published (sequence " + plain(sequence) + ")";
    return "not published yet";
}

std::string relays_text(const json& relays) {
    if (!relays.is_array() || relays.empty()) return "none";
    std::string text;
    for (const auto& relay : relays) {
        if (!text.empty()) text += ", ";
        const json& endpoint = field(relay, "endpoint");
        text += terminal_safe(endpoint.is_string() ? endpoint.get<std::string>() : plain(relay));
        // "203.0.113.81:4222 (udp, granted, 0.4 ms)": how it is reached and whether it holds us.
        std::string details;
        for (const char* key : {"transport", "state"})
            if (const json& value = field(relay, key); value.is_string())
                details += (details.empty() ? "" : ", ") + terminal_safe(value.get<std::string>());
        if (const json& rtt = field(relay, "rtt_ms"); rtt.is_number()) {
            char buffer[32];
            std::snprintf(buffer, sizeof(buffer), "%.1f ms", rtt.get<double>());
            details += (details.empty() ? "" : ", ") + std::string(buffer);
        }
        if (!details.empty()) text += " (" + details + ")";
    }
    return text;
}

std::string bytes_text(std::int64_t bytes) {
    char text[32];
    if (bytes < 1024) return std::to_string(bytes) + " B";
    if (bytes < 1024 * 1024) std::snprintf(text, sizeof(text), "%.1f KiB", bytes / 1024.0);
    else if (bytes < 1024LL * 1024 * 1024) std::snprintf(text, sizeof(text), "%.1f MiB", bytes / (1024.0 * 1024));
    else std::snprintf(text, sizeof(text), "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    return text;
}

// What a bootstrap or relay node does for others.
std::string serving_text(const json& status, const std::string& mode) {
    std::string text = "DHT for " + count_text(integer_or(field(status, "dht_nodes"), 0), "node", "nodes") + ", " +
                       count_text(integer_or(field(status, "reflections_answered"), 0), "address reflection",
                                  "address reflections");
    if (mode == "relay") {
        text += ", " + count_text(integer_or(field(status, "relay_allocations"), 0), "relay allocation",
                                  "relay allocations");
        text += ", " + bytes_text(integer_or(field(status, "relay_forwarded_bytes"), 0)) + " forwarded";
    }
    return text;
}

}  // namespace

std::string uptime_text(std::int64_t seconds) {
    char text[48];
    if (seconds < 60) return std::to_string(std::max<std::int64_t>(seconds, 0)) + " s";
    if (seconds < 3600) return std::to_string(seconds / 60) + " min";
    if (seconds < 86400) {
        std::snprintf(text, sizeof(text), "%lld h %02lld min", static_cast<long long>(seconds / 3600),
                      static_cast<long long>(seconds % 3600 / 60));
        return text;
    }
    std::snprintf(text, sizeof(text), "%lld d %lld h", static_cast<long long>(seconds / 86400),
                  static_cast<long long>(seconds % 86400 / 3600));
    return text;
}

std::vector<std::pair<std::string, std::string>> status_summary(const json& status) {
    const std::string mode = plain(field(status, "mode"), "chat");
    std::vector<std::pair<std::string, std::string>> lines;
    const json& id = field(status, "id");
    lines.emplace_back("ID", id.is_string() ? terminal_safe(id.get<std::string>()) : "none (bootstrap-only node)");
    if (mode != "chat") lines.emplace_back("role", terminal_safe(mode) + " node");
    lines.emplace_back("DHT", dht_text(status));
    if (id.is_string()) lines.emplace_back("record", record_text(status));
    lines.emplace_back("NAT", terminal_safe(plain(field(status, "nat"), "unknown")));
    lines.emplace_back("public endpoint", terminal_safe(plain(field(status, "public_endpoint"), "unknown yet")));
    if (id.is_string()) {
        lines.emplace_back("relays", relays_text(field(status, "relays")));
        lines.emplace_back("sessions", count_text(integer_or(field(status, "sessions"), 0), "up", "up"));
        const auto queued = integer_or(field(status, "queued_messages"), 0);
        lines.emplace_back("queued", queued == 0 ? "nothing waiting"
                                                 : count_text(queued, "message", "messages") + " waiting for delivery");
    }
    if (mode == "bootstrap" || mode == "relay") lines.emplace_back("serving", serving_text(status, mode));
    lines.emplace_back("uptime", uptime_text(integer_or(field(status, "uptime_s"), 0)));
    return lines;
}

void print_status(const json& status, std::ostream& out) {
    const auto lines = status_summary(status);
    std::size_t width = 0;
    for (const auto& [label, value] : lines) width = std::max(width, label.size());
    for (const auto& [label, value] : lines)
        out << label << ':' << std::string(width - label.size() + 1, ' ') << value << '\n';
}

}  // namespace keyhole::cli
