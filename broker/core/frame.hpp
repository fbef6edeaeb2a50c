// frame.hpp — Frame, one serialized server→client line shared by every
// recipient and the cache, and FramePool, which recycles the frames' buffers.
//
// Rules:
// - A Frame is an intrusively counted handle to an immutable string: copying
//   one is an increment, never an allocation. The count is not atomic: a
//   frame and its copies stay on one thread (the broker's).
// - A pooled frame's block goes back to its pool when its last handle goes
//   (the cache evicted it and the last connection wrote it), keeping its
//   string's capacity, so a steady stream of messages allocates nothing.
// - A pool may die before its frames: its blocks then free themselves, and its
//   shared state goes with the last of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace memq {

namespace detail {
struct FramePoolState;

struct FrameBlock {
    std::string text;
    std::uint32_t refs = 0;
    FramePoolState* pool = nullptr;  // null: not pooled, freed by its last handle
    FrameBlock* next_free = nullptr;
};
}  // namespace detail

class Frame {
public:
    Frame() noexcept = default;
    Frame(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor): a null frame
    Frame(const Frame& other) noexcept : block_(other.block_) {
        if (block_ != nullptr) ++block_->refs;
    }
    Frame(Frame&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
    Frame& operator=(const Frame& other) noexcept {
        Frame(other).swap(*this);
        return *this;
    }
    Frame& operator=(Frame&& other) noexcept {
        Frame(std::move(other)).swap(*this);
        return *this;
    }
    ~Frame() {
        if (block_ != nullptr && --block_->refs == 0) release(block_);
    }

    const std::string& operator*() const noexcept { return block_->text; }
    const std::string* operator->() const noexcept { return &block_->text; }
    // The shared string (one address per frame), or null.
    const std::string* get() const noexcept { return block_ == nullptr ? nullptr : &block_->text; }
    explicit operator bool() const noexcept { return block_ != nullptr; }
    // Handles of the same frame are equal; null equals null.
    friend bool operator==(const Frame& a, const Frame& b) noexcept { return a.block_ == b.block_; }
    friend bool operator==(const Frame& a, std::nullptr_t) noexcept { return a.block_ == nullptr; }
    std::size_t use_count() const noexcept { return block_ == nullptr ? 0 : block_->refs; }

    void swap(Frame& other) noexcept { std::swap(block_, other.block_); }

private:
    friend class FramePool;
    friend Frame make_frame(std::string text);
    explicit Frame(detail::FrameBlock* block) noexcept : block_(block) { ++block_->refs; }
    static void release(detail::FrameBlock* block) noexcept;

    detail::FrameBlock* block_ = nullptr;
};

// A frame of its own, not pooled (replies built once, tests).
Frame make_frame(std::string text);

class FramePool {
public:
    // Blocks kept for reuse at most, and the largest string capacity kept: a
    // rare huge message does not pin its buffer for good.
    static constexpr std::size_t kFreeBlocksMax = 1024;
    static constexpr std::size_t kKeptCapacityMax = 256 * 1024;

    FramePool();
    ~FramePool();
    FramePool(const FramePool&) = delete;
    FramePool& operator=(const FramePool&) = delete;

    // A frame whose text `fill(std::string& out)` writes into an empty string
    // (a recycled one when there is one, with its capacity).
    template <typename Fill>
    Frame make(Fill&& fill) {
        detail::FrameBlock* block = take();
        Frame frame(block);  // owns the block from here, even if fill throws
        fill(block->text);
        return frame;
    }

    std::size_t free_blocks() const;

private:
    detail::FrameBlock* take();

    detail::FramePoolState* state_;
};

}  // namespace memq
