// log_writer.cpp — owns LogWriter's worker: the queue handoff, appends,
// replaces, syncs and the failure state (the rules are in log_writer.hpp).
#include "log_writer.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <utility>

namespace memq {
namespace {

std::string describe(const char* call, const std::string& path, int error) {
    return std::string(call) + " " + path + ": " + std::strerror(error);
}

}  // namespace

LogWriter::LogWriter(asio::io_context& loop, const DataDir& directory, LogWriterOptions options,
                     SyncedHandler on_synced, FailedHandler on_failed, FileOps& ops)
    : loop_(loop),
      log_path_(directory.log_path()),
      temp_path_(directory.temp_log_path()),
      directory_path_(directory.path()),
      options_(options),
      on_synced_(std::move(on_synced)),
      on_failed_(std::move(on_failed)),
      ops_(ops) {
    if (const int error = ops_.open(log_path_, O_WRONLY | O_CREAT | O_APPEND, 0644, log_fd_); error != 0) {
        throw DataDirError(DataDirError::Kind::io, describe("open", log_path_, error));
    }
    if (const int error = ops_.file_size(log_fd_, file_bytes_); error != 0) {
        ops_.close(log_fd_);
        throw DataDirError(DataDirError::Kind::io, describe("fstat", log_path_, error));
    }
    if (const int error = ops_.open(directory_path_, O_RDONLY | O_DIRECTORY, 0, directory_fd_); error != 0) {
        ops_.close(log_fd_);
        throw DataDirError(DataDirError::Kind::io, describe("open", directory_path_, error));
    }
    worker_ = std::thread([this] { run(); });
}

LogWriter::~LogWriter() {
    stop();
    if (log_fd_ >= 0) ops_.close(log_fd_);
    if (directory_fd_ >= 0) ops_.close(directory_fd_);
}

std::string LogWriter::submit(storage::StorageWrite write) {
    const std::size_t bytes = write.bytes.size();
    std::string spare;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) throw std::logic_error("LogWriter::submit after stop()");
        if (write.seq <= last_submitted_seq_) throw std::invalid_argument("LogWriter::submit: seq must grow");
        last_submitted_seq_ = write.seq;
        queue_.push_back(std::move(write));
        queued_bytes_.fetch_add(bytes, std::memory_order_relaxed);
        if (!spare_buffers_.empty()) {
            spare = std::move(spare_buffers_.back());
            spare_buffers_.pop_back();
        }
    }
    wake_.notify_one();
    return spare;
}

void LogWriter::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (worker_.joinable()) worker_.join();
}

LogWriterStats LogWriter::stats() const {
    LogWriterStats stats;
    stats.writes = counters_.writes.load();
    stats.replaces = counters_.replaces.load();
    stats.bytes = counters_.bytes.load();
    stats.syncs = counters_.syncs.load();
    stats.failures = counters_.failures.load();
    stats.dropped = counters_.dropped.load();
    stats.synced_seq = counters_.synced_seq.load();
    stats.sync_nanos_max = counters_.sync_nanos_max.load();
    return stats;
}

void LogWriter::run() {
    std::vector<storage::StorageWrite> batch;
    for (;;) {
        bool stopping = false;
        {
            std::unique_lock lock(mutex_);
            const auto ready = [this] { return !queue_.empty() || stopping_; };
            if (unsynced_) {
                wake_.wait_until(lock, sync_deadline_, ready);
            } else {
                wake_.wait(lock, ready);
            }
            batch.swap(queue_);
            stopping = stopping_;
        }
        bool sync_wanted = options_.sync_interval.count() == 0 || stopping;
        for (storage::StorageWrite& write : batch) {
            queued_bytes_.fetch_sub(write.bytes.size(), std::memory_order_relaxed);
            sync_wanted = sync_wanted || write.sync_now;
            perform(write);
        }
        {
            std::lock_guard lock(mutex_);
            for (storage::StorageWrite& write : batch) {
                if (spare_buffers_.size() == kSpareBuffersMax) break;
                if (write.bytes.capacity() > kSpareCapacityMax) continue;
                write.bytes.clear();
                spare_buffers_.push_back(std::move(write.bytes));
            }
        }
        batch.clear();
        if (unsynced_ && (sync_wanted || std::chrono::steady_clock::now() >= sync_deadline_)) sync();
        if (stopping) {
            std::lock_guard lock(mutex_);
            if (queue_.empty()) return;
        }
    }
}

