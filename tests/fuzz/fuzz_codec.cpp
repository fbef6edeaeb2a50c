// tests/fuzz/fuzz_codec.cpp — owns the codec fuzz target (fuzz_codec).
//
// On arbitrary bytes it checks, and aborts with the offending bytes on any
// disagreement:
// - LineReader: fed the whole input at once and in input-chosen chunks, with
//   a small input-chosen limit, it yields the lines, and the status, of an
//   independent splitter; trim_line agrees with an independent trim.
// - is_valid_utf8 agrees with strict_utf8 (fuzz_check.hpp) on the input and
//   on every line.
// - For every trimmed non-empty line (split like the broker, LineReader with
//   a 1024-byte limit, stopping at "quit"): parse_line == parse_line_reference
//   (same error, or the same command with the same fields) — the fast scanner
//   must never change a result.
// - Both also agree with StrictJson below, an independent RFC 8259 reader plus
//   PROTOCOL.md's templates (a NUL byte, a leading UTF-8 BOM and a number
//   past double's range run into more number characters included: nlohmann
//   misread those once; the corpus keeps them as quirk_*).
// - The client's fast decoder (fast_decode_message, on the JSON cursor),
//   whenever it accepts a line or a whole input, decoded the message that
//   StrictJson reads there.
// - Encoders: every parsed Send survives encode_message (read back with
//   nlohmann, and with the client's fast decoder) and ClientCore's send line
//   (read back with parse_line and the reference, and taking the command
//   scanner's fast path); Subscribe and Unsubscribe survive ClientCore's
//   lines the same way.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "../client_lines.hpp"
#include "command_parser.hpp"
#include "command_scan.hpp"
#include "fast_decode.hpp"
#include "fuzz_check.hpp"
#include "protocol.hpp"

namespace {

using namespace memq;
using fuzz::fail;
using fuzz::hex;
using fuzz::strict_utf8;

constexpr const char* kTarget = "fuzz_codec";
constexpr std::size_t kLineBytesMax = 1024;

// ---------------------------------------------------------------- describing

std::string describe(LineError error) {
    switch (error) {
        case LineError::bad_utf8: return "error bad_utf8";
        case LineError::bad_json: return "error bad_json";
        case LineError::malformed: return "error malformed";
        case LineError::line_too_long: return "error line_too_long";
        case LineError::internal: return "error internal";
        case LineError::topic_too_long: return "error topic_too_long";
        case LineError::too_many_subscriptions: return "error too_many_subscriptions";
        case LineError::too_many_topics: return "error too_many_topics";
        case LineError::storage_unavailable: return "error storage_unavailable";
    }
    return "error ?";
}

std::string describe_cache(std::optional<bool> cache) {
    return !cache.has_value() ? "absent" : (*cache ? "true" : "false");
}

std::string describe(const Command& command) {
    if (const auto* subscribe = std::get_if<Subscribe>(&command)) {
        return "subscribe topic=" + hex(subscribe->topic) + " last_seen=" + std::to_string(subscribe->last_seen) +
               " cache=" + (subscribe->cache ? "true" : "false");
    }
    if (const auto* unsubscribe = std::get_if<Unsubscribe>(&command)) return "unsubscribe topic=" + hex(unsubscribe->topic);
    if (const auto* send = std::get_if<Send>(&command)) {
        return "send topic=" + hex(send->topic) + " msg=" + hex(send->msg) +
               " delivery=" + (send->delivery == Delivery::all ? "all" : "one") + " cache=" + describe_cache(send->cache);
    }
    if (std::holds_alternative<Hello>(command)) return "hello";
    if (const auto* holes = std::get_if<Holes>(&command)) {
        return "holes topic=" + hex(holes->topic) + " after=" + std::to_string(holes->after);
    }
    return "quit";
}

std::string describe(const ParseResult& result) {
    if (const auto* error = std::get_if<LineError>(&result)) return describe(*error);
    return describe(std::get<Command>(result));
}

// ----------------------------------------------------------------- comparing

bool same_send(const Send& a, const Send& b) {
    return a.topic == b.topic && a.msg == b.msg && a.delivery == b.delivery && a.cache == b.cache;
}

bool same_command(const Command& a, const Command& b) {
    if (a.index() != b.index()) return false;
    if (const auto* x = std::get_if<Subscribe>(&a)) {
        const auto& y = std::get<Subscribe>(b);
        return x->topic == y.topic && x->last_seen == y.last_seen && x->cache == y.cache;
    }
    if (const auto* x = std::get_if<Unsubscribe>(&a)) return x->topic == std::get<Unsubscribe>(b).topic;
    if (const auto* x = std::get_if<Send>(&a)) return same_send(*x, std::get<Send>(b));
    if (const auto* x = std::get_if<Holes>(&a)) {
        const auto& y = std::get<Holes>(b);
        return x->topic == y.topic && x->after == y.after;
    }
    return true;  // Quit, Hello
}

bool same_result(const ParseResult& a, const ParseResult& b) {
    if (a.index() != b.index()) return false;
    if (const auto* error = std::get_if<LineError>(&a)) return *error == std::get<LineError>(b);
    return same_command(std::get<Command>(a), std::get<Command>(b));
}

void require_same(std::string_view what, std::string_view line, const ParseResult& a, const ParseResult& b,
                  const char* a_name, const char* b_name) {
    if (same_result(a, b)) return;
    const std::string detail = std::string(a_name) + ": " + describe(a) + "\n  " + b_name + ": " + describe(b);
    fail(kTarget, what, line, detail);
}

// -------------------------------------------------------- independent oracle

// One top-level value as the oracle read it.
struct OracleValue {
    enum class Kind { string, integer, boolean, other };
    Kind kind = Kind::other;
    std::string text;
    std::int64_t integer = 0;
    bool boolean = false;
};

struct OracleDoc {
    bool is_object = false;
    std::map<std::string, OracleValue> keys;  // the last occurrence of a key wins
};

// A strict RFC 8259 reader written for this target. Lone surrogate escapes
// are refused (memq's choice, PROTOCOL.md leaves it open); string bytes must
// be strict UTF-8. Nesting deeper than kMaxDepth gives up (too_deep).
class StrictJson {
public:
    enum class Outcome { valid, invalid, too_deep };

