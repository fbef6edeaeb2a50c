// check.hpp — MEMQ_CHECK: invariant assertions that stay on in release builds.
//
// Rules: a failed check prints what failed and where, then aborts; it is for
// states the code must never reach, never for bad input (that gets a reply).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace memq::detail {
[[noreturn]] inline void check_failed(const char* condition, const char* file, int line) {
    std::fprintf(stderr, "memq: invariant failed: %s (%s:%d)\n", condition, file, line);
    std::abort();
}
}  // namespace memq::detail

#define MEMQ_CHECK(condition) \
    ((condition) ? static_cast<void>(0) : ::memq::detail::check_failed(#condition, __FILE__, __LINE__))
