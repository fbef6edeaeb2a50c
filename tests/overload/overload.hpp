// overload.hpp — what every overload test shares: memqd's memory and descriptors
// read from /proc, the build's scale (sanitized builds move less data), the
// "[figure]" lines the tests print, and raw loopback sockets.
//
// Rules: figures go to stdout as one line each, "[figure] <test>: <name>=<value> ...",
// so they can be grepped out of a ctest log; bounds are asserted by the tests,
// never here. Helpers throw std::runtime_error on a system failure.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace memq::overload {

#ifdef MEMQ_OVERLOAD_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

inline constexpr std::uint64_t kKiB = 1024;
inline constexpr std::uint64_t kMiB = 1024 * kKiB;
inline constexpr std::uint64_t kGiB = 1024 * kMiB;

// "release" or "sanitized (data scaled down)": printed with the figures.
std::string_view build_flavour();

struct Memory {
    std::uint64_t hwm_bytes = 0;  // VmHWM: peak resident set since start (or the last reset_peak)
    std::uint64_t rss_bytes = 0;  // VmRSS: resident set now
};

// VmHWM and VmRSS of process `pid`, from /proc/<pid>/status.
Memory read_memory(pid_t pid);
// Resets VmHWM to the current RSS (writes "5" to /proc/<pid>/clear_refs);
// false if the kernel refused, in which case VmHWM still counts from start.
bool reset_peak(pid_t pid);
// Open descriptors of `pid`: the entries of /proc/<pid>/fd.
std::size_t count_fds(pid_t pid);

std::string mib(std::uint64_t bytes);  // "12.3 MiB"

// Prints "[figure] <test>: <text>" on a line of its own and flushes.
void figure(std::string_view test, const std::string& text);

// A blocking TCP socket connected to 127.0.0.1:`port`; `receive_buffer` sets
// SO_RCVBUF before connecting when non-zero.
int connect_loopback(std::uint16_t port, int receive_buffer = 0);
void set_nonblocking(int fd);
// Closes with SO_LINGER {1, 0}: the peer sees a reset, this side keeps no TIME_WAIT.
void close_with_reset(int fd);

}  // namespace memq::overload
