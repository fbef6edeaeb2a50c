// file_ops.cpp — owns the real system calls behind FileOps, and write_fully.
#include "file_ops.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace memq {
namespace {

template <class Call>
int retry_interrupted(Call call) {
    for (;;) {
        if (call() == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

}  // namespace

int FileOps::open(const std::string& path, int flags, int mode, int& fd) {
    return retry_interrupted([&] {
        fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
        return fd < 0 ? -1 : 0;
    });
}

int FileOps::write(int fd, const char* data, std::size_t size, std::size_t& written) {
    return retry_interrupted([&] {
        const ssize_t result = ::write(fd, data, size);
        written = result < 0 ? 0 : static_cast<std::size_t>(result);
        return result < 0 ? -1 : 0;
    });
}

int FileOps::fdatasync(int fd) {
    return retry_interrupted([&] { return ::fdatasync(fd); });
}

int FileOps::fsync(int fd) {
    return retry_interrupted([&] { return ::fsync(fd); });
}

int FileOps::rename(const std::string& from, const std::string& to) {
    return retry_interrupted([&] { return ::rename(from.c_str(), to.c_str()); });
}

int FileOps::ftruncate(int fd, std::uint64_t size) {
    return retry_interrupted([&] { return ::ftruncate(fd, static_cast<off_t>(size)); });
}

int FileOps::file_size(int fd, std::uint64_t& size) {
    struct stat status {};
    if (::fstat(fd, &status) != 0) return errno;
    size = static_cast<std::uint64_t>(status.st_size);
    return 0;
}

int FileOps::close(int fd) {
    // Not retried: after EINTR the descriptor is gone on Linux.
    return ::close(fd) == 0 ? 0 : errno;
}

FileOps& system_file_ops() {
    static FileOps ops;
    return ops;
}

int write_fully(FileOps& ops, int fd, const char* data, std::size_t size, std::size_t& written) {
    written = 0;
    while (written < size) {
        std::size_t wrote = 0;
        if (const int error = ops.write(fd, data + written, size - written, wrote); error != 0) return error;
        if (wrote == 0) return EIO;  // a regular file that takes nothing: never expected
        written += wrote;
    }
    return 0;
}

}  // namespace memq
