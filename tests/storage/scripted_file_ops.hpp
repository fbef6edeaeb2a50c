// scripted_file_ops.hpp — owns ScriptedFileOps, the FileOps the storage tests
// drive the log writer with: the real calls, except that a test can make the
// next writes, syncs or renames fail with an errno of its choosing (a write
// optionally after writing part of its bytes), and can hold fdatasync until
// it releases it, knowing when the worker is waiting in it. Counts the syncs.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "file_ops.hpp"

namespace memq_storage_test {

class ScriptedFileOps : public memq::FileOps {
public:
    // The next `count` writes fail with `error`, each after writing up to
    // `partial_bytes` of its data first.
    void fail_writes(int error, int count = 1, std::size_t partial_bytes = 0) {
        std::lock_guard lock(mutex_);
        write_error_ = error, write_failures_left_ = count, partial_bytes_ = partial_bytes;
    }
    void fail_fdatasyncs(int error, int count = 1) {
        std::lock_guard lock(mutex_);
        sync_error_ = error, sync_failures_left_ = count;
    }
    void fail_renames(int error, int count = 1) {
        std::lock_guard lock(mutex_);
        rename_error_ = error, rename_failures_left_ = count;
    }

    // fdatasync waits, once entered, until release_syncs().
    void hold_syncs() {
        std::lock_guard lock(mutex_);
        holding_ = true;
    }
    void release_syncs() {
        {
            std::lock_guard lock(mutex_);
            holding_ = false;
        }
        changed_.notify_all();
    }
    // Waits until a sync is being held.
    void wait_until_a_sync_is_held() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return held_ > 0; });
    }

    int fdatasync_calls() {
        std::lock_guard lock(mutex_);
        return fdatasync_calls_;
    }

    // A failing write with partial_bytes writes them as a short write first;
    // the call after it (write_fully's next) fails.
    int write(int fd, const char* data, std::size_t size, std::size_t& written) override {
        std::size_t partial = 0;
        int error = 0;
        {
            std::lock_guard lock(mutex_);
            if (write_failures_left_ > 0) {
                if (partial_bytes_ > 0 && !partial_written_ && size > partial_bytes_) {
                    partial_written_ = true;
                    partial = partial_bytes_;
                } else {
                    --write_failures_left_;
                    partial_written_ = false;
                    error = write_error_;
                }
            }
        }
        if (partial > 0) return FileOps::write(fd, data, partial, written);
        if (error == 0) return FileOps::write(fd, data, size, written);
        written = 0;
        return error;
    }

    int fdatasync(int fd) override {
        {
            std::unique_lock lock(mutex_);
            ++fdatasync_calls_;
            if (holding_) {
                ++held_;
                changed_.notify_all();
                changed_.wait(lock, [this] { return !holding_; });
                --held_;
            }
            if (sync_failures_left_ > 0) {
                --sync_failures_left_;
                return sync_error_;
            }
        }
        return FileOps::fdatasync(fd);
    }

    int rename(const std::string& from, const std::string& to) override {
        {
            std::lock_guard lock(mutex_);
            if (rename_failures_left_ > 0) {
                --rename_failures_left_;
                return rename_error_;
            }
        }
        return FileOps::rename(from, to);
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    int write_error_ = 0, write_failures_left_ = 0;
    std::size_t partial_bytes_ = 0;
    bool partial_written_ = false;
    int sync_error_ = 0, sync_failures_left_ = 0;
    int rename_error_ = 0, rename_failures_left_ = 0;
    bool holding_ = false;
    int held_ = 0;
    int fdatasync_calls_ = 0;
};

}  // namespace memq_storage_test
