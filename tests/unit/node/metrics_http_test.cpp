// The metrics port's HTTP parsing: well-formed GETs are answered, anything
// else gets a short error, and nothing is buffered without bound.
#include <gtest/gtest.h>

#include "metrics_http.h"

namespace keyhole::node {
namespace {

std::string body() { return "keyhole_up 1\n"; }

TEST(MetricsHttp, GetMetricsIsAnsweredWithTheExposition) {
    const auto head = parse_http_request_head("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_EQ(head.state, HttpHeadState::complete);
    EXPECT_EQ(head.method, "GET");
    EXPECT_EQ(head.path, "/metrics");
    const std::string response = http_response_for(head, body);
    EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
    EXPECT_NE(response.find("Content-Length: 13\r\n"), std::string::npos);
    EXPECT_NE(response.find("Connection: close\r\n"), std::string::npos);
    EXPECT_EQ(response.substr(response.size() - 13), "keyhole_up 1\n");
}

TEST(MetricsHttp, QueryStringAndBareNewlinesAreAccepted) {
    const auto head = parse_http_request_head("GET /metrics?x=1 HTTP/1.0\n\n");
    ASSERT_EQ(head.state, HttpHeadState::complete);
    EXPECT_EQ(head.path, "/metrics");
}

TEST(MetricsHttp, HeadHasNoBody) {
    const std::string response = http_response_for(parse_http_request_head("HEAD /metrics HTTP/1.1\r\n\r\n"), body);
    EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_EQ(response.substr(response.size() - 4), "\r\n\r\n");
}

TEST(MetricsHttp, IncompleteHeadWaitsForMore) {
    EXPECT_EQ(parse_http_request_head("GET /metrics HTTP/1.1\r\nHost: x\r\n").state, HttpHeadState::incomplete);
    EXPECT_EQ(parse_http_request_head("").state, HttpHeadState::incomplete);
}

TEST(MetricsHttp, OversizedHeadIsRefused) {
    const std::string endless(kMaxHttpRequestHead + 1, 'a');
    const auto head = parse_http_request_head(endless);
    EXPECT_EQ(head.state, HttpHeadState::too_large);
    EXPECT_EQ(http_response_for(head, body).rfind("HTTP/1.1 431 ", 0), 0u);

    const std::string long_header = "GET /metrics HTTP/1.1\r\nX: " + std::string(kMaxHttpRequestHead, 'b') + "\r\n\r\n";
    EXPECT_EQ(parse_http_request_head(long_header).state, HttpHeadState::too_large);
}

TEST(MetricsHttp, GarbageIsABadRequest) {
    for (const char* garbage : {"GARBAGE\r\n\r\n", "GET\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
                                "GET /metrics SPDY/9\r\n\r\n", "G\x01T /metrics HTTP/1.1\r\n\r\n",
                                "GET /met\x7frics HTTP/1.1\r\n\r\n"}) {
        const auto head = parse_http_request_head(garbage);
        EXPECT_EQ(head.state, HttpHeadState::malformed) << garbage;
        EXPECT_EQ(http_response_for(head, body).rfind("HTTP/1.1 400 ", 0), 0u) << garbage;
    }
}

TEST(MetricsHttp, OtherMethodsAndPathsAreRefused) {
    bool rendered = false;
    auto render = [&] {
        rendered = true;
        return body();
    };
    EXPECT_EQ(http_response_for(parse_http_request_head("POST /metrics HTTP/1.1\r\n\r\n"), render).rfind("HTTP/1.1 405 ", 0), 0u);
    EXPECT_EQ(http_response_for(parse_http_request_head("GET /secret HTTP/1.1\r\n\r\n"), render).rfind("HTTP/1.1 404 ", 0), 0u);
    EXPECT_FALSE(rendered);
}

}  // namespace
}  // namespace keyhole::node
