// file_ops.hpp — owns FileOps, the seam between memqd's log IO (data_dir.hpp,
// log_writer.hpp) and the kernel: every file call they make goes through it,
// so tests can inject ENOSPC, EIO, a failing or slow fsync, deterministically.
//
// Rules: each call is one system call (write may write less than asked);
// each returns 0 or the errno value of its failure (never -1, never throws).
// The default, system_file_ops(), is the real calls, retried on EINTR.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace memq {

class FileOps {
public:
    virtual ~FileOps() = default;

    virtual int open(const std::string& path, int flags, int mode, int& fd);
    // One write(2) at the file's end or offset (the fd's); written is what it wrote.
    virtual int write(int fd, const char* data, std::size_t size, std::size_t& written);
    virtual int fdatasync(int fd);
    virtual int fsync(int fd);
    virtual int rename(const std::string& from, const std::string& to);
    virtual int ftruncate(int fd, std::uint64_t size);
    virtual int file_size(int fd, std::uint64_t& size);
    virtual int close(int fd);
};

// The real system calls (one shared instance, stateless).
FileOps& system_file_ops();

// Writes all of data, looping on short writes; 0 or the errno value of the
// call that failed (written says how much reached the file before it).
int write_fully(FileOps& ops, int fd, const char* data, std::size_t size, std::size_t& written);

}  // namespace memq