    // `overflow` tells whether a number beyond double's range was read
    // before the outcome was known (nlohmann stops there; see the quirks).
    static Outcome read(std::string_view text, OracleDoc& doc, bool* overflow = nullptr) {
        StrictJson reader(text);
        const auto report = [&](Outcome outcome) {
            if (overflow != nullptr) *overflow = reader.overflow_;
            return outcome;
        };
        reader.whitespace();
        bool ok;
        if (reader.peek() == '{') {
            doc.is_object = true;
            ok = reader.object(&doc, 1);
        } else {
            OracleValue ignored;
            ok = reader.value(ignored, 1);
        }
        if (reader.too_deep_) return report(Outcome::too_deep);
        if (!ok) return report(Outcome::invalid);
        reader.whitespace();
        return report(reader.at_end() ? Outcome::valid : Outcome::invalid);
    }

private:
    static constexpr int kMaxDepth = 200;

    explicit StrictJson(std::string_view text) : text_(text) {}

    bool at_end() const { return pos_ == text_.size(); }
    int peek() const { return at_end() ? -1 : static_cast<unsigned char>(text_[pos_]); }
    bool eat(char c) {
        if (peek() != static_cast<unsigned char>(c)) return false;
        ++pos_;
        return true;
    }
    void whitespace() {
        while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
            ++pos_;
        }
    }
    bool word(std::string_view expected) {
        if (text_.substr(pos_, expected.size()) != expected) return false;
        pos_ += expected.size();
        return true;
    }

    // `top` is non-null for the top-level object, whose members are recorded.
    bool object(OracleDoc* top, int depth) {
        if (depth > kMaxDepth) return too_deep_ = true, false;
        if (!eat('{')) return false;
        whitespace();
        if (eat('}')) return true;
        for (;;) {
            whitespace();
            std::string name;
            if (!string(name)) return false;
            whitespace();
            if (!eat(':')) return false;
            whitespace();
            OracleValue member;
            if (!value(member, depth + 1)) return false;
            if (top != nullptr) top->keys[name] = std::move(member);
            whitespace();
            if (eat(',')) continue;
            return eat('}');
        }
    }

