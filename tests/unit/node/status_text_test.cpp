// `keyhole status` for people: a few readable lines from the status result.
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "status_text.h"

namespace keyhole::cli {
namespace {

using nlohmann::json;

std::string value_of(const std::vector<std::pair<std::string, std::string>>& lines, const std::string& label) {
    for (const auto& [key, value] : lines)
        if (key == label) return value;
    return "<missing>";
}

TEST(StatusText, ChatNodeSummary) {
    const json status = {{"id", "abc"},          {"mode", "chat"},        {"dht_nodes", 12},
                         {"dht_nodes_dubious", 2}, {"nat", "port-restricted"}, {"public_endpoint", "203.0.113.5:4224"},
                         {"relays", json::array()}, {"sessions", 1},        {"queued_messages", 3},
                         {"uptime_s", 3725},       {"record_published", true}, {"record_sequence", 7}};
    const auto lines = status_summary(status);
    EXPECT_EQ(value_of(lines, "ID"), "abc");
    EXPECT_EQ(value_of(lines, "DHT"), "healthy, 12 nodes (+2 unconfirmed)");
    EXPECT_EQ(value_of(lines, "record"), "published (sequence 7)");
    EXPECT_EQ(value_of(lines, "NAT"), "port-restricted");
    EXPECT_EQ(value_of(lines, "public endpoint"), "203.0.113.5:4224");
    EXPECT_EQ(value_of(lines, "relays"), "none");
    EXPECT_EQ(value_of(lines, "sessions"), "1 up");
    EXPECT_EQ(value_of(lines, "queued"), "3 messages waiting for delivery");
    EXPECT_EQ(value_of(lines, "uptime"), "1 h 02 min");
    EXPECT_EQ(value_of(lines, "role"), "<missing>");
    EXPECT_EQ(value_of(lines, "serving"), "<missing>");
}

TEST(StatusText, BootstrapNodeSaysWhatItServes) {
    const json status = {{"id", nullptr}, {"mode", "bootstrap"}, {"dht_nodes", 1},
                         {"reflections_answered", 40}, {"nat", "unknown"}, {"public_endpoint", nullptr}, {"uptime_s", 5}};
    const auto lines = status_summary(status);
    EXPECT_EQ(value_of(lines, "ID"), "none (bootstrap-only node)");
    EXPECT_EQ(value_of(lines, "role"), "bootstrap node");
    EXPECT_EQ(value_of(lines, "DHT"), "thin, 1 node");
    EXPECT_EQ(value_of(lines, "serving"), "DHT for 1 node, 40 address reflections");
    EXPECT_EQ(value_of(lines, "public endpoint"), "unknown yet");
    EXPECT_EQ(value_of(lines, "sessions"), "<missing>");
}

TEST(StatusText, RelayNodeShowsAllocationsAndBytes) {
    const json status = {{"id", "r"}, {"mode", "relay"}, {"dht_nodes", 0}, {"reflections_answered", 1},
                         {"relay_allocations", 2}, {"relay_forwarded_bytes", 3 * 1024 * 1024}, {"uptime_s", 90000}};
    const auto lines = status_summary(status);
    EXPECT_EQ(value_of(lines, "serving"),
              "DHT for 0 nodes, 1 address reflection, 2 relay allocations, 3.0 MiB forwarded");
    EXPECT_EQ(value_of(lines, "DHT"), "not connected: no nodes known");
    EXPECT_EQ(value_of(lines, "uptime"), "1 d 1 h");
}

TEST(StatusText, PeerSuppliedTextCannotControlTheTerminal) {
    const json status = {{"id", "x"}, {"relays", json::array({{{"endpoint", "1.2.3.4:5\x1b[31m"}}})}};
    std::ostringstream out;
    print_status(status, out);
    EXPECT_EQ(out.str().find('\x1b'), std::string::npos);
}

TEST(StatusText, UnexpectedShapesDoNotThrow) {
    std::ostringstream out;
    EXPECT_NO_THROW(print_status(json::array(), out));
    EXPECT_NO_THROW(print_status(json{{"dht_nodes", "many"}, {"uptime_s", -5}}, out));
}

TEST(StatusText, RelaysInUseShowTransportStateAndRoundTrip) {
    const json status = {{"id", "x"},
                         {"relays", json::array({{{"id", "r1"}, {"endpoint", "203.0.113.81:4222"}, {"transport", "udp"},
                                                  {"state", "granted"}, {"rtt_ms", 0.42}},
                                                 {{"id", "r2"}, {"endpoint", "203.0.113.82:443"}, {"transport", "tls"},
                                                  {"state", "allocating"}, {"rtt_ms", nullptr}}})}};
    const auto lines = status_summary(status);
    EXPECT_EQ(value_of(lines, "relays"), "203.0.113.81:4222 (udp, granted, 0.4 ms), 203.0.113.82:443 (tls, allocating)");
}

}  // namespace
}  // namespace keyhole::cli
