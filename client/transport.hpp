// transport.hpp — the byte stream under Client and AsyncClient: plain TCP, or TLS over the same socket.
//
// Rules: internal (not installed). The TLS context is made once, by
// configure(), which throws TlsError naming the option and the file; every
// connection gets a fresh asio::ssl::stream in async_handshake(). The server
// is verified against tls_ca_file (default: the system's store) and must
// match tls_server_name (default: the host; an IP address is matched as an
// address), by OpenSSL itself, so a failure has OpenSSL's reason. Each read
// and write holds its stream alive until it completes, so closing the socket
// and connecting again never leaves an operation on a destroyed stream.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>

#include "client.hpp"

namespace memq::detail {

class Transport {
public:
    explicit Transport(asio::io_context& io) : socket_(io) {}

    // Plain TCP unless options.tls; throws TlsError when a file cannot be loaded.
    void configure(const TlsOptions& options);
    bool tls() const { return context_ != nullptr; }
    asio::ip::tcp::socket& socket() { return socket_; }

    // After the TCP connect to `host`: the TLS handshake (plain TCP: `handler`
    // is posted at once, with no error).
    void async_handshake(const std::string& host, std::function<void(std::error_code)> handler);

    template <typename Handler>
    void async_read_some(asio::mutable_buffer buffer, Handler&& handler) {
        if (!stream_) {
            socket_.async_read_some(buffer, std::forward<Handler>(handler));
            return;
        }
        stream_->async_read_some(buffer, [stream = stream_, handler = std::forward<Handler>(handler)](
                                             std::error_code error, std::size_t bytes) mutable {
            handler(normalized(error), bytes);
        });
    }

    template <typename Completion, typename Handler>
    void async_write(asio::const_buffer buffer, Completion completion, Handler&& handler) {
        if (!stream_) {
            asio::async_write(socket_, buffer, completion, std::forward<Handler>(handler));
            return;
        }
        asio::async_write(*stream_, buffer, completion,
                          [stream = stream_, handler = std::forward<Handler>(handler)](
                              std::error_code error, std::size_t bytes) mutable { handler(error, bytes); });
    }

    // Closes the socket (no close_notify: the broker takes a TCP end as one).
    void close();

    // What went wrong, in words: for a TLS failure the cause (the server's
    // certificate not verified and why, or the broker refusing ours), else
    // the error's own message.
    std::string describe(const std::error_code& error) const;
    static bool is_tls_error(const std::error_code& error);

private:
    using Stream = asio::ssl::stream<asio::ip::tcp::socket&>;

    // A TLS end without close_notify reads as the end of the stream, as over TCP.
    static std::error_code normalized(const std::error_code& error);

    asio::ip::tcp::socket socket_;
    std::shared_ptr<asio::ssl::context> context_;
    std::string server_name_;  // tls_server_name; empty: the host
    std::shared_ptr<Stream> stream_;  // the current connection's, once its handshake began
};

}  // namespace memq::detail