    bool array(int depth) {
        if (depth > kMaxDepth) return too_deep_ = true, false;
        if (!eat('[')) return false;
        whitespace();
        if (eat(']')) return true;
        for (;;) {
            whitespace();
            OracleValue element;
            if (!value(element, depth + 1)) return false;
            whitespace();
            if (eat(',')) continue;
            return eat(']');
        }
    }

    bool value(OracleValue& out, int depth) {
        const int c = peek();
        out = OracleValue{};
        if (c == '{') return object(nullptr, depth);
        if (c == '[') return array(depth);
        if (c == '"') {
            out.kind = OracleValue::Kind::string;
            return string(out.text);
        }
        if (c == 't' || c == 'f') {
            out.kind = OracleValue::Kind::boolean;
            out.boolean = c == 't';
            return word(c == 't' ? "true" : "false");
        }
        if (c == 'n') return word("null");
        return number(out);
    }

    static int hex_digit(int c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    bool hex4(std::uint32_t& unit) {
        unit = 0;
        for (int i = 0; i < 4; ++i) {
            const int digit = hex_digit(peek());
            if (digit < 0) return false;
            unit = unit * 16 + static_cast<std::uint32_t>(digit);
            ++pos_;
        }
        return true;
    }

    static void put_utf8(std::string& out, std::uint32_t code) {
        const auto byte = [&](std::uint32_t b) { out.push_back(static_cast<char>(b)); };
        if (code <= 0x7F) {
            byte(code);
        } else if (code <= 0x7FF) {
            byte(0xC0 | (code >> 6)), byte(0x80 | (code & 0x3F));
        } else if (code <= 0xFFFF) {
            byte(0xE0 | (code >> 12)), byte(0x80 | ((code >> 6) & 0x3F)), byte(0x80 | (code & 0x3F));
        } else {
            byte(0xF0 | (code >> 18)), byte(0x80 | ((code >> 12) & 0x3F)), byte(0x80 | ((code >> 6) & 0x3F));
            byte(0x80 | (code & 0x3F));
        }
    }

    bool string(std::string& out) {
        if (!eat('"')) return false;
        out.clear();
        std::size_t raw_start = pos_;  // raw bytes since the last escape, checked as UTF-8 in one piece
        const auto flush_raw = [&]() {
            const std::string_view raw = text_.substr(raw_start, pos_ - raw_start);
            out.append(raw);
            return strict_utf8(raw);
        };
        for (;;) {
            const int c = peek();
            if (c < 0) return false;  // unterminated
            if (c == '"') {
                if (!flush_raw()) return false;
                ++pos_;
                return true;
            }
            if (c < 0x20) return false;  // a raw control character
            if (c != '\\') {
                ++pos_;
                continue;
            }
            if (!flush_raw()) return false;
            ++pos_;
            const int escape = peek();
            ++pos_;
            switch (escape) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    std::uint32_t unit = 0;
                    if (!hex4(unit)) return false;
                    if (unit >= 0xDC00 && unit <= 0xDFFF) return false;  // low surrogate first
                    if (unit >= 0xD800 && unit <= 0xDBFF) {
                        std::uint32_t low = 0;
                        if (!eat('\\') || !eat('u') || !hex4(low)) return false;
                        if (low < 0xDC00 || low > 0xDFFF) return false;
                        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    }
                    put_utf8(out, unit);
                    break;
                }
                default: return false;
            }
            raw_start = pos_;
        }
    }

    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? — an integer only without
    // fraction and exponent and within int64; any other number is "other".
    bool number(OracleValue& out) {
        const auto digit = [&]() { return peek() >= '0' && peek() <= '9'; };
        const std::size_t token_start = pos_;
        const bool negative = eat('-');
        const std::size_t digits_start = pos_;
        if (!digit()) return false;
        if (eat('0')) {
            // a lone zero; a digit after it ends the number and fails later
        } else {
            while (digit()) ++pos_;
        }
        const std::string_view digits = text_.substr(digits_start, pos_ - digits_start);
        bool integral = true;
        if (eat('.')) {
            integral = false;
            if (!digit()) return false;
            while (digit()) ++pos_;
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            integral = false;
            if (!eat('+')) eat('-');
            if (!digit()) return false;
            while (digit()) ++pos_;
        }
        out.kind = OracleValue::Kind::other;
        const std::string token(text_.substr(token_start, pos_ - token_start));
        if (!integral) {
            overflow_ = overflow_ || std::isinf(std::strtod(token.c_str(), nullptr));
            return true;
        }
        // Within int64: compare magnitudes as decimal strings, no arithmetic tricks.
        const std::string_view bound = negative ? "9223372036854775808" : "9223372036854775807";
        if (digits.size() > bound.size() || (digits.size() == bound.size() && digits > bound)) {
            overflow_ = overflow_ || std::isinf(std::strtod(token.c_str(), nullptr));
            return true;
        }
        std::uint64_t magnitude = 0;
        for (const char d : digits) magnitude = magnitude * 10 + static_cast<std::uint64_t>(d - '0');
        out.kind = OracleValue::Kind::integer;
        if (negative) {
            out.integer = magnitude == (std::uint64_t{1} << 63) ? std::numeric_limits<std::int64_t>::min()
                                                                : -static_cast<std::int64_t>(magnitude);
        } else {
            out.integer = static_cast<std::int64_t>(magnitude);
        }
        return true;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    bool too_deep_ = false;
    bool overflow_ = false;
};

