#include "metrics_http.h"

#include <algorithm>

namespace keyhole::node {

namespace {

constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

bool is_token_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string response(int status, std::string_view reason, std::string_view content_type, const std::string& body,
                     bool with_body) {
    std::string text = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
    text += "Content-Type: " + std::string(content_type) + "\r\n";
    text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    text += "Connection: close\r\n\r\n";
    if (with_body) text += body;
    return text;
}

}  // namespace

HttpRequestHead parse_http_request_head(std::string_view received) {
    HttpRequestHead head;
    // Bare LF line ends are tolerated, as most servers do.
    auto end = received.find("\r\n\r\n");
    if (end == std::string_view::npos) end = received.find("\n\n");
    if (end == std::string_view::npos) {
        head.state = received.size() > kMaxHttpRequestHead ? HttpHeadState::too_large : HttpHeadState::incomplete;
        return head;
    }
    if (end > kMaxHttpRequestHead) {
        head.state = HttpHeadState::too_large;
        return head;
    }
    std::string_view line = received.substr(0, received.find('\n'));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    // METHOD SP TARGET SP HTTP/x.y
    const auto first_space = line.find(' ');
    const auto last_space = line.rfind(' ');
    head.state = HttpHeadState::malformed;
    if (first_space == std::string_view::npos || last_space == first_space) return head;
    const std::string_view method = line.substr(0, first_space);
    const std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
    const std::string_view version = line.substr(last_space + 1);
    if (method.empty() || !std::all_of(method.begin(), method.end(), is_token_char)) return head;
    if (target.empty() || target.front() != '/' || target.find(' ') != std::string_view::npos) return head;
    if (version != "HTTP/1.0" && version != "HTTP/1.1") return head;
    if (std::any_of(target.begin(), target.end(), [](char c) { return static_cast<unsigned char>(c) < 0x21 || c == 0x7f; }))
        return head;

    head.state = HttpHeadState::complete;
    head.method = std::string(method);
    head.path = std::string(target.substr(0, target.find('?')));
    return head;
}

std::string http_response_for(const HttpRequestHead& head, const std::function<std::string()>& metrics_body) {
    constexpr std::string_view kText = "text/plain; charset=utf-8";
    switch (head.state) {
    case HttpHeadState::too_large:
        return response(431, "Request Header Fields Too Large", kText, "request head too large\n", true);
    case HttpHeadState::malformed:
    case HttpHeadState::incomplete:
        return response(400, "Bad Request", kText, "bad request\n", true);
    case HttpHeadState::complete:
        break;
    }
    const bool head_only = head.method == "HEAD";
    if (head.method != "GET" && !head_only)
        return response(405, "Method Not Allowed", kText, "only GET /metrics\n", true);
    if (head.path == "/metrics") return response(200, "OK", kMetricsContentType, metrics_body(), !head_only);
    if (head.path == "/")
        return response(200, "OK", kText, "keyholed: metrics are at /metrics\n", !head_only);
    return response(404, "Not Found", kText, "not found; metrics are at /metrics\n", !head_only);
}

}  // namespace keyhole::node
