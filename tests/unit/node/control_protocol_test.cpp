#include "keyhole/node/control_protocol.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace keyhole::node {
namespace {

using nlohmann::json;

ControlError expect_error(const ParsedRequest& parsed) {
    EXPECT_TRUE(std::holds_alternative<ControlError>(parsed));
    if (auto* error = std::get_if<ControlError>(&parsed)) return *error;
    return {};
}

TEST(ControlProtocol, WellFormedRequestIsParsed) {
    auto parsed = parse_request_line(R"({"id":7,"cmd":"lookup","peer":"abc"})");
    ASSERT_TRUE(std::holds_alternative<ControlRequest>(parsed));
    const auto& request = std::get<ControlRequest>(parsed);
    EXPECT_EQ(request.id, 7);
    EXPECT_EQ(request.command, "lookup");
    EXPECT_EQ(request.body.at("peer"), "abc");
}

TEST(ControlProtocol, RequestWithoutIdHasNullId) {
    auto parsed = parse_request_line(R"({"cmd":"status"})");
    ASSERT_TRUE(std::holds_alternative<ControlRequest>(parsed));
    EXPECT_TRUE(std::get<ControlRequest>(parsed).id.is_null());
}

TEST(ControlProtocol, NonJsonLineGetsParseError) {
    auto error = expect_error(parse_request_line("status please"));
    EXPECT_EQ(error.code, error_code::parse_error);
    EXPECT_EQ(error.message, "request is not valid JSON");
    EXPECT_TRUE(error.id.is_null());
}

TEST(ControlProtocol, TruncatedJsonGetsParseError) {
    EXPECT_EQ(expect_error(parse_request_line(R"({"id":1,"cmd":"st)")).code,
              error_code::parse_error);
}

TEST(ControlProtocol, NonObjectGetsInvalidRequest) {
    for (const char* line : {"[1,2]", "\"status\"", "42", "null", "true"}) {
        auto error = expect_error(parse_request_line(line));
        EXPECT_EQ(error.code, error_code::invalid_request) << line;
        EXPECT_EQ(error.message, "request must be a JSON object") << line;
    }
}

TEST(ControlProtocol, MissingCommandGetsInvalidRequestAndKeepsId) {
    auto error = expect_error(parse_request_line(R"({"id":"abc","peer":"x"})"));
    EXPECT_EQ(error.code, error_code::invalid_request);
    EXPECT_EQ(error.message, "request needs a string field \"cmd\"");
    EXPECT_EQ(error.id, "abc");
}

TEST(ControlProtocol, NonStringCommandGetsInvalidRequestAndKeepsId) {
    auto error = expect_error(parse_request_line(R"({"id":[1,{"a":2}],"cmd":5})"));
    EXPECT_EQ(error.code, error_code::invalid_request);
    EXPECT_EQ(error.id, json::parse(R"([1,{"a":2}])"));
}

TEST(ControlProtocol, IdOfAnyJsonTypeIsPreservedInReply) {
    for (const char* id : {"1", "-3.5", "\"x\"", "null", "true", R"({"k":[1,2]})"}) {
        std::string line = std::string(R"({"cmd":"id","id":)") + id + "}";
        auto parsed = parse_request_line(line);
        ASSERT_TRUE(std::holds_alternative<ControlRequest>(parsed)) << line;
        auto reply = json::parse(make_ok_reply(std::get<ControlRequest>(parsed).id, {{"a", 1}}));
        EXPECT_EQ(reply.at("id"), json::parse(id));
        EXPECT_EQ(reply.at("ok"), true);
        EXPECT_EQ(reply.at("result"), json({{"a", 1}}));
    }
}

TEST(ControlProtocol, TooLongLineGetsLineTooLong) {
    std::string line = R"({"cmd":"x","pad":")" + std::string(kMaxControlLine, 'a') + "\"}";
    auto error = expect_error(parse_request_line(line));
    EXPECT_EQ(error.code, error_code::line_too_long);
}

TEST(ControlProtocol, LineOfExactlyTheLimitIsParsed) {
    std::string head = R"({"cmd":"x","pad":")";
    std::string line = head + std::string(kMaxControlLine - head.size() - 2, 'a') + "\"}";
    ASSERT_EQ(line.size(), kMaxControlLine);
    EXPECT_TRUE(std::holds_alternative<ControlRequest>(parse_request_line(line)));
}

