#include "metrics.h"

#include <cmath>
#include <charconv>
#include <initializer_list>
#include <utility>

namespace keyhole::node {

namespace {

std::string number_text(double value) {
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    if (std::isnan(value)) return "NaN";
    // Shortest text that reads back as the same double: 0.05, not 0.050000000000000003.
    char text[64];
    const auto written = std::to_chars(text, text + sizeof(text), value);
    return std::string(text, written.ptr);
}

// One metric family: HELP and TYPE once, then its samples.
class Family {
public:
    Family(std::string& out, const char* name, const char* type, const char* help)
        : out_(out), name_(name) {
        out_ += std::string("# HELP ") + name + " " + help + "\n";
        out_ += std::string("# TYPE ") + name + " " + type + "\n";
    }
    Family& sample(std::uint64_t value) { return sample("", {}, number_text(static_cast<double>(value))); }
    Family& sample(double value) { return sample("", {}, number_text(value)); }
    Family& sample(std::initializer_list<std::pair<const char*, std::string>> labels, std::uint64_t value) {
        return sample("", labels, number_text(static_cast<double>(value)));
    }
    Family& sample(const char* suffix, std::initializer_list<std::pair<const char*, std::string>> labels,
                   const std::string& value) {
        out_ += name_;
        out_ += suffix;
        if (labels.size() > 0) {
            out_ += '{';
            bool first = true;
            for (const auto& [label, label_value] : labels) {
                if (!first) out_ += ',';
                first = false;
                out_ += std::string(label) + "=\"" + escape_label_value(label_value) + "\"";
            }
            out_ += '}';
        }
        out_ += ' ' + value + '\n';
        return *this;
    }

private:
    std::string& out_;
    std::string name_;
};

void histogram(std::string& out, const char* name, const char* help, const HistogramSnapshot& data) {
    Family family(out, name, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < data.upper_bounds_s.size(); ++i) {
        if (i < data.counts.size()) cumulative += data.counts[i];
        family.sample("_bucket", {{"le", number_text(data.upper_bounds_s[i])}}, number_text(static_cast<double>(cumulative)));
    }
    if (data.counts.size() > data.upper_bounds_s.size()) cumulative += data.counts.back();
    family.sample("_bucket", {{"le", "+Inf"}}, number_text(static_cast<double>(cumulative)));
    family.sample("_sum", {}, number_text(data.sum_s));
    family.sample("_count", {}, number_text(static_cast<double>(cumulative)));
}

}  // namespace

std::string escape_label_value(const std::string& value) {
    std::string escaped;
    escaped.reserve(value.size());
    for (char c : value) {
        if (c == '\\') escaped += "\\\\";
        else if (c == '"') escaped += "\\\"";
        else if (c == '\n') escaped += "\\n";
        else escaped += c;
    }
    return escaped;
}

std::string render_metrics(const MetricsSnapshot& s) {
    std::string out;
    Family(out, "keyhole_info", "gauge", "Always 1; the labels say what runs.")
        .sample({{"mode", s.mode}, {"version", s.version}}, 1);
    Family(out, "keyhole_uptime_seconds", "gauge", "Seconds since the daemon started.").sample(s.uptime_s);
    Family(out, "keyhole_record_published", "gauge", "1 when the DHT confirmed storing our identity record.")
        .sample(std::uint64_t{s.record_published ? 1u : 0u});

    Family(out, "keyhole_dht_nodes", "gauge", "DHT nodes in the routing table, by state.")
        .sample({{"state", "good"}}, s.dht_nodes_good)
        .sample({{"state", "dubious"}}, s.dht_nodes_dubious);
    Family(out, "keyhole_dht_lookups_total", "counter", "Identity record lookups finished, by result.")
        .sample({{"result", "found"}}, s.lookups_found)
        .sample({{"result", "not_found"}}, s.lookups_not_found);
    histogram(out, "keyhole_dht_lookup_duration_seconds", "Time from the start of a lookup to its result.",
              s.lookup_duration);

    Family(out, "keyhole_sessions", "gauge", "Sessions that are up, by path type.")
        .sample({{"path", "direct"}}, s.sessions_direct)
        .sample({{"path", "relay"}}, s.sessions_relay);
    Family(out, "keyhole_connect_requests_sent_total", "counter", "Connect requests sent through DHT inboxes.")
        .sample(s.connect_requests_sent);
    Family(out, "keyhole_punch_probes_sent_total", "counter", "Hole punching probes sent.").sample(s.punch_probes_sent);
    Family(out, "keyhole_punches_started_total", "counter", "Hole punching attempts (sessions that began punching).")
        .sample(s.punches_started);
    Family(out, "keyhole_punches_succeeded_total", "counter", "Punching attempts that found a direct path.")
        .sample(s.punches_succeeded);
    Family(out, "keyhole_handshakes_completed_total", "counter", "Noise handshakes completed, either role.")
        .sample(s.handshakes_completed);

    Family(out, "keyhole_relay_forwarded_frames_total", "counter", "Frames this node relayed for others.")
        .sample(s.relay_frames_forwarded);
    Family(out, "keyhole_relay_forwarded_bytes_total", "counter", "Bytes this node relayed for others.")
        .sample(s.relay_bytes_forwarded);

    Family(out, "keyhole_packets_received_total", "counter", "keyhole packets received on the UDP port.")
        .sample(s.packets_received);
    Family(out, "keyhole_reflections_answered_total", "counter", "Address reflection requests answered.")
        .sample(s.reflections_answered);
    Family(out, "keyhole_dropped_total", "counter", "Packets, frames and records dropped, by reason.")
        .sample({{"reason", "malformed"}}, s.dropped_malformed)
        .sample({{"reason", "frame_rejected"}}, s.dropped_frame_rejected)
        .sample({{"reason", "handshake_rejected"}}, s.dropped_handshake_rejected)
        .sample({{"reason", "stranger"}}, s.dropped_stranger)
        .sample({{"reason", "record_rejected"}}, s.records_rejected);

    Family(out, "keyhole_messages_queued", "gauge", "Outgoing messages not yet acknowledged.").sample(s.messages_queued);
    Family(out, "keyhole_messages_delivered_total", "counter", "Outgoing messages acknowledged since start.")
        .sample(s.messages_delivered);
    Family(out, "keyhole_messages_received_total", "counter", "Incoming messages stored since start.")
        .sample(s.messages_received);
    return out;
}

}  // namespace keyhole::node
