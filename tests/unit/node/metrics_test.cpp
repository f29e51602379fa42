// The Prometheus text the metrics port serves.
#include <gtest/gtest.h>

#include "metrics.h"

namespace keyhole::node {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Metrics, EveryFamilyHasHelpAndType) {
    const std::string text = render_metrics(MetricsSnapshot{});
    for (const char* family : {"keyhole_dht_nodes", "keyhole_dht_lookups_total", "keyhole_dht_lookup_duration_seconds",
                               "keyhole_sessions", "keyhole_punch_probes_sent_total", "keyhole_punches_started_total",
                               "keyhole_punches_succeeded_total",
                               "keyhole_relay_forwarded_frames_total", "keyhole_relay_forwarded_bytes_total",
                               "keyhole_dropped_total", "keyhole_messages_queued",
                               "keyhole_messages_delivered_total"}) {
        EXPECT_TRUE(contains(text, std::string("# HELP ") + family + " ")) << family;
        EXPECT_TRUE(contains(text, std::string("# TYPE ") + family + " ")) << family;
    }
    EXPECT_EQ(text.back(), '\n');
}

TEST(Metrics, SessionsAreSplitByPathType) {
    MetricsSnapshot snapshot;
    snapshot.sessions_direct = 3;
    snapshot.sessions_relay = 1;
    const std::string text = render_metrics(snapshot);
    EXPECT_TRUE(contains(text, "keyhole_sessions{path=\"direct\"} 3\n"));
    EXPECT_TRUE(contains(text, "keyhole_sessions{path=\"relay\"} 1\n"));
}

TEST(Metrics, DroppedPacketsCarryTheirReason) {
    MetricsSnapshot snapshot;
    snapshot.dropped_malformed = 7;
    snapshot.dropped_frame_rejected = 2;
    snapshot.records_rejected = 5;
    const std::string text = render_metrics(snapshot);
    EXPECT_TRUE(contains(text, "keyhole_dropped_total{reason=\"malformed\"} 7\n"));
    EXPECT_TRUE(contains(text, "keyhole_dropped_total{reason=\"frame_rejected\"} 2\n"));
    EXPECT_TRUE(contains(text, "keyhole_dropped_total{reason=\"record_rejected\"} 5\n"));
}

TEST(Metrics, HistogramBucketsAreCumulative) {
    MetricsSnapshot snapshot;
    snapshot.lookup_duration.upper_bounds_s = {0.05, 1};
    snapshot.lookup_duration.counts = {2, 3, 4};  // 2 fast, 3 medium, 4 slower than every bound
    snapshot.lookup_duration.sum_s = 12.5;
    const std::string text = render_metrics(snapshot);
    EXPECT_TRUE(contains(text, "keyhole_dht_lookup_duration_seconds_bucket{le=\"0.05\"} 2\n"));
    EXPECT_TRUE(contains(text, "keyhole_dht_lookup_duration_seconds_bucket{le=\"1\"} 5\n"));
    EXPECT_TRUE(contains(text, "keyhole_dht_lookup_duration_seconds_bucket{le=\"+Inf\"} 9\n"));
    EXPECT_TRUE(contains(text, "keyhole_dht_lookup_duration_seconds_sum 12.5\n"));
    EXPECT_TRUE(contains(text, "keyhole_dht_lookup_duration_seconds_count 9\n"));
}

TEST(Metrics, LabelValuesAreEscaped) {
    EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    MetricsSnapshot snapshot;
    snapshot.mode = "we\"ird";
    EXPECT_TRUE(contains(render_metrics(snapshot), "mode=\"we\\\"ird\""));
}

}  // namespace
}  // namespace keyhole::node
