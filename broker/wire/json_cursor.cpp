// json_cursor.cpp — the cold part of the JSON cursor: strings with escapes,
// decoded into the caller's scratch buffer (\uXXXX and surrogate pairs as
// UTF-8), and whether the literal is the canonical one.
#include "json_cursor.hpp"

namespace memq::detail {
namespace {

// Four hex digits (any case) at `p`, into `value`.
bool read_hex4(const char*& p, const char* end, std::uint32_t& value) {
    if (end - p < 4) return false;
    value = 0;
    for (int i = 0; i < 4; ++i) {
        const char c = *p++;
        value <<= 4;
        if (c >= '0' && c <= '9') {
            value |= static_cast<std::uint32_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            value |= static_cast<std::uint32_t>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            value |= static_cast<std::uint32_t>(c - 'A' + 10);
        } else {
            return false;
        }
    }
    return true;
}

void append_utf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
        out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (code >> 6)));
        out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (code >> 12)));
        out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (code >> 18)));
        out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// After "\u" at `p`: one code point, or a surrogate pair written as two
// escapes, appended to `out` as UTF-8. append_json_string writes a \u escape
// only as "\u00xx" (lowercase) for a control without a short form; any other
// \u escape makes the literal not canonical.
bool read_unicode_escape(const char*& p, const char* end, std::string& out, bool& canonical) {
    const char* const digits = p;
    std::uint32_t code = 0;
    if (!read_hex4(p, end, code)) return false;
    if (code >= 0xDC00 && code <= 0xDFFF) return false;  // a low surrogate alone
    if (code >= 0xD800 && code <= 0xDBFF) {
        std::uint32_t low = 0;
        if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return false;  // a high surrogate alone
        p += 2;
        if (!read_hex4(p, end, low) || low < 0xDC00 || low > 0xDFFF) return false;
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    const bool has_short_form = code == '\b' || code == '\f' || code == '\n' || code == '\r' || code == '\t';
    if (code >= 0x20 || has_short_form || !is_lower_hex(digits[2]) || !is_lower_hex(digits[3])) canonical = false;
    append_utf8(out, code);
    return true;
}

}  // namespace

bool JsonCursor::read_escaped_string_rest(const char* start, JsonString& out, std::string& scratch) {
    scratch.assign(start, p_);
    bool canonical = true;  // the literal is what append_json_string writes for its value
    for (;;) {
        // At a backslash.
        if (++p_ == end_) return false;
        switch (*p_++) {
            case '"': scratch.push_back('"'); break;
            case '\\': scratch.push_back('\\'); break;
            case '/': scratch.push_back('/'), canonical = false; break;
            case 'b': scratch.push_back('\b'); break;
            case 'f': scratch.push_back('\f'); break;
            case 'n': scratch.push_back('\n'); break;
            case 'r': scratch.push_back('\r'); break;
            case 't': scratch.push_back('\t'); break;
            case 'u':
                if (!read_unicode_escape(p_, end_, scratch, canonical)) return false;
                break;
            default: return false;
        }
        // The plain run up to the next backslash or the closing quote.
        const char* const run = p_;
        if (!skip_string_run()) return false;
        scratch.append(run, p_);
        if (*p_ == '"') break;
    }
    ++p_;  // the closing quote
    out.text = scratch;
    out.json = canonical ? std::string_view(start - 1, static_cast<std::size_t>(p_ - (start - 1))) : std::string_view();
    return true;
}

}  // namespace memq::detail
