// data_dir.cpp — owns DataDir: the directory, its flock, reading the log and
// cutting its torn tail.
#include "data_dir.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <system_error>
#include <unistd.h>

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

std::string DataDir::read_log() const {
    const std::string path = log_path();
    int fd = -1;
    if (const int error = ops_.open(path, O_RDONLY, 0, fd); error != 0) {
        if (error == ENOENT) return {};
        throw_io("open", path, error);
    }
    std::string contents;
    std::uint64_t size = 0;
    if (ops_.file_size(fd, size) == 0) contents.reserve(size);
    char buffer[1 << 16];
    for (;;) {
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            const int error = errno;
            ops_.close(fd);
            throw_io("read", path, error);
        }
        if (got == 0) break;
        contents.append(buffer, static_cast<std::size_t>(got));
    }
    ops_.close(fd);
    return contents;
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
