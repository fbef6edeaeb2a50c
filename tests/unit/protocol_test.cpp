// protocol_test.cpp — specifies the line codec (protocol.hpp) against
// PROTOCOL.md: strict UTF-8, strict JSON, the three command templates, the
// error reasons and the order of their checks, trim_line, and the encoders
// (their frames, and the client's lines, must parse back with every field
// intact).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "../client_lines.hpp"
#include "command_parser.hpp"
#include "protocol.hpp"

namespace {

using nlohmann::json;
using memq::Delivery;
using memq::LineError;

// ---------------------------------------------------------------------------
// Helpers: every parse outcome as one readable string, so a failure says what
// the codec did instead of what it did not do.

std::string as_json_string(std::string_view text) { return json(std::string(text)).dump(); }

std::string describe(const memq::ParseResult& result) {
    if (const auto* error = std::get_if<LineError>(&result)) {
        switch (*error) {
            case LineError::bad_utf8: return "error:bad_utf8";
            case LineError::bad_json: return "error:bad_json";
            case LineError::malformed: return "error:malformed";
            case LineError::line_too_long: return "error:line_too_long";
            case LineError::internal: return "error:internal";
            case LineError::topic_too_long: return "error:topic_too_long";
            case LineError::too_many_subscriptions: return "error:too_many_subscriptions";
            case LineError::too_many_topics: return "error:too_many_topics";
            case LineError::storage_unavailable: return "error:storage_unavailable";
        }
        return "error:?";
    }
    const memq::Command& command = std::get<memq::Command>(result);
    if (const auto* subscribe = std::get_if<memq::Subscribe>(&command)) {
        return "subscribe topic=" + as_json_string(subscribe->topic) + " last_seen=" + std::to_string(subscribe->last_seen) +
               " cache=" + (subscribe->cache ? "true" : "false");
    }
    if (const auto* unsubscribe = std::get_if<memq::Unsubscribe>(&command)) {
        return "unsubscribe topic=" + as_json_string(unsubscribe->topic);
    }
    if (const auto* send = std::get_if<memq::Send>(&command)) {
        std::string text = "send topic=" + as_json_string(send->topic) + " msg=" + as_json_string(send->msg) +
                           " delivery=" + (send->delivery == Delivery::all ? "all" : "one");
        if (send->cache) text += std::string(" cache=") + (*send->cache ? "true" : "false");
        return text;
    }
    if (std::holds_alternative<memq::Hello>(command)) return "hello";
    if (const auto* holes = std::get_if<memq::Holes>(&command)) {
        return "holes topic=" + as_json_string(holes->topic) + " after=" + std::to_string(holes->after);
    }
    return "quit";
}

// parse_line's verdict; it must also be the verdict of the reference parser
// (nlohmann alone), whatever shortcut parse_line takes.
std::string outcome(std::string_view line) {
    const std::string fast = describe(memq::parse_line(line));
    const std::string reference = describe(memq::parse_line_reference(line));
    EXPECT_EQ(fast, reference) << "parse_line and parse_line_reference disagree on: " << line;
    return fast;
}

const std::string bad_utf8 = "error:bad_utf8";
const std::string bad_json = "error:bad_json";
const std::string malformed = "error:malformed";

// The base objects of the three templates, all keys present.
json full_subscribe() { return {{"command", "subscribe"}, {"topic", "t"}, {"last_seen", 3}, {"cache", false}}; }
json full_unsubscribe() { return {{"command", "unsubscribe"}, {"topic", "t"}}; }
json full_send() {
    return {{"command", "send"}, {"topic", "t"}, {"msg", "m"}, {"delivery", "one"}, {"cache", true}};
}

// One value of every JSON type (integer and float separately).
std::vector<json> values_of_every_type() {
    return {json(nullptr), json(true), json(false),         json(7),
            json(-1),      json(2.5),  json("text"),        json::array({"a"}),
            json::array(), json::object(), json{{"k", "v"}}};
}

bool same_json_type(const json& a, const json& b) {
    if (a.is_boolean() || b.is_boolean()) return a.is_boolean() && b.is_boolean();
    if (a.is_number_integer() || b.is_number_integer()) return a.is_number_integer() && b.is_number_integer();
    return a.type() == b.type();
}

// ---------------------------------------------------------------------------
// Error reasons and the error frame.

TEST(ReasonText, each_error_has_its_exact_reason) {
    EXPECT_EQ(memq::reason_text(LineError::bad_utf8), "Could not decode input as UTF-8");
    EXPECT_EQ(memq::reason_text(LineError::bad_json), "Could not parse json");
    EXPECT_EQ(memq::reason_text(LineError::malformed), "Malformed json message");
    EXPECT_EQ(memq::reason_text(LineError::line_too_long), "Line too long");
    EXPECT_EQ(memq::reason_text(LineError::internal), "Internal exception");
    EXPECT_EQ(memq::reason_text(LineError::topic_too_long), "Topic too long");
    EXPECT_EQ(memq::reason_text(LineError::too_many_subscriptions), "Too many subscriptions");
    EXPECT_EQ(memq::reason_text(LineError::too_many_topics), "Too many topics");
    EXPECT_EQ(memq::reason_text(LineError::storage_unavailable), "Storage unavailable");
}

TEST(EncodeError, is_a_failure_object_with_the_reason_ending_in_crlf) {
    for (const LineError error : {LineError::bad_utf8, LineError::bad_json, LineError::malformed,
                                  LineError::line_too_long, LineError::internal, LineError::topic_too_long,
                                  LineError::too_many_subscriptions, LineError::too_many_topics,
                                  LineError::storage_unavailable}) {
        const std::string frame = memq::encode_error(error);
        ASSERT_GE(frame.size(), 2u);
        EXPECT_EQ(frame.substr(frame.size() - 2), "\r\n");
        EXPECT_EQ(frame.find('\n'), frame.size() - 1);
        const json expected = {{"success", false}, {"reason", std::string(memq::reason_text(error))}};
        EXPECT_EQ(json::parse(frame), expected);
    }
}

TEST(EncodeAck, is_success_true_ending_in_crlf) {
    const std::string frame = memq::encode_ack();
    ASSERT_GE(frame.size(), 2u);
    EXPECT_EQ(frame.substr(frame.size() - 2), "\r\n");
    EXPECT_EQ(frame.find('\n'), frame.size() - 1);
    EXPECT_EQ(json::parse(frame), (json{{"success", true}}));
}

// ---------------------------------------------------------------------------
// Valid commands.

TEST(ParseLine, quit_is_the_quit_command) { EXPECT_EQ(outcome("quit"), "quit"); }

// ---------------------------------------------------------------------------
// hello, the memq extension: "command" and no other key.

TEST(ParseLine, hello_is_the_hello_command) {
    EXPECT_EQ(outcome(R"({"command": "hello"})"), "hello");
    EXPECT_EQ(outcome(R"( {"command":"hello"} )"), "hello");
}

TEST(ParseLine, hello_with_any_other_key_is_malformed) {
    EXPECT_EQ(outcome(R"({"command": "hello", "topic": "t"})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "hello", "last_seen": 1})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "hello", "cache": true})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "hello", "version": 1})"), malformed);
}

TEST(ParseLine, hello_in_another_case_is_an_unknown_command) {
    EXPECT_EQ(outcome(R"({"command": "Hello"})"), malformed);
    EXPECT_EQ(outcome(R"("hello")"), malformed);
    EXPECT_EQ(outcome("hello"), bad_json);
}

TEST(ParseLine, holes_is_the_holes_command_with_its_topic_and_after) {
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": 40})"), R"(holes topic="t" after=40)");
    EXPECT_EQ(outcome(R"({"after": -1, "topic": "t", "command": "holes"})"), R"(holes topic="t" after=-1)");
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": -9223372036854775808})"),
              R"(holes topic="t" after=-9223372036854775808)");
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": 9223372036854775807})"),
              R"(holes topic="t" after=9223372036854775807)");
}

