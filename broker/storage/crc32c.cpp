// crc32c.cpp — owns the two CRC-32C paths (a byte table, and SSE4.2's crc32
// instruction) and the run-time choice between them.
#include "crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace memq::storage {
namespace {

constexpr std::uint32_t kReflectedPolynomial = 0x82F63B78u;

constexpr std::array<std::uint32_t, 256> make_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t byte = 0; byte < 256; ++byte) {
        std::uint32_t value = byte;
        for (int bit = 0; bit < 8; ++bit) value = (value & 1u) ? (value >> 1) ^ kReflectedPolynomial : value >> 1;
        table[byte] = value;
    }
    return table;
}

constexpr std::array<std::uint32_t, 256> kTable = make_table();

// The raw (uninverted) register update, one byte at a time.
std::uint32_t update_portable(std::uint32_t state, const unsigned char* bytes, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) state = kTable[(state ^ bytes[i]) & 0xFFu] ^ (state >> 8);
    return state;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t update_hardware(std::uint32_t state, const unsigned char* bytes,
                                                                std::size_t n) {
    // Whole words from the first byte (unaligned loads cost less than the
    // serial byte steps that aligning would take: a log record starts
    // anywhere), then a 4-, 2- and 1-byte step for the rest.
    std::uint64_t wide = state;
    while (n >= 8) {
        std::uint64_t word;
        std::memcpy(&word, bytes, sizeof word);
        wide = _mm_crc32_u64(wide, word);
        bytes += 8, n -= 8;
    }
    state = static_cast<std::uint32_t>(wide);
    if (n >= 4) {
        std::uint32_t word;
        std::memcpy(&word, bytes, sizeof word);
        state = _mm_crc32_u32(state, word);
        bytes += 4, n -= 4;
    }
    if (n >= 2) {
        std::uint16_t half;
        std::memcpy(&half, bytes, sizeof half);
        state = _mm_crc32_u16(state, half);
        bytes += 2, n -= 2;
    }
    if (n > 0) state = _mm_crc32_u8(state, *bytes);
    return state;
}

bool detect_hardware() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#else
std::uint32_t update_hardware(std::uint32_t state, const unsigned char* bytes, std::size_t n) {
    return update_portable(state, bytes, n);
}
bool detect_hardware() { return false; }
#endif

// Asked once, on first use (not at static initialization, whose order
// another translation unit's checksum could run before).
bool hardware_available() {
    static const bool available = detect_hardware();
    return available;
}

}  // namespace

std::uint32_t crc32c_portable(std::uint32_t crc, const void* data, std::size_t n) {
    return ~update_portable(~crc, static_cast<const unsigned char*>(data), n);
}

bool crc32c_hardware_available() { return hardware_available(); }

std::uint32_t crc32c_hardware(std::uint32_t crc, const void* data, std::size_t n) {
    return ~update_hardware(~crc, static_cast<const unsigned char*>(data), n);
}

std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t n) {
    return hardware_available() ? crc32c_hardware(crc, data, n) : crc32c_portable(crc, data, n);
}

}  // namespace memq::storage
