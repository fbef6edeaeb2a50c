// fast_scan_test.cpp — specifies that the hot-path scanner changes nothing:
// parse_line (scanner, then nlohmann) answers exactly as parse_line_reference
// (nlohmann alone) on the common shapes and on every near miss, and that
// numbers beyond double's range are JSON (so "Malformed", not "Could not parse").
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "command_parser.hpp"
#include "protocol.hpp"

namespace {

// A printable form of a parse result, for comparing and for failure messages.
std::string describe(const memq::ParseResult& result) {
    if (const auto* error = std::get_if<memq::LineError>(&result)) return "error: " + std::string(reason_text(*error));
    const auto& command = std::get<memq::Command>(result);
    if (const auto* send = std::get_if<memq::Send>(&command)) {
        return "send topic=[" + send->topic + "] msg=[" + send->msg + "] delivery=" +
               (send->delivery == memq::Delivery::one ? "one" : "all") +
               " cache=" + (send->cache ? (*send->cache ? "true" : "false") : "absent");
    }
    if (const auto* subscribe = std::get_if<memq::Subscribe>(&command)) {
        return "subscribe topic=[" + subscribe->topic + "] last_seen=" + std::to_string(subscribe->last_seen) +
               " cache=" + (subscribe->cache ? "true" : "false");
    }
    if (const auto* unsubscribe = std::get_if<memq::Unsubscribe>(&command)) {
        return "unsubscribe topic=[" + unsubscribe->topic + "]";
    }
    return "quit";
}

void expect_same_as_reference(const std::string& line) {
    EXPECT_EQ(describe(memq::parse_line(line)), describe(memq::parse_line_reference(line))) << "line: " << line;
}

const std::vector<std::string> kAcceptedShapes = {
    R"({"command": "send", "topic": "t", "msg": "hello", "delivery": "all"})",
    R"({"command":"send","topic":"t","msg":"","delivery":"one","cache":false})",
    R"({ "delivery" : "all" , "msg" : "m" , "topic" : "t" , "command" : "send" , "cache" : true })",
    "{\t\"command\":\r\n\"subscribe\",\"topic\":\"t\"}",
    R"({"command": "subscribe", "topic": "t", "last_seen": 41, "cache": true})",
    R"({"command": "subscribe", "topic": "t", "last_seen": -1})",
    R"({"command": "subscribe", "topic": "t", "last_seen": -0})",
    R"({"command": "subscribe", "topic": "t", "last_seen": 9223372036854775807})",
    R"({"command": "subscribe", "topic": "t", "last_seen": -9223372036854775808})",
    R"({"command": "unsubscribe", "topic": "ünïcødé ✓ 𝄞"})",
    R"({"command": "send", "topic": "q\"uo\\te\/d", "msg": "a\nb\tc\rd\be\ff", "delivery": "all"})",
    R"({"command": "send", "topic": "t", "topic": "u", "msg": "dup", "delivery": "all"})",
    R"({"command": "send", "topic": 1, "topic": "u", "msg": "dup", "delivery": "all"})",
};

const std::vector<std::string> kNearMisses = {
    R"({"command": "send", "topic": "t", "msg": "m", "delivery": "al"})",
    R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all",})",
    R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all"} x)",
    R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all"}})",
    R"({"command": "send", "topic": "t", "msg": "m" "delivery": "all"})",
    R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all")",
    R"({"command": "send", "topic": "t", "msg": "\u00e9\ud834\udd1e", "delivery": "all"})",
    R"({"command": "send", "topic": "t", "msg": "\x", "delivery": "all"})",
    R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "extra": 1})",
    R"({"command": "send", "topic": "t", "msg": null, "delivery": "all"})",
    R"({"command": "send", "topic": "t", "msg": ["m"], "delivery": "all"})",
    R"({"command": "subscribe", "topic": "t", "last_seen": 01})",
    R"({"command": "subscribe", "topic": "t", "last_seen": 1.0})",
    R"({"command": "subscribe", "topic": "t", "last_seen": 1e2})",
    R"({"command": "subscribe", "topic": "t", "last_seen": -})",
    R"({"command": "subscribe", "topic": "t", "last_seen": 9223372036854775808})",
    R"({"command": "subscribe", "topic": "t", "last_seen": -9223372036854775809})",
    R"({"command": "subscribe", "topic": "t", "last_seen": 18446744073709551616})",
    R"({"command": "subscribe", "topic": "t", "cache": tru})",
    R"({"command": "subscribe", "topic": "t", "cache": truex})",
    R"({"command": "subscribe", "topic": "t", "cache": True})",
    R"({"command": "subscribe", "topic": "t"]})",
    R"({"command": "subscribe", "topic": "t", "cache": NaN})",
    "{\"command\": \"subscribe\", \"topic\": \"a\tb\"}",
    "{\"command\":\f\"subscribe\", \"topic\": \"t\"}",
    R"({})",
    R"({"command"})",
    R"(["command", "subscribe"])",
    R"("subscribe")",
    R"({'command': 'subscribe', 'topic': 't'})",
};