TEST(ParseLine, holes_needs_exactly_command_topic_and_an_integer_after) {
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t"})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "after": 1})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": 1, "cache": true})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": 1, "last_seen": 1})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": 1, "msg": "m"})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": 1, "other": 1})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": 1.5})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": "1"})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": true})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": "t", "after": 9223372036854775808})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "holes", "topic": 1, "after": 1})"), malformed);
}

TEST(ParseLine, after_belongs_to_no_other_template) {
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "after": 1})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": "t", "after": 1})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "after": 1})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "hello", "after": 1})"), malformed);
}

TEST(EncodeHello, names_memqd_and_its_incarnation_in_sixteen_hex_digits) {
    EXPECT_EQ(memq::encode_hello(0x1234abcdULL),
              "{\"success\": true, \"broker\": \"memqd\", \"incarnation\": \"000000001234abcd\"}\r\n");
    EXPECT_EQ(memq::incarnation_text(~0ULL), "ffffffffffffffff");
    EXPECT_EQ(memq::incarnation_text(0), "0000000000000000");
}

TEST(ParseLine, quit_in_another_case_or_as_json_is_not_quit) {
    EXPECT_EQ(outcome("QUIT"), bad_json);
    EXPECT_EQ(outcome("quit!"), bad_json);
    EXPECT_EQ(outcome(R"("quit")"), malformed);
    EXPECT_EQ(outcome(R"({"command": "quit"})"), malformed);
}

TEST(ParseLine, minimal_subscribe_defaults_last_seen_to_minus_one_and_cache_to_true) {
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "orders"})"),
              R"(subscribe topic="orders" last_seen=-1 cache=true)");
}

TEST(ParseLine, subscribe_with_every_optional_key) {
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": 41, "cache": false})"),
              R"(subscribe topic="t" last_seen=41 cache=false)");
    EXPECT_EQ(outcome(R"({"cache": true, "last_seen": -7, "topic": "t", "command": "subscribe"})"),
              R"(subscribe topic="t" last_seen=-7 cache=true)");
}

TEST(ParseLine, unsubscribe) {
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": "t"})"), R"(unsubscribe topic="t")");
}

TEST(ParseLine, send_all_and_send_one) {
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "hi", "delivery": "all"})"),
              R"(send topic="t" msg="hi" delivery=all)");
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "hi", "delivery": "one"})"),
              R"(send topic="t" msg="hi" delivery=one)");
}

TEST(ParseLine, send_keeps_cache_only_when_given) {
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "cache": false})"),
              R"(send topic="t" msg="m" delivery=all cache=false)");
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "m", "delivery": "one", "cache": true})"),
              R"(send topic="t" msg="m" delivery=one cache=true)");
}

TEST(ParseLine, empty_msg_is_allowed) {
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "", "delivery": "all"})"),
              R"(send topic="t" msg="" delivery=all)");
}

TEST(ParseLine, whitespace_inside_the_json_is_insignificant) {
    EXPECT_EQ(outcome("{ \"command\"\t:\"subscribe\" ,\r\n \"topic\" : \"t\" }"),
              R"(subscribe topic="t" last_seen=-1 cache=true)");
}

TEST(ParseLine, string_escapes_are_decoded) {
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": "a\"b\\c\/d\n\t\u00e9\ud83d\ude00"})"),
              "unsubscribe topic=" + as_json_string("a\"b\\c/d\n\t\xc3\xa9\xf0\x9f\x98\x80"));
}

TEST(ParseLine, every_two_character_escape_is_decoded) {
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": "[\"\\\/\b\f\n\r\t]"})"),
              "unsubscribe topic=" + as_json_string("[\"\\/\b\f\n\r\t]"));
}

TEST(ParseLine, unicode_escapes_decode_to_utf8_in_either_case_of_hex) {
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": "\u00E9\u00e9\u20AC\uD83D\uDE00\u0041"})"),
              "unsubscribe topic=" + as_json_string("\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" "A"));
}

TEST(ParseLine, lone_or_mismatched_surrogate_escapes_are_not_json) {
    // Accepted, they would put invalid UTF-8 into a topic or message and so
    // into every frame that carries it. PROTOCOL.md does not name the reason;
    // memq reads them as invalid JSON, as nlohmann does (RFC 8259 section 8.2).
    for (const std::string escape : {"\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud800x", "\\ud800\\u0041",
                                     "\\udc00\\ud800", "\\ud800\\ud800", "\\ud83d"}) {
        const std::string verdict = outcome(R"({"command": "unsubscribe", "topic": ")" + escape + R"("})");
        EXPECT_EQ(verdict, bad_json) << escape;
    }
}

