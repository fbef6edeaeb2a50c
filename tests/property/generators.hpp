// generators.hpp — rapidcheck generators shared by the property suites:
// Unicode text biased towards what breaks codecs, bytes biased towards what
// breaks UTF-8 validators, and a UTF-8 encoder/decoder written here, apart
// from the core's, to judge it by.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <rapidcheck.h>

namespace memq::property {

// The UTF-8 bytes of `code_point` (any value up to 0x10FFFF but a surrogate).
inline void append_utf8(std::string& out, std::uint32_t code_point) {
    if (code_point < 0x80) {
        out.push_back(static_cast<char>(code_point));
    } else if (code_point < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
        out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else if (code_point < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
        out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
        out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    }
}

// The reference decoder: reads each sequence by value (lead byte → length,
// continuation bytes → code point) and refuses overlongs, surrogates and
// anything past U+10FFFF. Deliberately not the core's table-driven form.
inline bool reference_valid_utf8(std::string_view bytes) {
    std::size_t i = 0;
    while (i < bytes.size()) {
        const auto lead = static_cast<unsigned char>(bytes[i]);
        std::size_t length;
        std::uint32_t code_point;
        std::uint32_t smallest;
        if (lead < 0x80) {
            ++i;
            continue;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2, code_point = lead & 0x1Fu, smallest = 0x80;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3, code_point = lead & 0x0Fu, smallest = 0x800;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4, code_point = lead & 0x07u, smallest = 0x10000;
        } else {
            return false;  // a continuation byte, or 0xF8..0xFF
        }
        if (bytes.size() - i < length) return false;
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(bytes[i + k]);
            if ((next & 0xC0) != 0x80) return false;
            code_point = (code_point << 6) | (next & 0x3Fu);
        }
        if (code_point < smallest) return false;                         // overlong
        if (code_point >= 0xD800 && code_point <= 0xDFFF) return false;  // surrogate
        if (code_point > 0x10FFFF) return false;
        i += length;
    }
    return true;
}

// A code point, biased towards the ones codecs get wrong: quotes,
// backslashes, controls, NUL, DEL, the edges of each UTF-8 length, U+2028.
inline rc::Gen<std::uint32_t> code_point() {
    return rc::gen::weightedOneOf<std::uint32_t>({
        {8, rc::gen::inRange<std::uint32_t>(0x20, 0x7F)},
        {3, rc::gen::element<std::uint32_t>('"', '\\', '/', 0, 0x7F, '\n', '\r', '\t', '\b', '\f', 0x1F)},
        {1, rc::gen::inRange<std::uint32_t>(0, 0x20)},
        {2, rc::gen::inRange<std::uint32_t>(0x80, 0x800)},
        {2, rc::gen::inRange<std::uint32_t>(0x800, 0xD800)},
        {1, rc::gen::inRange<std::uint32_t>(0xE000, 0x10000)},
        {1, rc::gen::element<std::uint32_t>(0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0x2028, 0x2029, 0xFEFF, 0xFFFD, 0xFFFF,
                                            0x10000, 0x10FFFF)},
        {2, rc::gen::inRange<std::uint32_t>(0x10000, 0x110000)},
    });
}

// Any valid UTF-8 text (empty included).
inline rc::Gen<std::string> unicode_text() {
    return rc::gen::map(rc::gen::container<std::vector<std::uint32_t>>(code_point()),
                        [](const std::vector<std::uint32_t>& code_points) {
                            std::string text;
                            for (const std::uint32_t c : code_points) append_utf8(text, c);
                            return text;
                        });
}

// A byte, biased towards what UTF-8 validators get wrong.
inline rc::Gen<char> tricky_byte() {
    return rc::gen::map(
        rc::gen::weightedOneOf<int>({
            {4, rc::gen::inRange(0x20, 0x7F)},
            {4, rc::gen::inRange(0x80, 0xC0)},  // continuation bytes
            {6, rc::gen::element(0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4,
                                 0xF5, 0xF7, 0xF8, 0xFE, 0xFF)},
            {2, rc::gen::element(0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF)},  // the edges of second-byte ranges
            {1, rc::gen::inRange(0, 0x100)},
        }),
        [](int byte) { return static_cast<char>(static_cast<unsigned char>(byte)); });
}

// Bytes that are often valid UTF-8 and often just barely not: runs of tricky
// bytes mixed with whole, valid sequences.
inline rc::Gen<std::string> tricky_bytes() {
    return rc::gen::map(rc::gen::container<std::vector<std::string>>(rc::gen::weightedOneOf<std::string>({
                            {1, rc::gen::map(tricky_byte(), [](char byte) { return std::string(1, byte); })},
                            {6, rc::gen::map(code_point(),
                                             [](std::uint32_t c) {
                                                 std::string text;
                                                 append_utf8(text, c);
                                                 return text;
                                             })},
                        })),
                        [](const std::vector<std::string>& pieces) {
                            std::string bytes;
                            for (const std::string& piece : pieces) bytes += piece;
                            return bytes;
                        });
}

}  // namespace memq::property
