// net.cpp — sockets, deadlines and /proc readings for memq-bench.
#include "net.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace bench {
namespace {

int millis_until(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return 0;
    return left > 1000 ? 1000 : static_cast<int>(left) + 1;
}

// Waits for `events` on fd; false on timeout or poll failure.
bool wait_for(int fd, short events, Clock::time_point deadline, std::string& error) {
    while (true) {
        pollfd entry{fd, events, 0};
        const int timeout = millis_until(deadline);
        const int ready = ::poll(&entry, 1, timeout);
        if (ready > 0) return true;
        if (ready < 0 && errno != EINTR) {
            error = std::string("poll: ") + std::strerror(errno);
            return false;
        }
        if (Clock::now() >= deadline) {
            error = "timed out";
            return false;
        }
    }
}

// TLS, once enable_tls() was called: the context, and each socket's session
// by descriptor (written while connecting, before the worker threads start).
SSL_CTX* tls_context = nullptr;
Proto tls_proto = Proto::memq;
std::vector<SSL*> tls_sessions;

std::string tls_reason() {
    char text[256] = "unknown TLS error";
    if (const unsigned long code = ERR_get_error()) ERR_error_string_n(code, text, sizeof text);
    ERR_clear_error();
    return text;
}

// NATS speaks plaintext first: reads the INFO line, and nothing past it.
bool skip_nats_info(int fd, Clock::time_point deadline, std::string& error) {
    std::string line;
    while (line.size() < 2 || line.compare(line.size() - 2, 2, "\r\n") != 0) {
        char byte = 0;
        const ssize_t got = ::recv(fd, &byte, 1, 0);
        if (got == 1) {
            line += byte;
            if (line.size() > 64 * 1024) break;
            continue;
        }
        if (got == 0) {
            error = "server closed before INFO";
            return false;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            error = std::string("recv: ") + std::strerror(errno);
            return false;
        }
        if (!wait_for(fd, POLLIN, deadline, error)) return false;
    }
    if (line.rfind("INFO ", 0) != 0) {
        error = "expected INFO from the NATS server, got: " + line.substr(0, 80);
        return false;
    }
    return true;
}

// The client's TLS handshake on a connected non-blocking socket.
bool start_tls(int fd, Clock::time_point deadline, std::string& error) {
    if (tls_proto == Proto::nats && !skip_nats_info(fd, deadline, error)) return false;
    SSL* const ssl = SSL_new(tls_context);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    SSL_set_fd(ssl, fd);
    while (true) {
        const int result = SSL_connect(ssl);
        if (result == 1) break;
        const int reason = SSL_get_error(ssl, result);
        if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE) {
            error = "TLS handshake: " + tls_reason();
            SSL_free(ssl);
            return false;
        }
        if (!wait_for(fd, reason == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, error)) {
            SSL_free(ssl);
            return false;
        }
    }
    if (tls_sessions.size() <= static_cast<std::size_t>(fd)) tls_sessions.resize(static_cast<std::size_t>(fd) + 1024);
    SSL_free(tls_sessions[static_cast<std::size_t>(fd)]);  // a closed descriptor's, if any
    tls_sessions[static_cast<std::size_t>(fd)] = ssl;
    return true;
}

SSL* session_of(int fd) {
    return static_cast<std::size_t>(fd) < tls_sessions.size() ? tls_sessions[static_cast<std::size_t>(fd)] : nullptr;
}

}  // namespace

