// log_writer_test.cpp — specifies LogWriter (broker/server/log_writer.hpp):
// writes land in seq order; one sync covers every sync_now write queued while
// the previous sync ran (group commit); without sync_now a write is synced by
// the interval, or by a later sync_now; a replace swaps the whole file
// atomically for readers; a failing write, sync or rename is reported with
// the first unsure seq, nothing past it is reported synced, nothing is
// appended after it, and a replace recovers; stop() and the destructor drain
// and sync; submit's preconditions.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "data_dir.hpp"
#include "log_test_support.hpp"
#include "log_writer.hpp"
#include "scripted_file_ops.hpp"
#include "storage_dir_support.hpp"

namespace {

using namespace memq_storage_test;
using namespace std::chrono_literals;
using memq::DataDir;
using memq::LogWriter;
using memq::LogWriterOptions;
using memq::storage::StorageWrite;

constexpr auto kNoInterval = std::chrono::milliseconds(std::chrono::hours(1));
constexpr auto kWaitLimit = 20s;

struct Failure {
    std::uint64_t first_unsure;
    std::error_code error;
    std::string what;
};

// A LogWriter on a scratch directory, with ScriptedFileOps, its handlers
// recording on this thread, which runs the io_context while it waits.
class WriterHarness {
public:
    explicit WriterHarness(std::chrono::milliseconds sync_interval = kNoInterval) : dir_(scratch_.path()) {
        start(sync_interval);
    }

    void start(std::chrono::milliseconds sync_interval) {
        writer_ = std::make_unique<LogWriter>(
            io_, dir_, LogWriterOptions{sync_interval}, [this](std::uint64_t seq) { synced.push_back(seq); },
            [this](std::uint64_t first_unsure, std::error_code error, const std::string& what) {
                failures.push_back(Failure{first_unsure, error, what});
            },
            ops);
    }

    std::uint64_t append(const std::string& bytes, bool sync_now) { return submit(bytes, false, sync_now); }
    // Appends bytes with sync_now and waits until they are synced.
    void append_synced(const std::string& bytes) { run_until_synced(append(bytes, true)); }
    // Appends bytes with sync_now and waits for the failure it meets.
    const Failure& append_failing(const std::string& bytes) {
        const std::size_t before = failures.size();
        append(bytes, true);
        run_until_failures(before + 1);
        return failures.back();
    }
    std::uint64_t replace(const std::string& bytes) { return submit(bytes, true, false); }

    std::uint64_t submit(const std::string& bytes, bool replace, bool sync_now) {
        const std::uint64_t seq = next_seq_++;
        writer_->submit(StorageWrite{seq, bytes, replace, sync_now});
        return seq;
    }

    // Runs the loop's handlers until `done`, failing the test after kWaitLimit.
    void run_until(const std::function<bool()>& done) {
        const auto limit = std::chrono::steady_clock::now() + kWaitLimit;
        while (!done()) {
            ASSERT_LT(std::chrono::steady_clock::now(), limit) << "timed out";
            io_.run_one_for(50ms);
        }
    }
    void run_until_synced(std::uint64_t seq) {
        run_until([&] { return !synced.empty() && synced.back() >= seq; });
    }
    void run_until_failures(std::size_t count) {
        run_until([&] { return failures.size() >= count; });
    }
    // Runs every handler already posted.
    void run_posted() { io_.poll(); }

    LogWriter& writer() { return *writer_; }
    void destroy_writer() { writer_.reset(); }
    std::string log() const { return read_file(dir_.log_path()); }
    const DataDir& dir() const { return dir_; }