TEST(FastScan, accepts_the_common_shapes_exactly_as_the_reference_parser) {
    for (const std::string& line : kAcceptedShapes) expect_same_as_reference(line);
}

TEST(FastScan, answers_every_near_miss_exactly_as_the_reference_parser) {
    for (const std::string& line : kNearMisses) expect_same_as_reference(line);
}

TEST(FastScan, decodes_the_two_character_escapes) {
    const auto result = memq::parse_line(R"({"command": "send", "topic": "a\"b\\c\/d", "msg": "\n\t", "delivery": "all"})");
    const auto& send = std::get<memq::Send>(std::get<memq::Command>(result));
    EXPECT_EQ(send.topic, "a\"b\\c/d");
    EXPECT_EQ(send.msg, "\n\t");
}

TEST(FastScan, every_prefix_of_a_valid_command_is_answered_as_the_reference_does) {
    const std::string line = R"({"command": "send", "topic": "t", "msg": "m\"x", "delivery": "one", "cache": false})";
    for (std::size_t length = 1; length <= line.size(); ++length) expect_same_as_reference(line.substr(0, length));
}

TEST(NumberOverflow, a_float_beyond_double_range_is_json_so_the_line_is_malformed) {
    EXPECT_EQ(describe(memq::parse_line("[1e400]")), "error: Malformed json message");
    EXPECT_EQ(describe(memq::parse_line("[-1E+400]")), "error: Malformed json message");
    EXPECT_EQ(describe(memq::parse_line("[0.5e400]")), "error: Malformed json message");
}

TEST(NumberOverflow, an_integer_of_hundreds_of_digits_is_json_so_the_line_is_malformed) {
    EXPECT_EQ(describe(memq::parse_line("[1" + std::string(400, '0') + "]")), "error: Malformed json message");
}

TEST(NumberOverflow, an_overflowing_last_seen_or_cache_makes_the_command_malformed) {
    EXPECT_EQ(describe(memq::parse_line(R"({"command": "subscribe", "topic": "t", "last_seen": 1e400})")),
              "error: Malformed json message");
    EXPECT_EQ(describe(memq::parse_line(R"({"command": "subscribe", "topic": "t", "cache": -1e400})")),
              "error: Malformed json message");
}

TEST(NumberOverflow, invalid_json_around_an_overflowing_number_is_still_invalid) {
    for (const std::string line : {"[1e400 x]", "[01e400]", "[1.e400]", "[1e400,]", "{\"a\": 1e400"}) {
        EXPECT_EQ(describe(memq::parse_line(line)), "error: Could not parse json") << line;
    }
}

TEST(NumberOverflow, an_overflowing_number_run_into_more_number_characters_is_not_json) {
    for (const std::string line : {"[1e400e5]", "[1e4001.5]", "[1e400.5]", "[1e400+1]", "[1e400-1]", "[1e400E2]"}) {
        EXPECT_EQ(describe(memq::parse_line(line)), "error: Could not parse json") << line;
    }
}

TEST(NulByte, a_nul_byte_after_a_valid_command_makes_the_line_unparseable) {
    const std::string line = std::string(R"({"command": "subscribe", "topic": "t"})") + '\0' + "junk";
    EXPECT_EQ(describe(memq::parse_line(line)), "error: Could not parse json");
    EXPECT_EQ(describe(memq::parse_line_reference(line)), "error: Could not parse json");
}

TEST(NulByte, a_raw_nul_byte_inside_a_string_makes_the_line_unparseable) {
    const std::string line = std::string(R"({"command": "subscribe", "topic": "t)") + '\0' + "\"}";
    EXPECT_EQ(describe(memq::parse_line(line)), "error: Could not parse json");
}

TEST(ByteOrderMark, a_leading_utf8_byte_order_mark_makes_the_line_unparseable) {
    const std::string line = "\xEF\xBB\xBF" R"({"command": "subscribe", "topic": "t"})";
    EXPECT_EQ(describe(memq::parse_line(line)), "error: Could not parse json");
    EXPECT_EQ(describe(memq::parse_line_reference(line)), "error: Could not parse json");
}

TEST(NumberOverflow, strings_that_look_like_numbers_are_left_alone) {
    const auto result =
        memq::parse_line(R"({"command": "send", "topic": "1e400", "msg": "9\"1e400", "delivery": "all", "cache": 1e400})");
    EXPECT_EQ(describe(result), "error: Malformed json message");
    const auto valid = memq::parse_line(R"({"command": "send", "topic": "1e400", "msg": "2e999", "delivery": "all"})");
    EXPECT_EQ(describe(valid), "send topic=[1e400] msg=[2e999] delivery=all cache=absent");
}

}  // namespace