void enable_tls(const std::string& ca_file, Proto proto) {
    tls_context = SSL_CTX_new(TLS_client_method());
    if (tls_context == nullptr || SSL_CTX_load_verify_locations(tls_context, ca_file.c_str(), nullptr) != 1) {
        std::fprintf(stderr, "memq-bench: --tls %s: %s\n", ca_file.c_str(), tls_reason().c_str());
        std::exit(2);
    }
    SSL_CTX_set_verify(tls_context, SSL_VERIFY_PEER, nullptr);
    // A write retried after EAGAIN may come from a moved buffer, and may be partial.
    SSL_CTX_set_mode(tls_context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    tls_proto = proto;
}

ssize_t send_some(int fd, const void* data, std::size_t size) {
    SSL* const ssl = session_of(fd);
    if (ssl == nullptr) return ::send(fd, data, size, MSG_NOSIGNAL);
    const int wrote = SSL_write(ssl, data, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
    if (wrote > 0) return wrote;
    const int reason = SSL_get_error(ssl, wrote);
    errno = reason == SSL_ERROR_WANT_WRITE || reason == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
    ERR_clear_error();
    return -1;
}

// Reads as much as fits or is there: OpenSSL hands out one record per
// SSL_read, and records it has already decrypted do not wake epoll.
ssize_t receive_some(int fd, void* data, std::size_t size) {
    SSL* const ssl = session_of(fd);
    if (ssl == nullptr) return ::recv(fd, data, size, 0);
    std::size_t total = 0;
    while (total < size) {
        const int got = SSL_read(ssl, static_cast<char*>(data) + total,
                                 static_cast<int>(std::min<std::size_t>(size - total, 1 << 30)));
        if (got > 0) {
            total += static_cast<std::size_t>(got);
            continue;
        }
        const int reason = SSL_get_error(ssl, got);
        ERR_clear_error();
        if (total != 0) break;
        if (reason == SSL_ERROR_ZERO_RETURN) return 0;
        errno = reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE ? EAGAIN : ECONNRESET;
        return -1;
    }
    return static_cast<ssize_t>(total);
}

std::uint64_t now_ns() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(now.tv_nsec);
}

bool is_loopback(const std::string& host) {
    if (host == "localhost" || host == "::1") return true;
    in_addr address{};
    if (::inet_pton(AF_INET, host.c_str(), &address) != 1) return false;
    return (ntohl(address.s_addr) >> 24) == 127;
}

int connect_tcp(const std::string& host, std::uint16_t port, Clock::time_point deadline, std::string& error) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    int family = AF_INET;
    if (host == "::1") {
        auto* six = reinterpret_cast<sockaddr_in6*>(&storage);
        six->sin6_family = AF_INET6;
        six->sin6_port = htons(port);
        six->sin6_addr = in6addr_loopback;
        family = AF_INET6;
        length = sizeof(sockaddr_in6);
    } else {
        auto* four = reinterpret_cast<sockaddr_in*>(&storage);
        four->sin_family = AF_INET;
        four->sin_port = htons(port);
        const std::string literal = host == "localhost" ? "127.0.0.1" : host;
        if (::inet_pton(AF_INET, literal.c_str(), &four->sin_addr) != 1) {
            error = "bad address " + host;
            return -1;
        }
        length = sizeof(sockaddr_in);
    }
    const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
        if (errno != EINPROGRESS) {
            error = std::string("connect: ") + std::strerror(errno);
            ::close(fd);
            return -1;
        }
        if (!wait_for(fd, POLLOUT, deadline, error)) {
            error = "connect: " + error;
            ::close(fd);
            return -1;
        }
        int status = 0;
        socklen_t status_length = sizeof(status);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &status, &status_length);
        if (status != 0) {
            error = std::string("connect: ") + std::strerror(status);
            ::close(fd);
            return -1;
        }
    }
    if (tls_context != nullptr && !start_tls(fd, deadline, error)) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, std::string_view bytes, Clock::time_point deadline, std::string& error) {
    while (!bytes.empty()) {
        const ssize_t sent = send_some(fd, bytes.data(), bytes.size());
        if (sent > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(sent));
            continue;
        }
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(fd, POLLOUT, deadline, error)) return false;
            continue;
        }
        error = std::string("send: ") + std::strerror(errno);
        return false;
    }
    return true;
}

bool handshake(int fd, Proto proto, Role role, std::string_view topic, Clock::time_point deadline,
               std::string& leftover, std::string& error) {
    const std::string greeting = hello(proto, role, topic);
    leftover.clear();
    if (greeting.empty()) return true;
    if (!send_all(fd, greeting, deadline, error)) return false;
    return await_hello_reply(fd, proto, role, deadline, leftover, error);
}

bool await_hello_reply(int fd, Proto proto, Role role, Clock::time_point deadline, std::string& leftover,
                       std::string& error) {
    char chunk[4096];
    while (true) {
        const std::ptrdiff_t done = hello_reply_size(proto, role, leftover);
        if (done < 0) {
            error = "server refused the handshake: " + leftover.substr(0, 200);
            return false;
        }
        if (done > 0) {
            leftover.erase(0, static_cast<std::size_t>(done));
            return true;
        }
        const ssize_t got = receive_some(fd, chunk, sizeof(chunk));
        if (got > 0) {
            leftover.append(chunk, static_cast<std::size_t>(got));
            continue;
        }
        if (got == 0) {
            error = "server closed the connection during the handshake";
            return false;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            error = std::string("recv: ") + std::strerror(errno);
            return false;
        }
        if (!wait_for(fd, POLLIN, deadline, error)) {
            error = "handshake: " + error;
            return false;
        }
    }
}

long vm_rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    }
    return -1;
}

long open_fds(pid_t pid) {
    DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (dir == nullptr) return -1;
    long count = 0;
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') ++count;
    }
    ::closedir(dir);
    return count;
}

double cpu_seconds(pid_t pid) {
    if (pid == 0) {
        timespec used{};
        if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used) != 0) return -1;
        return static_cast<double>(used.tv_sec) + static_cast<double>(used.tv_nsec) / 1e9;
    }
    // /proc/PID/stat: fields 14 and 15 (utime, stime) in clock ticks, counted
    // after the parenthesised command name, which may itself hold spaces.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const std::size_t close = text.rfind(')');
    if (close == std::string::npos) return -1;
    const char* p = text.c_str() + close + 1;
    char* next = nullptr;
    unsigned long long fields[12] = {};
    // Field 3 is the state; fields 4..15 follow, utime and stime last.
    while (*p == ' ') ++p;
    ++p;  // state letter
    for (unsigned long long& field : fields) {
        field = std::strtoull(p, &next, 10);
        if (next == p) return -1;
        p = next;
    }
    const long ticks = ::sysconf(_SC_CLK_TCK);
    if (ticks <= 0) return -1;
    return static_cast<double>(fields[10] + fields[11]) / static_cast<double>(ticks);
}

long raise_fd_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
    }
    return static_cast<long>(limit.rlim_cur);
}

}  // namespace bench
