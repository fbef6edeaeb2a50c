// fast_decode.cpp — a single-pass scanner for flat JSON objects, specialised to messages.
#include "fast_decode.hpp"

#include <charconv>
#include <cstdint>
#include <string>

namespace memq::detail {
namespace {

class Scanner {
public:
    explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    bool at_end() {
        skip_space();
        return p_ == end_;
    }

    bool consume(char expected) {
        skip_space();
        if (p_ == end_ || *p_ != expected) return false;
        ++p_;
        return true;
    }

    char peek() {
        skip_space();
        return p_ == end_ ? '\0' : *p_;
    }

    // A JSON string literal, unescaped into `out`.
    bool string(std::string& out) {
        if (!consume('"')) return false;
        out.clear();
        const char* const start = p_;
        const char* run = p_;
        bool ascii = true;
        while (p_ != end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                out.append(run, p_);
                ++p_;
                // Only string contents may be non-ASCII; check them, only when they are.
                return ascii || is_valid_utf8(std::string_view(start, static_cast<std::size_t>(p_ - 1 - start)));
            }
            if (c < 0x20) return false;  // raw control characters are not JSON
            if (c >= 0x80) ascii = false;
            if (c != '\\') {
                ++p_;
                continue;
            }
            out.append(run, p_);
            ++p_;
            if (p_ == end_) return false;
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
                    if (!unicode_escape(out)) return false;
                    break;
                default: return false;
            }
            run = p_;
        }
        return false;
    }

    // A JSON integer (no fraction, no exponent) that fits in 64 bits.
    bool integer(std::int64_t& value) {
        skip_space();
        const char* start = p_;
        if (p_ != end_ && *p_ == '-') ++p_;
        const char* digits = p_;
        while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
        if (p_ == digits || (*digits == '0' && p_ - digits > 1)) return false;
        if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
        const auto [stop, error] = std::from_chars(start, p_, value);
        return error == std::errc() && stop == p_;
    }

    bool boolean(bool& value) {
        skip_space();
        if (end_ - p_ >= 4 && std::string_view(p_, 4) == "true") {
            p_ += 4;
            value = true;
            return true;
        }
        if (end_ - p_ >= 5 && std::string_view(p_, 5) == "false") {
            p_ += 5;
            value = false;
            return true;
        }
        return false;
    }

    // Any value this scanner understands, thrown away.
    bool skip_value(std::string& scratch) {
        const char c = peek();
        if (c == '"') return string(scratch);
        bool flag = false;
        if (c == 't' || c == 'f') return boolean(flag);
        std::int64_t number = 0;
        return integer(number);
    }

private:
    void skip_space() {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }

    bool hex4(std::uint32_t& value) {
        if (end_ - p_ < 4) return false;
        value = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = *p_++;
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

    // After "\u": one code point, or a surrogate pair written as two escapes.
    bool unicode_escape(std::string& out) {
        std::uint32_t code = 0;
        if (!hex4(code)) return false;
        if (code >= 0xDC00 && code <= 0xDFFF) return false;  // a low surrogate alone
        if (code >= 0xD800 && code <= 0xDBFF) {
            std::uint32_t low = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, code);
        return true;
    }

    static void append_utf8(std::string& out, std::uint32_t code) {
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

    const char* p_;
    const char* end_;
};

}  // namespace

bool fast_decode_message(std::string_view line, Message& message) {
    using namespace std::string_view_literals;
    Scanner scanner(line);
    if (!scanner.consume('{')) return false;
    std::string key;
    std::string scratch;
    bool is_send = false;
    bool have_topic = false;
    bool have_msg = false;
    bool have_delivery = false;
    bool have_index = false;
    message.cache.reset();
    for (;;) {
        if (!scanner.string(key) || !scanner.consume(':')) return false;
        if (std::string_view(key) == "topic"sv) {
            if (!scanner.string(message.topic)) return false;
            have_topic = true;
        } else if (std::string_view(key) == "msg"sv) {
            if (!scanner.string(message.msg)) return false;
            have_msg = true;
        } else if (std::string_view(key) == "command"sv) {
            if (!scanner.string(scratch)) return false;
            is_send = std::string_view(scratch) == "send"sv;
        } else if (std::string_view(key) == "delivery"sv) {
            if (!scanner.string(scratch)) return false;
            if (std::string_view(scratch) == "all"sv) {
                message.delivery = Delivery::all;
            } else if (std::string_view(scratch) == "one"sv) {
                message.delivery = Delivery::one;
            } else {
                return false;
            }
            have_delivery = true;
        } else if (std::string_view(key) == "index"sv) {
            if (!scanner.integer(message.index)) return false;
            have_index = true;
        } else if (std::string_view(key) == "cache"sv) {
            bool cache = false;
            if (!scanner.boolean(cache)) return false;
            message.cache = cache;
        } else if (!scanner.skip_value(scratch)) {
            return false;
        }
        if (scanner.consume(',')) continue;
        if (scanner.consume('}')) break;
        return false;
    }
    return scanner.at_end() && is_send && have_topic && have_msg && have_delivery && have_index;
}

}  // namespace memq::detail
