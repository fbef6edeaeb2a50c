// protocol.cpp — strict UTF-8, strict JSON (nlohmann SAX, no DOM), the three
// command templates, and the encoders for every frame memq writes.
#include "protocol.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "check.hpp"
#include "flat_json.hpp"

namespace memq {

std::string_view reason_text(LineError error) {
    switch (error) {
        case LineError::bad_utf8: return "Could not decode input as UTF-8";
        case LineError::bad_json: return "Could not parse json";
        case LineError::malformed: return "Malformed json message";
        case LineError::line_too_long: return "Line too long";
        case LineError::internal: return "Internal exception";
        case LineError::too_many_topics: return "Too many topics";
    }
    return "Internal exception";
}

std::string_view trim_line(std::string_view line) {
    // The common line has nothing to trim but a '\r' (all six are <= ' ').
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && static_cast<unsigned char>(line.front()) > ' ' &&
        static_cast<unsigned char>(line.back()) > ' ') {
        return line;
    }
    constexpr std::string_view kWhitespace = " \t\r\n\f\v";
    const std::size_t first = line.find_first_not_of(kWhitespace);
    if (first == std::string_view::npos) return {};
    const std::size_t last = line.find_last_not_of(kWhitespace);
    return line.substr(first, last - first + 1);
}

bool is_valid_utf8(std::string_view bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();
    while (p != end) {
        const unsigned char lead = *p;
        if (lead < 0x80) {
            ++p;
            continue;
        }
        // The allowed range of the second byte depends on the lead byte
        // (RFC 3629 table): this is what rules out overlongs and surrogates.
        std::size_t length;
        unsigned char second_min = 0x80, second_max = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) {
            length = 2;
        } else if (lead == 0xE0) {
            length = 3, second_min = 0xA0;
        } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
            length = 3;
        } else if (lead == 0xED) {
            length = 3, second_max = 0x9F;
        } else if (lead == 0xF0) {
            length = 4, second_min = 0x90;
        } else if (lead >= 0xF1 && lead <= 0xF3) {
            length = 4;
        } else if (lead == 0xF4) {
            length = 4, second_max = 0x8F;
        } else {
            return false;  // continuation byte as lead, C0/C1 overlong leads, F5..FF
        }
        if (static_cast<std::size_t>(end - p) < length) return false;
        if (p[1] < second_min || p[1] > second_max) return false;
        for (std::size_t i = 2; i < length; ++i) {
            if ((p[i] & 0xC0) != 0x80) return false;
        }
        p += length;
    }
    return true;
}

namespace {

using Json = nlohmann::json;
using detail::Field;

// What a reader found in one command object, before the templates are checked.
// Both readers (scan_flat_object and the SAX path) fill it with the same meaning.
struct CommandFields {
    Field command, topic, msg, delivery, last_seen, cache;
    bool top_level_is_object = false;
    bool unknown_key = false;

    // The field for a top-level key, or nullptr for a key no template has.
    Field* field_named(std::string_view name) {
        for (const detail::FieldSlot& slot : slots()) {
            if (slot.name == name) return slot.field;
        }
        return nullptr;
    }

    std::array<detail::FieldSlot, 6> slots() {
        return {{{"command", &command},
                 {"topic", &topic},
                 {"msg", &msg},
                 {"delivery", &delivery},
                 {"last_seen", &last_seen},
                 {"cache", &cache}}};
    }
};

// Reads one JSON text without building a DOM: records the scalar values of
// the top-level object's known keys, notes anything that cannot match any
// template, and otherwise only checks that the text is valid JSON.
class CommandSax {
public:
    explicit CommandSax(CommandFields& fields) : fields_(fields) {}

    bool null() { return scalar(Field::Kind::other); }
    bool boolean(bool value) {
        if (Field* field = target()) field->kind = Field::Kind::boolean, field->boolean = value;
        return scalar(Field::Kind::boolean);
    }
    bool number_integer(Json::number_integer_t value) {
        if (Field* field = target()) field->kind = Field::Kind::integer, field->integer = value;
        return scalar(Field::Kind::integer);
    }
    bool number_unsigned(Json::number_unsigned_t value) {
        if (value > static_cast<Json::number_unsigned_t>(std::numeric_limits<std::int64_t>::max())) {
            return scalar(Field::Kind::other);
        }
        return number_integer(static_cast<std::int64_t>(value));
    }
    bool number_float(Json::number_float_t, const Json::string_t&) { return scalar(Field::Kind::other); }
    bool string(Json::string_t& value) {
        if (Field* field = target()) field->kind = Field::Kind::string, field->text = std::move(value);
        return scalar(Field::Kind::string);
    }
    bool binary(Json::binary_t&) { return scalar(Field::Kind::other); }

