// crc32c.hpp — owns CRC-32C (Castagnoli, reflected polynomial 0x82F63B78),
// the checksum of memq's on-disk log (log_format.hpp). Pure: no IO, no state
// beyond a constant table.
//
// The usual pre- and post-inversion: crc32c(0, "123456789", 9) == 0xE3069283,
// and a checksum extends over pieces, crc32c(crc32c(0, a), b) == crc32c(0, ab).
// On x86-64 CPUs with SSE4.2 it runs the crc32 instruction, eight bytes at a
// time (chosen once, at run time); elsewhere a byte table. Both paths are
// public so tests can hold them to the same answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace memq::storage {

// The checksum of crc's input followed by data[0..n): pass 0 to start.
std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t n);

inline std::uint32_t crc32c(std::string_view bytes) { return crc32c(0, bytes.data(), bytes.size()); }

// The table path, on every CPU.
std::uint32_t crc32c_portable(std::uint32_t crc, const void* data, std::size_t n);

// True when this CPU has the crc32 instruction; crc32c_hardware may only be
// called then (it is crc32c_portable elsewhere, e.g. off x86-64).
bool crc32c_hardware_available();
std::uint32_t crc32c_hardware(std::uint32_t crc, const void* data, std::size_t n);

}  // namespace memq::storage
