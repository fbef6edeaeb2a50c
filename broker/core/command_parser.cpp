// command_parser.cpp — the broker's reading of one command line: the fast
// scanner (command_scan) for the common shape, and the reference path (strict
// UTF-8, then nlohmann's SAX interface, no DOM) that decides everything else;
// both end in the same three templates.
#include "command_parser.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "command_scan.hpp"

namespace memq {
namespace {

using Json = nlohmann::json;

// What one key of the object held, as the SAX reader saw it (its own copy of
// the string: nlohmann hands over each value once).
struct Field {
    using Kind = detail::FieldKind;
    Kind kind = Kind::absent;
    std::string text;
    std::int64_t integer = 0;
    bool boolean = false;
};

struct FieldSlot {
    std::string_view name;
    Field* field;
};

// What the reference reader found in one command object, before the templates
// are checked; it means what the scanner's CommandRefFields mean.
struct CommandFields {
    Field command, topic, msg, delivery, last_seen, cache;
    Field after;  // the holes extension's; the fast scanner declines any line with it
    bool top_level_is_object = false;
    bool unknown_key = false;

    // The field for a top-level key, or nullptr for a key no template has.
    Field* field_named(std::string_view name) {
        for (const FieldSlot& slot : slots()) {
            if (slot.name == name) return slot.field;
        }
        return nullptr;
    }

    std::array<FieldSlot, 7> slots() {
        return {{{"command", &command},
                 {"topic", &topic},
                 {"msg", &msg},
                 {"delivery", &delivery},
                 {"last_seen", &last_seen},
                 {"cache", &cache},
                 {"after", &after}}};
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
// `after` is the holes extension's key, which only the slow reader reads (the
// fast scanner declines a line with it): absent on the fast path.
void to_command(const detail::CommandRefFields& fields, const RefField& after, bool top_level_is_object,
                bool unknown_key, ParseRefResult& out) {
    using Kind = Field::Kind;
    out = LineError::malformed;  // unless a template matches
    if (!top_level_is_object || unknown_key || !fields.command.is(Kind::string)) return;
    const std::string_view name = fields.command.text;
    if (name == "hello") {  // the memq extension: "command" and nothing else
        const bool only_command = fields.topic.is(Kind::absent) && fields.msg.is(Kind::absent) &&
                                  fields.delivery.is(Kind::absent) && fields.last_seen.is(Kind::absent) &&
                                  fields.cache.is(Kind::absent) && after.is(Kind::absent);
        if (only_command) out.emplace<CommandRef>(Hello{});
        return;
    }
    if (!fields.topic.is(Kind::string)) return;
    if (name == "holes") {  // the memq extension: "command", "topic" and an integer "after", nothing else
        const bool exact = fields.msg.is(Kind::absent) && fields.delivery.is(Kind::absent) &&
                           fields.last_seen.is(Kind::absent) && fields.cache.is(Kind::absent) &&
                           after.is(Kind::integer);
        if (exact) out.emplace<CommandRef>(HolesRef{fields.topic.text, after.integer});
        return;
    }
    if (!after.is(Kind::absent)) return;  // no other template has it
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
        Command operator()(const Hello&) const { return Hello{}; }
        Command operator()(const HolesRef& c) const { return Holes{std::string(c.topic), c.after}; }
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
    RefField after;
    after.kind = fields.after.kind;
    after.integer = fields.after.integer;
    ParseRefResult result;
    to_command(views, after, fields.top_level_is_object, fields.unknown_key, result);
    return result;
}

}  // namespace

ParseRefResult LineParser::parse(std::string_view line) {
    ParseRefResult result;  // one object, returned in place
    if (detail::scan_command(line, fields_, scratch_)) {
        to_command(fields_, RefField{}, /*top_level_is_object=*/true, /*unknown_key=*/false, result);
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

}  // namespace memq
