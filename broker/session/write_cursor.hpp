// write_cursor.hpp — one connection's way out, decided without IO: the frames
// taken from the core, the pieces of each gather write, progress through
// partial writes, the recycling of Transmit vectors, and the connection's
// close/linger phase.
//
// Rules:
// - Pure: no sockets, no clock, no Asio. The shell (broker/server/tcp_server.cpp)
//   does the syscalls and the timers and asks this class what comes next; the
//   simulator (sim/network.cpp) drives the same class over its virtual socket,
//   with partial writes of any size (0 included) cut by its seed.
// - One Transmit at a time (the core's contract): take() swaps the Transmit's
//   frames with the cursor's drained vector, so the Transmit handed back to
//   Broker::poll_transmit(Transmit&) carries an empty vector whose capacity
//   becomes the connection's next queue.
// - The frames stay the truth until written: plan() copies small frames into
//   the caller's gather buffer for one write only; what a short write leaves
//   is planned again, from the frames, after advance().
// - The phase changes only through the named transitions below; each returns
//   the one thing the caller must do next (Next).
#pragma once

#include <sys/uio.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "broker.hpp"

namespace memq {

class WriteCursor {
public:
    // The most pieces one write takes (sendmsg's iovec limit).
    static constexpr std::size_t kPiecesPerWriteMax = IOV_MAX;
    // Frames (or the unwritten rest of one) up to this size are copied into
    // the gather buffer; longer ones are written from where they are. A
    // gather buffer must hold at least this much.
    static constexpr std::size_t kGatheredFrameBytesMax = 2 * kKiB;
    // A drained frames vector keeps its capacity up to this many frames.
    static constexpr std::size_t kKeptFramesCapacity = 1024;

    enum class Phase : std::uint8_t {
        handshaking,  // TLS only: the handshake is under way; no bytes to or from the core yet
        open,         // input goes to the core; its output is written as it comes
        finishing,    // no more input for the core; what is queued is written, then we shut down
        closing,      // our sending side is shut down: input is discarded until EOF or the linger ends
        gone,         // the socket is closed (handle_disconnect is the caller's to call, once)
    };

    // What the caller does after a transition.
    enum class Next : std::uint8_t {
        nothing,
        flush,      // now finishing: bound it with a timer, and call flushed() whenever a write completes
        shut_down,  // drop nothing more: shut down our sending side (TLS: close_notify first), then shut_down_done()
        linger,     // read and discard until the peer's EOF (then peer_eof()) or the linger timer (linger_ended())
        close,      // close the socket now and tell the core
    };

    // One write's worth: `pieces` entries of the caller's span, `bytes` in all.
    struct Plan {
        std::size_t pieces = 0;
        std::size_t bytes = 0;
    };

    // `handshake_first`: a TLS connection, which starts in Phase::handshaking.
    explicit WriteCursor(bool handshake_first = false)
        : phase_(handshake_first ? Phase::handshaking : Phase::open) {}

    Phase phase() const { return phase_; }
    bool peer_eof_seen() const { return peer_eof_; }
    // Input read now goes to the core.
    bool feeds_core() const { return phase_ == Phase::open; }
    // Input is read at all (finishing reads nothing; closing reads to discard).
    bool reads() const { return phase_ == Phase::open || phase_ == Phase::closing; }
    bool discards_input() const { return phase_ == Phase::closing; }

    // ---- the write path -----------------------------------------------------

    // The core's next Transmit for this connection (nothing may be in flight).
    // Returns false, and empties transmit.frames, when the connection is
    // closing or gone: such output is dropped. Either way transmit.frames is
    // empty afterwards, ready for the next poll_transmit(Transmit&).
    bool take(Transmit& transmit);
    // A Transmit was taken and not all of it is written yet.
    bool in_flight() const { return next_frame_ < frames_.size(); }
    std::size_t unwritten_bytes() const { return unwritten_; }

    // The next write: fills `pieces` (at most pieces.size(), which must be
    // at least 1) from the first unwritten byte, copying runs of frames up to
    // kGatheredFrameBytesMax into `gather` (at least kGatheredFrameBytesMax
    // bytes) as one piece each, and pointing at longer frames where they
    // are. Stops at the end, when the pieces are used up, or at a short frame
    // that no longer fits the gather buffer. Valid until advance() or take().
    Plan plan(std::span<char> gather, std::span<iovec> pieces) const;
    // Up to `max_bytes` of what is unwritten, appended to `out` in order
    // (for a stream that encrypts from one buffer: TLS).
    void copy_next(std::string& out, std::size_t max_bytes) const;
    // `bytes` (any count up to unwritten_bytes(), 0 included) were written.
    // Once all is written the frames are released and the vector is kept
    // (up to kKeptFramesCapacity) for take() to hand back.
    void advance(std::size_t bytes);

    // ---- the close/linger phase ----------------------------------------------

    // The TLS handshake completed: handshaking -> open.
    void handshake_done();
    // Stop feeding the core and write what is queued (the peer's EOF, or the
    // server shutting down): open -> finishing, Next::flush; a handshaking
    // connection has nothing to flush: Next::close. Otherwise nothing.
    Next finish();
    // Call when finishing and a write completed (or finish() said flush):
    // once nothing is in flight and the core has nothing pending
    // (`core_pending_bytes`), finishing -> closing: Next::shut_down.
    Next flushed(std::size_t core_pending_bytes);
    // The core's Close. Abrupt (slow consumer, storage failure): the frames
    // in flight are dropped, -> closing, Next::shut_down. Graceful (the core
    // flushed first): -> closing, Next::shut_down when nothing is in flight,
    // else -> finishing, Next::flush. Handshaking: Next::close. Closing or gone: nothing.
    Next close(CloseReason reason);
    // Our sending side is shut down: Next::close if the peer's EOF came, else Next::linger.
    Next shut_down_done();
    // The peer shut down its sending side. Open: -> finishing, Next::flush
    // (a half-closed peer may still read its replies). Closing: Next::close.
    Next peer_eof();
    // The timer of a handshake, a flush or a linger ended: Next::close unless open or gone.
    Next timer_expired();
    // A read, write or wait failed: Next::close unless gone.
    Next failed();
    // The caller closed the socket: -> gone, the frames released.
    void closed();

    static bool is_abrupt(CloseReason reason) {
        return reason == CloseReason::slow_consumer || reason == CloseReason::storage_failed;
    }

private:
    void release_frames(bool keep_capacity);

    Phase phase_;
    bool peer_eof_ = false;
    std::vector<Frame> frames_;          // the Transmit's frames, kept until all of them are written
    std::size_t next_frame_ = 0;         // the first frame not wholly written
    std::size_t next_frame_written_ = 0; // bytes of that frame already written
    std::size_t unwritten_ = 0;
};

}  // namespace memq
