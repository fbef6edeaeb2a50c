// write_cursor_test.cpp — specifications of WriteCursor: partial writes at
// every boundary, the gather/iovec plan at its limits, the recycling of
// Transmit vectors, and the close/linger transitions.
#include "write_cursor.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

namespace memq {
namespace {

using Next = WriteCursor::Next;
using Phase = WriteCursor::Phase;

constexpr std::size_t kGatheredMax = WriteCursor::kGatheredFrameBytesMax;

// A frame of `size` bytes whose every byte tells its frame and position apart.
Frame frame_of(std::size_t size, char first) {
    std::string text(size, ' ');
    for (std::size_t i = 0; i < size; ++i) text[i] = static_cast<char>(first + static_cast<char>(i % 23));
    return make_frame(std::move(text));
}

Transmit transmit_of(const std::vector<std::size_t>& sizes) {
    Transmit transmit;
    transmit.conn = 1;
    char first = 'A';
    for (const std::size_t size : sizes) {
        transmit.frames.push_back(frame_of(size, first));
        transmit.bytes += size;
        first = static_cast<char>(first + 1);
    }
    return transmit;
}

std::string concatenated(const Transmit& transmit) {
    std::string all;
    for (const Frame& frame : transmit.frames) all += *frame;
    return all;
}

// A cursor with a gather buffer and the full count of pieces.
struct Writer {
    WriteCursor cursor;
    std::vector<char> gather = std::vector<char>(256 * kKiB);
    std::vector<iovec> pieces = std::vector<iovec>(WriteCursor::kPiecesPerWriteMax);

