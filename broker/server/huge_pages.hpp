// huge_pages.hpp — owns memqd's one start-up step that puts its heap on
// transparent huge pages: glibc does it only when the GLIBC_TUNABLES
// environment variable says so when the process starts, so memqd sets the
// tunable and executes itself again (same pid, arguments and descriptors).
//
// Why: on this class of machine a page fault is dear, and a recovery of a
// million topics touches more than a gigabyte of fresh heap. With the heap
// on 2 MiB pages, docs/benchmarks.md's recovery is about 3 times faster and
// a compaction's snapshot about 8 times (docs/architecture.md, "Durable topics").
#pragma once

#include <string>

namespace memq {

inline constexpr const char* kHugePageTunable = "glibc.malloc.hugetlb";

// The GLIBC_TUNABLES value that adds `kHugePageTunable=1` to `current` (null:
// unset), or "" when `current` already sets that tunable (to any value: an
// operator's choice stands, and the re-executed process stops there).
std::string tunables_with_huge_pages(const char* current);

// Sets GLIBC_TUNABLES and executes this binary (/proc/self/exe's target,
// so the process keeps its name) with argv, unless the
// tunable is already set. Returns only when nothing was executed: the
// tunable was set already, or exec failed (then the reason, for a warning).
std::string reexec_with_huge_page_heap(char** argv);

}  // namespace memq