    ScriptedFileOps ops;
    std::vector<std::uint64_t> synced;
    std::vector<Failure> failures;

private:
    ScratchDir scratch_;
    DataDir dir_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
    std::unique_ptr<LogWriter> writer_;
    std::uint64_t next_seq_ = 1;
};

std::string piece(int n) { return "record " + std::to_string(n) + ";"; }

// ---- order and syncing ---------------------------------------------------------

TEST(LogWriter, appends_reach_the_file_in_seq_order) {
    WriterHarness h;
    std::string expected;
    for (int n = 1; n <= 200; ++n) {
        h.append(piece(n), n == 200);
        expected += piece(n);
    }
    h.run_until_synced(200);
    EXPECT_EQ(h.log(), expected);
}

TEST(LogWriter, reports_synced_seqs_in_increasing_order_ending_at_the_last) {
    WriterHarness h;
    for (int n = 1; n <= 100; ++n) h.append(piece(n), true);
    h.run_until_synced(100);
    for (std::size_t i = 1; i < h.synced.size(); ++i) EXPECT_LT(h.synced[i - 1], h.synced[i]);
    EXPECT_EQ(h.synced.back(), 100u);
    EXPECT_TRUE(h.failures.empty());
}

TEST(LogWriter, one_sync_covers_every_sync_now_write_queued_while_a_sync_runs) {
    WriterHarness h;
    h.ops.hold_syncs();
    h.append(piece(1), true);
    h.ops.wait_until_a_sync_is_held();
    for (int n = 2; n <= 10; ++n) h.append(piece(n), true);
    h.ops.release_syncs();
    h.run_until_synced(10);
    EXPECT_EQ(h.ops.fdatasync_calls(), 2) << "one for write 1, one for writes 2..10";
    EXPECT_EQ(h.synced, (std::vector<std::uint64_t>{1, 10}));
    EXPECT_EQ(h.writer().stats().syncs, 2u);
}

TEST(LogWriter, a_write_without_sync_now_is_synced_by_the_interval) {
    WriterHarness h(20ms);
    h.append(piece(1), false);
    h.run_until_synced(1);
    EXPECT_EQ(h.ops.fdatasync_calls(), 1);
}

TEST(LogWriter, a_write_without_sync_now_waits_for_a_later_sync_now_within_the_interval) {
    WriterHarness h(kNoInterval);
    h.append(piece(1), false);
    h.append(piece(2), true);
    h.run_until_synced(2);
    EXPECT_EQ(h.synced, (std::vector<std::uint64_t>{2})) << "write 1 was not synced on its own";
    EXPECT_EQ(h.ops.fdatasync_calls(), 1);
}

TEST(LogWriter, an_interval_of_zero_syncs_every_write) {
    WriterHarness h(0ms);
    for (int n = 1; n <= 5; ++n) {
        const std::uint64_t seq = h.append(piece(n), false);
        h.run_until_synced(seq);
    }
    EXPECT_EQ(h.synced, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
    EXPECT_EQ(h.ops.fdatasync_calls(), 5);
}

TEST(LogWriter, the_queue_is_empty_once_everything_is_synced) {
    WriterHarness h;
    for (int n = 1; n <= 50; ++n) h.append(std::string(1000, 'x'), n == 50);
    h.run_until_synced(50);
    EXPECT_EQ(h.writer().queued_bytes(), 0u);
    EXPECT_EQ(h.writer().stats().bytes, 50'000u);
}

// ---- replace ----------------------------------------------------------------------

TEST(LogWriter, a_replace_takes_the_place_of_the_whole_log_and_appends_follow_it) {
    WriterHarness h;
    h.append("old;", true);
    h.replace("new;");
    h.append("after;", true);
    h.run_until_synced(3);
    EXPECT_EQ(h.log(), "new;after;");
    EXPECT_FALSE(std::filesystem::exists(h.dir().temp_log_path())) << "the temporary file became the log";
}

TEST(LogWriter, a_replace_is_reported_synced_by_itself) {
    WriterHarness h;
    const std::uint64_t seq = h.replace("snapshot;");
    h.run_until_synced(seq);
    EXPECT_EQ(h.ops.fdatasync_calls(), 0) << "its fsync and the directory's make it durable";
    EXPECT_EQ(h.writer().stats().replaces, 1u);
}

TEST(LogWriter, a_reader_sees_the_old_log_or_the_new_never_a_mix) {
    WriterHarness h;
    const std::string first = std::string(300'000, 'a');
    const std::string second = std::string(200'000, 'b');
    h.replace(first);
    h.run_until_synced(1);
    std::atomic<bool> done{false};
    std::atomic<int> reads{0};
    std::atomic<int> mixed{0};
    std::thread reader([&] {
        while (!done.load()) {
            const std::string seen = h.log();
            if (seen != first && seen != second) ++mixed;
            ++reads;
        }
    });
    std::uint64_t last = 0;
    for (int round = 0; round < 40; ++round) last = h.replace(round % 2 == 0 ? second : first);
    h.run_until_synced(last);
    done = true;
    reader.join();
    EXPECT_EQ(mixed.load(), 0) << "of " << reads.load() << " reads";
    EXPECT_GT(reads.load(), 0);
}

// ---- failures ------------------------------------------------------------------------

TEST(LogWriter, a_failing_write_is_reported_with_the_first_unsure_seq) {
    WriterHarness h;
    h.append_synced(piece(1));
    h.ops.fail_writes(ENOSPC);
    const Failure& failure = h.append_failing(piece(2));
    EXPECT_EQ(failure.first_unsure, 2u);
    EXPECT_EQ(failure.error, std::errc::no_space_on_device);
    EXPECT_NE(failure.what.find("write " + h.dir().log_path()), std::string::npos) << failure.what;
    EXPECT_EQ(h.log(), piece(1));
}

TEST(LogWriter, writes_since_the_last_sync_are_unsure_after_a_failure) {
    WriterHarness h;
    h.append_synced(piece(1));
    h.append(piece(2), false);
    h.ops.fail_writes(EIO);
    EXPECT_EQ(h.append_failing(piece(3)).first_unsure, 2u);
    EXPECT_EQ(h.synced, (std::vector<std::uint64_t>{1}));
}

TEST(LogWriter, a_short_write_that_then_fails_is_cut_back_off_the_file) {
    WriterHarness h;
    h.append_synced(piece(1));
    h.ops.fail_writes(ENOSPC, 1, 3);
    h.append_failing(piece(2));
    EXPECT_EQ(h.log(), piece(1)) << "no half record left";
}

TEST(LogWriter, after_a_failure_appends_are_dropped_and_never_reported_until_a_replace_succeeds) {
    WriterHarness h;
    h.ops.fail_writes(ENOSPC);
    h.append_failing(piece(1));
    h.append(piece(2), true);
    const std::uint64_t replaced = h.replace("snapshot;");
    h.append(piece(4), true);
    h.run_until_synced(4);
    EXPECT_EQ(h.synced, (std::vector<std::uint64_t>{replaced, 4}));
    EXPECT_EQ(h.log(), "snapshot;" + piece(4));
    EXPECT_EQ(h.writer().stats().dropped, 1u);
    EXPECT_EQ(h.failures.size(), 1u);
}

TEST(LogWriter, a_failing_fdatasync_is_reported_and_a_replace_recovers) {
    WriterHarness h;
    h.append_synced(piece(1));
    h.ops.fail_fdatasyncs(EIO);
    const Failure& failure = h.append_failing(piece(2));
    EXPECT_EQ(failure.first_unsure, 2u);
    EXPECT_EQ(failure.error, std::errc::io_error);
    EXPECT_NE(failure.what.find("fdatasync"), std::string::npos) << failure.what;
    const std::uint64_t replaced = h.replace("snapshot;");
    h.run_until_synced(replaced);
    EXPECT_EQ(h.synced, (std::vector<std::uint64_t>{1, replaced}));
}

TEST(LogWriter, a_failing_rename_keeps_the_old_log_and_a_later_replace_succeeds) {
    WriterHarness h;
    h.append("old;", true);
    h.run_until_synced(1);
    h.ops.fail_renames(EIO);
    h.replace("first snapshot;");
    h.run_until_failures(1);
    EXPECT_EQ(h.failures[0].first_unsure, 2u);
    EXPECT_NE(h.failures[0].what.find("rename"), std::string::npos) << h.failures[0].what;
    EXPECT_EQ(h.log(), "old;");
    const std::uint64_t replaced = h.replace("second snapshot;");
    h.append("after;", true);
    h.run_until_synced(replaced + 1);
    EXPECT_EQ(h.log(), "second snapshot;after;");
}

TEST(LogWriter, a_failing_replace_write_keeps_the_old_log) {
    WriterHarness h;
    h.append("old;", true);
    h.run_until_synced(1);
    h.ops.fail_writes(ENOSPC);
    h.replace("snapshot;");
    h.run_until_failures(1);
    EXPECT_EQ(h.failures[0].error, std::errc::no_space_on_device);
    EXPECT_EQ(h.log(), "old;");
}

// ---- stop --------------------------------------------------------------------------------

TEST(LogWriter, stop_writes_and_syncs_everything_submitted) {
    WriterHarness h;
    std::string expected;
    for (int n = 1; n <= 50; ++n) {
        h.append(piece(n), false);
        expected += piece(n);
    }
    h.writer().stop();
    EXPECT_EQ(h.log(), expected);
    EXPECT_EQ(h.writer().stats().synced_seq, 50u);
    h.run_posted();
    EXPECT_EQ(h.synced.back(), 50u);
}

TEST(LogWriter, the_destructor_drains_like_stop) {
    WriterHarness h;
    for (int n = 1; n <= 20; ++n) h.append(piece(n), false);
    h.destroy_writer();
    EXPECT_EQ(h.ops.fdatasync_calls(), 1);
    std::string expected;
    for (int n = 1; n <= 20; ++n) expected += piece(n);
    EXPECT_EQ(h.log(), expected);
}

TEST(LogWriter, stop_twice_is_harmless) {
    WriterHarness h;
    h.writer().stop();
    h.writer().stop();
    SUCCEED();
}

TEST(LogWriter, submit_after_stop_is_a_logic_error) {
    WriterHarness h;
    h.writer().stop();
    EXPECT_THROW(h.writer().submit(StorageWrite{1, "x", false, false}), std::logic_error);
}

TEST(LogWriter, a_seq_that_does_not_grow_is_refused) {
    WriterHarness h;
    h.writer().submit(StorageWrite{5, "x", false, false});
    EXPECT_THROW(h.writer().submit(StorageWrite{5, "y", false, false}), std::invalid_argument);
    EXPECT_THROW(h.writer().submit(StorageWrite{4, "y", false, false}), std::invalid_argument);
}

// ---- buffers handed back -------------------------------------------------------------------

// A write's bytes in a buffer of exactly `capacity` bytes.
std::string buffer_of_capacity(std::size_t capacity) {
    std::string bytes;
    bytes.reserve(capacity);
    bytes.assign(capacity, 'b');
    return bytes;
}

// Submits a write of `capacity` bytes, waits until it is synced (so its
// buffer is back with the worker's spares), then returns what the next
// submit hands back.
std::string buffer_after_a_synced_write_of(WriterHarness& h, std::size_t capacity) {
    const std::string bytes = buffer_of_capacity(capacity);
    EXPECT_EQ(bytes.capacity(), capacity);
    const std::uint64_t seq = h.append(bytes, true);
    h.run_until_synced(seq);
    return h.writer().submit(StorageWrite{seq + 1000, "", false, false});
}

TEST(LogWriter, submit_hands_back_an_empty_buffer_that_keeps_a_written_writes_capacity) {
    WriterHarness h;
    const std::string next = buffer_after_a_synced_write_of(h, 100'000);
    EXPECT_TRUE(next.empty());
    EXPECT_GE(next.capacity(), 100'000u);
}

TEST(LogWriter, a_buffer_of_exactly_the_kept_capacity_comes_back) {
    WriterHarness h;
    EXPECT_GE(buffer_after_a_synced_write_of(h, LogWriter::kSpareCapacityMax).capacity(), LogWriter::kSpareCapacityMax);
}

TEST(LogWriter, a_buffer_one_byte_over_the_kept_capacity_is_freed_not_kept) {
    WriterHarness h;
    EXPECT_LT(buffer_after_a_synced_write_of(h, LogWriter::kSpareCapacityMax + 1).capacity(), 1024u);
}

TEST(LogWriter, with_nothing_written_yet_submit_hands_back_an_empty_buffer) {
    WriterHarness h;
    EXPECT_TRUE(h.writer().submit(StorageWrite{1, "x", false, false}).empty());
}

// ---- with the format -----------------------------------------------------------------------

TEST(LogWriter, appends_after_a_cut_torn_tail_scan_back_whole) {
    WriterHarness first_run;
    const SampleLog log = sample_log();
    first_run.replace(log.bytes);
    first_run.append(log.bytes.substr(log.offsets[1], 5), true);  // a torn record
    first_run.run_until_synced(2);
    first_run.destroy_writer();

    const Collected torn = scan(first_run.log());
    ASSERT_EQ(torn.result.damage, memq::storage::Damage::torn_tail);
    first_run.dir().cut_log(torn.result.good_bytes);
    first_run.start(kNoInterval);
    std::string more;
    memq::storage::append_take(more, "orders", 0);
    first_run.append(more, true);
    first_run.run_until_synced(3);

    const Collected after = scan(first_run.log());
    EXPECT_EQ(after.result.damage, memq::storage::Damage::none);
    std::vector<Record> expected = log.records;
    expected.emplace_back(RecordKind::take, "orders", 0);
    EXPECT_EQ(after.records, expected);
}

}  // namespace
