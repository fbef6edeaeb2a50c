// command_scan.hpp — the broker's one-pass reader of a command line (internal
// to memq): strict UTF-8, strict JSON and the six known keys, in one scan,
// straight out of the line's bytes, built on the shared JSON cursor
// (wire/json_cursor.hpp).
//
// Rules: it reads only the common shape (one flat object of strings, int64
// integers and booleans, keys among the templates' six, written without
// escapes) and declines everything else, errors included; the caller then
// runs the reference path (nlohmann's SAX reader, command_parser.cpp), which
// decides. When it accepts, the line is valid UTF-8 and valid JSON, and every
// field holds what nlohmann would have read. Strings are views into the line;
// only a string with escapes is decoded, into the caller's scratch buffer. A
// string also carries its JSON text as written when that is exactly what
// append_json_string would write for it, so a frame can copy it as it is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace memq::detail {

// What one key of a command object held, as either reader saw it: `other` is
// a value no template takes (null, a float, an array, an object).
enum class FieldKind : std::uint8_t { absent, string, integer, boolean, other };

// What one key of the object held; the views live as long as the line and
// the scratch buffers.
struct RefField {
    using Kind = FieldKind;
    Kind kind = Kind::absent;
    std::string_view text;  // a string's decoded value
    std::string_view json;  // a string's literal as written (quotes included) if canonical, else empty
    std::int64_t integer = 0;
    bool boolean = false;

    bool is(Kind k) const { return kind == k; }
};

struct CommandRefFields {
    RefField command, topic, msg, delivery, last_seen, cache;
};

// Where decoded strings go, one buffer per key; reused from line to line.
struct CommandScratch {
    std::string command, topic, msg, delivery, other;
};

// Returns false to decline; `fields` is then unspecified.
bool scan_command(std::string_view line, CommandRefFields& fields, CommandScratch& scratch);

}  // namespace memq::detail
