// net.hpp — memq-bench's sockets and process readings: loopback-only TCP
// connects, optionally wrapped in TLS (--tls), deadline-bounded blocking
// helpers for handshakes, the monotonic clock that stamps payloads, and VmRSS
// from /proc.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "wire.hpp"

namespace bench {

using Clock = std::chrono::steady_clock;

// CLOCK_MONOTONIC in ns: the clock of every stamp, shared by all threads.
std::uint64_t now_ns();

// 127.0.0.0/8, ::1 or "localhost": the only addresses memq-bench will talk to.
bool is_loopback(const std::string& host);

// A connected, non-blocking TCP socket with TCP_NODELAY, or -1 and `error`.
// After enable_tls(), its TLS handshake is done too (for NATS after the
// server's plaintext INFO line, as NATS upgrades to TLS).
int connect_tcp(const std::string& host, std::uint16_t port, Clock::time_point deadline, std::string& error);

// From now on every connection speaks TLS, verifying the server against the
// PEM `ca_file` and the address 127.0.0.1. Exits with a message on failure.
void enable_tls(const std::string& ca_file, Proto proto);

// ::send(MSG_NOSIGNAL) and ::recv on a connect_tcp() socket, through TLS when
// enabled: -1 with errno EAGAIN when the socket (or TLS) would block; 0 from
// receive_some at the end of the stream.
ssize_t send_some(int fd, const void* data, std::size_t size);
ssize_t receive_some(int fd, void* data, std::size_t size);

// Writes all of `bytes` to a non-blocking socket, waiting as needed.
bool send_all(int fd, std::string_view bytes, Clock::time_point deadline, std::string& error);

// Reads until the whole reply to hello(proto, role, ...) is in; bytes past
// the reply stay in `leftover`.
bool await_hello_reply(int fd, Proto proto, Role role, Clock::time_point deadline, std::string& leftover,
                       std::string& error);

// Sends hello(proto, role, topic), then await_hello_reply().
bool handshake(int fd, Proto proto, Role role, std::string_view topic, Clock::time_point deadline,
               std::string& leftover, std::string& error);

// VmRSS of `pid` in KiB, or -1 when it cannot be read.
long vm_rss_kib(pid_t pid);

// Open file descriptors of `pid` (entries of /proc/PID/fd), or -1.
long open_fds(pid_t pid);

// CPU time (user + system, all threads) used so far by `pid`, in seconds;
// negative when it cannot be read. pid 0 means this process.
double cpu_seconds(pid_t pid);

// Raises the soft open-file limit to the hard one; returns the new soft limit.
long raise_fd_limit();

}  // namespace bench