void LogWriter::perform(storage::StorageWrite& write) {
    if (write.replace) {
        replace(write);
    } else if (awaiting_replace_) {
        counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    } else {
        append(write);
    }
}

void LogWriter::append(const storage::StorageWrite& write) {
    std::size_t written = 0;
    if (const int error = write_fully(ops_, log_fd_, write.bytes.data(), write.bytes.size(), written); error != 0) {
        // No half record stays for later appends to follow: cut it back off
        // (if that fails too, it is a torn tail, and nothing is appended
        // after it before a replace anyway).
        if (written > 0) ops_.ftruncate(log_fd_, file_bytes_);
        fail(error, describe("write", log_path_, error));
        return;
    }
    file_bytes_ += write.bytes.size();
    written_seq_ = write.seq;
    counters_.writes.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes.fetch_add(write.bytes.size(), std::memory_order_relaxed);
    if (!unsynced_) {
        unsynced_ = true;
        sync_deadline_ = std::chrono::steady_clock::now() + options_.sync_interval;
    }
}

void LogWriter::replace(const storage::StorageWrite& write) {
    int temp_fd = -1;
    if (const int error = ops_.open(temp_path_, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644, temp_fd); error != 0) {
        fail(error, describe("open", temp_path_, error));
        return;
    }
    std::size_t written = 0;
    const char* call = "write";
    int error = write_fully(ops_, temp_fd, write.bytes.data(), write.bytes.size(), written);
    if (error == 0) {
        call = "fsync";
        error = ops_.fsync(temp_fd);
    }
    if (error == 0) {
        call = "rename";
        error = ops_.rename(temp_path_, log_path_);
    }
    if (error != 0) {
        ops_.close(temp_fd);
        fail(error, describe(call, temp_path_, error));
        return;
    }
    // memq.log is the new file now, whatever the directory's sync says.
    ops_.close(log_fd_);
    log_fd_ = temp_fd;
    file_bytes_ = write.bytes.size();
    counters_.writes.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes.fetch_add(write.bytes.size(), std::memory_order_relaxed);
    if (const int sync_error = ops_.fsync(directory_fd_); sync_error != 0) {
        fail(sync_error, describe("fsync", directory_path_, sync_error));
        return;
    }
    counters_.replaces.fetch_add(1, std::memory_order_relaxed);
    awaiting_replace_ = false;
    unsynced_ = false;
    written_seq_ = write.seq;
    post_synced();
}

void LogWriter::sync() {
    const auto start = std::chrono::steady_clock::now();
    if (const int error = ops_.fdatasync(log_fd_); error != 0) {
        fail(error, describe("fdatasync", log_path_, error));
        return;
    }
    const auto nanos = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
    if (nanos > counters_.sync_nanos_max.load(std::memory_order_relaxed)) {
        counters_.sync_nanos_max.store(nanos, std::memory_order_relaxed);
    }
    counters_.syncs.fetch_add(1, std::memory_order_relaxed);
    unsynced_ = false;
    if (options_.on_sync_time) {
        asio::post(loop_, [handler = options_.on_sync_time, nanos] { handler(std::chrono::nanoseconds(nanos)); });
    }
    post_synced();
}

void LogWriter::fail(int error, const std::string& what) {
    awaiting_replace_ = true;
    unsynced_ = false;
    counters_.failures.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t first_unsure = reported_seq_ + 1;
    asio::post(loop_, [handler = on_failed_, first_unsure, error, what] {
        handler(first_unsure, std::error_code(error, std::generic_category()), what);
    });
}

void LogWriter::post_synced() {
    if (written_seq_ <= reported_seq_) return;
    reported_seq_ = written_seq_;
    counters_.synced_seq.store(reported_seq_, std::memory_order_relaxed);
    asio::post(loop_, [handler = on_synced_, seq = reported_seq_] { handler(seq); });
}

}  // namespace memq