TEST(ParseLine, escapes_in_keys_are_decoded_before_matching_the_template) {
    EXPECT_EQ(outcome(R"({"comm\u0061nd": "unsubscribe", "\u0074opic": "t"})"), R"(unsubscribe topic="t")");
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "top\nic": "t"})"), malformed);
}

TEST(ParseLine, escaped_nul_is_kept_in_the_string) {
    const auto result = memq::parse_line(R"({"command": "unsubscribe", "topic": "a\u0000b"})");
    ASSERT_EQ(describe(result), "unsubscribe topic=" + as_json_string(std::string("a\0b", 3)));
    const auto& unsubscribe = std::get<memq::Unsubscribe>(std::get<memq::Command>(result));
    EXPECT_EQ(unsubscribe.topic.size(), 3u);
}

TEST(ParseLine, raw_non_ascii_utf8_is_kept_as_is) {
    EXPECT_EQ(outcome("{\"command\": \"send\", \"topic\": \"caf\xc3\xa9\", \"msg\": \"\xe2\x82\xac \xf0\x9f\x98\x80\", "
                      "\"delivery\": \"all\"}"),
              "send topic=" + as_json_string("caf\xc3\xa9") + " msg=" + as_json_string("\xe2\x82\xac \xf0\x9f\x98\x80") +
                  " delivery=all");
}

TEST(ParseLine, last_seen_accepts_the_whole_int64_range) {
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": 9223372036854775807})"),
              R"(subscribe topic="t" last_seen=9223372036854775807 cache=true)");
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": -9223372036854775808})"),
              R"(subscribe topic="t" last_seen=-9223372036854775808 cache=true)");
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": 0})"),
              R"(subscribe topic="t" last_seen=0 cache=true)");
}

// ---------------------------------------------------------------------------
// Not valid UTF-8: "Could not decode input as UTF-8".

TEST(ParseLine, invalid_byte_in_the_middle_of_a_valid_command_is_a_utf8_error) {
    EXPECT_EQ(outcome("{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"a\xff" "b\", \"delivery\": \"all\"}"),
              bad_utf8);
    EXPECT_EQ(outcome("{\"command\": \"subscribe\", \"topic\": \"\xc0\x80\"}"), bad_utf8);
}

TEST(ParseLine, invalid_utf8_outside_strings_is_a_utf8_error) {
    EXPECT_EQ(outcome("{\"command\": \"unsubscribe\", \"topic\": \"t\"}\x80"), bad_utf8);
    EXPECT_EQ(outcome("\xfe"), bad_utf8);
}

TEST(ParseLine, utf8_is_checked_before_json_syntax) {
    EXPECT_EQ(outcome("{\"command\": \"subscribe\", \"topic\": \"\xff\""), bad_utf8);  // also unterminated
    EXPECT_EQ(outcome("not json \xed\xa0\x80"), bad_utf8);
    EXPECT_EQ(outcome("{\xe2\x82"), bad_utf8);
}

TEST(ParseLine, utf8_is_checked_before_the_template) {
    EXPECT_EQ(outcome("\"\xff\""), bad_utf8);                       // valid JSON shape, not an object
    EXPECT_EQ(outcome("[\"\xc1\xbf\"]"), bad_utf8);                  // an array
    EXPECT_EQ(outcome("{\"command\": \"\xf5\x80\x80\x80\"}"), bad_utf8);  // an unknown command
}

// ---------------------------------------------------------------------------
// Not valid JSON: "Could not parse json".

TEST(ParseLine, text_that_is_not_json_is_a_parse_error) {
    for (const std::string line : {"hello", "{", "}", "{\"command\": \"subscribe\", \"topic\": \"t\"",
                                   "[1, 2", "\"unterminated", "subscribe t", "{command: \"subscribe\"}"}) {
        EXPECT_EQ(outcome(line), bad_json) << line;
    }
}

TEST(ParseLine, a_line_cut_short_anywhere_is_a_parse_error_and_reads_no_byte_past_its_end) {
    // Each prefix is copied to a heap buffer of exactly its size, so that a
    // read past the end of the view is caught by AddressSanitizer builds.
    const std::string full = R"({"command": "send", "topic": "t\u00e9", "msg": "m\n", "delivery": "all", "cache": true})";
    ASSERT_EQ(outcome(full), "send topic=" + as_json_string("t\xc3\xa9") + " msg=" + as_json_string("m\n") +
                                 " delivery=all cache=true");
    for (std::size_t length = 1; length < full.size(); ++length) {
        const std::unique_ptr<char[]> buffer(new char[length]);
        std::memcpy(buffer.get(), full.data(), length);
        const std::string_view prefix(buffer.get(), length);
        if (memq::trim_line(prefix).size() != length) continue;  // parse_line takes trimmed lines
        EXPECT_EQ(outcome(prefix), bad_json) << "prefix of length " << length << ": " << prefix;
    }
}

TEST(ParseLine, json_syntax_is_checked_before_the_template) {
    // Missing topic (malformed) and missing brace (not json): the json error wins.
    EXPECT_EQ(outcome(R"({"command": "subscribe")"), bad_json);
    EXPECT_EQ(outcome(R"({"command": "bogus", "x": 1,})"), bad_json);
}

TEST(ParseLine, nan_and_infinity_are_not_json) {
    for (const std::string value : {"NaN", "Infinity", "-Infinity", "nan", "inf"}) {
        EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": )" + value + "}"), bad_json)
            << value;
        EXPECT_EQ(outcome(value), bad_json) << value;
    }
}

TEST(ParseLine, trailing_garbage_after_the_object_is_a_parse_error) {
    const std::string command = R"({"command": "unsubscribe", "topic": "t"})";
    for (const std::string& tail : std::vector<std::string>{" x", "}", "{}", ",", " " + command, command, " // comment", " 1"}) {
        EXPECT_EQ(outcome(command + tail), bad_json) << tail;
    }
}

