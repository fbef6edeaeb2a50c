// scanner_differential_test.cpp — the differential properties of the two
// readers built on the JSON cursor: parse_line (the fast command scanner,
// nlohmann as fallback) answers every line exactly as parse_line_reference
// (nlohmann alone) does: the same error, or the same command with the same
// fields; and the client's fast decoder, whenever it takes a line, reads the
// message nlohmann reads there. Lines are drawn near the commands'
// shape, where the scanner decides instead of declining: command fragments in
// any order, valid commands with a few bytes broken, and raw tricky bytes.
// Replay a failure with RC_PARAMS="seed=N" (rapidcheck prints N).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "generators.hpp"
#include "command_parser.hpp"
#include "fast_decode.hpp"
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

// Fragments one after another, right and wrong.
rc::Gen<std::string> fragment_soup() {
    return rc::gen::map(rc::gen::container<std::vector<std::string>>(fragment()),
                        [](const std::vector<std::string>& pieces) {
                            std::string line;
                            for (const std::string& piece : pieces) line += piece;
                            return line;
                        });
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
    } else if (key == "last_seen" || key == "index") {
        right = number_token();
    }
    return rc::gen::weightedOneOf<std::string>({{4, right}, {1, json_value()}});
}

// A flat object of `keys` (each now and then left out; now and then one of
// `extra_keys` as well, or one twice) in any order, each with a right or
// wrong value, random whitespace between.
std::string flat_object(const std::vector<std::string>& known_keys, const std::vector<std::string>& extra_keys) {
    std::vector<std::string> keys;
    for (const std::string& key : known_keys) {
        if (*rc::gen::inRange(0, 3) != 0) keys.push_back(key);
    }
    if (*rc::gen::inRange(0, 4) == 0) keys.push_back(*rc::gen::elementOf(extra_keys));
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
}

// A command object: the protocol's keys, now and then another.
rc::Gen<std::string> command_object() {
    return rc::gen::exec([] {
        return flat_object({"command", "topic", "msg", "delivery", "cache", "last_seen"},
                           {"command", "topic", "other", "Command", "topic\\u0000", "msg\\"});
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
    require_agreement(*fragment_soup());
}

RC_GTEST_PROP(ScannerDifferential, ArbitraryBytesParseAsTheReferenceParsesThem, ()) {
    require_agreement(*tricky_bytes());
}

// A send line laid out exactly as ClientCore::send writes it (the scanner's
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

// ---- The client's fast decoder against nlohmann.

// A delivered message's object: its keys, now and then another.
rc::Gen<std::string> message_object() {
    return rc::gen::exec([] {
        return flat_object({"command", "topic", "msg", "delivery", "index", "cache"},
                           {"index", "msg", "other", "success", "last_seen", "topic\\u0000"});
    });
}

// What the client's complete path makes of `line`, written here with
// nlohmann's DOM from the rules of a message (client_core.cpp): nullopt
// unless it is one.
std::optional<memq::Message> reference_message(std::string_view line) {
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded() || !object.is_object()) return std::nullopt;
    const auto string_at = [&](const char* key) -> const std::string* {
        const auto found = object.find(key);
        return found != object.end() && found->is_string() ? &found->get_ref<const std::string&>() : nullptr;
    };
    const std::string* command = string_at("command");
    const std::string* topic = string_at("topic");
    const std::string* msg = string_at("msg");
    const std::string* delivery = string_at("delivery");
    const auto index = object.find("index");
    if (command == nullptr || *command != "send" || topic == nullptr || msg == nullptr || delivery == nullptr ||
        index == object.end() || !index->is_number_integer() ||
        (index->is_number_unsigned() && index->get<std::uint64_t>() > INT64_MAX)) {
        return std::nullopt;
    }
    memq::Message message;
    message.topic = *topic;
    message.msg = *msg;
    message.index = index->get<std::int64_t>();
    if (*delivery == "all") {
        message.delivery = memq::Delivery::all;
    } else if (*delivery == "one") {
        message.delivery = memq::Delivery::one;
    } else {
        return std::nullopt;
    }
    if (const auto cache = object.find("cache"); cache != object.end()) {
        if (!cache->is_boolean()) return std::nullopt;
        message.cache = cache->get<bool>();
    }
    return message;
}

void require_decoder_agreement(const std::string& line) {
    memq::Message fast;
    if (!memq::detail::fast_decode_message(line, fast)) return;  // declined: the complete path decides
    const std::optional<memq::Message> reference = reference_message(line);
    if (!reference) RC_FAIL("the fast decoder took a line that is no message: " + line);
    const bool same = fast.topic == reference->topic && fast.msg == reference->msg &&
                      fast.index == reference->index && fast.delivery == reference->delivery &&
                      fast.cache == reference->cache;
    if (!same) {
        RC_FAIL("line: " + line + "\nfast: [" + fast.topic + "] [" + fast.msg + "] " + std::to_string(fast.index) +
                "\nreference: [" + reference->topic + "] [" + reference->msg + "] " + std::to_string(reference->index));
    }
}

RC_GTEST_PROP(DecoderDifferential, MessageObjectsDecodeAsNlohmannReadsThem, ()) {
    for (const std::string& line : *rc::gen::container<std::vector<std::string>>(kLinesPerCase, message_object())) {
        require_decoder_agreement(line);
    }
}

RC_GTEST_PROP(DecoderDifferential, FragmentSoupDecodesAsNlohmannReadsIt, ()) {
    require_decoder_agreement(*fragment_soup());
}

// Every frame the broker writes takes the fast path, to the message sent.
RC_GTEST_PROP(DecoderDifferential, EveryEncodedFrameTakesTheFastPath, ()) {
    memq::Send send;
    send.topic = *unicode_text();
    send.msg = *unicode_text();
    send.delivery = *rc::gen::element(memq::Delivery::all, memq::Delivery::one);
    send.cache = *rc::gen::element(std::optional<bool>(), std::optional<bool>(true), std::optional<bool>(false));
    const auto index = *rc::gen::arbitrary<std::int64_t>();
    const std::string frame = memq::encode_message(send, index);
    memq::Message message;
    RC_ASSERT(memq::detail::fast_decode_message(std::string_view(frame).substr(0, frame.size() - 2), message));
    RC_ASSERT(message.topic == send.topic);
    RC_ASSERT(message.msg == send.msg);
    RC_ASSERT(message.delivery == send.delivery);
    RC_ASSERT(message.cache == send.cache);
    RC_ASSERT(message.index == index);
}

}  // namespace