// PROTOCOL.md's templates applied to what StrictJson read.
ParseResult oracle_template(const OracleDoc& doc) {
    using Kind = OracleValue::Kind;
    if (!doc.is_object) return LineError::malformed;
    const auto get = [&](const char* name) -> const OracleValue* {
        const auto found = doc.keys.find(name);
        return found == doc.keys.end() ? nullptr : &found->second;
    };
    const auto has_kind = [](const OracleValue* value, Kind kind) { return value != nullptr && value->kind == kind; };
    const OracleValue* command = get("command");
    if (!has_kind(command, Kind::string)) return LineError::malformed;

    std::vector<std::string_view> allowed;
    if (command->text == "subscribe") {
        allowed = {"command", "topic", "last_seen", "cache"};
    } else if (command->text == "unsubscribe") {
        allowed = {"command", "topic"};
    } else if (command->text == "send") {
        allowed = {"command", "topic", "msg", "delivery", "cache"};
    } else if (command->text == "hello") {
        return doc.keys.size() == 1 ? ParseResult{Command{Hello{}}} : ParseResult{LineError::malformed};
    } else if (command->text == "holes") {
        allowed = {"command", "topic", "after"};
    } else {
        return LineError::malformed;
    }
    for (const auto& [name, value] : doc.keys) {
        bool known = false;
        for (const std::string_view candidate : allowed) known = known || candidate == name;
        if (!known) return LineError::malformed;
    }
    const OracleValue* topic = get("topic");
    if (!has_kind(topic, Kind::string)) return LineError::malformed;
    const OracleValue* cache = get("cache");
    if (cache != nullptr && cache->kind != Kind::boolean) return LineError::malformed;

    if (command->text == "subscribe") {
        Subscribe subscribe;
        subscribe.topic = topic->text;
        if (const OracleValue* last_seen = get("last_seen")) {
            if (last_seen->kind != Kind::integer) return LineError::malformed;
            subscribe.last_seen = last_seen->integer;
        }
        if (cache != nullptr) subscribe.cache = cache->boolean;
        return Command{subscribe};
    }
    if (command->text == "unsubscribe") return Command{Unsubscribe{topic->text}};
    if (command->text == "holes") {
        const OracleValue* after = get("after");
        if (!has_kind(after, Kind::integer)) return LineError::malformed;
        return Command{Holes{topic->text, after->integer}};
    }

    const OracleValue* msg = get("msg");
    const OracleValue* delivery = get("delivery");
    if (!has_kind(msg, Kind::string) || !has_kind(delivery, Kind::string)) return LineError::malformed;
    Send send;
    send.topic = topic->text;
    send.msg = msg->text;
    if (delivery->text == "all") {
        send.delivery = Delivery::all;
    } else if (delivery->text == "one") {
        send.delivery = Delivery::one;
    } else {
        return LineError::malformed;
    }
    if (cache != nullptr) send.cache = cache->boolean;
    return Command{send};
}

