// network.cpp — the byte pipes of the virtual network (see network.hpp).
#include "network.hpp"

#include <algorithm>

#include "check.hpp"

namespace memq::sim {

void UpLink::consume(std::size_t n) {
    MEMQ_CHECK(n <= size());
    read_ += n;
    // Compact once the read part dominates: amortized O(1) per byte.
    if (read_ == buffer_.size()) {
        buffer_.clear();
        read_ = 0;
    } else if (read_ > 4096 && read_ * 2 > buffer_.size()) {
        buffer_.erase(0, read_);
        read_ = 0;
    }
}

void UpLink::clear() {
    buffer_.clear();
    read_ = 0;
}

void DownLink::hand_over(std::vector<Frame>& frames) {
    for (Frame& frame : frames) {
        unsent_ += frame->size();
        frames_.push_back(std::move(frame));
    }
}

void DownLink::send(std::size_t n) {
    MEMQ_CHECK(n <= unsent_ && n <= room());
    unsent_ -= n;
    while (n > 0) {
        const std::string& front = *frames_.front();
        const std::size_t here = std::min(n, front.size() - frame_offset_);
        buffer_.append(front, frame_offset_, here);
        frame_offset_ += here;
        n -= here;
        if (frame_offset_ == front.size()) {
            frames_.pop_front();
            frame_offset_ = 0;
        }
    }
}

void DownLink::consume(std::size_t n) {
    MEMQ_CHECK(n <= buffered());
    read_ += n;
    if (read_ == buffer_.size()) {
        buffer_.clear();
        read_ = 0;
    } else if (read_ > 4096 && read_ * 2 > buffer_.size()) {
        buffer_.erase(0, read_);
        read_ = 0;
    }
}

void DownLink::drop_unsent() {
    frames_.clear();
    frame_offset_ = 0;
    unsent_ = 0;
}

void DownLink::truncate(std::size_t keep) {
    if (keep < buffered()) buffer_.resize(read_ + keep);
}

void DownLink::clear() {
    drop_unsent();
    buffer_.clear();
    read_ = 0;
}

}  // namespace memq::sim
