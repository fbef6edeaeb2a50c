// write_cursor.cpp — the write plan, partial-write progress and close phase of one connection (see write_cursor.hpp).
#include "write_cursor.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "check.hpp"

namespace memq {

bool WriteCursor::take(Transmit& transmit) {
    MEMQ_CHECK(!in_flight());  // the core hands out one Transmit per connection at a time
    if (phase_ == Phase::closing || phase_ == Phase::gone) {
        transmit.frames.clear();  // output of a closed connection is dropped
        return false;
    }
    frames_.swap(transmit.frames);  // our drained vector goes back to the core with the Transmit
    transmit.frames.clear();
    next_frame_ = 0;
    next_frame_written_ = 0;
    unwritten_ = 0;
    for (const Frame& frame : frames_) unwritten_ += frame->size();
    if (unwritten_ == 0) release_frames(/*keep_capacity=*/true);
    return true;
}

WriteCursor::Plan WriteCursor::plan(std::span<char> gather, std::span<iovec> pieces) const {
    MEMQ_CHECK(gather.size() >= kGatheredFrameBytesMax && !pieces.empty());
    Plan plan;
    std::size_t gathered = 0;
    const char* run_end = nullptr;  // where the last piece ends, if it is a run in `gather`
    for (std::size_t i = next_frame_; i < frames_.size(); ++i) {
        const std::string& frame = *frames_[i];
        const std::size_t skip = i == next_frame_ ? next_frame_written_ : 0;
        const char* const data = frame.data() + skip;
        const std::size_t size = frame.size() - skip;
        if (size == 0) continue;
        if (size <= kGatheredFrameBytesMax) {
            if (gathered + size > gather.size()) break;  // the gather buffer is full
            char* const to = gather.data() + gathered;
            const bool extends_run = run_end == to;
            if (!extends_run && plan.pieces == pieces.size()) break;
            std::memcpy(to, data, size);
            gathered += size;
            if (extends_run) {
                pieces[plan.pieces - 1].iov_len += size;
            } else {
                pieces[plan.pieces] = iovec{to, size};
                ++plan.pieces;
            }
            run_end = to + size;
        } else {
            if (plan.pieces == pieces.size()) break;
            pieces[plan.pieces] = iovec{const_cast<char*>(data), size};
            ++plan.pieces;
            run_end = nullptr;
        }
        plan.bytes += size;
    }
    return plan;
}

void WriteCursor::copy_next(std::string& out, std::size_t max_bytes) const {
    std::size_t skip = next_frame_written_;
    for (std::size_t i = next_frame_; i < frames_.size() && max_bytes != 0; ++i) {
        const std::string& frame = *frames_[i];
        const std::size_t take = std::min(frame.size() - skip, max_bytes);
        out.append(frame, skip, take);
        max_bytes -= take;
        skip = 0;
    }
}

void WriteCursor::advance(std::size_t bytes) {
    MEMQ_CHECK(bytes <= unwritten_);
    unwritten_ -= bytes;
    while (in_flight()) {
        const std::size_t left_in_frame = frames_[next_frame_]->size() - next_frame_written_;
        if (bytes < left_in_frame) {
            next_frame_written_ += bytes;
            return;
        }
        bytes -= left_in_frame;
        ++next_frame_;
        next_frame_written_ = 0;
    }
    release_frames(/*keep_capacity=*/true);
}

void WriteCursor::release_frames(bool keep_capacity) {
    if (keep_capacity && frames_.capacity() <= kKeptFramesCapacity) {
        frames_.clear();
    } else {
        std::vector<Frame>().swap(frames_);
    }
    next_frame_ = 0;
    next_frame_written_ = 0;
    unwritten_ = 0;
}

void WriteCursor::handshake_done() {
    MEMQ_CHECK(phase_ == Phase::handshaking);
    phase_ = Phase::open;
}

WriteCursor::Next WriteCursor::finish() {
    switch (phase_) {
        case Phase::handshaking:
            return Next::close;  // nothing was said over TLS yet: nothing to flush
        case Phase::open:
            phase_ = Phase::finishing;
            return Next::flush;
        case Phase::finishing:
        case Phase::closing:
        case Phase::gone:
            return Next::nothing;
    }
    return Next::nothing;
}

WriteCursor::Next WriteCursor::flushed(std::size_t core_pending_bytes) {
    if (phase_ != Phase::finishing || in_flight() || core_pending_bytes != 0) return Next::nothing;
    phase_ = Phase::closing;
    return Next::shut_down;
}

WriteCursor::Next WriteCursor::close(CloseReason reason) {
    switch (phase_) {
        case Phase::handshaking:
            return Next::close;
        case Phase::open:
        case Phase::finishing:
            if (is_abrupt(reason)) release_frames(/*keep_capacity=*/false);  // the core dropped this output too
            if (in_flight()) {
                phase_ = Phase::finishing;
                return Next::flush;
            }
            phase_ = Phase::closing;
            return Next::shut_down;
        case Phase::closing:
        case Phase::gone:
            return Next::nothing;
    }
    return Next::nothing;
}

WriteCursor::Next WriteCursor::shut_down_done() {
    MEMQ_CHECK(phase_ == Phase::closing || phase_ == Phase::gone);
    if (phase_ == Phase::gone) return Next::nothing;
    return peer_eof_ ? Next::close : Next::linger;
}

WriteCursor::Next WriteCursor::peer_eof() {
    peer_eof_ = true;
    switch (phase_) {
        case Phase::open:
            phase_ = Phase::finishing;
            return Next::flush;
        case Phase::closing:
            return Next::close;
        case Phase::handshaking:
        case Phase::finishing:
        case Phase::gone:
            return Next::nothing;
    }
    return Next::nothing;
}

WriteCursor::Next WriteCursor::timer_expired() {
    return phase_ == Phase::open || phase_ == Phase::gone ? Next::nothing : Next::close;
}

WriteCursor::Next WriteCursor::failed() { return phase_ == Phase::gone ? Next::nothing : Next::close; }

void WriteCursor::closed() {
    phase_ = Phase::gone;
    release_frames(/*keep_capacity=*/false);
}

}  // namespace memq
