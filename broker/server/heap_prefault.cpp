// heap_prefault.cpp — the heap set aside and populated ahead of a recovery (see heap_prefault.hpp).
#include "heap_prefault.hpp"

#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace memq {

HeapPrefault::HeapPrefault(std::size_t bytes) {
#ifdef MADV_POPULATE_WRITE
    if (bytes < kBytesMin) return;
    const std::size_t chunks = bytes / kChunkBytes;
    // glibc raises its mmap threshold to the size of an mmapped chunk when
    // one is freed (up to 32 MiB): after this, chunks of kChunkBytes come
    // from the heap. Each chunk's header is written, which faults in the
    // page under it here: one huge page in eight, not every one.
    // (Through a volatile pointer: a compiler drops an unused malloc/free pair.)
    void* volatile raiser = std::malloc(kThresholdRaiserBytes);
    std::free(raiser);
    std::vector<char*> taken;
    taken.reserve(chunks);
    bool contiguous = true;
    for (std::size_t i = 0; i < chunks; ++i) {
        char* chunk = static_cast<char*>(std::malloc(kChunkBytes));
        if (chunk == nullptr) break;
        // Each chunk right after the one before it, past glibc's header.
        if (!taken.empty() && (chunk <= taken.back() + kChunkBytes || chunk > taken.back() + kChunkBytes + kHeaderBytesMax)) {
            contiguous = false;
        }
        taken.push_back(chunk);
    }
    if (taken.size() < 2) {
        for (char* chunk : taken) std::free(chunk);
        return;
    }
    char* const begin = taken.front();
    char* const end = taken.back();  // the pin's start: what lies below it is the region
    pin_ = taken.back();
    taken.pop_back();
    for (char* chunk : taken) std::free(chunk);
    if (!contiguous) return;
    helper_done_.store(false, std::memory_order_relaxed);
    helper_ = std::thread([this, begin, end] {
        populate(begin, end);
        helper_done_.store(true, std::memory_order_release);
    });
#else
    (void)bytes;
#endif
}

void HeapPrefault::populate(char* begin, char* end) {
#ifdef MADV_POPULATE_WRITE
    const std::uintptr_t page = 4096;
    auto* at = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(begin) + page - 1) & ~(page - 1));
    while (at < end && !stop_.load(std::memory_order_relaxed)) {
        const std::size_t step = std::min<std::size_t>(kPopulateStepBytes, static_cast<std::size_t>(end - at) & ~(page - 1));
        if (step == 0 || ::madvise(at, step, MADV_POPULATE_WRITE) != 0) return;
        at += step;
        populated_.fetch_add(step, std::memory_order_relaxed);
    }
#else
    (void)begin;
    (void)end;
#endif
}

void HeapPrefault::finish() {
    stop_.store(true, std::memory_order_relaxed);
    if (helper_.joinable()) helper_.join();
    if (pin_ != nullptr) {
        std::free(pin_);
        pin_ = nullptr;
        ::malloc_trim(0);
    }
}

}  // namespace memq
