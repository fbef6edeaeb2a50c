// json_cursor_test.cpp — specifies the JSON cursor (broker/wire/json_cursor.hpp)
// token by token, each rule at its limit: int64 at max and min and one past,
// the grammar of integers, every boundary of the RFC 3629 table, \u escapes
// at the surrogate bounds, the canonical-literal report, and the skipping of
// plain string bytes at every position around the 8- and 16-byte steps.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "json_cursor.hpp"

namespace {

using memq::detail::JsonCursor;
using memq::detail::JsonString;
using memq::detail::utf8_sequence_length;

// The integer read from `text`, when the cursor takes it and stops at its end.
std::optional<std::int64_t> integer(std::string_view text) {
    JsonCursor cursor(text);
    std::int64_t value = 0;
    if (!cursor.read_integer(value) || !cursor.at_end()) return std::nullopt;
    return value;
}

// The decoded value of the string literal `text`, when the cursor takes all of it.
std::optional<std::string> string_value(std::string_view text) {
    JsonCursor cursor(text);
    JsonString read;
    std::string scratch;
    if (!cursor.read_string(read, scratch) || !cursor.at_end()) return std::nullopt;
    return std::string(read.text);
}

// The canonical literal the cursor reports for `text` (empty: not canonical).
std::string canonical_json(std::string_view text) {
    JsonCursor cursor(text);
    JsonString read;
    std::string scratch;
    EXPECT_TRUE(cursor.read_string(read, scratch)) << text;
    return std::string(read.json);
}

// `body` between double quotes: a string literal.
std::string string_literal(std::string_view body) {
    std::string literal(1, '"');
    literal.append(body);
    literal.push_back('"');
    return literal;
}

std::size_t sequence_length(std::string_view bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    return utf8_sequence_length(p, p + bytes.size());
}

// ---------------------------------------------------------------- integers

TEST(JsonCursorInteger, ReadsInt64MaxAndDeclinesOnePast) {
    EXPECT_EQ(integer("9223372036854775807"), std::numeric_limits<std::int64_t>::max());
    EXPECT_EQ(integer("9223372036854775806"), std::numeric_limits<std::int64_t>::max() - 1);
    EXPECT_EQ(integer("9223372036854775808"), std::nullopt);
}

TEST(JsonCursorInteger, ReadsInt64MinAndDeclinesOnePast) {
    EXPECT_EQ(integer("-9223372036854775808"), std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(integer("-9223372036854775807"), std::numeric_limits<std::int64_t>::min() + 1);
    EXPECT_EQ(integer("-9223372036854775809"), std::nullopt);
}

TEST(JsonCursorInteger, DeclinesTwentyDigitsWhateverTheirValue) {
    EXPECT_EQ(integer("10000000000000000000"), std::nullopt);
    EXPECT_EQ(integer("18446744073709551616"), std::nullopt);  // 2^64: no wrap-around to 0
}

TEST(JsonCursorInteger, ReadsZeroAndNegativeZero) {
    EXPECT_EQ(integer("0"), 0);
    EXPECT_EQ(integer("-0"), 0);
}

TEST(JsonCursorInteger, DeclinesLeadingZeros) {
    EXPECT_EQ(integer("01"), std::nullopt);
    EXPECT_EQ(integer("-01"), std::nullopt);
    EXPECT_EQ(integer("00"), std::nullopt);
}

TEST(JsonCursorInteger, DeclinesAPlusSignAndALoneMinus) {
    EXPECT_EQ(integer("+1"), std::nullopt);
    EXPECT_EQ(integer("-"), std::nullopt);
    EXPECT_EQ(integer("--1"), std::nullopt);
}

TEST(JsonCursorInteger, DeclinesFractionsAndExponents) {
    EXPECT_EQ(integer("1.0"), std::nullopt);
    EXPECT_EQ(integer("1e3"), std::nullopt);
    EXPECT_EQ(integer("1E3"), std::nullopt);
    EXPECT_EQ(integer("0.5"), std::nullopt);
}

TEST(JsonCursorInteger, StopsAtTheFirstByteAfterTheDigits) {
    JsonCursor cursor("42, ");
    std::int64_t value = 0;
    ASSERT_TRUE(cursor.read_integer(value));
    EXPECT_EQ(value, 42);
    EXPECT_EQ(cursor.peek(), ',');
}

// ---------------------------------------------------------------- literals and punctuation

TEST(JsonCursorLiteral, ReadsTrueFalseAndNull) {
    bool value = false;
    JsonCursor yes("true");
    ASSERT_TRUE(yes.read_boolean(value));
    EXPECT_TRUE(value);
    EXPECT_TRUE(yes.at_end());
    JsonCursor no("false");
    ASSERT_TRUE(no.read_boolean(value));
    EXPECT_FALSE(value);
    EXPECT_TRUE(no.at_end());
    JsonCursor null("null");
    EXPECT_TRUE(null.read_null());
    EXPECT_TRUE(null.at_end());
}

TEST(JsonCursorLiteral, DeclinesCutAndMisspelledLiterals) {
    bool value = false;
    for (const std::string_view text : {"tru", "fals", "True", "FALSE", "nul", ""}) {
        JsonCursor cursor(text);
        EXPECT_FALSE(cursor.read_boolean(value)) << text;
        JsonCursor again(text);
        EXPECT_FALSE(again.read_null()) << text;
    }
}

TEST(JsonCursorWhitespace, SkipsTheFourJsonWhitespaceBytesOnly) {
    JsonCursor cursor(" \t\r\n\f1");
    cursor.skip_whitespace();
    EXPECT_EQ(cursor.peek(), '\f');  // form feed is not JSON whitespace
}

TEST(JsonCursorPunctuation, TakesOnlyTheExpectedByte) {
    JsonCursor cursor("{}");
    EXPECT_FALSE(cursor.take('}'));
    EXPECT_TRUE(cursor.take('{'));
    EXPECT_TRUE(cursor.take('}'));
    EXPECT_FALSE(cursor.take('}'));
    EXPECT_EQ(cursor.peek(), '\0');
}

TEST(JsonCursorPunctuation, TakesALiteralOnlyWhenAllOfItIsThere) {
    JsonCursor cursor(R"("command")");
    EXPECT_FALSE(cursor.take_literal(R"("command":)"));
    EXPECT_TRUE(cursor.take_literal(R"("command")"));
    EXPECT_TRUE(cursor.at_end());
}

// ---------------------------------------------------------------- the RFC 3629 table

TEST(JsonCursorUtf8, TwoByteLeadsStartAtC2) {
    EXPECT_EQ(sequence_length("\xC1\xBF"), 0u);  // U+007F, overlong
    EXPECT_EQ(sequence_length("\xC2\x80"), 2u);  // U+0080
    EXPECT_EQ(sequence_length("\xDF\xBF"), 2u);  // U+07FF
}

TEST(JsonCursorUtf8, E0TakesA0ToBFSecond) {
    EXPECT_EQ(sequence_length("\xE0\x9F\xBF"), 0u);  // U+07FF, overlong
    EXPECT_EQ(sequence_length("\xE0\xA0\x80"), 3u);  // U+0800
    EXPECT_EQ(sequence_length("\xE0\xBF\xBF"), 3u);
    EXPECT_EQ(sequence_length("\xE0\xC0\x80"), 0u);
}

TEST(JsonCursorUtf8, EDStopsBeforeTheSurrogates) {
    EXPECT_EQ(sequence_length("\xED\x9F\xBF"), 3u);  // U+D7FF
    EXPECT_EQ(sequence_length("\xED\xA0\x80"), 0u);  // U+D800
    EXPECT_EQ(sequence_length("\xED\xBF\xBF"), 0u);  // U+DFFF
    EXPECT_EQ(sequence_length("\xEE\x80\x80"), 3u);  // U+E000
}

TEST(JsonCursorUtf8, E1ToEFTakeAnyContinuationSecond) {
    EXPECT_EQ(sequence_length("\xE1\x80\x80"), 3u);
    EXPECT_EQ(sequence_length("\xEC\xBF\xBF"), 3u);
    EXPECT_EQ(sequence_length("\xEF\xBF\xBF"), 3u);  // U+FFFF
    EXPECT_EQ(sequence_length("\xE1\x7F\x80"), 0u);
    EXPECT_EQ(sequence_length("\xE1\xC0\x80"), 0u);
}

TEST(JsonCursorUtf8, F0TakesNinetyToBFSecond) {
    EXPECT_EQ(sequence_length("\xF0\x8F\xBF\xBF"), 0u);  // U+FFFF, overlong
    EXPECT_EQ(sequence_length("\xF0\x90\x80\x80"), 4u);  // U+10000
    EXPECT_EQ(sequence_length("\xF3\xBF\xBF\xBF"), 4u);
}

TEST(JsonCursorUtf8, F4StopsAtU10FFFF) {
    EXPECT_EQ(sequence_length("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF
    EXPECT_EQ(sequence_length("\xF4\x90\x80\x80"), 0u);  // U+110000
    EXPECT_EQ(sequence_length("\xF5\x80\x80\x80"), 0u);
}

TEST(JsonCursorUtf8, RefusesContinuationBytesAndF5ToFFAsLeads) {
    for (int lead : {0x80, 0xBF, 0xC0, 0xC1, 0xF5, 0xF8, 0xFF}) {
        const std::string bytes{static_cast<char>(lead), '\x80', '\x80', '\x80'};
        EXPECT_EQ(sequence_length(bytes), 0u) << std::hex << lead;
    }
}

TEST(JsonCursorUtf8, RefusesASequenceCutShortOrWithABadLaterByte) {
    EXPECT_EQ(sequence_length("\xC2"), 0u);
    EXPECT_EQ(sequence_length("\xE2\x82"), 0u);
    EXPECT_EQ(sequence_length("\xF0\x9F\x98"), 0u);
    EXPECT_EQ(sequence_length("\xE2\x82\x41"), 0u);
    EXPECT_EQ(sequence_length("\xF0\x9F\x98\xC0"), 0u);
}

TEST(JsonCursorString, RefusesInvalidUtf8InsideAString) {
    EXPECT_EQ(string_value("\"\xC3\xA9\""), "\xC3\xA9");
    EXPECT_EQ(string_value("\"\xED\xA0\x80\""), std::nullopt);
    EXPECT_EQ(string_value("\"\xC3\""), std::nullopt);  // a sequence cut by the closing quote
}

// ---------------------------------------------------------------- strings and escapes

TEST(JsonCursorString, ViewsAStringWithoutEscapesInTheInput) {
    const std::string text = R"("plain")";
    JsonCursor cursor(text);
    JsonString read;
    std::string scratch = "untouched";
    ASSERT_TRUE(cursor.read_string(read, scratch));
    EXPECT_EQ(read.text, "plain");
    EXPECT_EQ(read.text.data(), text.data() + 1);
    EXPECT_EQ(scratch, "untouched");
}

TEST(JsonCursorString, DecodesEscapesIntoTheScratchBuffer) {
    JsonCursor cursor(R"("a\"b\\c\/d\b\f\n\r\t")");
    JsonString read;
    std::string scratch = "stale";
    ASSERT_TRUE(cursor.read_string(read, scratch));
    EXPECT_EQ(read.text, "a\"b\\c/d\b\f\n\r\t");
    EXPECT_EQ(read.text.data(), scratch.data());
}

TEST(JsonCursorString, RefusesUnknownEscapesControlBytesAndAMissingQuote) {
    EXPECT_EQ(string_value(R"("\x")"), std::nullopt);
    EXPECT_EQ(string_value(R"("\')"), std::nullopt);
    EXPECT_EQ(string_value("\"\x1F\""), std::nullopt);
    EXPECT_EQ(string_value("\"\x7F\""), "\x7F");  // DEL is not a control in JSON
    EXPECT_EQ(string_value(R"("open)"), std::nullopt);
    EXPECT_EQ(string_value(R"("\)"), std::nullopt);
    EXPECT_EQ(string_value(R"(plain")"), std::nullopt);
}

TEST(JsonCursorUnicodeEscape, DecodesEachUtf8LengthAtItsBounds) {
    EXPECT_EQ(string_value(R"("\u0000")"), std::string(1, '\0'));
    EXPECT_EQ(string_value(R"("\u007F")"), "\x7F");
    EXPECT_EQ(string_value(R"("\u0080")"), "\xC2\x80");
    EXPECT_EQ(string_value(R"("\u07FF")"), "\xDF\xBF");
    EXPECT_EQ(string_value(R"("\u0800")"), "\xE0\xA0\x80");
    EXPECT_EQ(string_value(R"("\uFFFF")"), "\xEF\xBF\xBF");
}

TEST(JsonCursorUnicodeEscape, TakesTheCodePointsJustOutsideTheSurrogates) {
    EXPECT_EQ(string_value(R"("\uD7FF")"), "\xED\x9F\xBF");
    EXPECT_EQ(string_value(R"("\uE000")"), "\xEE\x80\x80");
}

TEST(JsonCursorUnicodeEscape, JoinsSurrogatePairsAtTheirBounds) {
    EXPECT_EQ(string_value(R"("\uD800\uDC00")"), "\xF0\x90\x80\x80");  // U+10000
    EXPECT_EQ(string_value(R"("\uDBFF\uDFFF")"), "\xF4\x8F\xBF\xBF");  // U+10FFFF
    EXPECT_EQ(string_value(R"("\ud83d\ude00")"), "\xF0\x9F\x98\x80");
}

TEST(JsonCursorUnicodeEscape, RefusesLoneSurrogates) {
    EXPECT_EQ(string_value(R"("\uD800")"), std::nullopt);
    EXPECT_EQ(string_value(R"("\uDBFF x")"), std::nullopt);
    EXPECT_EQ(string_value(R"("\uDC00")"), std::nullopt);
    EXPECT_EQ(string_value(R"("\uDFFF")"), std::nullopt);
}

TEST(JsonCursorUnicodeEscape, RefusesAHighSurrogateFollowedByAnythingButALowOne) {
    EXPECT_EQ(string_value(R"("\uD800\uDBFF")"), std::nullopt);  // one below the low range
    EXPECT_EQ(string_value(R"("\uD800\uE000")"), std::nullopt);  // one above it
    EXPECT_EQ(string_value(R"("\uD800\u0041")"), std::nullopt);
    EXPECT_EQ(string_value(R"("\uD800\n")"), std::nullopt);
}

TEST(JsonCursorUnicodeEscape, RefusesShortOrNonHexDigits) {
    EXPECT_EQ(string_value(R"("\u12")"), std::nullopt);
    EXPECT_EQ(string_value(R"("\u12G4")"), std::nullopt);
    EXPECT_EQ(string_value(R"("\u")"), std::nullopt);
    EXPECT_EQ(string_value(R"("\u00aB")"), "\xC2\xAB");  // either case
}

// ---------------------------------------------------------------- canonical literals

TEST(JsonCursorCanonical, AStringWithoutEscapesIsItsOwnCanonicalLiteral) {
    EXPECT_EQ(canonical_json("\"h\xC3\xA9llo\" rest"), "\"h\xC3\xA9llo\"");
    EXPECT_EQ(canonical_json(R"("")"), R"("")");
}

TEST(JsonCursorCanonical, TheEscapesAppendJsonStringWritesStayCanonical) {
    const std::string literal = R"("q\" b\\ \b\f\n\r\t \u0001\u001f")";
    EXPECT_EQ(canonical_json(literal), literal);
}

TEST(JsonCursorCanonical, OtherEscapesAreNotCanonical) {
    for (const std::string_view literal :
         {R"("\/")", R"("\u001F")", R"("\u000a")", R"("\u0020")", R"("\u00e9")", R"("\ud83d\ude00")"}) {
        EXPECT_EQ(canonical_json(literal), "") << literal;
    }
}

// ---------------------------------------------------------------- skipping plain bytes

// A special byte at every position of strings 1..40 bytes long: the 16-byte
// (SSE2) and 8-byte (SWAR) steps and the byte-by-byte tail must each stop at it.
TEST(JsonCursorString, FindsASpecialByteAtEveryPositionAroundTheWideSteps) {
    for (std::size_t length = 1; length <= 40; ++length) {
        for (std::size_t at = 0; at < length; ++at) {
            std::string body(length, 'x');
            body[at] = '\x01';
            EXPECT_EQ(string_value(string_literal(body)), std::nullopt) << length << " " << at;
            std::string escaped(at, 'x');
            escaped.append("\\n").append(length - at - 1, 'x');
            std::string expected(length, 'x');
            expected[at] = '\n';
            EXPECT_EQ(string_value(string_literal(escaped)), expected) << length << " " << at;
            std::string utf8(at, 'x');
            utf8.append("\xC3\xA9").append(length - at - 1, 'x');
            std::string broken = utf8;
            broken[at + 1] = 'x';  // the lead byte without its continuation
            EXPECT_EQ(string_value(string_literal(utf8)), utf8) << length << " " << at;
            EXPECT_EQ(string_value(string_literal(broken)), std::nullopt) << length << " " << at;
        }
    }
}

TEST(JsonCursorString, StopsAtTheClosingQuoteWhereverItFalls) {
    for (std::size_t length = 0; length <= 40; ++length) {
        const std::string body(length, 'y');
        const std::string text = string_literal(body).append(20, 'z');
        JsonCursor cursor(text);
        JsonString read;
        std::string scratch;
        ASSERT_TRUE(cursor.read_string(read, scratch)) << length;
        EXPECT_EQ(read.text, body);
        EXPECT_EQ(cursor.peek(), 'z');
    }
}

}  // namespace
