// command_scan.cpp — one pass over a command line: JSON syntax, UTF-8 inside
// strings, key dispatch and value capture, with string bodies skipped 16
// bytes at a time (SSE2), else 8 (SWAR).
#include "command_scan.hpp"

#include <bit>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace memq::detail {
namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighs = 0x8080808080808080ULL;

// Nonzero iff one of the 8 bytes of `word` needs a closer look inside a
// string: a control byte (< 0x20), '"', '\\', or a non-ASCII byte. On a little
// endian machine the lowest set bit is in the first such byte (borrows only
// ever carry towards higher bytes).
inline std::uint64_t special_bytes(std::uint64_t word) {
    const auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHighs; };
    const std::uint64_t control = (word - kOnes * 0x20) & ~word & kHighs;
    return control | has_zero(word ^ (kOnes * '"')) | has_zero(word ^ (kOnes * '\\')) | (word & kHighs);
}

// The length of the UTF-8 sequence at p (whose first byte is >= 0x80), or 0
// when it is not strict UTF-8 (RFC 3629: no overlongs, surrogates, or code
// points past U+10FFFF).
inline std::size_t utf8_sequence(const unsigned char* p, const unsigned char* end) {
    const unsigned char lead = p[0];
    std::size_t length;
    unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) low = 0xA0;
        if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) low = 0x90;
        if (lead == 0xF4) high = 0x8F;
    } else {
        return 0;
    }
    if (static_cast<std::size_t>(end - p) < length) return 0;
    if (p[1] < low || p[1] > high) return 0;
    for (std::size_t i = 2; i < length; ++i) {
        if ((p[i] & 0xC0) != 0x80) return 0;
    }
    return length;
}

inline bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

class CommandScanner {
public:
    explicit CommandScanner(std::string_view line) : p_(line.data()), end_(line.data() + line.size()) {}

    bool scan(CommandRefFields& fields, CommandScratch& scratch) {
        skip_whitespace();
        if (!take('{')) return false;
        for (;;) {
            skip_whitespace();
            RefField* field = nullptr;
            std::string* buffer = nullptr;
            if (!key(fields, scratch, field, buffer)) return false;  // also declines the empty object
            skip_whitespace();
            if (!take(':')) return false;
            skip_whitespace();
            if (!value(*field, *buffer)) return false;
            skip_whitespace();
            if (take(',')) continue;
            if (take('}')) break;
            return false;
        }
        skip_whitespace();
        return p_ == end_;
    }

    // The send line exactly as encode_command writes it (what clients send):
    // fixed text compared at once instead of token by token. Declines
    // anything else, for the general scan to read from the start.
    bool canonical_send(CommandRefFields& fields, CommandScratch& scratch) {
        if (!literal("{\"command\": \"send\", \"topic\": \"")) return false;
        fields.command.kind = RefField::Kind::string;
        fields.command.text = "send";
        --p_;  // string() starts at the quote
        if (!string(fields.topic, scratch.topic)) return false;
        if (!literal(", \"msg\": \"")) return false;
        --p_;
        if (!string(fields.msg, scratch.msg)) return false;
        if (literal(", \"delivery\": \"all\"")) {
            fields.delivery.text = "all";
        } else if (literal(", \"delivery\": \"one\"")) {
            fields.delivery.text = "one";
        } else {
            return false;
        }
        fields.delivery.kind = RefField::Kind::string;
        if (literal(", \"cache\": true")) {
            fields.cache.kind = RefField::Kind::boolean;
            fields.cache.boolean = true;
        } else if (literal(", \"cache\": false")) {
            fields.cache.kind = RefField::Kind::boolean;
            fields.cache.boolean = false;
        }
        return literal("}") && p_ == end_;
    }

private:
    bool literal(std::string_view text) {
        if (static_cast<std::size_t>(end_ - p_) < text.size() || std::memcmp(p_, text.data(), text.size()) != 0) {
            return false;
        }
        p_ += text.size();
        return true;
    }