TEST(ParseLine, relaxed_json_extensions_are_parse_errors) {
    for (const std::string line : {
             R"({"command": "unsubscribe", "topic": "t",})",             // trailing comma
             R"({'command': 'unsubscribe', 'topic': 't'})",              // single quotes
             R"({"command": "unsubscribe", /* c */ "topic": "t"})",      // comment
             R"(/* c */ {"command": "unsubscribe", "topic": "t"})",      // leading comment
             R"({"command": "subscribe", "topic": "t", "last_seen": 01})",  // leading zero
             R"({"command": "subscribe", "topic": "t", "last_seen": +1})",  // plus sign
             R"({"command": "subscribe", "topic": "t", "last_seen": .5})",  // no integer part
             R"({"command": "subscribe", "topic": "t", "last_seen": 1.})",  // no fraction digits
             R"({"command": "subscribe", "topic": "t", "last_seen": 0x10})",  // hex
             R"({"command": "unsubscribe", "topic": "a\x41"})",          // invalid escape
             R"({"command": "unsubscribe", "topic": "\u12"})",           // short unicode escape
             R"({"command": "subscribe", "topic": "t", "cache": True})",  // not a literal
             R"({"command": "subscribe", "topic": "t", "cache": tru})",   // truncated literal
             R"({"command": "subscribe", "topic": "t", "cache": truex})",  // literal with a tail
             R"({"command": "subscribe", "topic": "t", "last_seen": 12a})",  // number with a tail
             R"({"command": "subscribe", "topic": "t", "last_seen": -})",  // a lone minus
             R"({"command": "subscribe", "topic": "t", "last_seen": --1})",  // two minuses
             R"({"command": "subscribe" "topic": "t"})",                 // missing comma
             R"({"command" "subscribe", "topic": "t"})",                 // missing colon
             R"({"command": "subscribe", "topic": "t"]})",               // stray bracket
             "{\"command\":\f\"unsubscribe\", \"topic\": \"t\"}",      // form feed is not JSON whitespace
             "{\"command\": \"unsubscribe\",\v\"topic\": \"t\"}",      // nor is vertical tab
             "{\"command\": \"unsubscribe\", \"topic\": \"t\"\xc2\xa0}",  // nor is U+00A0
         }) {
        EXPECT_EQ(outcome(line), bad_json) << line;
    }
}

TEST(ParseLine, unescaped_control_characters_inside_strings_are_parse_errors) {
    for (const char control : {'\x01', '\t', '\x1f', '\x00'}) {
        std::string line = R"({"command": "unsubscribe", "topic": "a_b"})";
        line[line.find('_')] = control;
        EXPECT_EQ(outcome(line), bad_json) << "control " << static_cast<int>(control);
    }
}

// ---------------------------------------------------------------------------
// JSON, but not a command: "Malformed json message".

TEST(ParseLine, deeply_nested_json_is_refused_without_crashing) {
    const std::string nested = std::string(100000, '[') + std::string(100000, ']');
    const std::string verdict = outcome(R"({"command": "unsubscribe", "topic": "t", "x": )" + nested + "}");
    EXPECT_TRUE(verdict == malformed || verdict == bad_json) << verdict;
    const std::string top = outcome(nested);
    EXPECT_TRUE(top == malformed || top == bad_json) << top;
}

TEST(ParseLine, nested_values_for_known_keys_are_malformed) {
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": {"topic": "t"}})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": ["t"]})"), malformed);
    EXPECT_EQ(outcome(R"({"command": {"command": "unsubscribe"}, "topic": "t"})"), malformed);
    // Keys inside a nested value are not keys of the command.
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": "t", "x": {"command": "send"}})"), malformed);
}

TEST(ParseLine, json_that_is_not_an_object_is_malformed) {
    for (const std::string line : {"[]", "[{\"command\": \"unsubscribe\", \"topic\": \"t\"}]", "1", "-2.5",
                                   "\"subscribe\"", "null", "true", "false", "{}"}) {
        EXPECT_EQ(outcome(line), malformed) << line;
    }
}

TEST(ParseLine, unknown_command_is_malformed) {
    for (const std::string name : {"publish", "Subscribe", "SEND", "", " send", "subscribe ", "sub"}) {
        EXPECT_EQ(outcome(json{{"command", name}, {"topic", "t"}}.dump()), malformed) << name;
        EXPECT_EQ(outcome(json{{"command", name}, {"topic", "t"}, {"msg", "m"}, {"delivery", "all"}}.dump()),
                  malformed)
            << name;
    }
}

TEST(ParseLine, command_that_is_not_a_string_is_malformed) {
    for (const json& value : values_of_every_type()) {
        if (value.is_string()) continue;
        json object = full_unsubscribe();
        object["command"] = value;
        EXPECT_EQ(outcome(object.dump()), malformed) << object.dump();
    }
    EXPECT_EQ(outcome(R"({"topic": "t"})"), malformed);
}

TEST(ParseLine, missing_required_key_is_malformed) {
    const std::vector<std::pair<json, std::vector<std::string>>> templates = {
        {full_subscribe(), {"command", "topic"}},
        {full_unsubscribe(), {"command", "topic"}},
        {full_send(), {"command", "topic", "msg", "delivery"}},
    };
    for (const auto& [base, required] : templates) {
        for (const std::string& key : required) {
            json object = base;
            object.erase(key);
            EXPECT_EQ(outcome(object.dump()), malformed) << object.dump();
        }
    }
}

TEST(ParseLine, every_optional_key_may_be_left_out) {
    json subscribe = full_subscribe();
    subscribe.erase("last_seen");
    EXPECT_EQ(outcome(subscribe.dump()), R"(subscribe topic="t" last_seen=-1 cache=false)");
    subscribe = full_subscribe();
    subscribe.erase("cache");
    EXPECT_EQ(outcome(subscribe.dump()), R"(subscribe topic="t" last_seen=3 cache=true)");
    json send = full_send();
    send.erase("cache");
    EXPECT_EQ(outcome(send.dump()), R"(send topic="t" msg="m" delivery=one)");
}

