// heap_prefault_test.cpp — specifies HeapPrefault (broker/server/
// heap_prefault.hpp): a large request is faulted in on the helper thread and
// what the process did not use is given back; memory handed out meanwhile
// keeps what is written into it; a request below the minimum sets nothing aside.
#include "heap_prefault.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using memq::HeapPrefault;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kGlibcHeap = false;  // the sanitizer's allocator replaces malloc: nothing to set aside
#else
constexpr bool kGlibcHeap = true;
#endif

std::size_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t size_pages = 0, resident_pages = 0;
    statm >> size_pages >> resident_pages;
    return resident_pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

TEST(HeapPrefault, a_request_below_the_minimum_sets_nothing_aside) {
    HeapPrefault prefault(HeapPrefault::kBytesMin - 1);
    prefault.finish();
    EXPECT_EQ(prefault.populated_bytes(), 0u);
}

// Waits (against a deadline) for the helper to stop by itself.
void wait_for_helper(const HeapPrefault& prefault) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!prefault.helper_done() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    ASSERT_TRUE(prefault.helper_done());
}

TEST(HeapPrefault, a_request_of_exactly_the_minimum_is_faulted_in_ahead) {
    if (!kGlibcHeap) GTEST_SKIP() << "under a sanitizer malloc is not glibc's heap; HeapPrefault does nothing there";
    HeapPrefault prefault(HeapPrefault::kBytesMin);
    wait_for_helper(prefault);
    prefault.finish();
    EXPECT_GE(prefault.populated_bytes(), HeapPrefault::kBytesMin - HeapPrefault::kChunkBytes - HeapPrefault::kPopulateStepBytes);
}

TEST(HeapPrefault, a_large_request_is_faulted_in_ahead_and_what_was_not_used_is_given_back) {
    if (!kGlibcHeap) GTEST_SKIP() << "under a sanitizer malloc is not glibc's heap; HeapPrefault does nothing there";
    const std::size_t requested = 6 * HeapPrefault::kChunkBytes;
    const std::size_t before = resident_bytes();
    HeapPrefault prefault(requested);
    wait_for_helper(prefault);
    prefault.finish();
    // Every chunk but the pin, less the alignment at the region's ends.
    EXPECT_GE(prefault.populated_bytes(), requested - HeapPrefault::kChunkBytes - HeapPrefault::kPopulateStepBytes);
    EXPECT_LE(prefault.populated_bytes(), requested);
    EXPECT_LT(resident_bytes(), before + HeapPrefault::kChunkBytes) << "the unused region stays resident";
}

TEST(HeapPrefault, memory_handed_out_while_the_helper_runs_keeps_its_contents) {
    HeapPrefault prefault(6 * HeapPrefault::kChunkBytes);
    std::vector<std::unique_ptr<std::string>> blocks;
    for (int i = 0; i < 200000; ++i) blocks.push_back(std::make_unique<std::string>(200, static_cast<char>('a' + i % 26)));
    prefault.finish();
    for (int i = 0; i < 200000; ++i) {
        ASSERT_EQ(*blocks[i], std::string(200, static_cast<char>('a' + i % 26))) << "block " << i;
    }
}

}  // namespace
