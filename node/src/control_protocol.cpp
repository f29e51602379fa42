#include "keyhole/node/control_protocol.h"

#include <string>

namespace keyhole::node {

using nlohmann::json;

namespace {

// Requests are flat objects with small arguments. A bound on nesting keeps a
// hostile line from building a value whose copy or dump() recurses deep
// enough to exhaust the stack.
constexpr int kMaxNesting = 64;

// Deepest bracket nesting outside string literals. Exact for valid JSON; for
// anything else it only decides an earlier rejection.
int nesting_depth(std::string_view text) {
    int depth = 0;
    int deepest = 0;
    bool in_string = false;
    bool escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

// Replies may carry text from peers; invalid UTF-8 becomes U+FFFD instead of
// throwing from dump().
std::string dump_line(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

ControlError make_error(json id, const char* code, std::string message) {
    return ControlError{std::move(id), code, std::move(message)};
}

}  // namespace

ParsedRequest parse_request_line(std::string_view line) {
    try {
        if (line.size() > kMaxControlLine) {
            return make_error(
                nullptr, error_code::line_too_long,
                "request line is longer than " + std::to_string(kMaxControlLine) + " bytes");
        }
        if (nesting_depth(line) > kMaxNesting) {
            return make_error(
                nullptr, error_code::invalid_request,
                "request is nested more than " + std::to_string(kMaxNesting) + " levels deep");
        }
        json body = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
        if (body.is_discarded()) {
            return make_error(nullptr, error_code::parse_error, "request is not valid JSON");
        }
        if (!body.is_object()) {
            return make_error(nullptr, error_code::invalid_request,
                              "request must be a JSON object");
        }
        json id = nullptr;
        if (auto found = body.find("id"); found != body.end()) id = *found;
        auto command = body.find("cmd");
        if (command == body.end() || !command->is_string()) {
            return make_error(std::move(id), error_code::invalid_request,
                              "request needs a string field \"cmd\"");
        }
        std::string name = command->get<std::string>();
        return ControlRequest{std::move(id), std::move(name), std::move(body)};
    } catch (const std::exception&) {
        // Only allocation failure can get here; the promise is "never throws".
        return make_error(nullptr, error_code::internal, "request could not be processed");
    }
}

std::variant<std::string, ControlError> string_argument(const ControlRequest& request,
                                                        const char* name) {
    auto found = request.body.find(name);
    if (found == request.body.end()) {
        return make_error(request.id, error_code::bad_argument,
                          std::string("missing argument \"") + name + "\"");
    }
    if (!found->is_string()) {
        return make_error(request.id, error_code::bad_argument,
                          std::string("argument \"") + name + "\" must be a string");
    }
    return found->get<std::string>();
}

std::string make_ok_reply(const json& id, const json& result) {
    return dump_line(json{{"id", id}, {"ok", true}, {"result", result}});
}

std::string make_error_reply(const json& id, std::string_view code, std::string_view message) {
    return dump_line(
        json{{"id", id},
             {"ok", false},
             {"error", {{"code", std::string(code)}, {"message", std::string(message)}}}});
}

std::string make_error_reply(const ControlError& error) {
    return make_error_reply(error.id, error.code, error.message);
}

}  // namespace keyhole::node