TEST(ParseLine, extra_key_is_malformed) {
    const std::vector<std::pair<json, std::vector<std::string>>> templates = {
        {full_subscribe(), {"extra", "msg", "delivery", "index", "Topic", ""}},
        {full_unsubscribe(), {"extra", "last_seen", "cache", "msg", "delivery"}},
        {full_send(), {"extra", "last_seen", "index", "success", "reason"}},
    };
    for (const auto& [base, extras] : templates) {
        for (const std::string& key : extras) {
            json object = base;
            object[key] = key == "last_seen" || key == "index" ? json(1) : key == "cache" ? json(true) : json("x");
            EXPECT_EQ(outcome(object.dump()), malformed) << object.dump();
        }
    }
}

TEST(ParseLine, every_wrong_type_for_every_key_is_malformed) {
    // The right type of each key; every value of another type must be refused.
    const std::vector<std::pair<json, std::vector<std::pair<std::string, json>>>> templates = {
        {full_subscribe(), {{"command", "subscribe"}, {"topic", "t"}, {"last_seen", 1}, {"cache", true}}},
        {full_unsubscribe(), {{"command", "unsubscribe"}, {"topic", "t"}}},
        {full_send(), {{"command", "send"}, {"topic", "t"}, {"msg", "m"}, {"delivery", "all"}, {"cache", true}}},
    };
    int checked = 0;
    for (const auto& [base, keys] : templates) {
        for (const auto& [key, right] : keys) {
            for (const json& value : values_of_every_type()) {
                if (same_json_type(value, right)) continue;
                json object = base;
                object[key] = value;
                EXPECT_EQ(outcome(object.dump()), malformed) << object.dump();
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 80);
}

TEST(ParseLine, delivery_other_than_all_or_one_is_malformed) {
    for (const std::string delivery : {"", "ALL", "One", "any", "all ", " one", "a", "o", "both", "none"}) {
        json object = full_send();
        object["delivery"] = delivery;
        EXPECT_EQ(outcome(object.dump()), malformed) << delivery;
    }
}

TEST(ParseLine, last_seen_must_be_a_json_integer) {
    for (const std::string value : {"true", "false", "2.0", "1.5", "-1.0", "1e2", "1E0", "\"2\"", "null", "[2]",
                                    "{\"n\": 2}"}) {
        EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": )" + value + "}"), malformed)
            << value;
    }
}

TEST(ParseLine, last_seen_out_of_int64_range_is_malformed) {
    for (const std::string value : {"9223372036854775808", "-9223372036854775809", "18446744073709551615",
                                    "18446744073709551616", "100000000000000000000000"}) {
        EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": )" + value + "}"), malformed)
            << value;
    }
}

TEST(ParseLine, cache_must_be_a_boolean) {
    for (const std::string value : {"0", "1", "\"true\"", "\"false\"", "null", "[]", "1.0"}) {
        EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "cache": )" + value + "}"), malformed) << value;
        EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "cache": )" + value +
                          "}"),
                  malformed)
            << value;
    }
}

// ---------------------------------------------------------------------------
// Duplicate keys: the last one wins.

TEST(ParseLine, duplicate_key_last_value_wins) {
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "first", "topic": "second"})"),
              R"(subscribe topic="second" last_seen=-1 cache=true)");
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": 1, "last_seen": 9})"),
              R"(subscribe topic="t" last_seen=9 cache=true)");
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "delivery": "one"})"),
              R"(send topic="t" msg="m" delivery=one)");
}

TEST(ParseLine, duplicate_command_key_last_value_chooses_the_template) {
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "command": "unsubscribe"})"), R"(unsubscribe topic="t")");
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": "t", "command": "subscribe"})"),
              R"(subscribe topic="t" last_seen=-1 cache=true)");
}

TEST(ParseLine, bad_first_value_overridden_by_a_good_one_is_accepted) {
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": 5, "topic": "t"})"),
              R"(subscribe topic="t" last_seen=-1 cache=true)");
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": "x", "last_seen": 4})"),
              R"(subscribe topic="t" last_seen=4 cache=true)");
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "m", "delivery": "many", "delivery": "all"})"),
              R"(send topic="t" msg="m" delivery=all)");
    EXPECT_EQ(outcome(R"({"command": 1, "command": "unsubscribe", "topic": "t"})"), R"(unsubscribe topic="t")");
}

TEST(ParseLine, good_first_value_overridden_by_a_bad_one_is_malformed) {
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "topic": 5})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "subscribe", "topic": "t", "last_seen": 4, "last_seen": true})"), malformed);
    EXPECT_EQ(outcome(R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "delivery": "many"})"),
              malformed);
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": "t", "command": null})"), malformed);
}

TEST(ParseLine, a_duplicated_key_counts_once_in_the_template) {
    // Four key occurrences but only the two keys of unsubscribe: not an extra key.
    EXPECT_EQ(outcome(R"({"command": "unsubscribe", "topic": "a", "topic": "b", "command": "unsubscribe"})"),
              R"(unsubscribe topic="b")");
}

// ---------------------------------------------------------------------------
// Strict UTF-8 (RFC 3629).

struct Utf8Case {
    const char* name;
    std::string bytes;
};

std::vector<Utf8Case> invalid_utf8_cases() {
    return {
        {"overlong 2-byte NUL", "\xc0\x80"},
        {"overlong 2-byte '/'", "\xc0\xaf"},
        {"overlong 2-byte U+007F", "\xc1\xbf"},
        {"overlong 3-byte NUL", "\xe0\x80\x80"},
        {"overlong 3-byte U+07FF", "\xe0\x9f\xbf"},
        {"overlong 4-byte NUL", "\xf0\x80\x80\x80"},
        {"overlong 4-byte U+FFFF", "\xf0\x8f\xbf\xbf"},
        {"surrogate U+D800", "\xed\xa0\x80"},
        {"surrogate U+DBFF", "\xed\xaf\xbf"},
        {"surrogate U+DC00", "\xed\xb0\x80"},
        {"surrogate U+DFFF", "\xed\xbf\xbf"},
        {"surrogate pair as CESU-8", "\xed\xa0\xbd\xed\xb8\x80"},
        {"U+110000", "\xf4\x90\x80\x80"},
        {"F5 lead byte", "\xf5\x80\x80\x80"},
        {"F7 lead byte", "\xf7\xbf\xbf\xbf"},
        {"5-byte form", "\xf8\x88\x80\x80\x80"},
        {"6-byte form", "\xfc\x84\x80\x80\x80\x80"},
        {"FE", "\xfe"},
        {"FF", "\xff"},
        {"lone continuation 80", "\x80"},
        {"lone continuation BF", "\xbf"},
        {"continuation after ASCII", "a\x80" "b"},
        {"truncated 2-byte at end", "ab\xc3"},
        {"truncated 3-byte at end", "ab\xe2\x82"},
        {"truncated 4-byte at end (3 of 4)", "ab\xf0\x9f\x98"},
        {"truncated 4-byte at end (1 of 4)", "ab\xf0"},
        {"truncated sequence before ASCII", "\xe2\x82" "a"},
        {"lead byte followed by a lead byte", "\xc3\xc3\xa9"},
        {"too many continuations", "\xc3\xa9\xa9"},
    };
}

