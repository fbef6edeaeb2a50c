// line_client.cpp — connect, send, and read "\r\n" lines with timeouts over POSIX sockets.
#include "line_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace memq::e2e {
namespace {

using Clock = std::chrono::steady_clock;

std::runtime_error system_failure(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

// Milliseconds left until `until`, for poll(): never negative.
int remaining_ms(Clock::time_point until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000));
}

// Waits for `events` on `fd` until `until`; false on timeout.
bool wait_for(int fd, short events, Clock::time_point until) {
    for (;;) {
        pollfd entry{fd, events, 0};
        const int ready = poll(&entry, 1, remaining_ms(until));
        if (ready > 0) return true;
        if (ready == 0) return false;
        if (errno != EINTR) throw system_failure("poll");
    }
}

}  // namespace

LineClient::LineClient(std::uint16_t port, std::optional<int> receive_buffer_bytes) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw system_failure("socket");
    if (receive_buffer_bytes) {
        setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &*receive_buffer_bytes, sizeof *receive_buffer_bytes);
    }
    const int on = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        const std::runtime_error failure = system_failure("connect to 127.0.0.1:" + std::to_string(port));
        close(fd_);
        throw failure;
    }
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

LineClient::~LineClient() {
    if (fd_ >= 0) close(fd_);
}

void LineClient::send_line(std::string_view line, std::chrono::milliseconds timeout) {
    std::string framed(line);
    framed += '\n';
    send_raw(framed, timeout);
}

void LineClient::send_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    while (!bytes.empty()) {
        const ssize_t sent = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(sent));
            continue;
        }
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(fd_, POLLOUT, until)) throw std::runtime_error("send timed out");
            continue;
        }
        throw system_failure("send");
    }
}

void LineClient::shutdown_sending() {
    if (shutdown(fd_, SHUT_WR) != 0) throw system_failure("shutdown");
}

bool LineClient::receive_some(std::chrono::milliseconds timeout) {
    if (eof_) return false;
    const auto until = Clock::now() + timeout;
    for (;;) {
        std::array<char, 64 * 1024> chunk;
        const ssize_t received = recv(fd_, chunk.data(), chunk.size(), 0);
        if (received > 0) {
            buffer_.append(chunk.data(), static_cast<std::size_t>(received));
            return true;
        }
        if (received == 0) {
            eof_ = true;
            return false;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_for(fd_, POLLIN, until)) return false;
            continue;
        }
        eof_ = true;  // ECONNRESET and friends: nothing more will come
        reset_ = true;
        return false;
    }
}

std::optional<std::string> LineClient::read_line(std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    for (;;) {
        if (const std::size_t end = buffer_.find("\r\n"); end != std::string::npos) {
            std::string line = buffer_.substr(0, end);
            buffer_.erase(0, end + 2);
            return line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
        if (left.count() <= 0 || !receive_some(left)) return std::nullopt;
    }
}

bool LineClient::nothing_arrives_within(std::chrono::milliseconds window) {
    if (!buffer_.empty() || eof_) return false;
    return !wait_for(fd_, POLLIN, Clock::now() + window);
}

LineClient::Ending LineClient::read_until_closed(std::chrono::milliseconds timeout, std::size_t* discarded) {
    const auto until = Clock::now() + timeout;
    std::size_t total = 0;
    for (;;) {
        total += buffer_.size();
        buffer_.clear();
        if (eof_) break;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
        if (left.count() <= 0) break;
        receive_some(left);
    }
    if (discarded) *discarded = total;
    if (!eof_) return Ending::timeout;
    return reset_ ? Ending::reset : Ending::eof;
}

const char* to_string(LineClient::Ending ending) {
    switch (ending) {
        case LineClient::Ending::eof: return "eof";
        case LineClient::Ending::reset: return "reset";
        case LineClient::Ending::timeout: return "timeout";
    }
    return "unknown";
}

}  // namespace memq::e2e
