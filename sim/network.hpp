// network.hpp — the virtual links between simulated clients and the core.
//
// Rules: a link is a plain byte pipe that keeps order (as TCP does) and
// decides nothing: the simulator chooses when and how many bytes move, so
// every cut point and delay comes from the run's seed. Up: what a client
// wrote and the broker has not read. Down: the frames the broker handed over
// (a Transmit), a socket buffer of fixed capacity, and the client's reads;
// bytes move from the frames into the socket buffer only while it has room,
// and each move is what the shell would report with handle_written.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "frame.hpp"
#include "protocol.hpp"

namespace memq::sim {

// Client → broker: bytes written, not yet read by the broker.
class UpLink {
public:
    void write(std::string_view bytes) { buffer_.append(bytes); }
    std::size_t size() const { return buffer_.size() - read_; }
    bool empty() const { return size() == 0; }
    // The next `n` bytes (n <= size()); valid until the next write or consume.
    std::string_view peek(std::size_t n) const { return std::string_view(buffer_).substr(read_, n); }
    void consume(std::size_t n);
    void clear();

private:
    std::string buffer_;
    std::size_t read_ = 0;
};

// Broker → client: handed-over frames, then a bounded socket buffer.
class DownLink {
public:
    explicit DownLink(std::size_t capacity = 1) : capacity_(capacity == 0 ? 1 : capacity) {}

    void set_capacity(std::size_t capacity) { capacity_ = capacity == 0 ? 1 : capacity; }
    std::size_t capacity() const { return capacity_; }

    // A Transmit: its frames join the bytes waiting to enter the socket buffer.
    void hand_over(std::vector<Frame>& frames);
    std::size_t unsent() const { return unsent_; }  // handed over, not yet in the socket buffer
    std::size_t buffered() const { return buffer_.size() - read_; }
    std::size_t room() const { return capacity_ > buffered() ? capacity_ - buffered() : 0; }

    // Moves `n` bytes (n <= min(unsent(), room())) into the socket buffer.
    void send(std::size_t n);
    // The client reads: the next `n` bytes (n <= buffered()).
    std::string_view peek(std::size_t n) const { return std::string_view(buffer_).substr(read_, n); }
    void consume(std::size_t n);

    // An abrupt close: what was not sent is gone; of the socket buffer only
    // the first `keep` bytes still reach the client.
    void drop_unsent();
    void truncate(std::size_t keep);
    void clear();

private:
    std::deque<Frame> frames_;
    std::size_t frame_offset_ = 0;  // bytes of frames_.front() already sent
    std::size_t unsent_ = 0;
    std::string buffer_;
    std::size_t read_ = 0;
    std::size_t capacity_;
};

}  // namespace memq::sim