    bool start_object(std::size_t) { return open(/*is_object=*/true); }
    bool start_array(std::size_t) { return open(/*is_object=*/false); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }

    bool key(Json::string_t& name) {
        if (depth_ != 1) return true;
        current_ = fields_.field_named(name);
        if (current_ == nullptr) fields_.unknown_key = true;
        return true;
    }

    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) {
        number_overflow = error.id == kNumberOverflow;
        return false;
    }

    // nlohmann stops at a number beyond double's range (1e400), which RFC 8259 allows.
    static constexpr int kNumberOverflow = 406;
    bool number_overflow = false;

private:
    // The field the next value at depth 1 belongs to, if it is a known key.
    Field* target() const { return depth_ == 1 ? current_ : nullptr; }

    bool scalar(Field::Kind kind) {
        if (depth_ == 1 && current_ != nullptr && kind == Field::Kind::other) current_->kind = kind;
        return true;
    }

    bool open(bool is_object) {
        if (depth_ == 0) fields_.top_level_is_object = is_object;
        if (depth_ == 1 && current_ != nullptr) current_->kind = Field::Kind::other;  // nested value
        ++depth_;
        return true;
    }

    bool close() {
        --depth_;
        return true;
    }

    CommandFields& fields_;
    std::size_t depth_ = 0;
    Field* current_ = nullptr;
};

using detail::RefField;

// The templates, over what either reader found, into `out` (in place: this
// is the hot path, and the result is large). Views in `fields` stay valid as
// long as the line, the scratch buffers and the slow path's fields do.
void to_command(const detail::CommandRefFields& fields, bool top_level_is_object, bool unknown_key,
                ParseRefResult& out) {
    using Kind = Field::Kind;
    out = LineError::malformed;  // unless a template matches
    if (!top_level_is_object || unknown_key || !fields.command.is(Kind::string)) return;
    if (!fields.topic.is(Kind::string)) return;
    const std::string_view name = fields.command.text;
    const bool cache_ok = fields.cache.is(Kind::absent) || fields.cache.is(Kind::boolean);

    if (name == "send") {
        if (!fields.msg.is(Kind::string) || !fields.delivery.is(Kind::string) || !fields.last_seen.is(Kind::absent) ||
            !cache_ok) {
            return;
        }
        Delivery delivery;
        if (fields.delivery.text == "all") {
            delivery = Delivery::all;
        } else if (fields.delivery.text == "one") {
            delivery = Delivery::one;
        } else {
            return;
        }
        SendRef& send = std::get<SendRef>(out.emplace<CommandRef>(std::in_place_type<SendRef>));
        send.topic.text = fields.topic.text;
        send.topic.json = fields.topic.json;
        send.msg.text = fields.msg.text;
        send.msg.json = fields.msg.json;
        send.delivery = delivery;
        if (fields.cache.is(Kind::boolean)) send.cache = fields.cache.boolean;
        return;
    }
    if (name == "subscribe") {
        const bool last_seen_ok = fields.last_seen.is(Kind::absent) || fields.last_seen.is(Kind::integer);
        if (!fields.msg.is(Kind::absent) || !fields.delivery.is(Kind::absent) || !last_seen_ok || !cache_ok) return;
        SubscribeRef& subscribe = std::get<SubscribeRef>(out.emplace<CommandRef>(std::in_place_type<SubscribeRef>));
        subscribe.topic = fields.topic.text;
        if (fields.last_seen.is(Kind::integer)) subscribe.last_seen = fields.last_seen.integer;
        if (fields.cache.is(Kind::boolean)) subscribe.cache = fields.cache.boolean;
        return;
    }
    if (name == "unsubscribe") {
        if (!fields.msg.is(Kind::absent) || !fields.delivery.is(Kind::absent) || !fields.last_seen.is(Kind::absent) ||
            !fields.cache.is(Kind::absent)) {
            return;
        }
        out.emplace<CommandRef>(UnsubscribeRef{fields.topic.text});
    }
}

