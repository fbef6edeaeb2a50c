// flat_json.cpp — a strict, single-pass scanner for flat JSON objects.
#include "flat_json.hpp"

#include <cstring>
#include <limits>

#include "protocol.hpp"

namespace memq::detail {
namespace {

// Four hex digits (any case) at `p`, into `value`.
bool hex4(const char*& p, const char* end, std::uint32_t& value) {
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

}  // namespace

bool read_unicode_escape(const char*& p, const char* end, std::string& out, std::uint32_t& code) {
    if (!hex4(p, end, code)) return false;
    if (code >= 0xDC00 && code <= 0xDFFF) return false;  // a low surrogate alone
    if (code >= 0xD800 && code <= 0xDBFF) {
        std::uint32_t low = 0;
        if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return false;
        p += 2;
        if (!hex4(p, end, low) || low < 0xDC00 || low > 0xDFFF) return false;
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, code);
    return true;
}

namespace {

// Reads JSON tokens from [p, end); every function returns false to decline.
class Scanner {
public:
    explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    bool at_end() const { return p_ == end_; }
    char peek() const { return p_ == end_ ? '\0' : *p_; }

    // RFC 8259 whitespace only: space, tab, line feed, carriage return.
    void skip_whitespace() {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }

    bool take(char expected) {
        if (p_ == end_ || *p_ != expected) return false;
        ++p_;
        return true;
    }

    // A string literal, unescaped into `out`.
    bool string(std::string& out) {
        if (!take('"')) return false;
        out.clear();
        const char* run = p_;
        bool ascii = true;
        while (p_ != end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                out.append(run, p_);
                ++p_;
                return ascii || is_valid_utf8(out);
            }
            if (c < 0x20) return false;
            if (c >= 0x80) ascii = false;
            if (c != '\\') {
                ++p_;
                continue;
            }
            out.append(run, p_);
            if (++p_ == end_) return false;
            switch (*p_++) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u':
                    if (std::uint32_t code = 0; !read_unicode_escape(p_, end_, out, code)) return false;
                    break;
                default: return false;
            }
            run = p_;
        }
        return false;
    }

    // -?(0|[1-9][0-9]*) with no fraction or exponent, within int64.
    bool integer(std::int64_t& value) {
        const bool negative = take('-');
        if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
        if (*p_ == '0' && p_ + 1 != end_ && p_[1] >= '0' && p_[1] <= '9') return false;  // leading zero
        // The magnitude, unsigned; int64's range is [-(2^63), 2^63 - 1].
        const std::uint64_t limit =
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + (negative ? 1 : 0);
        std::uint64_t magnitude = 0;
        while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
            const auto digit = static_cast<std::uint64_t>(*p_ - '0');
            if (magnitude > (limit - digit) / 10) return false;
            magnitude = magnitude * 10 + digit;
            ++p_;
        }
        if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
        value = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
        return true;
    }

    bool literal(std::string_view word) {
        if (static_cast<std::size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) {
            return false;
        }
        p_ += word.size();
        return true;
    }

private:

    const char* p_;
    const char* end_;
};

bool scan_value(Scanner& scanner, Field& field) {
    const char c = scanner.peek();
    if (c == '"') {
        if (!scanner.string(field.text)) return false;
        field.kind = Field::Kind::string;
    } else if (c == 't' || c == 'f') {
        const bool value = c == 't';
        if (!scanner.literal(value ? "true" : "false")) return false;
        field.kind = Field::Kind::boolean;
        field.boolean = value;
    } else {
        if (!scanner.integer(field.integer)) return false;
        field.kind = Field::Kind::integer;
    }
    return true;
}

Field* slot_for(std::span<const FieldSlot> slots, std::string_view name) {
    for (const FieldSlot& slot : slots) {
        if (slot.name == name) return slot.field;
    }
    return nullptr;
}

}  // namespace

bool scan_flat_object(std::string_view text, std::span<const FieldSlot> slots, UnknownKeys unknown_keys) {
    Scanner scanner(text);
    Field key;
    Field ignored;
    scanner.skip_whitespace();
    if (!scanner.take('{')) return false;
    for (;;) {
        scanner.skip_whitespace();
        if (!scanner.string(key.text)) return false;  // also declines the empty object
        Field* field = slot_for(slots, key.text);
        if (field == nullptr && unknown_keys == UnknownKeys::decline) return false;
        if (field == nullptr) field = &ignored;
        scanner.skip_whitespace();
        if (!scanner.take(':')) return false;
        scanner.skip_whitespace();
        if (!scan_value(scanner, *field)) return false;
        scanner.skip_whitespace();
        if (scanner.take(',')) continue;
        if (scanner.take('}')) break;
        return false;
    }
    scanner.skip_whitespace();
    return scanner.at_end();
}

}  // namespace memq::detail
