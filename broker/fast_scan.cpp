// fast_scan.cpp — a strict, single-pass scanner for flat command objects.
#include "fast_scan.hpp"

#include <cstdint>
#include <cstring>
#include <limits>

namespace memq::detail {
namespace {

// Reads JSON tokens from [p, end); every function returns false to decline.
class Scanner {
public:
    explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    bool at_end() const { return p_ == end_; }

    // RFC 8259 whitespace only: space, tab, line feed, carriage return.
    void skip_whitespace() {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }

    bool take(char expected) {
        if (p_ == end_ || *p_ != expected) return false;
        ++p_;
        return true;
    }

    char peek() const { return *p_; }

    // A key: a string with no escapes (every known key is plain ASCII).
    bool key(std::string_view& name) {
        if (!take('"')) return false;
        const char* const start = p_;
        while (p_ != end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                name = std::string_view(start, static_cast<std::size_t>(p_ - start));
                ++p_;
                return true;
            }
            if (c == '\\' || c < 0x20) return false;
            ++p_;
        }
        return false;
    }

    // A string value into `out`, decoding the two-character escapes. The
    // bytes are valid UTF-8 already (checked for the whole line).
    bool string(std::string& out) {
        if (!take('"')) return false;
        out.clear();
        const char* run = p_;
        while (p_ != end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                out.append(run, p_);
                ++p_;
                return true;
            }
            if (c < 0x20) return false;
            if (c != '\\') {
                ++p_;
                continue;
            }
            out.append(run, p_);
            if (++p_ == end_) return false;
            switch (*p_) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                default: return false;  // \u and anything invalid: the full parser decides
            }
            run = ++p_;
        }
        return false;
    }

    // -?(0|[1-9][0-9]*) with no fraction or exponent, within int64.
    bool integer(std::int64_t& value) {
        const bool negative = p_ != end_ && *p_ == '-';
        if (negative) ++p_;
        if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
        if (*p_ == '0' && p_ + 1 != end_ && p_[1] >= '0' && p_[1] <= '9') return false;  // leading zero
        // Accumulate the magnitude as unsigned; int64's range is [-(2^63), 2^63 - 1].
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
    if (scanner.at_end()) return false;
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

}  // namespace

bool fast_scan_command(std::string_view line, CommandFields& fields) {
    Scanner scanner(line);
    scanner.skip_whitespace();
    if (!scanner.take('{')) return false;
    fields.top_level_is_object = true;
    for (;;) {
        scanner.skip_whitespace();
        std::string_view name;
        if (!scanner.key(name)) return false;  // also declines the empty object
        Field* const field = fields.field_named(name);
        if (field == nullptr) return false;
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
