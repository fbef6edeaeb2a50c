// frame.cpp — the frame pool's free list and the release of a frame's last handle.
#include "frame.hpp"

#include "check.hpp"

namespace memq {

namespace detail {
struct FramePoolState {
    FrameBlock* free_list = nullptr;
    std::size_t free_count = 0;
    std::size_t live = 0;      // blocks handed out and not yet back
    bool owner_alive = true;   // the FramePool still exists

    void give_back(FrameBlock* block) noexcept {
        MEMQ_CHECK(live > 0);
        --live;
        if (!owner_alive) {
            delete block;
            if (live == 0) delete this;
            return;
        }
        if (free_count >= FramePool::kFreeBlocksMax || block->text.capacity() > FramePool::kKeptCapacityMax) {
            delete block;
            return;
        }
        block->text.clear();
        block->next_free = free_list;
        free_list = block;
        ++free_count;
    }
};
}  // namespace detail

void Frame::release(detail::FrameBlock* block) noexcept {
    if (block->pool == nullptr) {
        delete block;
        return;
    }
    block->pool->give_back(block);
}

Frame make_frame(std::string text) {
    auto* block = new detail::FrameBlock;
    block->text = std::move(text);
    return Frame(block);
}

FramePool::FramePool() : state_(new detail::FramePoolState) {}

FramePool::~FramePool() {
    while (detail::FrameBlock* block = state_->free_list) {
        state_->free_list = block->next_free;
        delete block;
    }
    state_->free_count = 0;
    state_->owner_alive = false;
    if (state_->live == 0) delete state_;  // else the last frame to go takes it along
}

detail::FrameBlock* FramePool::take() {
    detail::FrameBlock* block = state_->free_list;
    if (block != nullptr) {
        state_->free_list = block->next_free;
        --state_->free_count;
        block->next_free = nullptr;
    } else {
        block = new detail::FrameBlock;
        block->pool = state_;
    }
    MEMQ_CHECK(block->refs == 0 && block->text.empty());
    ++state_->live;
    return block;
}

std::size_t FramePool::free_blocks() const { return state_->free_count; }

}  // namespace memq
