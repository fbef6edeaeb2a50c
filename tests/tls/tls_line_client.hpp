// tls_line_client.hpp — a tiny blocking TLS line client for the TLS tests, on OpenSSL directly.
//
// Rules: it shares no code with memqd or the SDK it checks (OpenSSL's own
// calls on a POSIX socket); every call that waits takes a timeout and never
// blocks past it (non-blocking socket, poll); lines from the server end in
// "\r\n", which read_line strips. A failed connect or handshake throws
// TlsHandshakeFailed with OpenSSL's reason.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace memq::tls_test {

inline constexpr std::chrono::milliseconds kTlsTimeout{5000};

// PEM files; empty: none (no client certificate; no CA means no verification).
struct TlsClientFiles {
    std::string ca;
    std::string cert;
    std::string key;
};

class TlsHandshakeFailed : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class TlsLineClient {
public:
    // Connects to 127.0.0.1:`port` and completes the TLS handshake, verifying
    // the server against files.ca (and the address 127.0.0.1) when given. A
    // small `receive_buffer_bytes` makes a reader that stalls fill up quickly.
    TlsLineClient(std::uint16_t port, const TlsClientFiles& files,
                  std::optional<int> receive_buffer_bytes = std::nullopt,
                  std::chrono::milliseconds timeout = kTlsTimeout);
    ~TlsLineClient();
    TlsLineClient(const TlsLineClient&) = delete;
    TlsLineClient& operator=(const TlsLineClient&) = delete;

    // Sends `line` and a '\n'; throws std::runtime_error when it cannot within the timeout.
    void send_line(std::string_view line, std::chrono::milliseconds timeout = kTlsTimeout);
    void send_raw(std::string_view bytes, std::chrono::milliseconds timeout = kTlsTimeout);

    // The next "\r\n"-terminated line without its terminator; nothing on the
    // end of the stream, an error, or when no whole line comes within `timeout`.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = kTlsTimeout);

    enum class Ending { close_notify, eof, error, timeout };
    // Reads and discards until the server ends the stream.
    Ending read_until_closed(std::chrono::milliseconds timeout);
    // OpenSSL's reason for the last failed read (an alert from the server, say).
    const std::string& last_error() const { return last_error_; }

private:
    // Runs `step` (an SSL_* call) until it succeeds, waiting on the socket as
    // OpenSSL asks; returns its result, or <= 0 with last_error_ set.
    template <typename Step>
    int drive(Step step, std::chrono::steady_clock::time_point deadline, bool* timed_out);

    int fd_ = -1;
    SSL_CTX* context_ = nullptr;
    SSL* ssl_ = nullptr;
    std::string buffer_;
    std::string last_error_;
    bool ended_ = false;
};

const char* to_string(TlsLineClient::Ending ending);

}  // namespace memq::tls_test
