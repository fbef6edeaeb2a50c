// flat_json.hpp — a fast, strict reader for flat JSON objects (internal to memq).
//
// Rules: it reads only the common shape of memq's lines — one JSON object
// whose values are strings, integers within int64, or booleans — into the
// Field named for each key (the last occurrence of a key wins). For anything
// else (any syntax error, nesting, null, floats, an invalid or lone-surrogate
// \u escape, string bytes that are not UTF-8) it declines, and the caller
// runs nlohmann, which stays the reference. So it may make a reader faster,
// never different: it never accepts a text nlohmann would reject, and fills
// each Field as nlohmann's values would.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace memq::detail {

// What one key of the object held.
struct Field {
    enum class Kind : std::uint8_t { absent, string, integer, boolean, other };
    Kind kind = Kind::absent;
    std::string text;
    std::int64_t integer = 0;
    bool boolean = false;

    bool is(Kind k) const { return kind == k; }
};

struct FieldSlot {
    std::string_view name;
    Field* field;
};

enum class UnknownKeys : std::uint8_t { decline, skip };

// Returns false to decline; the slots' Fields are then unspecified.
bool scan_flat_object(std::string_view text, std::span<const FieldSlot> slots, UnknownKeys unknown_keys);

// The one reader of a JSON "\u" escape, for both scanners. `p` points just
// past "\u": reads four hex digits and, for a high surrogate, the "\uXXXX"
// low half that must follow; appends the code point's UTF-8 to `out`, sets
// `code` and moves `p` past what it read. Returns false, for the caller to
// decline, on bad hex or a lone or mismatched surrogate.
bool read_unicode_escape(const char*& p, const char* end, std::string& out, std::uint32_t& code);

}  // namespace memq::detail
