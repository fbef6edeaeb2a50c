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

void DownLink::set_write_shape(std::size_t gather_bytes, std::size_t pieces) {
    gather_.resize(std::max(gather_bytes, WriteCursor::kGatheredFrameBytesMax));
    pieces_.resize(std::clamp<std::size_t>(pieces, 1, WriteCursor::kPiecesPerWriteMax));
    plan_ = {};
}

std::size_t DownLink::plan() {
    plan_ = cursor_.plan(gather_, pieces_);
    return plan_.bytes;
}

void DownLink::send(std::size_t n) {
    MEMQ_CHECK(n <= plan_.bytes && n <= room());
    std::size_t left = n;
    for (std::size_t i = 0; i < plan_.pieces && left != 0; ++i) {
        const std::size_t here = std::min(left, pieces_[i].iov_len);
        buffer_.append(static_cast<const char*>(pieces_[i].iov_base), here);
        left -= here;
    }
    cursor_.advance(n);
    plan_ = {};
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

void DownLink::truncate(std::size_t keep) {
    if (keep < buffered()) buffer_.resize(read_ + keep);
}

void DownLink::clear() {
    cursor_ = WriteCursor();
    plan_ = {};
    buffer_.clear();
    read_ = 0;
}

}  // namespace memq::sim
