// tests/fuzz/fuzz_check.hpp — owns what the fuzz targets share: the failure
// report (message + offending bytes in hex on stderr, then abort, which
// libFuzzer turns into a crash artifact) and an independent strict UTF-8
// decoder, written from RFC 3629 without looking at broker/protocol.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace memq::fuzz {

inline std::string hex(std::string_view bytes, std::size_t max_bytes = 4096) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    const std::size_t shown = bytes.size() < max_bytes ? bytes.size() : max_bytes;
    out.reserve(shown * 2 + 16);
    for (std::size_t i = 0; i < shown; ++i) {
        const auto byte = static_cast<unsigned char>(bytes[i]);
        out.push_back(kDigits[byte >> 4]);
        out.push_back(kDigits[byte & 0xF]);
    }
    if (shown < bytes.size()) out.append("...");
    return out;
}

// Prints what failed, the bytes it failed on and any detail, then aborts.
[[noreturn]] inline void fail(const char* target, std::string_view what, std::string_view bytes,
                              std::string_view detail = {}) {
    std::fprintf(stderr, "\n%s: FAILED: %.*s\n  input (%zu bytes, hex): %s\n", target, static_cast<int>(what.size()),
                 what.data(), bytes.size(), hex(bytes).c_str());
    if (!detail.empty()) std::fprintf(stderr, "  %.*s\n", static_cast<int>(detail.size()), detail.data());
    std::fflush(stderr);
    std::abort();
}

// Strict UTF-8 by decoding: the lead byte's high bits give the length, every
// other byte must be 10xxxxxx, and the decoded code point must need exactly
// that length (no overlong form), must not be a surrogate, and must not pass
// U+10FFFF.
inline bool strict_utf8(std::string_view bytes) {
    std::size_t i = 0;
    while (i < bytes.size()) {
        const auto lead = static_cast<std::uint8_t>(bytes[i]);
        std::size_t continuation;
        std::uint32_t code;
        if ((lead & 0x80) == 0x00) {
            ++i;
            continue;
        } else if ((lead & 0xE0) == 0xC0) {
            continuation = 1, code = lead & 0x1Fu;
        } else if ((lead & 0xF0) == 0xE0) {
            continuation = 2, code = lead & 0x0Fu;
        } else if ((lead & 0xF8) == 0xF0) {
            continuation = 3, code = lead & 0x07u;
        } else {
            return false;  // 10xxxxxx as a lead, or 11111xxx
        }
        if (bytes.size() - i - 1 < continuation) return false;
        for (std::size_t k = 1; k <= continuation; ++k) {
            const auto next = static_cast<std::uint8_t>(bytes[i + k]);
            if ((next & 0xC0) != 0x80) return false;
            code = (code << 6) | (next & 0x3Fu);
        }
        static constexpr std::uint32_t kSmallest[] = {0, 0x80, 0x800, 0x10000};
        if (code < kSmallest[continuation]) return false;
        if (code >= 0xD800 && code <= 0xDFFF) return false;
        if (code > 0x10FFFF) return false;
        i += continuation + 1;
    }
    return true;
}

}  // namespace memq::fuzz
