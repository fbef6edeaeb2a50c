// heap_prefault.hpp — owns HeapPrefault: before a recovery fills the heap, it
// sets aside the heap memory the recovery is expected to take and faults it
// in on a helper thread, so that the kernel's zeroing of fresh pages (half of
// a large recovery's CPU in this VM, docs/architecture.md) runs on the other
// core while the loop thread reads the log.
//
// How (glibc's main heap, which grows with brk):
// - The region is allocated in chunks below malloc's mmap threshold, so they
//   come from the main heap, one after another in address order. All but the
//   topmost are freed and coalesce into one free chunk, which the recovery's
//   allocations are carved from, low end first; the topmost (the "pin")
//   stays allocated until finish(), so the free chunk is not trimmed back.
// - The helper thread populates the region from its low end, 2 MiB at a
//   time, with madvise(MADV_POPULATE_WRITE): that only faults pages in and
//   never changes their contents, so it is safe on memory already in use.
// - finish() stops the helper, frees the pin and trims the heap: what the
//   recovery did not use goes back to the system.
// - Best effort: when the chunks are not contiguous (another mapping in the
//   heap's way) or populate fails (an older kernel), nothing is populated,
//   and the recovery faults its pages in itself, as without it.
#pragma once

#include <atomic>
#include <cstddef>
#include <thread>

namespace memq {

class HeapPrefault {
public:
    // Sets aside and starts populating about `bytes` of heap; nothing below kBytesMin.
    explicit HeapPrefault(std::size_t bytes);
    ~HeapPrefault() { finish(); }
    HeapPrefault(const HeapPrefault&) = delete;
    HeapPrefault& operator=(const HeapPrefault&) = delete;

    // Stops the helper, gives back what was not used. Idempotent.
    void finish();
    // Bytes the helper populated so far (for the start-up log).
    std::size_t populated_bytes() const { return populated_.load(std::memory_order_relaxed); }
    // The helper has stopped by itself: the region is populated, or populate failed (or none was started).
    bool helper_done() const { return helper_done_.load(std::memory_order_acquire); }

    static constexpr std::size_t kThresholdRaiserBytes = 24 * 1024 * 1024;
    static constexpr std::size_t kChunkBytes = 16 * 1024 * 1024;  // below the threshold once raised
    static constexpr std::size_t kBytesMin = 4 * kChunkBytes;      // less is not worth a helper thread
    static constexpr std::size_t kHeaderBytesMax = 64;  // between two contiguous chunks (glibc's is 16)
    static constexpr std::size_t kPopulateStepBytes = 2 * 1024 * 1024;  // one huge page a call

private:
    void populate(char* begin, char* end);

    void* pin_ = nullptr;
    std::thread helper_;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> populated_{0};
    std::atomic<bool> helper_done_{true};
};

}  // namespace memq