std::optional<ParseResult> oracle_parse(std::string_view line, bool& overflow) {
    overflow = false;
    if (!strict_utf8(line)) return ParseResult{LineError::bad_utf8};
    if (line == "quit") return ParseResult{Command{Quit{}}};
    OracleDoc doc;
    switch (StrictJson::read(line, doc, &overflow)) {
        case StrictJson::Outcome::too_deep: return std::nullopt;
        case StrictJson::Outcome::invalid: return ParseResult{LineError::bad_json};
        case StrictJson::Outcome::valid: return oracle_template(doc);
    }
    return std::nullopt;
}

// ------------------------------------------------------ fast decoder checks

// Whenever the client's fast decoder accepts, the text is a JSON object that
// is a message, and the decoder's Message holds what StrictJson read.
void check_fast_decoder(std::string_view text) {
    Message message;
    if (!detail::fast_decode_message(text, message)) return;
    OracleDoc doc;
    if (StrictJson::read(text, doc) != StrictJson::Outcome::valid || !doc.is_object) {
        fail(kTarget, "fast_decode_message accepted a text that is not a valid JSON object", text);
    }
    const auto differs = [&](const char* key, const std::string& detail) {
        fail(kTarget, std::string("fast_decode_message: \"") + key + "\" differs from an independent JSON reader", text,
             detail);
    };
    const auto string_of = [&](const char* key) -> const OracleValue* {
        const auto found = doc.keys.find(key);
        if (found == doc.keys.end() || found->second.kind != OracleValue::Kind::string) return nullptr;
        return &found->second;
    };
    const OracleValue* command = string_of("command");
    if (command == nullptr || command->text != "send") differs("command", "not the string \"send\"");
    const OracleValue* topic = string_of("topic");
    if (topic == nullptr || topic->text != message.topic) differs("topic", "decoded " + hex(message.topic));
    const OracleValue* msg = string_of("msg");
    if (msg == nullptr || msg->text != message.msg) differs("msg", "decoded " + hex(message.msg));
    const OracleValue* delivery = string_of("delivery");
    const std::string_view delivery_name = message.delivery == Delivery::all ? "all" : "one";
    if (delivery == nullptr || delivery->text != delivery_name) differs("delivery", "decoded " + std::string(delivery_name));
    const auto index = doc.keys.find("index");
    if (index == doc.keys.end() || index->second.kind != OracleValue::Kind::integer ||
        index->second.integer != message.index) {
        differs("index", "decoded " + std::to_string(message.index));
    }
    const auto cache = doc.keys.find("cache");
    const bool same_cache = cache == doc.keys.end()
                                ? !message.cache.has_value()
                                : cache->second.kind == OracleValue::Kind::boolean && message.cache.has_value() &&
                                      *message.cache == cache->second.boolean;
    if (!same_cache) differs("cache", "decoded " + describe_cache(message.cache));
}

// ------------------------------------------------------------ encoder checks

void check_encoded_line(std::string_view encoded, const Command& expected, std::string_view origin) {
    if (encoded.empty() || encoded.back() != '\n' || encoded.find('\n') != encoded.size() - 1) {
        fail(kTarget, "ClientCore's line: not exactly one line ending in \\n", origin, "encoded: " + hex(encoded));
    }
    const std::string_view body = encoded.substr(0, encoded.size() - 1);
    if (trim_line(body) != body) fail(kTarget, "ClientCore's line is not already trimmed", origin);
    const ParseResult fast = parse_line(body);
    const ParseResult reference = parse_line_reference(body);
    const ParseResult want = Command{expected};
    require_same("ClientCore's line does not parse back (parse_line)", origin, fast, want, "parse_line(encoded)",
                 "original");
    require_same("ClientCore's line does not parse back (reference)", origin, reference, want,
                 "parse_line_reference(encoded)", "original");
    // Performance, not correctness: what clients write must take the fast path.
    detail::CommandRefFields fields;
    detail::CommandScratch scratch;
    if (!detail::scan_command(body, fields, scratch)) {
        fail(kTarget, "ClientCore's line is declined by the command scanner (takes the slow path)", origin,
             "encoded: " + hex(encoded));
    }
}