    // RFC 8259 whitespace: space, tab, line feed, carriage return (all <= ' ',
    // so most calls, at a token, stop after one comparison).
    void skip_whitespace() {
        while (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ' &&
               (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) {
            ++p_;
        }
    }

    bool take(char expected) {
        if (p_ == end_ || *p_ != expected) return false;
        ++p_;
        return true;
    }

    // A key among the six, written as plain ASCII; anything else (another
    // key, or one of these written with an escape) declines. The name is
    // matched with its closing quote, so a match is the whole key.
    bool key(CommandRefFields& fields, CommandScratch& scratch, RefField*& field, std::string*& buffer) {
        if (!take('"')) return false;
        const auto matches = [&](std::string_view name_and_quote) {
            if (static_cast<std::size_t>(end_ - p_) < name_and_quote.size() ||
                std::memcmp(p_, name_and_quote.data(), name_and_quote.size()) != 0) {
                return false;
            }
            p_ += name_and_quote.size();
            return true;
        };
        buffer = &scratch.other;
        // Tested in the order a send line has them; an if chain, not a jump
        // table (an indirect branch that varies from key to key).
        if (matches("command\"")) {
            field = &fields.command, buffer = &scratch.command;
        } else if (matches("topic\"")) {
            field = &fields.topic, buffer = &scratch.topic;
        } else if (matches("msg\"")) {
            field = &fields.msg, buffer = &scratch.msg;
        } else if (matches("delivery\"")) {
            field = &fields.delivery, buffer = &scratch.delivery;
        } else if (matches("cache\"")) {
            field = &fields.cache;
        } else if (matches("last_seen\"")) {
            field = &fields.last_seen;
        } else {
            return false;
        }
        return true;
    }

    bool value(RefField& field, std::string& buffer) {
        if (p_ == end_) return false;
        const char c = *p_;
        if (c == '"') return string(field, buffer);
        if (c == 't' || c == 'f') {
            const std::string_view word = c == 't' ? "true" : "false";
            if (static_cast<std::size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) {
                return false;
            }
            p_ += word.size();
            field.kind = RefField::Kind::boolean;
            field.boolean = c == 't';
            return true;
        }
        if (!integer(field.integer)) return false;
        field.kind = RefField::Kind::integer;
        return true;
    }

    // -?(0|[1-9][0-9]*) with no fraction or exponent, within int64.
    bool integer(std::int64_t& value) {
        const bool negative = take('-');
        if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
        if (*p_ == '0' && p_ + 1 != end_ && p_[1] >= '0' && p_[1] <= '9') return false;  // leading zero
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

    // A string literal at p_ ('"'). Without escapes its value is a view of the
    // line; with them it is decoded into `buffer`.
    bool string(RefField& field, std::string& buffer) {
        ++p_;  // the opening quote
        const char* const start = p_;
        const char* run = p_;  // the first byte not yet copied into buffer (escapes only)
        bool escaped = false;
        bool canonical = true;  // the literal is what append_json_string writes for its value
        for (;;) {
#if defined(__SSE2__)
            // 16 bytes a step. As signed bytes, both controls (< 0x20) and
            // non-ASCII (>= 0x80, negative) compare less than 0x20.
            while (end_ - p_ >= 16) {
                const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
                const __m128i special =
                    _mm_or_si128(_mm_cmplt_epi8(bytes, _mm_set1_epi8(0x20)),
                                 _mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('"')),
                                              _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\\'))));
                const auto mask = static_cast<unsigned>(_mm_movemask_epi8(special));
                if (mask == 0) {
                    p_ += 16;
                    continue;
                }
                p_ += std::countr_zero(mask);
                break;
            }
#endif
            if constexpr (std::endian::native == std::endian::little) {
                // (After the SSE2 loop: only the last 8..15 bytes of the line.)
                while (end_ - p_ >= 8) {
                    std::uint64_t word;
                    std::memcpy(&word, p_, 8);
                    const std::uint64_t special = special_bytes(word);
                    if (special == 0) {
                        p_ += 8;
                        continue;
                    }
                    p_ += std::countr_zero(special) / 8;
                    break;
                }
            }
            if (p_ == end_) return false;
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') break;
            if (c >= 0x80) {
                const std::size_t length = utf8_sequence(reinterpret_cast<const unsigned char*>(p_),
                                                         reinterpret_cast<const unsigned char*>(end_));
                if (length == 0) return false;
                p_ += length;
                continue;
            }
            if (c < 0x20) return false;
            if (c != '\\') {
                ++p_;
                continue;
            }
            if (!escaped) {
                buffer.assign(start, p_);
                escaped = true;
            } else {
                buffer.append(run, p_);
            }
            if (++p_ == end_) return false;
            switch (*p_++) {
                case '"': buffer.push_back('"'); break;
                case '\\': buffer.push_back('\\'); break;
                case '/': buffer.push_back('/'), canonical = false; break;
                case 'b': buffer.push_back('\b'); break;
                case 'f': buffer.push_back('\f'); break;
                case 'n': buffer.push_back('\n'); break;
                case 'r': buffer.push_back('\r'); break;
                case 't': buffer.push_back('\t'); break;
                case 'u':
                    if (!unicode_escape(buffer, canonical)) return false;
                    break;
                default: return false;
            }
            run = p_;
        }
        if (escaped) {
            buffer.append(run, p_);
            field.text = buffer;
        } else {
            field.text = std::string_view(start, static_cast<std::size_t>(p_ - start));
        }
        ++p_;  // the closing quote
        field.json = canonical ? std::string_view(start - 1, static_cast<std::size_t>(p_ - start + 1)) : std::string_view();
        field.kind = RefField::Kind::string;
        return true;
    }

    // After "\u": one code point, or a surrogate pair as two escapes. The only
    // \u escapes append_json_string writes are "\u00xx" (lowercase) for the
    // controls without a short form.
    bool unicode_escape(std::string& buffer, bool& canonical) {
        const char* const digits = p_;
        std::uint32_t code = 0;
        if (!read_unicode_escape(p_, end_, buffer, code)) return false;
        const bool has_short_form = code == '\b' || code == '\f' || code == '\n' || code == '\r' || code == '\t';
        if (code >= 0x20 || has_short_form || !is_lower_hex(digits[2]) || !is_lower_hex(digits[3])) canonical = false;
        return true;
    }

    const char* p_;
    const char* end_;
};

}  // namespace

bool scan_command(std::string_view line, CommandRefFields& fields, CommandScratch& scratch) {
    // Only the kinds: nothing reads a field's other members while it is absent.
    const auto reset = [&fields] {
        for (RefField* field :
             {&fields.command, &fields.topic, &fields.msg, &fields.delivery, &fields.last_seen, &fields.cache}) {
            field->kind = RefField::Kind::absent;
        }
    };
    reset();
    if (CommandScanner(line).canonical_send(fields, scratch)) return true;
    reset();
    return CommandScanner(line).scan(fields, scratch);
}

}  // namespace memq::detail
