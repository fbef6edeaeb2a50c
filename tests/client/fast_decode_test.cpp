// fast_decode_test.cpp — specifications of the message fast path: what it takes, and what it leaves to the full parser.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fast_decode.hpp"

namespace memq::detail {
namespace {

std::optional<Message> decode(std::string_view line) {
    Message message;
    if (!fast_decode_message(line, message)) return std::nullopt;
    return message;
}

TEST(FastDecode, TakesTheBrokersMessageShape) {
    const auto message =
        decode(R"({"command": "send", "topic": "t", "msg": "hello", "delivery": "one", "cache": false, "index": 42})");
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->topic, "t");
    EXPECT_EQ(message->msg, "hello");
    EXPECT_EQ(message->delivery, Delivery::one);
    EXPECT_EQ(message->cache, std::optional<bool>(false));
    EXPECT_EQ(message->index, 42);
}

TEST(FastDecode, TakesKeysInAnyOrderAndAnySpacing) {
    const auto message = decode(R"({ "index":7,"delivery":"all" ,"msg":"","topic":"x","command":"send" })");
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->index, 7);
    EXPECT_EQ(message->msg, "");
    EXPECT_FALSE(message->cache.has_value());
}

TEST(FastDecode, DecodesEveryEscapeLikeTheFullParser) {
    const std::string line =
        R"({"command": "send", "topic": "\u00e9\ud83d\ude00", "msg": "\"\\\/\b\f\n\r\t\u0001", "delivery": "all", "index": 0})";
    const auto message = decode(line);
    ASSERT_TRUE(message.has_value());
    const auto reference = nlohmann::json::parse(line);
    EXPECT_EQ(message->topic, reference["topic"].get<std::string>());
    EXPECT_EQ(message->msg, reference["msg"].get<std::string>());
}

TEST(FastDecode, TakesRawUtf8Text) {
    const auto message = decode("{\"command\": \"send\", \"topic\": \"caf\xc3\xa9\", \"msg\": \"\xf0\x9f\x98\x80\", "
                                "\"delivery\": \"all\", \"index\": 1}");
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->topic, "caf\xc3\xa9");
}

TEST(FastDecode, IgnoresExtraScalarFields) {
    EXPECT_TRUE(decode(R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "index": 0, "x": true})"));
}

TEST(FastDecode, LeavesEverythingUnusualToTheFullParser) {
    for (const std::string_view line : {
             R"({"success": true})",
             R"({"command": "subscribe", "topic": "t"})",
             R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all"})",               // no index
             R"({"command": "send", "topic": "t", "msg": "m", "delivery": "some", "index": 0})",  // bad delivery
             R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "index": 1.0})",
             R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "index": 01})",
             R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "index": 99999999999999999999})",
             R"({"command": "send", "topic": "t", "msg": null, "delivery": "all", "index": 0})",
             R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "index": 0, "x": [1]})",
             R"({"command": "send", "topic": "\udc00", "msg": "m", "delivery": "all", "index": 0})",  // lone surrogate
             R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "index": 0} trailing)",
             R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "index": 0,})",
             "{\"command\": \"send\", \"topic\": \"\xff\", \"msg\": \"m\", \"delivery\": \"all\", \"index\": 0}",
             "{\"command\": \"send\", \"topic\": \"a\tb\", \"msg\": \"m\", \"delivery\": \"all\", \"index\": 0}",
             R"([1, 2])",
             "",
         }) {
        EXPECT_FALSE(decode(line).has_value()) << line;
    }
}

}  // namespace
}  // namespace memq::detail