TEST(ControlProtocol, DeeplyNestedRequestIsRejectedWithoutRecursing) {
    std::string line =
        R"({"cmd":"x","id":)" + std::string(200000, '[') + std::string(200000, ']') + "}";
    auto error = expect_error(parse_request_line(line));
    EXPECT_EQ(error.code, error_code::invalid_request);
}

TEST(ControlProtocol, BracketsInsideStringsDoNotCountAsNesting) {
    std::string line = R"({"cmd":"send","text":")" + std::string(1000, '[') + R"(\"{{"})";
    EXPECT_TRUE(std::holds_alternative<ControlRequest>(parse_request_line(line)));
}

TEST(ControlProtocol, ArbitraryBytesNeverThrow) {
    std::mt19937 random(12345);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> length(0, 200);
    // Fragments that push the parser deeper than pure noise would.
    const char* fragments[] = {"{",       "}",       "[",      "]",     "\"", ":",
                               ",",       "\"cmd\"", "\"id\"", "1e999", "-0", "\\u",
                               "\\ud800", "null",    "tru",    "\xff",  " "};
    std::uniform_int_distribution<std::size_t> fragment(0, std::size(fragments) - 1);
    for (int round = 0; round < 5000; ++round) {
        std::string line;
        int size = length(random);
        for (int i = 0; i < size; ++i) {
            if (round % 2 == 0) {
                line.push_back(static_cast<char>(byte(random)));
            } else {
                line += fragments[fragment(random)];
            }
        }
        ParsedRequest parsed;
        ASSERT_NO_THROW(parsed = parse_request_line(line)) << round;
        ASSERT_NO_THROW({
            if (auto* error = std::get_if<ControlError>(&parsed)) {
                (void)make_error_reply(*error);
            } else {
                const auto& request = std::get<ControlRequest>(parsed);
                (void)make_ok_reply(request.id, request.body);
            }
        });
    }
}

TEST(ControlProtocol, RepliesAreSingleLines) {
    std::string ok = make_ok_reply(1, {{"text", "two\nlines"}});
    std::string error = make_error_reply(nullptr, error_code::not_found, "no\nsuch");
    EXPECT_EQ(ok.find('\n'), std::string::npos);
    EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(ControlProtocol, ErrorReplyHasCodeAndMessage) {
    auto reply = json::parse(make_error_reply("q", error_code::not_found, "ID not found"));
    EXPECT_EQ(reply.at("id"), "q");
    EXPECT_EQ(reply.at("ok"), false);
    EXPECT_EQ(reply.at("error").at("code"), "not_found");
    EXPECT_EQ(reply.at("error").at("message"), "ID not found");
}

TEST(ControlProtocol, InvalidUtf8InReplyIsReplacedNotThrown) {
    std::string reply;
    ASSERT_NO_THROW(reply = make_ok_reply(1, {{"text", std::string("bad \xff\xfe byte")}}));
    EXPECT_NE(reply.find("\xEF\xBF\xBD"), std::string::npos);  // U+FFFD
}

TEST(ControlProtocol, StringArgumentIsReturned) {
    auto parsed = std::get<ControlRequest>(parse_request_line(R"({"cmd":"x","peer":"abc"})"));
    auto peer = string_argument(parsed, "peer");
    ASSERT_TRUE(std::holds_alternative<std::string>(peer));
    EXPECT_EQ(std::get<std::string>(peer), "abc");
}

TEST(ControlProtocol, MissingOrWrongTypeArgumentIsBadArgument) {
    auto parsed = std::get<ControlRequest>(parse_request_line(R"({"id":3,"cmd":"x","peer":12})"));
    for (const char* name : {"peer", "text"}) {
        auto argument = string_argument(parsed, name);
        ASSERT_TRUE(std::holds_alternative<ControlError>(argument));
        const auto& error = std::get<ControlError>(argument);
        EXPECT_EQ(error.code, error_code::bad_argument);
        EXPECT_NE(error.message.find(name), std::string::npos);
        EXPECT_EQ(error.id, 3);
    }
}

}  // namespace
}  // namespace keyhole::node
