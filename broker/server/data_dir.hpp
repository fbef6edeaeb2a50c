// data_dir.hpp — owns memqd's data directory (--data-dir DIR): creating it,
// the exclusive lock that keeps a second memqd out, reading the log file
// back whole (mapped, not copied), and cutting a torn tail off it.
//
// Layout: DIR/lock (flock'ed for the DataDir's lifetime, holds the holder's
// pid as text), DIR/memq.log (the log, broker/storage/log_format.hpp), and
// DIR/memq.log.tmp (a replacement being written, log_writer.hpp).
//
// Runs at startup on the loop thread, before the writer exists: these calls
// block on the disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "file_ops.hpp"

namespace memq {

// Why a data dir could not be used; what() is the message memqd prints
// before exiting 2.
class DataDirError : public std::runtime_error {
public:
    enum class Kind { locked, io };
    DataDirError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    Kind kind() const { return kind_; }

private:
    Kind kind_;
};

inline constexpr const char* kLogFileName = "memq.log";
inline constexpr const char* kLogTempFileName = "memq.log.tmp";
inline constexpr const char* kLockFileName = "lock";

// The log file mapped read-only, whole, for the start-up scans: no copy of
// it is made, and its pages come from the page cache. Empty when there is
// no log or it is empty. Unmapped when destroyed; unmap it before a
// cut_log(), whose cut takes the pages past it away (reading them is SIGBUS).
class MappedLog {
public:
    MappedLog() = default;
    MappedLog(const char* data, std::size_t size) : data_(data), size_(size) {}
    ~MappedLog();
    MappedLog(MappedLog&& other) noexcept;
    MappedLog& operator=(MappedLog&& other) noexcept;
    MappedLog(const MappedLog&) = delete;
    MappedLog& operator=(const MappedLog&) = delete;

    std::string_view bytes() const { return {data_, size_}; }

private:
    const char* data_ = nullptr;
    std::size_t size_ = 0;
};

class DataDir {
public:
    // Creates DIR (and its parents) if missing and takes the lock. Throws
    // DataDirError: Kind::locked, "data dir DIR is in use by another memqd
    // (pid N holds DIR/lock)", when another process (or another DataDir)
    // holds it; Kind::io with the failing call and path otherwise.
    explicit DataDir(std::string path, FileOps& ops = system_file_ops());
    ~DataDir();
    DataDir(const DataDir&) = delete;
    DataDir& operator=(const DataDir&) = delete;

    const std::string& path() const { return path_; }
    std::string log_path() const { return path_ + "/" + kLogFileName; }
    std::string temp_log_path() const { return path_ + "/" + kLogTempFileName; }

    // The whole log file; empty when there is none. Throws DataDirError (io).
    MappedLog map_log() const;

    // Cuts the log to its first good_bytes (a torn tail, found by scan_log)
    // and syncs it. Throws DataDirError (io).
    void cut_log(std::uint64_t good_bytes) const;

private:
    std::string path_;
    FileOps& ops_;
    int lock_fd_ = -1;
};

}  // namespace memq
