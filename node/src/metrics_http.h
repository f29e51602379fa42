// The little HTTP/1.x the metrics port speaks: parse one request head,
// answer GET /metrics, close. Anything else gets a short error response.
// Separate from the socket code so hostile input is tested directly.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace keyhole::node {

// A request head longer than this is refused (431) and the connection closed.
constexpr std::size_t kMaxHttpRequestHead = 8 * 1024;

enum class HttpHeadState {
    incomplete,  // no blank line yet; read more (if under the limit)
    complete,
    too_large,
    malformed,
};

struct HttpRequestHead {
    HttpHeadState state = HttpHeadState::incomplete;
    std::string method;
    std::string path;  // the target without its query string
};

// Looks at everything received so far on a connection.
HttpRequestHead parse_http_request_head(std::string_view received);

// The whole response to a parsed head (complete, too_large or malformed).
// `metrics_body` is called only for GET or HEAD /metrics.
std::string http_response_for(const HttpRequestHead& head, const std::function<std::string()>& metrics_body);

}  // namespace keyhole::node
