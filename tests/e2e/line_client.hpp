// line_client.hpp — a tiny blocking line client for end-to-end tests.
//
// Rules: POSIX sockets only (it must not share code with the server or the
// SDK it checks); every call that waits takes a timeout and never blocks past
// it; lines from the server end in "\r\n", which read_line strips. Failures
// to connect or send throw std::runtime_error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace memq::e2e {

inline constexpr std::chrono::milliseconds kReplyTimeout{5000};

class LineClient {
public:
    // Connects to 127.0.0.1:`port`. A small `receive_buffer_bytes` (set
    // before connecting) makes a reader that stalls fill up quickly.
    explicit LineClient(std::uint16_t port, std::optional<int> receive_buffer_bytes = std::nullopt);
    ~LineClient();
    LineClient(const LineClient&) = delete;
    LineClient& operator=(const LineClient&) = delete;

    int fd() const { return fd_; }

    // Sends `line` and a '\n'.
    void send_line(std::string_view line, std::chrono::milliseconds timeout = kReplyTimeout);
    // Sends exactly `bytes`.
    void send_raw(std::string_view bytes, std::chrono::milliseconds timeout = kReplyTimeout);
    // No more bytes from this side (the server sees EOF); reading goes on.
    void shutdown_sending();

    // The next "\r\n"-terminated line without its terminator; nothing on EOF,
    // on a reset, or when no whole line arrives within `timeout`.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = kReplyTimeout);
    // True when no byte and no EOF arrives within `window` (nothing is consumed).
    bool nothing_arrives_within(std::chrono::milliseconds window);

    enum class Ending { eof, reset, timeout };
    // Reads and discards until the server closes the connection; `discarded`
    // (if given) gets the number of bytes thrown away, buffered ones included.
    Ending read_until_closed(std::chrono::milliseconds timeout, std::size_t* discarded = nullptr);

    bool at_eof() const { return eof_; }

private:
    // One recv into buffer_, waiting up to `timeout`; false on timeout, EOF or error.
    bool receive_some(std::chrono::milliseconds timeout);

    int fd_ = -1;
    std::string buffer_;
    bool eof_ = false;
    bool reset_ = false;
};

const char* to_string(LineClient::Ending ending);

}  // namespace memq::e2e
