// network.hpp — the virtual links between simulated clients and the core.
//
// Rules: a link is a plain byte pipe that keeps order (as TCP does) and
// decides nothing: the simulator chooses when and how many bytes move, so
// every cut point and delay comes from the run's seed. Up: what a client
// wrote and the broker has not read. Down: the Transmit the broker handed
// over, held by memqd's own WriteCursor, a socket buffer of fixed capacity,
// and the client's reads; each write moves a prefix of the cursor's planned
// gather write into the socket buffer, only while it has room, and each
// move is what the shell would report with handle_written.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "broker.hpp"
#include "frame.hpp"
#include "protocol.hpp"
#include "write_cursor.hpp"

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

// Broker → client: the broker side's WriteCursor (the shell's own class, so
// its plan, partial writes, recycling and close phase run here as in memqd),
// a socket buffer of fixed capacity, and the client's reads.
class DownLink {
public:
    explicit DownLink(std::size_t capacity = 1) : capacity_(capacity == 0 ? 1 : capacity) { set_write_shape(0, 0); }

    void set_capacity(std::size_t capacity) { capacity_ = capacity == 0 ? 1 : capacity; }
    std::size_t capacity() const { return capacity_; }
    // The broker side's writes: a gather buffer of `gather_bytes` (raised to
    // WriteCursor::kGatheredFrameBytesMax) and at most `pieces` pieces (at least 1).
    void set_write_shape(std::size_t gather_bytes, std::size_t pieces);

    WriteCursor& cursor() { return cursor_; }
    const WriteCursor& cursor() const { return cursor_; }
    // A Transmit, taken as the shell takes it (see WriteCursor::take).
    bool take(Transmit& transmit) { return cursor_.take(transmit); }
    std::size_t unsent() const { return cursor_.unwritten_bytes(); }  // taken, not yet in the socket buffer
    std::size_t buffered() const { return buffer_.size() - read_; }
    std::size_t room() const { return capacity_ > buffered() ? capacity_ - buffered() : 0; }

    // Plans the broker side's next write; returns its bytes.
    std::size_t plan();
    // The socket takes the first `n` bytes of the planned write (n <=
    // min(planned, room()), 0 included) and the cursor advances past them:
    // what the shell would report with handle_written.
    void send(std::size_t n);
    // The client reads: the next `n` bytes (n <= buffered()).
    std::string_view peek(std::size_t n) const { return std::string_view(buffer_).substr(read_, n); }
    void consume(std::size_t n);

    // After an abrupt close (the cursor dropped what was unsent): of the
    // socket buffer only the first `keep` bytes still reach the client.
    void truncate(std::size_t keep);
    // The connection is gone: a fresh cursor, an empty socket buffer.
    void clear();

private:
    WriteCursor cursor_;
    std::vector<char> gather_;
    std::vector<iovec> pieces_;
    WriteCursor::Plan plan_;  // the planned write, until send()
    std::string buffer_;
    std::size_t read_ = 0;
    std::size_t capacity_;
};

}  // namespace memq::sim
