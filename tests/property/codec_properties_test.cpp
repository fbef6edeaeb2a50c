// codec_properties_test.cpp — properties of the wire codec (broker/protocol.hpp)
// over arbitrary input: commands survive encode → parse, messages survive
// encode → JSON, a byte stream gives the same lines however it is cut, and
// the strict UTF-8 check agrees with an independent decoder on any bytes.
// Replay a failure with RC_PARAMS="seed=N" (rapidcheck prints N).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "../client_lines.hpp"
#include "generators.hpp"
#include "command_parser.hpp"
#include "protocol.hpp"

namespace {

using memq::Delivery;
using memq::LineError;
using memq::LineReader;
using memq::property::reference_valid_utf8;
using memq::property::tricky_bytes;
using memq::property::unicode_text;

rc::Gen<std::optional<bool>> optional_bool() {
    return rc::gen::element(std::optional<bool>(), std::optional<bool>(true), std::optional<bool>(false));
}

rc::Gen<memq::Send> any_send() {
    return rc::gen::build<memq::Send>(
        rc::gen::set(&memq::Send::topic, unicode_text()), rc::gen::set(&memq::Send::msg, unicode_text()),
        rc::gen::set(&memq::Send::delivery, rc::gen::element(Delivery::all, Delivery::one)),
        rc::gen::set(&memq::Send::cache, optional_bool()));
}

// The command a line parses to; fails the property when it is an error.
memq::Command parsed(const std::string& line) {
    RC_ASSERT(!line.empty() && line.back() == '\n');
    const std::string_view body = std::string_view(line).substr(0, line.size() - 1);
    RC_ASSERT(memq::trim_line(body) == body);  // encoders write no surrounding whitespace
    memq::ParseResult result = memq::parse_line(body);
    RC_ASSERT(std::holds_alternative<memq::Command>(result));
    return std::get<memq::Command>(std::move(result));
}

// --- Encode, then parse: the same command comes back. -------------------------

RC_GTEST_PROP(CodecProperty, SendLineParsesBackToTheSameSend, ()) {
    const memq::Send send = *any_send();
    const memq::Command command = parsed(memq::testing::client_line(send));
    const auto* back = std::get_if<memq::Send>(&command);
    RC_ASSERT(back != nullptr);
    RC_ASSERT(back->topic == send.topic);
    RC_ASSERT(back->msg == send.msg);
    RC_ASSERT(back->delivery == send.delivery);
    RC_ASSERT(back->cache == send.cache);
}

RC_GTEST_PROP(CodecProperty, SubscribeLineParsesBackToTheSameSubscribe, ()) {
    memq::Subscribe subscribe;
    subscribe.topic = *unicode_text();
    subscribe.last_seen = *rc::gen::arbitrary<std::int64_t>();
    subscribe.cache = *rc::gen::arbitrary<bool>();
    const memq::Command command = parsed(memq::testing::client_line(subscribe));
    const auto* back = std::get_if<memq::Subscribe>(&command);
    RC_ASSERT(back != nullptr);
    RC_ASSERT(back->topic == subscribe.topic);
    RC_ASSERT(back->last_seen == subscribe.last_seen);
    RC_ASSERT(back->cache == subscribe.cache);
}

RC_GTEST_PROP(CodecProperty, UnsubscribeLineParsesBackToTheSameUnsubscribe, ()) {
    const memq::Unsubscribe unsubscribe{*unicode_text()};
    const memq::Command command = parsed(memq::testing::client_line(unsubscribe));
    const auto* back = std::get_if<memq::Unsubscribe>(&command);
    RC_ASSERT(back != nullptr);
    RC_ASSERT(back->topic == unsubscribe.topic);
}

RC_GTEST_PROP(CodecProperty, MessageFrameIsJsonWithExactlyTheSendersFieldsAndIndex, ()) {
    const memq::Send send = *any_send();
    const auto index = *rc::gen::inRange<std::int64_t>(0, INT64_MAX);
    const std::string frame = memq::encode_message(send, index);
    RC_ASSERT(frame.size() >= 2);
    RC_ASSERT(frame.substr(frame.size() - 2) == "\r\n");
    const std::string_view body = std::string_view(frame).substr(0, frame.size() - 2);
    RC_ASSERT(body.find('\n') == std::string_view::npos);  // one frame, one line
    const nlohmann::json object = nlohmann::json::parse(body);
    RC_ASSERT(object.is_object());
    RC_ASSERT(object.size() == (send.cache ? 6u : 5u));
    RC_ASSERT(object.at("command") == "send");
    RC_ASSERT(object.at("topic").get<std::string>() == send.topic);
    RC_ASSERT(object.at("msg").get<std::string>() == send.msg);
    RC_ASSERT(object.at("delivery") == (send.delivery == Delivery::all ? "all" : "one"));
    RC_ASSERT(object.at("index").get<std::int64_t>() == index);
    if (send.cache) RC_ASSERT(object.at("cache").get<bool>() == *send.cache);
}

// --- Framing: any cut of a stream gives the same lines. ------------------------

// A line without '\n': encoded commands, or arbitrary bytes.
rc::Gen<std::string> line_body() {
    return rc::gen::oneOf(rc::gen::map(any_send(),
                                       [](const memq::Send& send) {
                                           std::string line = memq::testing::client_line(send);
                                           line.pop_back();
                                           return line;
                                       }),
                          rc::gen::map(tricky_bytes(), [](std::string bytes) {
                              std::replace(bytes.begin(), bytes.end(), '\n', ' ');
                              return bytes;
                          }));
}

// `stream` cut at `cuts` (positions, any order, duplicates allowed).
std::vector<std::string> cut(const std::string& stream, std::vector<std::size_t> cuts) {
    for (std::size_t& position : cuts) position %= stream.size() + 1;
    cuts.push_back(0);
    cuts.push_back(stream.size());
    std::sort(cuts.begin(), cuts.end());
    std::vector<std::string> segments;
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i) segments.push_back(stream.substr(cuts[i], cuts[i + 1] - cuts[i]));
    return segments;
}