std::vector<Utf8Case> valid_utf8_cases() {
    return {
        {"empty", ""},
        {"ASCII", "hello, world"},
        {"NUL byte", std::string("a\0b", 3)},
        {"DEL", "\x7f"},
        {"U+0080", "\xc2\x80"},
        {"U+00E9", "\xc3\xa9"},
        {"U+07FF", "\xdf\xbf"},
        {"U+0800", "\xe0\xa0\x80"},
        {"U+20AC", "\xe2\x82\xac"},
        {"U+D7FF", "\xed\x9f\xbf"},
        {"U+E000", "\xee\x80\x80"},
        {"U+FFFD", "\xef\xbf\xbd"},
        {"U+FFFF", "\xef\xbf\xbf"},
        {"U+10000", "\xf0\x90\x80\x80"},
        {"U+1F600", "\xf0\x9f\x98\x80"},
        {"U+10FFFF", "\xf4\x8f\xbf\xbf"},
        {"mixed", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"},
    };
}

TEST(IsValidUtf8, rejects_every_invalid_form) {
    for (const Utf8Case& c : invalid_utf8_cases()) EXPECT_FALSE(memq::is_valid_utf8(c.bytes)) << c.name;
}

TEST(IsValidUtf8, accepts_every_valid_form_including_four_byte_characters) {
    for (const Utf8Case& c : valid_utf8_cases()) EXPECT_TRUE(memq::is_valid_utf8(c.bytes)) << c.name;
}

TEST(IsValidUtf8, rejects_an_invalid_form_embedded_in_long_valid_text) {
    const std::string valid(1000, 'a');
    for (const Utf8Case& c : invalid_utf8_cases()) {
        EXPECT_FALSE(memq::is_valid_utf8(valid + c.bytes + valid)) << c.name;
    }
}

TEST(IsValidUtf8, accepts_every_code_point_and_rejects_every_surrogate) {
    // Encodes every scalar value by hand (independently of the codec) and checks
    // the verdict: valid unless it is a surrogate.
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x11000 ? 1 : 97)) {
        std::string bytes;
        if (cp < 0x80) {
            bytes += static_cast<char>(cp);
        } else if (cp < 0x800) {
            bytes += static_cast<char>(0xC0 | (cp >> 6));
            bytes += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            bytes += static_cast<char>(0xE0 | (cp >> 12));
            bytes += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            bytes += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            bytes += static_cast<char>(0xF0 | (cp >> 18));
            bytes += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            bytes += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            bytes += static_cast<char>(0x80 | (cp & 0x3F));
        }
        const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        ASSERT_EQ(memq::is_valid_utf8(bytes), !surrogate) << "U+" << std::hex << cp;
    }
}

TEST(ParseLine, every_invalid_utf8_form_inside_a_string_is_a_utf8_error) {
    for (const Utf8Case& c : invalid_utf8_cases()) {
        const std::string line = "{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"" + c.bytes +
                                 "\", \"delivery\": \"all\"}";
        EXPECT_EQ(outcome(line), bad_utf8) << c.name;
    }
}

TEST(ParseLine, truncated_sequence_at_the_very_end_of_the_line_is_a_utf8_error) {
    EXPECT_EQ(outcome("{\"command\": \"unsubscribe\", \"topic\": \"t\"}\xe2\x82"), bad_utf8);
    EXPECT_EQ(outcome("{\"command\": \"unsubscribe\", \"topic\": \"t\"}\xf0\x9f\x98"), bad_utf8);
}

TEST(ParseLine, every_valid_utf8_form_inside_a_string_is_accepted_as_is) {
    for (const Utf8Case& c : valid_utf8_cases()) {
        if (c.bytes.find('\0') != std::string::npos || c.bytes == "\x7f") continue;  // see escaped_nul test
        const std::string line = "{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"" + c.bytes +
                                 "\", \"delivery\": \"all\"}";
        EXPECT_EQ(outcome(line), "send topic=\"t\" msg=" + as_json_string(c.bytes) + " delivery=all") << c.name;
    }
}

TEST(ParseLine, raw_delete_character_inside_a_string_is_valid_json) {
    EXPECT_EQ(outcome("{\"command\": \"unsubscribe\", \"topic\": \"a\x7f" "b\"}"),
              "unsubscribe topic=" + as_json_string("a\x7f" "b"));
}

// ---------------------------------------------------------------------------
// trim_line.

TEST(TrimLine, removes_ascii_whitespace_from_both_ends) {
    EXPECT_EQ(memq::trim_line("  abc \t\r\n"), "abc");
    EXPECT_EQ(memq::trim_line("\f\vabc\v\f"), "abc");
    EXPECT_EQ(memq::trim_line("\r\n\t x"), "x");
    EXPECT_EQ(memq::trim_line("abc"), "abc");
}

TEST(TrimLine, keeps_inner_whitespace) { EXPECT_EQ(memq::trim_line(" a \t b "), "a \t b"); }

TEST(TrimLine, all_whitespace_or_empty_gives_empty) {
    EXPECT_EQ(memq::trim_line(""), "");
    EXPECT_EQ(memq::trim_line(" \t\r\n\f\v"), "");
}

