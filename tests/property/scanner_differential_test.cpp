// scanner_differential_test.cpp — the differential property of the parser:
// parse_line (fast flat-JSON scanner, nlohmann as fallback) answers every line
// exactly as parse_line_reference (nlohmann alone) does: the same error, or
// the same command with the same fields. Lines are drawn near the commands'
// shape, where the scanner decides instead of declining: command fragments in
// any order, valid commands with a few bytes broken, and raw tricky bytes.
// Replay a failure with RC_PARAMS="seed=N" (rapidcheck prints N).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstddef>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "generators.hpp"
#include "command_parser.hpp"
#include "protocol.hpp"

namespace {

using memq::property::tricky_bytes;
using memq::property::unicode_text;

std::string describe(const memq::ParseResult& result) {
    if (const auto* error = std::get_if<memq::LineError>(&result)) {
        return "error: " + std::string(memq::reason_text(*error));
    }
    const auto& command = std::get<memq::Command>(result);
    if (const auto* subscribe = std::get_if<memq::Subscribe>(&command)) {
        return "subscribe [" + subscribe->topic + "] last_seen=" + std::to_string(subscribe->last_seen) +
               " cache=" + std::to_string(subscribe->cache);
    }
    if (const auto* unsubscribe = std::get_if<memq::Unsubscribe>(&command)) {
        return "unsubscribe [" + unsubscribe->topic + "]";
    }
    if (const auto* send = std::get_if<memq::Send>(&command)) {
        return "send [" + send->topic + "] [" + send->msg + "] delivery=" +
               (send->delivery == memq::Delivery::all ? "all" : "one") +
               " cache=" + (send->cache ? std::to_string(*send->cache) : "absent");
    }
    return "quit";
}

// What the broker would hand the parser for these bytes: the first line,
// trimmed; empty lines are never parsed.
std::string as_line(const std::string& bytes) {
    const std::string first = bytes.substr(0, bytes.find('\n'));
    return std::string(memq::trim_line(first));
}

void require_agreement(const std::string& bytes) {
    const std::string line = as_line(bytes);
    if (line.empty()) return;
    const std::string fast = describe(memq::parse_line(line));
    const std::string reference = describe(memq::parse_line_reference(line));
    if (fast != reference) {
        RC_FAIL("line: " + line + "\nparse_line: " + fast + "\nparse_line_reference: " + reference);
    }
}

// The pieces command lines are made of, right and wrong.
const std::vector<std::string> kFragments = {
    "{", "}", "[", "]", ":", ",", " ", "\t", "\r", "\"", "\\",
    R"("command")", R"("topic")", R"("msg")", R"("delivery")", R"("cache")", R"("last_seen")", R"("index")",
    R"("send")", R"("subscribe")", R"("unsubscribe")", R"("all")", R"("one")", R"("quit")",
    "true", "false", "null", "tru", "0", "-0", "-1", "7", "01", "1.5", "1e3", "-", "1e400", "1e400e5",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1" + std::string(25, '0'),
    R"("a\"b")", R"("\\")", R"("\/")", R"("\n\t\b\f\r")", R"("\u00e9")", R"("\u0000")", R"("\ud83d\ude00")",
    R"("\ud800")", R"("\udc00x")", R"("\x")", R"("\u12")", "\"\x01\"", "\"\xC3\xA9\"", "\"\xED\xA0\x80\"",
    "\xEF\xBB\xBF", std::string(1, '\0'), "\"\"",
};

rc::Gen<std::string> fragment() {
    return rc::gen::oneOf(rc::gen::elementOf(kFragments),
                          rc::gen::map(unicode_text(), [](const std::string& text) { return "\"" + text + "\""; }));
}

// A JSON string literal built from raw text and every kind of escape, the
// unpaired surrogates and a bad escape or two among them.
rc::Gen<std::string> json_string() {
    const std::vector<std::string> escapes = {R"(\")",     R"(\\)",     R"(\/)",      R"(\b)",     R"(\f)",
                                              R"(\n)",     R"(\r)",      R"(\t)",      R"(\u00e9)", R"(\u0000)",
                                              R"(\u001F)", R"(\uD83D\uDE00)", R"(\ud800)", R"(\uDC00)", R"(\u12aB)",
                                              R"(\x)",     R"(\u12)"};
    return rc::gen::map(
        rc::gen::container<std::vector<std::string>>(rc::gen::weightedOneOf<std::string>(
            {{2, unicode_text()}, {1, rc::gen::elementOf(escapes)}})),
        [](const std::vector<std::string>& pieces) {
            std::string out = "\"";
            for (const std::string& piece : pieces) {
                if (piece.starts_with('\\')) {
                    out += piece;
                } else {
                    std::string escaped;
                    memq::append_json_string(escaped, piece);
                    out += escaped.substr(1, escaped.size() - 2);
                }
            }
            return out + "\"";
        });
}

