// limits.hpp — every limit of the broker core, named and defaulted in one place.
//
// Rules: each limit is named noun_unit_max; the core enforces every one of them
// and never allocates past them on behalf of a client. The shell fills this
// struct from the command line; the simulator draws it from its seed.
#pragma once

#include <cstddef>

namespace memq {

inline constexpr std::size_t kKiB = 1024;
inline constexpr std::size_t kMiB = 1024 * kKiB;

struct Limits {
    // Longest accepted input line, in bytes, not counting the '\n'. A longer
    // line gets "Line too long" and the connection is closed.
    std::size_t line_bytes_max = 1 * kMiB;
    // Output queued for one connection and not yet written. Past it the
    // connection is closed as a slow consumer; nobody else waits for it.
    std::size_t pending_bytes_max = 64 * kMiB;
    // Messages kept per topic for replay after last_seen (0 disables caching).
    std::size_t cache_messages_max = 100;
};

}  // namespace memq