// The slow reader's fields as views: of `fields`, or, with `keep`, of keep's
// buffers, into which the strings are moved (they then outlive `fields`).
void view_fields(CommandFields& fields, detail::CommandRefFields& out, detail::CommandScratch* keep) {
    const auto view = [](Field& field, RefField& ref, std::string* kept) {
        ref = RefField{};
        ref.kind = field.kind;
        if (kept != nullptr) {
            *kept = std::move(field.text);
            ref.text = *kept;
        } else {
            ref.text = field.text;
        }
        ref.integer = field.integer;
        ref.boolean = field.boolean;
    };
    const bool k = keep != nullptr;
    view(fields.command, out.command, k ? &keep->command : nullptr);
    view(fields.topic, out.topic, k ? &keep->topic : nullptr);
    view(fields.msg, out.msg, k ? &keep->msg : nullptr);
    view(fields.delivery, out.delivery, k ? &keep->delivery : nullptr);
    view(fields.last_seen, out.last_seen, nullptr);  // never a string the templates read
    view(fields.cache, out.cache, nullptr);
}

Command to_owned(const CommandRef& command) {
    struct Owned {
        Command operator()(const SubscribeRef& c) const { return Subscribe{std::string(c.topic), c.last_seen, c.cache}; }
        Command operator()(const UnsubscribeRef& c) const { return Unsubscribe{std::string(c.topic)}; }
        Command operator()(const SendRef& c) const {
            return Send{std::string(c.topic.text), std::string(c.msg.text), c.delivery, c.cache};
        }
        Command operator()(const Quit&) const { return Quit{}; }
    };
    return std::visit(Owned{}, command);
}

ParseResult to_owned(const ParseRefResult& parsed) {
    if (const auto* error = std::get_if<LineError>(&parsed)) return *error;
    return to_owned(std::get<CommandRef>(parsed));
}

}  // namespace

namespace {

// The same text with every number that is a float or has 20 or more digits
// (never an int64 to us, so never anything but "other") written as 0.5;
// strings, and every other byte, are left as they are. A valid JSON text stays
// valid and an invalid one invalid: a number token is replaced by a number
// token. A number token followed at once by a character that could continue a
// number (`1e400e5`) is never valid JSON, and "0.5" could glue onto it, so that
// text gives nullopt: it is invalid as it stands.
std::optional<std::string> tame_numbers(std::string_view line) {
    std::string out;
    out.reserve(line.size());
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    std::size_t i = 0;
    while (i < line.size()) {
        const char c = line[i];
        if (c == '"') {  // copy a string through, escapes included
            const std::size_t start = i++;
            while (i < line.size() && line[i] != '"') i += line[i] == '\\' ? 2 : 1;
            i = std::min(i + 1, line.size());
            out.append(line.substr(start, i - start));
            continue;
        }
        if (c != '-' && !is_digit(c)) {
            out.push_back(c);
            ++i;
            continue;
        }
        // -?digits(.digits)?([eE][+-]?digits)?, matched greedily.
        const std::size_t start = i;
        if (line[i] == '-') ++i;
        const std::size_t digits_start = i;
        while (i < line.size() && is_digit(line[i])) ++i;
        const std::size_t integer_digits = i - digits_start;
        bool is_float = false;
        if (integer_digits > 0 && i + 1 < line.size() && line[i] == '.' && is_digit(line[i + 1])) {
            is_float = true;
            for (++i; i < line.size() && is_digit(line[i]);) ++i;
        }
        if (integer_digits > 0 && i < line.size() && (line[i] == 'e' || line[i] == 'E')) {
            std::size_t j = i + 1;
            if (j < line.size() && (line[j] == '+' || line[j] == '-')) ++j;
            if (j < line.size() && is_digit(line[j])) {
                is_float = true;
                for (i = j; i < line.size() && is_digit(line[i]);) ++i;
            }
        }
        const bool valid_integer_part = integer_digits == 1 || (integer_digits > 1 && line[digits_start] != '0');
        const bool tame = valid_integer_part && (is_float || integer_digits >= 20);
        if (i < line.size() && (is_digit(line[i]) || std::string_view(".eE+-").find(line[i]) != std::string_view::npos)) {
            return std::nullopt;
        }
        out.append(tame ? std::string_view("0.5") : line.substr(start, i - start));
    }
    return out;
}

// nlohmann reads past two things that JSON (and the Python reference) reject:
// a leading UTF-8 byte order mark, which it skips, and a NUL byte, which it
// takes for the end of the input. Neither can be in a valid line.
bool nlohmann_would_misread(std::string_view line) {
    return line.starts_with("\xEF\xBB\xBF") || line.find('\0') != std::string_view::npos;
}

// Reads `line` with nlohmann into `fields`; an error, or nullopt when the
// templates are to decide (then fields.top_level_is_object is set).
std::optional<LineError> read_with_nlohmann(std::string_view line, CommandFields& fields) {
    if (nlohmann_would_misread(line)) return LineError::bad_json;
    {
        CommandSax sax(fields);
        if (Json::sax_parse(line.begin(), line.end(), &sax, nlohmann::detail::input_format_t::json, true)) {
            return std::nullopt;
        }
        if (!sax.number_overflow) return LineError::bad_json;
    }
    const std::optional<std::string> tamed = tame_numbers(line);
    if (!tamed) return LineError::bad_json;
    fields = CommandFields{};
    CommandSax tamed_sax(fields);
    if (!Json::sax_parse(tamed->begin(), tamed->end(), &tamed_sax, nlohmann::detail::input_format_t::json, true)) {
        return LineError::bad_json;
    }
    return std::nullopt;
}

// The reference: UTF-8, "quit", then nlohmann and the templates. The views
// of a command point into `fields`.
ParseRefResult parse_reference(std::string_view line, CommandFields& fields, detail::CommandRefFields& views,
                               detail::CommandScratch* keep) {
    if (!is_valid_utf8(line)) return LineError::bad_utf8;
    if (line == "quit") return CommandRef{Quit{}};
    if (const std::optional<LineError> error = read_with_nlohmann(line, fields)) return *error;
    view_fields(fields, views, keep);
    ParseRefResult result;
    to_command(views, fields.top_level_is_object, fields.unknown_key, result);
    return result;
}

}  // namespace