// A number token: mostly well formed (leading zeros aside), now and then
// with a sign, fraction or exponent that JSON refuses.
rc::Gen<std::string> number_token() {
    return rc::gen::exec([] {
        const bool well_formed = *rc::gen::inRange(0, 4) != 0;
        const std::vector<std::string> signs = well_formed ? std::vector<std::string>{"", "", "-"}
                                                           : std::vector<std::string>{"+", "--", "-"};
        const std::vector<std::string> integers = {"0", "1", "7", "00", "01", "-0", "10", "9223372036854775807",
                                                   "9223372036854775808", "18446744073709551616",
                                                   std::string(30, '9')};
        const std::vector<std::string> fractions =
            well_formed ? std::vector<std::string>{"", "", "", "", ".0", ".5"} : std::vector<std::string>{".", "..5"};
        const std::vector<std::string> exponents = well_formed
                                                       ? std::vector<std::string>{"", "", "", "", "e1", "E+2", "e-1", "e400"}
                                                       : std::vector<std::string>{"e", "E+", "e1e1"};
        return *rc::gen::elementOf(signs) + *rc::gen::elementOf(integers) + *rc::gen::elementOf(fractions) +
               *rc::gen::elementOf(exponents);
    });
}

rc::Gen<std::string> json_value() {
    return rc::gen::oneOf(json_string(), number_token(),
                          rc::gen::elementOf(std::vector<std::string>{"true", "false", "null", "[]", "{}", "[1]",
                                                                      R"({"a": 1})", R"("all")", R"("one")"}));
}

// The value for `key`: usually one the protocol accepts there, else anything.
rc::Gen<std::string> value_for(const std::string& key) {
    rc::Gen<std::string> right = json_value();
    if (key == "command") {
        right = rc::gen::elementOf(std::vector<std::string>{R"("send")", R"("subscribe")", R"("unsubscribe")"});
    } else if (key == "topic" || key == "msg") {
        right = json_string();
    } else if (key == "delivery") {
        right = rc::gen::elementOf(std::vector<std::string>{R"("all")", R"("one")"});
    } else if (key == "cache") {
        right = rc::gen::elementOf(std::vector<std::string>{"true", "false"});
    } else if (key == "last_seen") {
        right = number_token();
    }
    return rc::gen::weightedOneOf<std::string>({{4, right}, {1, json_value()}});
}

// A command object: the protocol's keys (now and then another, or one twice)
// in any order, each with a right or wrong value, random whitespace between.
rc::Gen<std::string> command_object() {
    return rc::gen::exec([] {
        std::vector<std::string> keys;
        for (const char* key : {"command", "topic", "msg", "delivery", "cache", "last_seen"}) {
            if (*rc::gen::inRange(0, 3) != 0) keys.emplace_back(key);
        }
        if (*rc::gen::inRange(0, 4) == 0) keys.push_back(*rc::gen::elementOf(std::vector<std::string>{
            "command", "topic", "other", "Command", "topic\\u0000", "msg\\"}));
        for (std::size_t i = keys.size(); i > 1; --i) std::swap(keys[i - 1], keys[*rc::gen::inRange<std::size_t>(0, i)]);
        const std::vector<std::string> whitespace = {"", "", "", " ", "\t", "\r", " \t "};
        std::string line = "{";
        bool first = true;
        for (const std::string& key : keys) {
            if (!first) line += *rc::gen::elementOf(whitespace) + ",";
            first = false;
            line += *rc::gen::elementOf(whitespace) + "\"" + key + "\"" + *rc::gen::elementOf(whitespace) + ":" +
                    *rc::gen::elementOf(whitespace) + *value_for(key);
        }
        return line + *rc::gen::elementOf(whitespace) + "}";
    });
}