TEST(TrimLine, does_not_trim_non_ascii_or_other_bytes) {
    EXPECT_EQ(memq::trim_line("\xc2\xa0x\xc2\xa0"), "\xc2\xa0x\xc2\xa0");  // U+00A0 NO-BREAK SPACE
    EXPECT_EQ(memq::trim_line(std::string_view("\0x\0", 3)), std::string_view("\0x\0", 3));
    EXPECT_EQ(memq::trim_line("\x1c" "x"), "\x1c" "x");
}

TEST(TrimLine, returns_a_view_into_the_input) {
    const std::string line = "  abc  ";
    const std::string_view trimmed = memq::trim_line(line);
    EXPECT_EQ(trimmed.data(), line.data() + 2);
}

// ---------------------------------------------------------------------------
// append_json_string.

TEST(AppendJsonString, appends_a_quoted_literal_after_existing_text) {
    std::string out = "x=";
    memq::append_json_string(out, "abc");
    EXPECT_EQ(out, "x=\"abc\"");
}

TEST(AppendJsonString, every_ascii_byte_round_trips) {
    for (int byte = 0; byte < 0x80; ++byte) {
        const std::string text = std::string("<") + static_cast<char>(byte) + ">";
        std::string out;
        memq::append_json_string(out, text);
        json parsed;
        ASSERT_NO_THROW(parsed = json::parse(out)) << "byte " << byte << ": " << out;
        EXPECT_EQ(parsed.get<std::string>(), text) << "byte " << byte;
    }
}

TEST(AppendJsonString, escapes_quotes_backslashes_and_controls) {
    std::string out;
    memq::append_json_string(out, std::string("\"\\\n\r\t\0\x1f", 7));
    EXPECT_EQ(out.find_first_of(std::string("\n\r\t\0\x1f", 5)), std::string::npos) << out;
    EXPECT_EQ(json::parse(out).get<std::string>(), std::string("\"\\\n\r\t\0\x1f", 7));
}