ParseRefResult LineParser::parse(std::string_view line) {
    ParseRefResult result;  // one object, returned in place
    if (detail::scan_command(line, fields_, scratch_)) {
        to_command(fields_, /*top_level_is_object=*/true, /*unknown_key=*/false, result);
    } else {
        result = parse_slow(line);  // not the common shape, or not valid: the reference decides
    }
    return result;
}

ParseRefResult LineParser::parse_slow(std::string_view line) {
    CommandFields fields;  // the views end up in scratch_, which outlives it
    return parse_reference(line, fields, fields_, &scratch_);
}

ParseResult parse_line(std::string_view line) {
    LineParser parser;
    return to_owned(parser.parse(line));
}

ParseResult parse_line_reference(std::string_view line) {
    CommandFields fields;
    detail::CommandRefFields views;
    return to_owned(parse_reference(line, fields, views, nullptr));
}

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t run_start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
#if defined(__SSE2__)
        // Past 16 bytes at a time that need no escape (>= 0x20 unsigned, not
        // '"' or '\\'); x ^ 0x80 turns the unsigned test into a signed one.
        while (text.size() - i >= 16) {
            const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
            const __m128i control = _mm_cmplt_epi8(_mm_xor_si128(bytes, _mm_set1_epi8(static_cast<char>(0x80))),
                                                   _mm_set1_epi8(static_cast<char>(0x20 ^ 0x80)));
            const __m128i special = _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('"')),
                                                                       _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\\'))));
            const auto mask = static_cast<unsigned>(_mm_movemask_epi8(special));
            if (mask != 0) {
                i += static_cast<std::size_t>(std::countr_zero(mask));
                break;
            }
            i += 16;
        }
        if (i == text.size()) break;
#endif
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text, run_start, i - run_start);
        run_start = i + 1;
        switch (c) {
            case '"': out.append("\\\""); break;
            case '\\': out.append("\\\\"); break;
            case '\n': out.append("\\n"); break;
            case '\r': out.append("\\r"); break;
            case '\t': out.append("\\t"); break;
            case '\b': out.append("\\b"); break;
            case '\f': out.append("\\f"); break;
            default:
                out.append("\\u00");
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 0xF]);
        }
    }
    out.append(text, run_start, text.size() - run_start);
    out.push_back('"');
}

namespace {

void append_integer(std::string& out, std::int64_t value) {
    char digits[24];
    const auto result = std::to_chars(std::begin(digits), std::end(digits), value);
    out.append(digits, result.ptr);
}

// `{"command": "send", ...` up to and without the closing brace: the fields a
// send command and its delivered message share.
void append_send_fields(std::string& out, const Send& send) {
    out.append("{\"command\": \"send\", \"topic\": ");
    append_json_string(out, send.topic);
    out.append(", \"msg\": ");
    append_json_string(out, send.msg);
    out.append(send.delivery == Delivery::one ? ", \"delivery\": \"one\"" : ", \"delivery\": \"all\"");
    if (send.cache.has_value()) out.append(*send.cache ? ", \"cache\": true" : ", \"cache\": false");
}

}  // namespace

