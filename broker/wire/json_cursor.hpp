// json_cursor.hpp — the one hand-written JSON token reader of memq (internal:
// not installed): a cursor over a string_view that the broker's command
// scanner (core/command_scan) and the client's message decoder
// (client/fast_decode) are both built on. It also holds the one copy of the
// RFC 3629 table (utf8_sequence_length), which is_valid_utf8 uses too.
//
// Rules: strict RFC 8259 tokens only. Every read either takes one whole token
// and moves past it, or returns false: the callers then decline and leave the
// text to the reference reader (nlohmann), which has the last word. So a read
// may be refused where nlohmann would accept (a number with a fraction, an
// integer past int64), never the other way round, and whatever is read holds
// what nlohmann would have read. After a false return the position is
// unspecified. The hot parts are inline; only escape decoding is out of line.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace memq::detail {

// The length of the UTF-8 sequence at p (whose first byte is >= 0x80), or 0
// when it is not strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing
// past U+10FFFF, no sequence cut by `end`). The allowed range of the second
// byte depends on the lead byte; that is what rules out the overlongs
// (E0, F0), the surrogates (ED) and the code points past U+10FFFF (F4).
inline std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) {
    const unsigned char lead = p[0];
    std::size_t length;
    unsigned char second_min = 0x80, second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) second_min = 0xA0;
        if (lead == 0xED) second_max = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) second_min = 0x90;
        if (lead == 0xF4) second_max = 0x8F;
    } else {
        return 0;  // a continuation byte as lead, the overlong leads C0/C1, F5..FF
    }
    if (static_cast<std::size_t>(end - p) < length) return 0;
    if (p[1] < second_min || p[1] > second_max) return 0;
    for (std::size_t i = 2; i < length; ++i) {
        if ((p[i] & 0xC0) != 0x80) return 0;
    }
    return length;
}

// A string token as read: its value, and its literal as written.
struct JsonString {
    std::string_view text;  // the decoded value: a view of the input, or of the scratch buffer when it had escapes
    std::string_view json;  // the literal, quotes included, when it is exactly what append_json_string
                            // writes for `text`; else empty
};

class JsonCursor {
public:
    explicit JsonCursor(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    bool at_end() const { return p_ == end_; }
    // The byte at the cursor, '\0' at the end.
    char peek() const { return p_ == end_ ? '\0' : *p_; }

    // RFC 8259 whitespace: space, tab, line feed, carriage return (all <= ' ',
    // so at a token the loop stops after one comparison).
    void skip_whitespace() {
        while (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ' &&
               (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) {
            ++p_;
        }
    }

    // Takes one expected byte.
    bool take(char expected) {
        if (p_ == end_ || *p_ != expected) return false;
        ++p_;
        return true;
    }

    // Takes `text` when the input continues with exactly these bytes.
    bool take_literal(std::string_view text) {
        if (static_cast<std::size_t>(end_ - p_) < text.size() || std::memcmp(p_, text.data(), text.size()) != 0) {
            return false;
        }
        p_ += text.size();
        return true;
    }

    // true or false.
    bool read_boolean(bool& value) {
        if (take_literal("true")) return value = true, true;
        if (take_literal("false")) return value = false, true;
        return false;
    }

    bool read_null() { return take_literal("null"); }

    // -?(0|[1-9][0-9]*), not followed by a fraction or an exponent, within
    // int64 ([-(2^63), 2^63 - 1]); past it the read declines.
    bool read_integer(std::int64_t& value) {
        const bool negative = take('-');
        if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
        if (*p_ == '0' && p_ + 1 != end_ && p_[1] >= '0' && p_[1] <= '9') return false;  // a leading zero
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

    // A string token at the cursor (which must be at its opening quote): raw
    // bytes strict UTF-8, no control bytes, escapes decoded (\uXXXX with
    // surrogate pairs; a lone or mismatched surrogate declines). Without
    // escapes `out.text` is a view of the input; with them the value is
    // decoded into `scratch` (overwritten) and `out.text` views that.
    bool read_string(JsonString& out, std::string& scratch) {
        if (!take('"')) return false;
        const char* const start = p_;
        if (!skip_string_run()) return false;
        if (*p_ == '\\') return read_escaped_string_rest(start, out, scratch);
        out.text = std::string_view(start, static_cast<std::size_t>(p_ - start));
        ++p_;  // the closing quote
        out.json = std::string_view(start - 1, out.text.size() + 2);  // nothing escaped: canonical
        return true;
    }

private:
    // Inside a string: past everything up to the next '"' or '\\' (at which
    // it stops). False at a control byte, at bytes that are not strict UTF-8,
    // or at the end of the input.
    bool skip_string_run() {
        for (;;) {
            skip_plain_string_bytes();
            if (p_ == end_) return false;
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"' || c == '\\') return true;
            if (c < 0x80) return false;  // a control byte
            const std::size_t length = utf8_sequence_length(reinterpret_cast<const unsigned char*>(p_),
                                                            reinterpret_cast<const unsigned char*>(end_));
            if (length == 0) return false;
            p_ += length;
        }
    }

    // Past the bytes a string can hold as they are (printable ASCII but '"'
    // and '\\'), 16 at a time (SSE2), else 8 (SWAR), then one by one to the
    // first byte that needs a closer look.
    void skip_plain_string_bytes() {
#if defined(__SSE2__)
        // As signed bytes, both the controls (< 0x20) and non-ASCII (>= 0x80,
        // negative) compare less than 0x20.
        while (end_ - p_ >= 16) {
            const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
            const __m128i special = _mm_or_si128(_mm_cmplt_epi8(bytes, _mm_set1_epi8(0x20)),
                                                 _mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('"')),
                                                              _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\\'))));
            const auto mask = static_cast<unsigned>(_mm_movemask_epi8(special));
            if (mask != 0) {
                p_ += std::countr_zero(mask);
                return;
            }
            p_ += 16;
        }
#endif
        if constexpr (std::endian::native == std::endian::little) {
            // (After the SSE2 loop: only the last 8..15 bytes of the input.)
            while (end_ - p_ >= 8) {
                std::uint64_t word;
                std::memcpy(&word, p_, 8);
                const std::uint64_t special = special_string_bytes(word);
                if (special != 0) {
                    p_ += std::countr_zero(special) / 8;
                    return;
                }
                p_ += 8;
            }
        }
        while (p_ != end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return;
            ++p_;
        }
    }

    // Nonzero iff one of the 8 bytes of `word` needs a closer look inside a
    // string: a control byte (< 0x20), '"', '\\', or a non-ASCII byte. On a
    // little endian machine the lowest set bit is in the first such byte
    // (borrows only ever carry towards higher bytes).
    static std::uint64_t special_string_bytes(std::uint64_t word) {
        constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
        constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
        const auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHighs; };
        const std::uint64_t control = (word - kOnes * 0x20) & ~word & kHighs;
        return control | has_zero(word ^ (kOnes * '"')) | has_zero(word ^ (kOnes * '\\')) | (word & kHighs);
    }

    // The rest of a string from its first backslash (at the cursor), decoded
    // into `scratch`; `start` is the first byte after the opening quote.
    bool read_escaped_string_rest(const char* start, JsonString& out, std::string& scratch);

    const char* p_;
    const char* end_;
};

}  // namespace memq::detail