void check_message_frame(const Send& send, std::int64_t index, std::string_view origin) {
    const std::string frame = encode_message(send, index);
    if (!frame.ends_with("\r\n") || frame.find('\n') != frame.size() - 1 || frame.find('\r') != frame.size() - 2) {
        fail(kTarget, "encode_message: not one line ending in \\r\\n", origin, "frame: " + hex(frame));
    }
    if (!strict_utf8(frame)) fail(kTarget, "encode_message: frame is not UTF-8", origin, "frame: " + hex(frame));
    const nlohmann::json json = nlohmann::json::parse(frame, nullptr, /*allow_exceptions=*/false);
    const auto bad = [&](const char* why) {
        fail(kTarget, std::string("encode_message does not read back: ") + why, origin,
             "index " + std::to_string(index) + " frame: " + hex(frame));
    };
    if (json.is_discarded() || !json.is_object()) bad("not a JSON object");
    if (json.size() != (send.cache.has_value() ? 6u : 5u)) bad("wrong number of keys");
    const auto string_is = [&](const char* key, std::string_view want) {
        const auto found = json.find(key);
        return found != json.end() && found->is_string() && found->get_ref<const std::string&>() == want;
    };
    if (!string_is("command", "send")) bad("command");
    if (!string_is("topic", send.topic)) bad("topic");
    if (!string_is("msg", send.msg)) bad("msg");
    if (!string_is("delivery", send.delivery == Delivery::all ? "all" : "one")) bad("delivery");
    const auto found_index = json.find("index");
    if (found_index == json.end() || !found_index->is_number_integer() || found_index->get<std::int64_t>() != index) {
        bad("index");
    }
    if (send.cache.has_value()) {
        const auto found_cache = json.find("cache");
        if (found_cache == json.end() || !found_cache->is_boolean() || found_cache->get<bool>() != *send.cache) {
            bad("cache");
        }
    }
    // Performance, not correctness: what the broker writes must take the
    // client's fast path, to the same message.
    Message message;
    if (!detail::fast_decode_message(std::string_view(frame).substr(0, frame.size() - 2), message)) {
        bad("declined by the client's fast decoder (takes the slow path)");
    }
    if (message.topic != send.topic || message.msg != send.msg || message.delivery != send.delivery ||
        message.cache != send.cache || message.index != index) {
        bad("the client's fast decoder reads another message");
    }
}

void check_encoders(const Command& command, std::string_view origin, std::int64_t index) {
    if (const auto* send = std::get_if<Send>(&command)) {
        check_message_frame(*send, index, origin);
        check_message_frame(*send, std::numeric_limits<std::int64_t>::max(), origin);
        check_encoded_line(testing::client_line(*send), command, origin);
    } else if (const auto* subscribe = std::get_if<Subscribe>(&command)) {
        check_encoded_line(testing::client_line(*subscribe), command, origin);
    } else if (const auto* unsubscribe = std::get_if<Unsubscribe>(&command)) {
        check_encoded_line(testing::client_line(*unsubscribe), command, origin);
    }
}

// ------------------------------------------------------------- line checks

std::string_view independent_trim(std::string_view line) {
    const auto space = [](char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
    };
    while (!line.empty() && space(line.front())) line.remove_prefix(1);
    while (!line.empty() && space(line.back())) line.remove_suffix(1);
    return line;
}

void check_line(std::string_view raw, std::int64_t line_number) {
    if (is_valid_utf8(raw) != strict_utf8(raw)) fail(kTarget, "is_valid_utf8 disagrees with strict_utf8", raw);
    const std::string_view line = trim_line(raw);
    if (line != independent_trim(raw)) fail(kTarget, "trim_line disagrees with an independent trim", raw);
    check_fast_decoder(line);
    if (line.empty()) return;  // the broker ignores empty lines

    const ParseResult fast = parse_line(line);
    const ParseResult reference = parse_line_reference(line);
    require_same("parse_line and parse_line_reference disagree", line, fast, reference, "parse_line",
                 "parse_line_reference");

    bool overflow = false;
    const std::optional<ParseResult> oracle = oracle_parse(line, overflow);
    if (oracle.has_value()) {
        require_same("parse_line_reference disagrees with the independent oracle", line, reference, *oracle,
                     "parse_line_reference", "oracle (StrictJson + templates)");
    }

    if (const auto* command = std::get_if<Command>(&fast)) check_encoders(*command, line, line_number);
}