std::string encode_ack() { return "{\"success\": true}\r\n"; }

std::string encode_error(LineError error) {
    std::string frame = "{\"success\": false, \"reason\": ";
    append_json_string(frame, reason_text(error));
    frame.append("}\r\n");
    return frame;
}

namespace {
void append_string_ref(std::string& out, const StringRef& text) {
    if (text.json.empty()) {
        append_json_string(out, text.text);
    } else {
        out.append(text.json);  // already what append_json_string writes for text.text
    }
}
}  // namespace

void append_message(std::string& out, const SendRef& send, std::int64_t index) {
    if (send.topic.json.empty() || send.msg.json.empty()) {
        // A string to escape: the general way, one piece at a time.
        constexpr std::size_t kFixedBytes = 96;  // keys, punctuation, delivery, cache, index
        out.reserve(out.size() + send.topic.text.size() + send.msg.text.size() + kFixedBytes);
        out.append("{\"command\": \"send\", \"topic\": ");
        append_string_ref(out, send.topic);
        out.append(", \"msg\": ");
        append_string_ref(out, send.msg);
        out.append(send.delivery == Delivery::one ? ", \"delivery\": \"one\"" : ", \"delivery\": \"all\"");
        if (send.cache.has_value()) out.append(*send.cache ? ", \"cache\": true" : ", \"cache\": false");
        out.append(", \"index\": ");
        append_integer(out, index);
        out.append("}\r\n");
        return;
    }
    // The common case: both literals copied as they are, into bytes sized once.
    constexpr std::string_view kHead = "{\"command\": \"send\", \"topic\": ";
    constexpr std::string_view kMsg = ", \"msg\": ";
    constexpr std::string_view kAll = ", \"delivery\": \"all\"";
    constexpr std::string_view kOne = ", \"delivery\": \"one\"";
    constexpr std::string_view kCacheTrue = ", \"cache\": true";
    constexpr std::string_view kCacheFalse = ", \"cache\": false";
    constexpr std::string_view kIndex = ", \"index\": ";
    constexpr std::string_view kEnd = "}\r\n";
    static_assert(kAll.size() == kOne.size());
    char digits[24];
    const char* const digits_end = std::to_chars(std::begin(digits), std::end(digits), index).ptr;
    const auto digit_count = static_cast<std::size_t>(digits_end - digits);
    const std::size_t cache_bytes = !send.cache.has_value() ? 0 : *send.cache ? kCacheTrue.size() : kCacheFalse.size();
    const std::size_t total = kHead.size() + send.topic.json.size() + kMsg.size() + send.msg.json.size() + kAll.size() +
                              cache_bytes + kIndex.size() + digit_count + kEnd.size();
    const std::size_t start = out.size();
    out.resize(start + total);
    char* cursor = out.data() + start;
    const auto put = [&cursor](const char* data, std::size_t size) {
        std::memcpy(cursor, data, size);
        cursor += size;
    };
    put(kHead.data(), kHead.size());
    put(send.topic.json.data(), send.topic.json.size());
    put(kMsg.data(), kMsg.size());
    put(send.msg.json.data(), send.msg.json.size());
    put(send.delivery == Delivery::one ? kOne.data() : kAll.data(), kAll.size());
    if (cache_bytes != 0) put(*send.cache ? kCacheTrue.data() : kCacheFalse.data(), cache_bytes);
    put(kIndex.data(), kIndex.size());
    put(digits, digit_count);
    put(kEnd.data(), kEnd.size());
    MEMQ_CHECK(cursor == out.data() + out.size());
}

std::string encode_message(const Send& send, std::int64_t index) {
    std::string frame;
    append_message(frame, SendRef{{send.topic, {}}, {send.msg, {}}, send.delivery, send.cache}, index);
    return frame;
}

std::string encode_command(const Subscribe& command) {
    std::string line = "{\"command\": \"subscribe\", \"topic\": ";
    append_json_string(line, command.topic);
    if (command.last_seen != -1) {
        line.append(", \"last_seen\": ");
        append_integer(line, command.last_seen);
    }
    if (!command.cache) line.append(", \"cache\": false");
    line.append("}\n");
    return line;
}

std::string encode_command(const Unsubscribe& command) {
    std::string line = "{\"command\": \"unsubscribe\", \"topic\": ";
    append_json_string(line, command.topic);
    line.append("}\n");
    return line;
}

std::string encode_command(const Send& command) {
    std::string line;
    append_send_fields(line, command);
    line.append("}\n");
    return line;
}

}  // namespace memq