RC_GTEST_PROP(LineReaderProperty, AnyCutOfAStreamGivesTheSameLines, ()) {
    const auto lines = *rc::gen::container<std::vector<std::string>>(line_body());
    const auto tail = *line_body();  // an unfinished last line: never a line
    std::string stream;
    for (const std::string& line : lines) stream += line + "\n";
    stream += tail;
    LineReader reader(1 << 20);
    std::vector<std::string> got;
    for (const std::string& segment : cut(stream, *rc::gen::arbitrary<std::vector<std::size_t>>())) {
        const auto status = reader.feed(segment, [&](std::string_view line) {
            got.emplace_back(line);
            return true;
        });
        RC_ASSERT(status == LineReader::Status::more);
    }
    RC_ASSERT(got == lines);
    RC_ASSERT(reader.buffered_bytes() == tail.size());
}

RC_GTEST_PROP(LineReaderProperty, ALineOverTheLimitStopsTheStreamWhereverItIsCut, ()) {
    const auto limit = *rc::gen::inRange<std::size_t>(0, 80);
    const auto lines = *rc::gen::container<std::vector<std::string>>(line_body());
    std::string stream;
    for (const std::string& line : lines) stream += line + "\n";
    // What must come out: every line up to the first one over the limit.
    std::vector<std::string> expected;
    bool too_long = false;
    for (const std::string& line : lines) {
        if (line.size() > limit) {
            too_long = true;
            break;
        }
        expected.push_back(line);
    }
    LineReader reader(limit);
    std::vector<std::string> got;
    bool saw_too_long = false;
    for (const std::string& segment : cut(stream, *rc::gen::arbitrary<std::vector<std::size_t>>())) {
        const auto status = reader.feed(segment, [&](std::string_view line) {
            got.emplace_back(line);
            return true;
        });
        if (status == LineReader::Status::too_long) {
            RC_ASSERT(!saw_too_long);  // said once; the reader is spent after it
            saw_too_long = true;
        }
        RC_ASSERT(reader.buffered_bytes() <= limit);
    }
    RC_ASSERT(saw_too_long == too_long);
    RC_ASSERT(got == expected);
}

// --- Strict UTF-8: the core's check agrees with an independent decoder. --------

RC_GTEST_PROP(Utf8Property, IsValidUtf8AgreesWithAReferenceDecoder, ()) {
    const std::string bytes = *tricky_bytes();
    RC_TAG(reference_valid_utf8(bytes) ? "valid" : "invalid");
    RC_ASSERT(memq::is_valid_utf8(bytes) == reference_valid_utf8(bytes));
}

RC_GTEST_PROP(Utf8Property, EncodedUnicodeTextIsValid, ()) {
    const std::string text = *unicode_text();
    RC_ASSERT(memq::is_valid_utf8(text));
    RC_ASSERT(reference_valid_utf8(text));
}

RC_GTEST_PROP(Utf8Property, AnyLineThatIsNotUtf8IsRefusedAsUtf8FirstOfAllErrors, ()) {
    std::string line = *tricky_bytes();
    std::replace(line.begin(), line.end(), '\n', ' ');
    const std::string_view trimmed = memq::trim_line(line);
    RC_PRE(!trimmed.empty());
    const memq::ParseResult result = memq::parse_line(trimmed);
    const auto* error = std::get_if<LineError>(&result);
    const bool refused_as_utf8 = error != nullptr && *error == LineError::bad_utf8;
    RC_ASSERT(refused_as_utf8 == !reference_valid_utf8(trimmed));
}

}  // namespace