// A valid-looking command with a few bytes inserted, deleted or replaced.
rc::Gen<std::string> broken_command() {
    return rc::gen::exec([] {
        std::string line = *command_object();
        const std::string alphabet = std::string("{}[]\":,\\ 0123456789.eE+-tfnu\x01\x7f\xC3\xA9\xFF", 32) + '\0';
        const int edits = *rc::gen::inRange(1, 4);
        for (int edit = 0; edit < edits; ++edit) {
            const std::size_t at = *rc::gen::inRange<std::size_t>(0, line.size() + 1);
            const char byte = *rc::gen::elementOf(alphabet);
            switch (*rc::gen::inRange(0, 3)) {
                case 0: line.insert(at, 1, byte); break;
                case 1: if (at < line.size()) line.erase(at, 1); break;
                default: if (at < line.size()) line[at] = byte; break;
            }
        }
        return line;
    });
}

// Each case checks a batch of lines: the scanner's corners are narrow, and a
// batch per case reaches them in the few hundred cases ctest runs.
constexpr std::size_t kLinesPerCase = 16;

RC_GTEST_PROP(ScannerDifferential, CommandObjectsParseAsTheReferenceParsesThem, ()) {
    for (const std::string& line : *rc::gen::container<std::vector<std::string>>(kLinesPerCase, command_object())) {
        require_agreement(line);
    }
}

RC_GTEST_PROP(ScannerDifferential, BrokenCommandsParseAsTheReferenceParsesThem, ()) {
    for (const std::string& line : *rc::gen::container<std::vector<std::string>>(kLinesPerCase, broken_command())) {
        require_agreement(line);
    }
}

RC_GTEST_PROP(ScannerDifferential, FragmentSoupParsesAsTheReferenceParsesIt, ()) {
    std::string line;
    for (const std::string& piece : *rc::gen::container<std::vector<std::string>>(fragment())) line += piece;
    require_agreement(line);
}

RC_GTEST_PROP(ScannerDifferential, ArbitraryBytesParseAsTheReferenceParsesThem, ()) {
    require_agreement(*tricky_bytes());
}

// A send line laid out exactly as encode_command writes it (the scanner's
// fixed-text fast path), with any strings, now and then a byte or two broken
// or the "delivery" key left out.
rc::Gen<std::string> canonical_send_line() {
    return rc::gen::exec([] {
        std::string line = "{\"command\": \"send\", \"topic\": " + *json_string() + ", \"msg\": " + *json_string() +
                           *rc::gen::elementOf(std::vector<std::string>{
                               R"(, "delivery": "all")", R"(, "delivery": "one")", R"(, "delivery": "two")", ""}) +
                           *rc::gen::elementOf(std::vector<std::string>{"", "", ", \"cache\": true", ", \"cache\": false",
                                                                        ", \"cache\": 1"}) +
                           "}";
        if (*rc::gen::inRange(0, 3) == 0) {
            const std::size_t at = *rc::gen::inRange<std::size_t>(0, line.size());
            line[at] = *rc::gen::elementOf(std::string("{}\":, \\\x01\xC3\xFF" "a", 11));
        }
        return line;
    });
}

RC_GTEST_PROP(ScannerDifferential, CanonicalSendLinesParseAsTheReferenceParsesThem, ()) {
    for (const std::string& line : *rc::gen::container<std::vector<std::string>>(kLinesPerCase, canonical_send_line())) {
        require_agreement(line);
    }
}

// The broker's frame of a send (string literals copied from the line when
// they are already in append_json_string's form) is byte for byte the frame
// encode_message writes from the decoded command.
RC_GTEST_PROP(ScannerDifferential, FramesBuiltFromTheLineAreTheEncodedFrames, ()) {
    memq::LineParser parser;
    const auto lines = *rc::gen::container<std::vector<std::string>>(
        kLinesPerCase, rc::gen::oneOf(canonical_send_line(), command_object()));
    for (const std::string& bytes : lines) {
        const std::string line = as_line(bytes);
        if (line.empty()) continue;
        const memq::ParseRefResult parsed = parser.parse(line);
        const auto* command = std::get_if<memq::CommandRef>(&parsed);
        if (command == nullptr || !std::holds_alternative<memq::SendRef>(*command)) continue;
        std::string built = "stale bytes before: ";
        memq::append_message(built, std::get<memq::SendRef>(*command), 42);
        const memq::Command owned = std::get<memq::Command>(memq::parse_line(line));
        const std::string expected = "stale bytes before: " + memq::encode_message(std::get<memq::Send>(owned), 42);
        if (built != expected) RC_FAIL("line: " + line + "\nbuilt:    " + built + "\nexpected: " + expected);
    }
}

}  // namespace
