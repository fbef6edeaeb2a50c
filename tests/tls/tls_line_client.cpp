// tls_line_client.cpp — OpenSSL over a non-blocking POSIX socket, every wait a poll with a deadline.
#include "tls_line_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace memq::tls_test {
namespace {

using Clock = std::chrono::steady_clock;

std::string openssl_reason() {
    std::string reason;
    while (const unsigned long code = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        reason = text;
    }
    return reason;
}

int remaining_ms(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

template <typename Step>
int TlsLineClient::drive(Step step, Clock::time_point deadline, bool* timed_out) {
    for (;;) {
        ERR_clear_error();
        const int result = step();
        if (result > 0) return result;
        const int error = SSL_get_error(ssl_, result);
        short events = 0;
        if (error == SSL_ERROR_WANT_READ) events = POLLIN;
        if (error == SSL_ERROR_WANT_WRITE) events = POLLOUT;
        if (events == 0) {
            last_error_ = error == SSL_ERROR_ZERO_RETURN ? "close_notify" : openssl_reason();
            if (last_error_.empty()) last_error_ = error == SSL_ERROR_SYSCALL ? "end of stream" : "SSL error";
            return result;
        }
        pollfd waiting{fd_, events, 0};
        const int ready = ::poll(&waiting, 1, remaining_ms(deadline));
        if (ready == 0) {
            if (timed_out) *timed_out = true;
            last_error_ = "timed out";
            return -1;
        }
        if (ready < 0 && errno != EINTR) {
            last_error_ = std::strerror(errno);
            return -1;
        }
    }
}

TlsLineClient::TlsLineClient(std::uint16_t port, const TlsClientFiles& files, std::optional<int> receive_buffer_bytes,
                             std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (receive_buffer_bytes) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &*receive_buffer_bytes, sizeof(int));
    const int on = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        const std::string reason = std::strerror(errno);
        ::close(fd_);
        throw std::runtime_error("connect: " + reason);
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);

    context_ = SSL_CTX_new(TLS_client_method());
    if (!files.ca.empty()) {
        SSL_CTX_load_verify_locations(context_, files.ca.c_str(), nullptr);
        SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
    }
    if (!files.cert.empty()) {
        SSL_CTX_use_certificate_chain_file(context_, files.cert.c_str());
        SSL_CTX_use_PrivateKey_file(context_, files.key.c_str(), SSL_FILETYPE_PEM);
    }
    ssl_ = SSL_new(context_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    SSL_set_fd(ssl_, fd_);
    if (drive([this] { return SSL_connect(ssl_); }, deadline, nullptr) <= 0) {
        const std::string reason = last_error_;
        SSL_free(ssl_);
        SSL_CTX_free(context_);
        ::close(fd_);
        throw TlsHandshakeFailed("TLS handshake failed: " + reason);
    }
}

TlsLineClient::~TlsLineClient() {
    SSL_free(ssl_);
    SSL_CTX_free(context_);
    ::close(fd_);
}

void TlsLineClient::send_line(std::string_view line, std::chrono::milliseconds timeout) {
    std::string bytes(line);
    bytes += '\n';
    send_raw(bytes, timeout);
}

void TlsLineClient::send_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!bytes.empty()) {
        const int chunk = static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 20));
        const int written = drive([&] { return SSL_write(ssl_, bytes.data(), chunk); }, deadline, nullptr);
        if (written <= 0) throw std::runtime_error("TLS write failed: " + last_error_);
        bytes.remove_prefix(static_cast<std::size_t>(written));
    }
}

std::optional<std::string> TlsLineClient::read_line(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (const std::size_t end = buffer_.find("\r\n"); end != std::string::npos) {
            std::string line = buffer_.substr(0, end);
            buffer_.erase(0, end + 2);
            return line;
        }
        if (ended_) return std::nullopt;
        char chunk[16384];
        bool timed_out = false;
        const int got = drive([&] { return SSL_read(ssl_, chunk, sizeof chunk); }, deadline, &timed_out);
        if (got <= 0) {
            if (!timed_out) ended_ = true;
            return std::nullopt;
        }
        buffer_.append(chunk, static_cast<std::size_t>(got));
    }
}

TlsLineClient::Ending TlsLineClient::read_until_closed(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    buffer_.clear();
    for (;;) {
        char chunk[16384];
        bool timed_out = false;
        const int got = drive([&] { return SSL_read(ssl_, chunk, sizeof chunk); }, deadline, &timed_out);
        if (got > 0) continue;
        ended_ = true;
        if (timed_out) return Ending::timeout;
        if (last_error_ == "close_notify") return Ending::close_notify;
        if (last_error_ == "end of stream" || last_error_.find("unexpected eof") != std::string::npos) {
            return Ending::eof;
        }
        return Ending::error;
    }
}

const char* to_string(TlsLineClient::Ending ending) {
    switch (ending) {
        case TlsLineClient::Ending::close_notify: return "close_notify";
        case TlsLineClient::Ending::eof: return "eof";
        case TlsLineClient::Ending::error: return "error";
        case TlsLineClient::Ending::timeout: return "timeout";
    }
    return "?";
}

}  // namespace memq::tls_test