    WriteCursor::Plan plan() { return cursor.plan(gather, pieces); }
    // The bytes the next write would send, in order.
    std::string next_write() {
        const WriteCursor::Plan planned = plan();
        std::string bytes;
        for (std::size_t i = 0; i < planned.pieces; ++i) {
            bytes.append(static_cast<const char*>(pieces[i].iov_base), pieces[i].iov_len);
        }
        return bytes;
    }
    // Takes `transmit` (a copy: the original stays to compare with).
    std::string take(const Transmit& transmit) {
        Transmit copy = transmit;
        EXPECT_TRUE(cursor.take(copy));
        return concatenated(transmit);
    }
};

// ---- partial writes ---------------------------------------------------------

TEST(WriteCursor, a_write_of_zero_bytes_leaves_the_next_write_as_it_was) {
    Writer writer;
    const std::string all = writer.take(transmit_of({10, 20}));
    writer.cursor.advance(0);
    EXPECT_EQ(writer.next_write(), all);
    EXPECT_EQ(writer.cursor.unwritten_bytes(), 30U);
}

TEST(WriteCursor, a_write_of_one_byte_resumes_at_the_second_byte) {
    Writer writer;
    const std::string all = writer.take(transmit_of({10, 20}));
    writer.cursor.advance(1);
    EXPECT_EQ(writer.next_write(), all.substr(1));
}

TEST(WriteCursor, a_write_of_exactly_a_frame_resumes_at_the_next_frame) {
    Writer writer;
    const std::string all = writer.take(transmit_of({10, 20, 30}));
    writer.cursor.advance(10);
    EXPECT_EQ(writer.next_write(), all.substr(10));
    EXPECT_EQ(writer.cursor.unwritten_bytes(), 50U);
}

TEST(WriteCursor, a_write_of_a_frame_plus_one_byte_resumes_inside_the_next_frame) {
    Writer writer;
    const std::string all = writer.take(transmit_of({10, 20, 30}));
    writer.cursor.advance(11);
    EXPECT_EQ(writer.next_write(), all.substr(11));
}

TEST(WriteCursor, a_write_of_a_frame_minus_one_byte_leaves_its_last_byte_first) {
    Writer writer;
    const std::string all = writer.take(transmit_of({10, 20, 30}));
    writer.cursor.advance(9);
    EXPECT_EQ(writer.next_write(), all.substr(9));
}

TEST(WriteCursor, writes_that_cross_several_frame_boundaries_resume_at_the_right_byte) {
    Writer writer;
    const std::string all = writer.take(transmit_of({3, 1, 4, 1, 5}));
    writer.cursor.advance(4);  // the first two frames exactly
    writer.cursor.advance(5);  // the third, and the one-byte fourth
    EXPECT_EQ(writer.next_write(), all.substr(9));
}

TEST(WriteCursor, writing_every_byte_ends_the_transmit) {
    Writer writer;
    writer.take(transmit_of({10, 20}));
    writer.cursor.advance(29);
    EXPECT_TRUE(writer.cursor.in_flight());
    writer.cursor.advance(1);
    EXPECT_FALSE(writer.cursor.in_flight());
    EXPECT_EQ(writer.cursor.unwritten_bytes(), 0U);
    EXPECT_EQ(writer.plan().bytes, 0U);
}

TEST(WriteCursor, copy_next_appends_from_the_first_unwritten_byte_up_to_the_max) {
    Writer writer;
    const std::string all = writer.take(transmit_of({10, 20, 30}));
    writer.cursor.advance(15);
    std::string out(1, 'x');
    writer.cursor.copy_next(out, 20);
    EXPECT_EQ(out.substr(0, 1), "x");
    EXPECT_EQ(out.substr(1), all.substr(15, 20));
}

// ---- the plan: pieces -------------------------------------------------------

TEST(WriteCursor, exactly_the_most_pieces_of_long_frames_go_in_one_write) {
    Writer writer;
    const std::vector<std::size_t> sizes(WriteCursor::kPiecesPerWriteMax, kGatheredMax + 1);
    writer.take(transmit_of(sizes));
    const WriteCursor::Plan plan = writer.plan();
    EXPECT_EQ(plan.pieces, WriteCursor::kPiecesPerWriteMax);
    EXPECT_EQ(plan.bytes, WriteCursor::kPiecesPerWriteMax * (kGatheredMax + 1));
}

TEST(WriteCursor, a_long_frame_past_the_most_pieces_waits_for_the_next_write) {
    Writer writer;
    const std::vector<std::size_t> sizes(WriteCursor::kPiecesPerWriteMax + 1, kGatheredMax + 1);
    writer.take(transmit_of(sizes));
    const WriteCursor::Plan plan = writer.plan();
    EXPECT_EQ(plan.pieces, WriteCursor::kPiecesPerWriteMax);
    EXPECT_EQ(plan.bytes, WriteCursor::kPiecesPerWriteMax * (kGatheredMax + 1));
    writer.cursor.advance(plan.bytes);
    EXPECT_EQ(writer.plan().bytes, kGatheredMax + 1);
}

TEST(WriteCursor, a_smaller_span_of_pieces_limits_the_write) {
    Writer writer;
    writer.take(transmit_of({kGatheredMax + 1, 5, kGatheredMax + 1}));
    const WriteCursor::Plan plan = writer.cursor.plan(writer.gather, std::span<iovec>(writer.pieces).first(2));
    EXPECT_EQ(plan.pieces, 2U);
    EXPECT_EQ(plan.bytes, kGatheredMax + 1 + 5);
}

// ---- the plan: gathering ----------------------------------------------------

TEST(WriteCursor, a_frame_of_exactly_the_gathered_max_is_copied_into_the_gather_buffer) {
    Writer writer;
    const std::string all = writer.take(transmit_of({kGatheredMax}));
    ASSERT_EQ(writer.plan().pieces, 1U);
    EXPECT_EQ(writer.pieces[0].iov_base, writer.gather.data());
    EXPECT_EQ(writer.next_write(), all);
}

TEST(WriteCursor, a_frame_one_byte_over_the_gathered_max_is_written_from_where_it_is) {
    Writer writer;
    Transmit transmit = transmit_of({kGatheredMax + 1});
    const char* const frame_bytes = transmit.frames[0]->data();
    ASSERT_TRUE(writer.cursor.take(transmit));
    ASSERT_EQ(writer.plan().pieces, 1U);
    EXPECT_EQ(writer.pieces[0].iov_base, frame_bytes);
    EXPECT_EQ(writer.pieces[0].iov_len, kGatheredMax + 1);
}

TEST(WriteCursor, the_rest_of_a_long_frame_is_gathered_once_it_is_short_enough) {
    Writer writer;
    const std::string all = writer.take(transmit_of({kGatheredMax + 100}));
    writer.cursor.advance(100);
    ASSERT_EQ(writer.plan().pieces, 1U);
    EXPECT_EQ(writer.pieces[0].iov_base, writer.gather.data());
    EXPECT_EQ(writer.next_write(), all.substr(100));
}

TEST(WriteCursor, consecutive_short_frames_become_one_piece) {
    Writer writer;
    const std::string all = writer.take(transmit_of({20, 30, 40}));
    EXPECT_EQ(writer.plan().pieces, 1U);
    EXPECT_EQ(writer.next_write(), all);
}

TEST(WriteCursor, a_long_frame_between_short_ones_splits_the_run) {
    Writer writer;
    const std::string all = writer.take(transmit_of({20, kGatheredMax + 1, 30, 40}));
    EXPECT_EQ(writer.plan().pieces, 3U);
    EXPECT_EQ(writer.next_write(), all);
}

TEST(WriteCursor, short_frames_that_fill_the_gather_buffer_exactly_all_go_in_one_write) {
    Writer writer;
    writer.gather.resize(4 * kGatheredMax);
    const std::string all = writer.take(transmit_of({kGatheredMax, kGatheredMax, kGatheredMax, kGatheredMax}));
    const WriteCursor::Plan plan = writer.plan();
    EXPECT_EQ(plan.pieces, 1U);
    EXPECT_EQ(plan.bytes, 4 * kGatheredMax);
    EXPECT_EQ(writer.next_write(), all);
}

TEST(WriteCursor, a_short_frame_one_byte_over_a_full_gather_buffer_waits_for_the_next_write) {
    Writer writer;
    writer.gather.resize(4 * kGatheredMax);
    const std::string all = writer.take(transmit_of({kGatheredMax, kGatheredMax, kGatheredMax, kGatheredMax, 1}));
    const WriteCursor::Plan plan = writer.plan();
    EXPECT_EQ(plan.bytes, 4 * kGatheredMax);
    writer.cursor.advance(plan.bytes);
    EXPECT_EQ(writer.next_write(), all.substr(4 * kGatheredMax));
}

// ---- recycling --------------------------------------------------------------

TEST(WriteCursor, take_leaves_the_transmit_with_an_empty_vector_for_the_next_poll) {
    Writer writer;
    Transmit transmit = transmit_of({10, 20});
    ASSERT_TRUE(writer.cursor.take(transmit));
    EXPECT_TRUE(transmit.frames.empty());
}

TEST(WriteCursor, a_written_transmits_vector_goes_back_with_the_next_take) {
    Writer writer;
    Transmit first = transmit_of({10, 20});
    const Frame* const first_storage = first.frames.data();
    ASSERT_TRUE(writer.cursor.take(first));
    writer.cursor.advance(30);
    Transmit second = transmit_of({5});
    ASSERT_TRUE(writer.cursor.take(second));
    EXPECT_TRUE(second.frames.empty());
    EXPECT_EQ(second.frames.data(), first_storage);  // the same allocation, reused
}

TEST(WriteCursor, a_vector_of_exactly_the_kept_capacity_is_kept) {
    Writer writer;
    Transmit first = transmit_of({10});
    first.frames.reserve(WriteCursor::kKeptFramesCapacity);
    ASSERT_TRUE(writer.cursor.take(first));
    writer.cursor.advance(10);
    Transmit second = transmit_of({5});
    ASSERT_TRUE(writer.cursor.take(second));
    EXPECT_EQ(second.frames.capacity(), WriteCursor::kKeptFramesCapacity);
}

TEST(WriteCursor, a_vector_one_over_the_kept_capacity_is_freed) {
    Writer writer;
    Transmit first = transmit_of({10});
    first.frames.reserve(WriteCursor::kKeptFramesCapacity + 1);
    ASSERT_TRUE(writer.cursor.take(first));
    writer.cursor.advance(10);
    Transmit second = transmit_of({5});
    ASSERT_TRUE(writer.cursor.take(second));
    EXPECT_EQ(second.frames.capacity(), 0U);
}

TEST(WriteCursor, output_taken_while_closing_is_dropped) {
    Writer writer;
    ASSERT_EQ(writer.cursor.close(CloseReason::quit), Next::shut_down);
    Transmit transmit = transmit_of({10});
    EXPECT_FALSE(writer.cursor.take(transmit));
    EXPECT_TRUE(transmit.frames.empty());
    EXPECT_FALSE(writer.cursor.in_flight());
}

// ---- close and linger -------------------------------------------------------

TEST(WriteCursor, an_open_connection_feeds_the_core) {
    const WriteCursor cursor;
    EXPECT_EQ(cursor.phase(), Phase::open);
    EXPECT_TRUE(cursor.feeds_core());
    EXPECT_TRUE(cursor.reads());
}

TEST(WriteCursor, a_graceful_close_with_nothing_in_flight_shuts_down_at_once) {
    WriteCursor cursor;
    EXPECT_EQ(cursor.close(CloseReason::quit), Next::shut_down);
    EXPECT_EQ(cursor.phase(), Phase::closing);
}

TEST(WriteCursor, a_graceful_close_writes_what_is_in_flight_before_shutting_down) {
    Writer writer;
    writer.take(transmit_of({10, 20}));
    EXPECT_EQ(writer.cursor.close(CloseReason::line_too_long), Next::flush);
    EXPECT_EQ(writer.cursor.phase(), Phase::finishing);
    EXPECT_EQ(writer.cursor.flushed(0), Next::nothing);  // 30 bytes still in flight
    writer.cursor.advance(30);
    EXPECT_EQ(writer.cursor.flushed(0), Next::shut_down);
}

TEST(WriteCursor, an_abrupt_close_drops_the_output_in_flight) {
    Writer writer;
    writer.take(transmit_of({10, 20}));
    writer.cursor.advance(5);
    EXPECT_EQ(writer.cursor.close(CloseReason::slow_consumer), Next::shut_down);
    EXPECT_FALSE(writer.cursor.in_flight());
    EXPECT_EQ(writer.cursor.unwritten_bytes(), 0U);
    EXPECT_EQ(writer.cursor.phase(), Phase::closing);
}

TEST(WriteCursor, a_storage_failure_closes_abruptly) {
    Writer writer;
    writer.take(transmit_of({10}));
    EXPECT_EQ(writer.cursor.close(CloseReason::storage_failed), Next::shut_down);
    EXPECT_FALSE(writer.cursor.in_flight());
}

TEST(WriteCursor, finishing_waits_until_the_core_has_nothing_pending) {
    WriteCursor cursor;
    EXPECT_EQ(cursor.finish(), Next::flush);
    EXPECT_EQ(cursor.phase(), Phase::finishing);
    EXPECT_EQ(cursor.flushed(1), Next::nothing);
    EXPECT_EQ(cursor.flushed(0), Next::shut_down);
}

TEST(WriteCursor, a_finishing_connection_reads_no_input) {
    WriteCursor cursor;
    cursor.finish();
    EXPECT_FALSE(cursor.reads());
    EXPECT_FALSE(cursor.feeds_core());
}

TEST(WriteCursor, input_after_the_shutdown_is_read_and_discarded) {
    WriteCursor cursor;
    cursor.close(CloseReason::quit);
    EXPECT_TRUE(cursor.reads());
    EXPECT_TRUE(cursor.discards_input());
    EXPECT_FALSE(cursor.feeds_core());
}

TEST(WriteCursor, after_the_shutdown_the_connection_lingers_until_the_peers_eof) {
    WriteCursor cursor;
    cursor.close(CloseReason::quit);
    EXPECT_EQ(cursor.shut_down_done(), Next::linger);
    EXPECT_EQ(cursor.peer_eof(), Next::close);
}

TEST(WriteCursor, the_end_of_the_linger_closes_the_connection) {
    WriteCursor cursor;
    cursor.close(CloseReason::quit);
    cursor.shut_down_done();
    EXPECT_EQ(cursor.timer_expired(), Next::close);
}

TEST(WriteCursor, the_peers_eof_finishes_an_open_connection) {
    WriteCursor cursor;
    EXPECT_EQ(cursor.peer_eof(), Next::flush);
    EXPECT_EQ(cursor.phase(), Phase::finishing);
    EXPECT_TRUE(cursor.peer_eof_seen());
}

TEST(WriteCursor, a_shutdown_after_the_peers_eof_closes_at_once) {
    WriteCursor cursor;
    cursor.peer_eof();
    EXPECT_EQ(cursor.flushed(0), Next::shut_down);
    EXPECT_EQ(cursor.shut_down_done(), Next::close);
}

TEST(WriteCursor, the_end_of_a_flush_closes_the_connection) {
    WriteCursor cursor;
    cursor.finish();
    EXPECT_EQ(cursor.timer_expired(), Next::close);
}

TEST(WriteCursor, a_timer_in_the_open_phase_closes_nothing) {
    WriteCursor cursor;
    EXPECT_EQ(cursor.timer_expired(), Next::nothing);
}

TEST(WriteCursor, a_second_close_does_nothing) {
    WriteCursor cursor;
    cursor.close(CloseReason::quit);
    EXPECT_EQ(cursor.close(CloseReason::slow_consumer), Next::nothing);
}

TEST(WriteCursor, a_handshaking_connection_neither_reads_nor_feeds_the_core) {
    const WriteCursor cursor(/*handshake_first=*/true);
    EXPECT_EQ(cursor.phase(), Phase::handshaking);
    EXPECT_FALSE(cursor.feeds_core());
}

TEST(WriteCursor, a_handshaking_connection_has_nothing_to_flush_and_closes_at_once) {
    WriteCursor cursor(/*handshake_first=*/true);
    EXPECT_EQ(cursor.finish(), Next::close);
}

TEST(WriteCursor, a_close_of_the_core_during_the_handshake_closes_at_once) {
    WriteCursor cursor(/*handshake_first=*/true);
    EXPECT_EQ(cursor.close(CloseReason::too_many_connections), Next::close);
}

TEST(WriteCursor, a_completed_handshake_opens_the_connection) {
    WriteCursor cursor(/*handshake_first=*/true);
    cursor.handshake_done();
    EXPECT_EQ(cursor.phase(), Phase::open);
    EXPECT_TRUE(cursor.feeds_core());
}

TEST(WriteCursor, a_failure_closes_and_a_closed_connection_does_nothing_more) {
    Writer writer;
    writer.take(transmit_of({10}));
    EXPECT_EQ(writer.cursor.failed(), Next::close);
    writer.cursor.closed();
    EXPECT_EQ(writer.cursor.phase(), Phase::gone);
    EXPECT_FALSE(writer.cursor.in_flight());
    EXPECT_EQ(writer.cursor.failed(), Next::nothing);
    EXPECT_EQ(writer.cursor.timer_expired(), Next::nothing);
}

}  // namespace
}  // namespace memq