// ------------------------------------------------------- line reader checks

struct Split {
    std::vector<std::string> lines;
    LineReader::Status status = LineReader::Status::more;
};

bool is_quit_line(std::string_view line) { return independent_trim(line) == "quit"; }

// What LineReader must do, written from its contract: lines at '\n'; a line
// (or the unfinished tail) longer than `limit` ends it with too_long; a line
// that on_line refuses (here: "quit") ends it with stopped.
Split reference_split(std::string_view bytes, std::size_t limit) {
    Split split;
    for (;;) {
        const std::size_t newline = bytes.find('\n');
        const std::string_view line = bytes.substr(0, newline);
        if (line.size() > limit) return split.status = LineReader::Status::too_long, split;
        if (newline == std::string_view::npos) return split;
        split.lines.emplace_back(line);
        if (is_quit_line(line)) return split.status = LineReader::Status::stopped, split;
        bytes.remove_prefix(newline + 1);
    }
}

Split reader_split(std::string_view bytes, std::size_t limit, std::uint32_t chunk_seed) {
    Split split;
    LineReader reader(limit);
    std::uint32_t state = chunk_seed | 1;
    while (!bytes.empty()) {
        std::size_t chunk = bytes.size();
        if (chunk_seed != 0) {  // xorshift32 picks each chunk's size, 1..64
            state ^= state << 13, state ^= state >> 17, state ^= state << 5;
            chunk = std::min<std::size_t>(bytes.size(), 1 + state % 64);
        }
        split.status = reader.feed(bytes.substr(0, chunk), [&](std::string_view line) {
            split.lines.emplace_back(line);
            return !is_quit_line(line);
        });
        bytes.remove_prefix(chunk);
        if (split.status != LineReader::Status::more) {
            // A spent reader takes nothing more, and must say so.
            if (reader.feed("x\ny\n", [](std::string_view) { return true; }) != LineReader::Status::stopped) {
                fail(kTarget, "LineReader: a spent reader did not answer stopped", {});
            }
            if (reader.buffered_bytes() != 0) fail(kTarget, "LineReader: a spent reader still buffers bytes", {});
            break;
        }
        if (reader.buffered_bytes() > limit) fail(kTarget, "LineReader: buffers more than its limit", {});
    }
    return split;
}

void check_line_reader(std::string_view data) {
    std::uint32_t hash = 2166136261u;  // FNV-1a: a chunking and a limit that follow the input
    for (const char c : data) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
    const std::size_t small_limit = hash % 97;
    for (const std::size_t limit : {small_limit, kLineBytesMax}) {
        const Split want = reference_split(data, limit);
        for (const std::uint32_t seed : {0u, hash}) {
            const Split got = reader_split(data, limit, seed);
            if (got.status != want.status || got.lines != want.lines) {
                fail(kTarget, "LineReader splits differently from the reference splitter", data,
                     "limit " + std::to_string(limit) + " chunk seed " + std::to_string(seed) + ": got " +
                         std::to_string(got.lines.size()) + " lines, status " +
                         std::to_string(static_cast<int>(got.status)) + "; want " + std::to_string(want.lines.size()) +
                         " lines, status " + std::to_string(static_cast<int>(want.status)));
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (is_valid_utf8(bytes) != strict_utf8(bytes)) fail(kTarget, "is_valid_utf8 disagrees with strict_utf8", bytes);
    check_line_reader(bytes);
    // The fast decoder on a whole input: whitespace inside may include '\n'.
    if (bytes.find('\n') != std::string_view::npos) check_fast_decoder(bytes);

    // The broker's own way: one reader, a limit, lines until "quit".
    LineReader reader(kLineBytesMax);
    std::int64_t line_number = 0;
    const LineReader::Status status = reader.feed(bytes, [&](std::string_view raw) {
        check_line(raw, line_number++);
        return trim_line(raw) != "quit";
    });
    // The unfinished last line (the whole of most fuzzer inputs) is checked as a line too.
    if (status == LineReader::Status::more) {
        const std::size_t newline = bytes.rfind('\n');
        check_line(newline == std::string_view::npos ? bytes : bytes.substr(newline + 1), line_number);
    }
    return 0;
}
