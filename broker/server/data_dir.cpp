// data_dir.cpp — owns DataDir: the directory, its flock, reading the log and
// cutting its torn tail, and MappedLog.
#include "data_dir.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <sys/mman.h>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace memq {
namespace {

std::string describe(const std::string& call, const std::string& path, int error) {
    return call + " " + path + ": " + std::strerror(error);
}

[[noreturn]] void throw_io(const std::string& call, const std::string& path, int error) {
    throw DataDirError(DataDirError::Kind::io, describe(call, path, error));
}

// What the lock file says about its holder (its pid), trimmed; empty if unreadable.
std::string read_holder(const std::string& lock_path) {
    const int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    char buffer[32] = {};
    const ssize_t got = ::read(fd, buffer, sizeof buffer - 1);
    ::close(fd);
    std::string holder(buffer, got > 0 ? static_cast<std::size_t>(got) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return holder;
}

}  // namespace

DataDir::DataDir(std::string path, FileOps& ops) : path_(std::move(path)), ops_(ops) {
    std::error_code error;
    std::filesystem::create_directories(path_, error);
    if (error) throw_io("create directory", path_, error.value());
    const std::string lock_path = path_ + "/" + kLockFileName;
    if (const int open_error = ops_.open(lock_path, O_RDWR | O_CREAT, 0644, lock_fd_); open_error != 0) {
        throw_io("open", lock_path, open_error);
    }
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        const int lock_error = errno;
        ops_.close(lock_fd_);
        lock_fd_ = -1;
        if (lock_error == EWOULDBLOCK) {
            const std::string holder = read_holder(lock_path);
            throw DataDirError(DataDirError::Kind::locked,
                               "data dir " + path_ + " is in use by another memqd (" +
                                   (holder.empty() ? std::string("a process") : "pid " + holder) + " holds " +
                                   lock_path + ")");
        }
        throw_io("flock", lock_path, lock_error);
    }
    // Our pid, for the message a second memqd prints; the lock is what counts.
    const std::string pid = std::to_string(::getpid()) + "\n";
    std::size_t written = 0;
    if (ops_.ftruncate(lock_fd_, 0) == 0 && ::lseek(lock_fd_, 0, SEEK_SET) == 0) {
        write_fully(ops_, lock_fd_, pid.data(), pid.size(), written);
    }
}

DataDir::~DataDir() {
    if (lock_fd_ >= 0) ops_.close(lock_fd_);  // closing releases the flock
}

MappedLog::~MappedLog() {
    if (size_ != 0) ::munmap(const_cast<char*>(data_), size_);
}

MappedLog::MappedLog(MappedLog&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedLog& MappedLog::operator=(MappedLog&& other) noexcept {
    std::swap(data_, other.data_);  // ours goes with other
    std::swap(size_, other.size_);
    return *this;
}

MappedLog DataDir::map_log() const {
    const std::string path = log_path();
    int fd = -1;
    if (const int error = ops_.open(path, O_RDONLY, 0, fd); error != 0) {
        if (error == ENOENT) return {};
        throw_io("open", path, error);
    }
    std::uint64_t size = 0;
    if (const int error = ops_.file_size(fd, size); error != 0) {
        ops_.close(fd);
        throw_io("stat", path, error);
    }
    if (size == 0) {
        ops_.close(fd);
        return {};
    }
    // Populated up front: the scans then read it without a fault per page.
    void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    const int map_error = errno;
    ops_.close(fd);  // the mapping keeps the file
    if (mapped == MAP_FAILED) throw_io("mmap", path, map_error);
    return MappedLog(static_cast<const char*>(mapped), static_cast<std::size_t>(size));
}

void DataDir::cut_log(std::uint64_t good_bytes) const {
    const std::string path = log_path();
    int fd = -1;
    if (const int error = ops_.open(path, O_WRONLY, 0, fd); error != 0) throw_io("open", path, error);
    int error = ops_.ftruncate(fd, good_bytes);
    const char* call = "ftruncate";
    if (error == 0) {
        error = ops_.fsync(fd);
        call = "fsync";
    }
    ops_.close(fd);
    if (error != 0) throw_io(call, path, error);
}

}  // namespace memq