TEST(AppendJsonString, copies_non_ascii_utf8_raw) {
    std::string out;
    memq::append_json_string(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    EXPECT_EQ(out, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
}

// ---------------------------------------------------------------------------
// encode_message: the delivered frame.

std::vector<std::string> tricky_strings() {
    std::string controls;
    for (int c = 0; c < 0x20; ++c) controls += static_cast<char>(c);
    return {"",
            "plain",
            "\"",
            "\\",
            "\\\"",
            "\"quoted\" and \\back\\slashed\\",
            "line\nbreak\r\n",
            controls,
            "\x7f",
            "\\u0041 is not an escape here",
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
            "\xe2\x80\xa8\xe2\x80\xa9",  // U+2028, U+2029
            "</script>",
            "{\"command\": \"send\"}",
            std::string(3000, 'x')};
}

void expect_one_crlf_terminated_line(const std::string& frame) {
    ASSERT_GE(frame.size(), 2u);
    EXPECT_EQ(frame.substr(frame.size() - 2), "\r\n");
    EXPECT_EQ(frame.find('\n'), frame.size() - 1) << "a raw newline inside the frame splits it: " << frame;
    EXPECT_EQ(frame.find('\r'), frame.size() - 2) << frame;
}

TEST(EncodeMessage, carries_the_senders_fields_plus_index) {
    const memq::Send send{"orders", "42", Delivery::all, std::nullopt};
    const std::string frame = memq::encode_message(send, 0);
    expect_one_crlf_terminated_line(frame);
    const json expected = {{"command", "send"}, {"topic", "orders"}, {"msg", "42"}, {"delivery", "all"}, {"index", 0}};
    EXPECT_EQ(json::parse(frame), expected);
}

TEST(EncodeMessage, delivery_one_is_echoed) {
    const memq::Send send{"t", "m", Delivery::one, std::nullopt};
    const json expected = {{"command", "send"}, {"topic", "t"}, {"msg", "m"}, {"delivery", "one"}, {"index", 7}};
    EXPECT_EQ(json::parse(memq::encode_message(send, 7)), expected);
}

TEST(EncodeMessage, includes_cache_only_when_the_sender_gave_it) {
    const memq::Send without{"t", "m", Delivery::all, std::nullopt};
    EXPECT_FALSE(json::parse(memq::encode_message(without, 1)).contains("cache"));
    const memq::Send with_false{"t", "m", Delivery::all, false};
    EXPECT_EQ(json::parse(memq::encode_message(with_false, 1)).at("cache"), json(false));
    const memq::Send with_true{"t", "m", Delivery::one, true};
    const json expected = {{"command", "send"}, {"topic", "t"},  {"msg", "m"},
                           {"delivery", "one"}, {"cache", true}, {"index", 1}};
    EXPECT_EQ(json::parse(memq::encode_message(with_true, 1)), expected);
}

TEST(EncodeMessage, index_is_an_integer_up_to_int64_max) {
    const memq::Send send{"t", "m", Delivery::all, std::nullopt};
    for (const std::int64_t index : {std::int64_t{0}, std::int64_t{9}, std::int64_t{10}, std::int64_t{123456789012},
                                     std::numeric_limits<std::int64_t>::max()}) {
        const json parsed = json::parse(memq::encode_message(send, index));
        ASSERT_TRUE(parsed.at("index").is_number_integer()) << index;
        EXPECT_EQ(parsed.at("index").get<std::int64_t>(), index);
    }
}

TEST(EncodeMessage, tricky_topics_and_messages_round_trip) {
    for (const std::string& text : tricky_strings()) {
        const memq::Send send{text, text + text, Delivery::all, std::nullopt};
        const std::string frame = memq::encode_message(send, 3);
        expect_one_crlf_terminated_line(frame);
        json parsed;
        ASSERT_NO_THROW(parsed = json::parse(frame)) << frame;
        EXPECT_EQ(parsed.at("topic").get<std::string>(), text);
        EXPECT_EQ(parsed.at("msg").get<std::string>(), text + text);
        EXPECT_EQ(parsed.size(), 5u);
    }
}

// message_frame_fields finds the sender's msg literal and cache field in a
// frame encode_message wrote (what a durable broker's log record stores).
std::string json_literal(const std::string& text) {
    std::string out;
    memq::append_json_string(out, text);
    return out;
}

TEST(MessageFrameFields, finds_the_msg_literal_of_a_plain_frame) {
    const memq::Send send{"orders", "42", Delivery::all, std::nullopt};
    const std::string frame = memq::encode_message(send, 0);
    const auto fields = memq::message_frame_fields(frame, 0, Delivery::all);
    ASSERT_TRUE(fields.has_value());
    EXPECT_EQ(fields->msg_json, "\"42\"");
    EXPECT_FALSE(fields->cache.has_value());
}

TEST(MessageFrameFields, finds_the_cache_field_and_delivery_one) {
    for (const bool cache : {true, false}) {
        const memq::Send send{"t", "m", Delivery::one, cache};
        const std::string frame = memq::encode_message(send, 12);
        const auto fields = memq::message_frame_fields(frame, 12, Delivery::one);
        ASSERT_TRUE(fields.has_value());
        EXPECT_EQ(fields->msg_json, "\"m\"");
        EXPECT_EQ(fields->cache, std::optional<bool>(cache));
    }
}

TEST(MessageFrameFields, tricky_topics_and_messages_give_their_literals) {
    // A topic or msg holding what the frame's fixed parts look like, quotes
    // and backslashes: the topic's literal is read past, never searched.
    std::vector<std::string> texts = tricky_strings();
    texts.push_back("\", \"msg\": \"x");
    texts.push_back("\\");
    texts.push_back("\", \"delivery\": \"all\", \"index\": 3}\r\n");
    for (const std::string& topic : texts) {
        for (const std::string& msg : texts) {
            const memq::Send send{topic, msg, Delivery::all, std::nullopt};
            const std::string frame = memq::encode_message(send, 3);
            const auto fields = memq::message_frame_fields(frame, 3, Delivery::all);
            ASSERT_TRUE(fields.has_value()) << frame;
            EXPECT_EQ(fields->msg_json, json_literal(msg)) << frame;
        }
    }
}

TEST(MessageFrameFields, works_at_index_int64_max) {
    const std::int64_t index = std::numeric_limits<std::int64_t>::max();
    const memq::Send send{"t", "m", Delivery::all, true};
    const std::string frame = memq::encode_message(send, index);
    const auto fields = memq::message_frame_fields(frame, index, Delivery::all);
    ASSERT_TRUE(fields.has_value());
    EXPECT_EQ(fields->msg_json, "\"m\"");
    EXPECT_EQ(fields->cache, std::optional<bool>(true));
}

TEST(MessageFrameFields, a_frame_of_another_shape_or_for_another_index_or_delivery_gives_nothing) {
    const std::string frame = memq::encode_message(memq::Send{"t", "m", Delivery::all, std::nullopt}, 7);
    EXPECT_TRUE(memq::message_frame_fields(frame, 7, Delivery::all).has_value());
    EXPECT_FALSE(memq::message_frame_fields(frame, 8, Delivery::all).has_value());
    EXPECT_FALSE(memq::message_frame_fields(frame, 7, Delivery::one).has_value());
    EXPECT_FALSE(memq::message_frame_fields(frame.substr(0, frame.size() - 2), 7, Delivery::all).has_value());
    for (const std::string bad : {"", "x", "frame 0\r\n", "{\"command\": \"send\", \"topic\": \"t, \"delivery\": \"all\", \"index\": 7}\r\n",
                                  "{\"command\": \"send\", \"topic\": \"t\", \"msg\": 5, \"delivery\": \"all\", \"index\": 7}\r\n"}) {
        EXPECT_FALSE(memq::message_frame_fields(bad, 7, Delivery::all).has_value()) << bad;
    }
}

// ---------------------------------------------------------------------------
// Client → server lines, as ClientCore writes them (tests/client_lines.hpp),
// parse back to the same command.

void expect_one_lf_terminated_line(const std::string& line) {
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
}

TEST(ClientLine, subscribe_round_trips_through_parse_line) {
    for (const std::string& topic : tricky_strings()) {
        for (const std::int64_t last_seen : {std::int64_t{-1}, std::int64_t{17}}) {
            for (const bool cache : {true, false}) {
                const memq::Subscribe command{topic, last_seen, cache};
                const std::string line = memq::testing::client_line(command);
                expect_one_lf_terminated_line(line);
                const std::string expected = "subscribe topic=" + as_json_string(topic) + " last_seen=" +
                                             std::to_string(last_seen) + " cache=" + (cache ? "true" : "false");
                EXPECT_EQ(outcome(memq::trim_line(line)), expected) << line;
            }
        }
    }
}

TEST(ClientLine, subscribe_with_extreme_last_seen_round_trips) {
    for (const std::int64_t last_seen : {std::numeric_limits<std::int64_t>::min(), std::int64_t{-2},
                                         std::numeric_limits<std::int64_t>::max()}) {
        const memq::Subscribe command{"t", last_seen, true};
        EXPECT_EQ(outcome(memq::trim_line(memq::testing::client_line(command))),
                  "subscribe topic=\"t\" last_seen=" + std::to_string(last_seen) + " cache=true");
    }
}

TEST(ClientLine, unsubscribe_round_trips_through_parse_line) {
    for (const std::string& topic : tricky_strings()) {
        const std::string line = memq::testing::client_line(memq::Unsubscribe{topic});
        expect_one_lf_terminated_line(line);
        EXPECT_EQ(outcome(memq::trim_line(line)), "unsubscribe topic=" + as_json_string(topic));
    }
}

TEST(ClientLine, send_round_trips_through_parse_line) {
    for (const std::string& text : tricky_strings()) {
        for (const Delivery delivery : {Delivery::all, Delivery::one}) {
            for (const std::optional<bool> cache : {std::optional<bool>{}, std::optional<bool>{true},
                                                    std::optional<bool>{false}}) {
                const memq::Send command{text, "<" + text + ">", delivery, cache};
                const std::string line = memq::testing::client_line(command);
                expect_one_lf_terminated_line(line);
                std::string expected = "send topic=" + as_json_string(text) + " msg=" + as_json_string("<" + text + ">") +
                                       " delivery=" + (delivery == Delivery::all ? "all" : "one");
                if (cache) expected += std::string(" cache=") + (*cache ? "true" : "false");
                EXPECT_EQ(outcome(memq::trim_line(line)), expected) << line;
            }
        }
    }
}

}  // namespace
