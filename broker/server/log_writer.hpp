// log_writer.hpp — owns LogWriter, memqd's writer of the log file, off the
// event loop: one worker thread performs the core's StorageWrites in seq
// order, syncs them (group commit, or within an interval), and reports back
// on the loop thread which writes are durable and which failed.
//
// Rules:
// - The loop thread never blocks on the disk. submit() takes the queue's
//   mutex for one push_back; the worker takes it only to swap the queue out
//   (O(1)) and does every IO outside it. So a submit waits at most for one
//   vector swap or push_back, never for a write or a sync.
// - Writes are performed strictly in seq order. An append (replace == false)
//   is written whole at the log's end (looping on short writes). A replace
//   is written to DIR/memq.log.tmp, fsync'ed, renamed over DIR/memq.log, and
//   the directory fsync'ed; appends then go to the new file. A reader of
//   memq.log sees the old file or the new one, never a mix.
// - Syncing (fdatasync of the log): after a batch (every write queued when
//   the worker took the queue) holding a sync_now write, ONE sync covers the
//   whole batch (group commit); otherwise at most sync_interval after the
//   first unsynced byte. A sync_interval of 0 syncs after every batch. A
//   replace is durable by itself (its fsync and the directory's).
// - on_synced(S): every write with seq <= S is on stable storage. Posted to
//   the io_context after each sync or replace that advances S, in order.
// - on_failed(first_unsure, error, what): a write, sync, rename... failed;
//   writes from first_unsure on are not known to be durable (those since the
//   last sync: a failed fdatasync leaves their pages' fate unknown). Then the
//   writer appends NOTHING until a replace succeeds: every append submitted
//   before that replace is dropped (counted in stats().dropped), so the file
//   never holds a gap and never a record after a failed one. A failed append
//   is also cut back off the file (ftruncate to the size before it; if even
//   that fails, what is left is a torn tail, which the scanner cuts). The
//   core recovers by submitting a replace (header + snapshot); every submit
//   is attempted, so the first replace that succeeds resumes on_synced.
// - stop() (and the destructor) performs and syncs every write already
//   submitted, then joins the worker. Handlers already posted still run on
//   the loop if it runs; submit() after stop() throws std::logic_error.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "data_dir.hpp"
#include "file_ops.hpp"
#include "storage_write.hpp"

namespace memq {

struct LogWriterOptions {
    // How long a written byte may stay unsynced without a sync_now write; 0:
    // every write synced at once.
    std::chrono::milliseconds sync_interval{1000};
    // Told each successful fdatasync's duration, on the loop (for the
    // memq_storage_sync_seconds histogram); none when empty.
    std::function<void(std::chrono::nanoseconds)> on_sync_time{};
};

struct LogWriterStats {
    std::uint64_t writes = 0;    // appends and replaces performed
    std::uint64_t replaces = 0;  // replaces that succeeded
    std::uint64_t bytes = 0;     // bytes written to the log (replaces included)
    std::uint64_t syncs = 0;     // fdatasync calls that succeeded
    std::uint64_t failures = 0;  // on_failed reports
    std::uint64_t dropped = 0;   // appends dropped while waiting for a replace
    std::uint64_t synced_seq = 0;
    std::uint64_t sync_nanos_max = 0;  // the slowest successful fdatasync
};

class LogWriter {
public:
    using SyncedHandler = std::function<void(std::uint64_t synced_through)>;
    using FailedHandler =
        std::function<void(std::uint64_t first_unsure, std::error_code error, const std::string& what)>;

    // Opens DIR/memq.log for appending (creating it empty if missing: the core
    // starts a new log with a replace) and starts the worker. Throws
    // DataDirError (io) if the log or the directory cannot be opened.
    LogWriter(asio::io_context& loop, const DataDir& directory, LogWriterOptions options, SyncedHandler on_synced,
              FailedHandler on_failed, FileOps& ops = system_file_ops());
    ~LogWriter();
    LogWriter(const LogWriter&) = delete;
    LogWriter& operator=(const LogWriter&) = delete;

    // Buffers the worker keeps for reuse once it wrote them: at most this
    // many, of at most this capacity (a snapshot's buffer is freed).
    static constexpr std::size_t kSpareBuffersMax = 4;
    static constexpr std::size_t kSpareCapacityMax = 4 * 1024 * 1024;

    // Queues a write; seq must be above every seq submitted before
    // (std::invalid_argument otherwise). Returns an empty buffer to build the
    // next write in: one the worker is done with, keeping its capacity, when
    // there is one (so that a steady stream of writes allocates nothing).
    std::string submit(storage::StorageWrite write);

    // Performs and syncs everything submitted, then joins the worker. Idempotent.
    void stop();

    LogWriterStats stats() const;
    // Bytes submitted and not yet taken by the worker (for the caller's own bound).
    std::size_t queued_bytes() const { return queued_bytes_.load(std::memory_order_relaxed); }

private:
    void run();
    void perform(storage::StorageWrite& write);
    void append(const storage::StorageWrite& write);
    void replace(const storage::StorageWrite& write);
    void sync();
    void fail(int error, const std::string& what);
    void post_synced();

    asio::io_context& loop_;
    std::string log_path_;
    std::string temp_path_;
    std::string directory_path_;
    LogWriterOptions options_;
    SyncedHandler on_synced_;
    FailedHandler on_failed_;
    FileOps& ops_;

    // Shared with the loop thread, under mutex_.
    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<storage::StorageWrite> queue_;
    std::vector<std::string> spare_buffers_;  // written, emptied, for submit() to hand back
    std::uint64_t last_submitted_seq_ = 0;
    bool stopping_ = false;
    std::atomic<std::size_t> queued_bytes_{0};

    // The worker's own.
    int log_fd_ = -1;
    int directory_fd_ = -1;
    std::uint64_t file_bytes_ = 0;     // the log's size after the last good write
    std::uint64_t written_seq_ = 0;    // the last write that reached the file
    std::uint64_t reported_seq_ = 0;   // the last seq reported by on_synced
    bool unsynced_ = false;            // bytes written since the last sync
    bool awaiting_replace_ = false;    // after a failure
    std::chrono::steady_clock::time_point sync_deadline_{};

    struct Counters {
        std::atomic<std::uint64_t> writes{0}, replaces{0}, bytes{0}, syncs{0}, failures{0}, dropped{0},
            synced_seq{0}, sync_nanos_max{0};
    } counters_;

    std::thread worker_;
};

}  // namespace memq
