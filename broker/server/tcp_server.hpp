// tcp_server.hpp — the Asio shell: moves bytes between TCP sockets and the Broker core.
//
// Rules:
// - One io_context on one thread; the core is called from its handlers only,
//   so nothing here or in the core takes a lock.
// - No protocol logic: bytes read go to Broker::handle_receive as they are;
//   what to write and when to close comes from poll_transmit / poll_close.
// - After every handle_* call the server drains both poll queues for every
//   connection (a send fans out to others). A Transmit is written at once, in
//   the handler that got it: non-blocking gather writes of up to IOV_MAX
//   pieces each (runs of small frames copied into one piece first), until
//   all is written or the socket is full; only then does
//   the session wait until writable and go on. Progress goes to the core with
//   handle_written. At most one Transmit per connection is being written.
// - What each write holds, where a partial write resumes, and the
//   connection's close/linger phase are decided by its WriteCursor
//   (broker/session/write_cursor.hpp), which the simulator drives too; the
//   session does the syscalls and the timers that the cursor's Next asks for.
// - Linux/POSIX only: writes are sendmsg(MSG_NOSIGNAL) on the native socket,
//   so a vanished peer is an error (EPIPE), never a SIGPIPE.
// - handle_disconnect is called exactly once per connection, when its socket
//   is closed; connection ids count up from 1 and are never reused.
// - Every wait is bounded: a closing connection lingers at most
//   ServerTimeouts::close_linger, a half-closed one at most ServerTimeouts::eof_flush,
//   a TLS handshake at most ServerTimeouts::tls_handshake.
// - TLS (listen_tls): a second listener whose sessions wrap the same kind of
//   socket in an asio::ssl::stream. The core sees a connection when it is
//   accepted, as on the plain port, and its bytes once the handshake is done;
//   handshakes are asynchronous, so a stalled one holds up nobody. Over TLS
//   a Transmit is copied, up to kTlsWriteChunkBytes at a time, into the
//   session's own buffer and written with async_write (OpenSSL encrypts from
//   one buffer); reads are async_read_some into the session's own buffer.
//   A graceful close sends close_notify, then shuts down the TCP side as on
//   the plain port. The plain path tests `session->tls` once per read wakeup
//   and per write, nothing per message. Failed handshakes are limit hits.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asio.hpp>
#include <asio/ssl/context.hpp>

#include "broker.hpp"
#include "duration_histogram.hpp"
#include "write_cursor.hpp"
#include "log.hpp"
#include "log_limiter.hpp"

namespace memq {

// Every wait of the server, each bounded.
struct ServerTimeouts {
    // After a Close: how long to read and discard, waiting for the peer's
    // EOF, after shutting down our sending side (so no RST eats the last reply).
    std::chrono::milliseconds close_linger{1000};
    // After the peer's EOF: how long to keep writing what is still queued.
    std::chrono::milliseconds eof_flush{2000};
    // After an accept error such as EMFILE: how long before accepting again.
    std::chrono::milliseconds accept_retry{100};
    // On the TLS port: how long a connection may take to complete its handshake.
    std::chrono::milliseconds tls_handshake{10000};
};

class TcpServer {
public:
    // Opens, binds and listens on `endpoint` (address reuse on); throws
    // std::system_error when it cannot. Accepts nothing before start().
    // Every limit hit it sees (a close or refusal, a failed accept, the core's
    // counts of refused topics and cache evictions) is logged through `limits_log`.
    TcpServer(asio::io_context& io, Broker& broker, const Logger& log, LogLimiter& limits_log,
              const asio::ip::tcp::endpoint& endpoint, ServerTimeouts timeouts = {});
    ~TcpServer();
    TcpServer(const TcpServer&) = delete;
    TcpServer& operator=(const TcpServer&) = delete;

    // The address and port actually bound (port 0 resolved).
    asio::ip::tcp::endpoint local_endpoint() const;

    // Opens a second listener on `endpoint` whose connections speak TLS with
    // `context` (which must outlive the server); throws std::system_error
    // like the constructor. Call before start().
    void listen_tls(const asio::ip::tcp::endpoint& endpoint, asio::ssl::context& context);
    // The TLS listener's bound address and port; only after listen_tls().
    asio::ip::tcp::endpoint tls_local_endpoint() const;

    void start();

    // Stops accepting and reading; every connection flushes what the core has
    // queued for it and is closed gracefully, within `flush_timeout` in all;
    // then `on_stopped` runs and the server has no work left in the io_context.
    // A second call closes every connection at once.
    void shutdown(std::chrono::milliseconds flush_timeout, std::function<void()> on_stopped);

    std::size_t connection_count() const { return sessions_.size(); }

    // Durable topics: every StorageWrite of the core goes to `sink`, in order.
    // The sink takes each write the core polls and returns an empty buffer
    // (perhaps with capacity) that the next poll builds in.
    void set_storage_sink(std::function<std::string(storage::StorageWrite&&)> sink) { storage_sink_ = std::move(sink); }
    // Hands the core's pending output (Closes, Transmits, StorageWrites) on,
    // after a handle_* call made from outside the server (storage completions).
    void pump();
    // The core's pending bytes (Broker::pending_bytes) over the open connections: their sum and the largest.
    std::pair<std::size_t, std::size_t> pending_output() const;

    // From now on, each read's turn (from the read's completion through the
    // core's handle_receive and the drain of its output) is timed into
    // `turns` (steady_clock, two vDSO clock reads a read); null stops it.
    void time_turns(DurationHistogram* turns) { turns_ = turns; }
    const DurationHistogram* turn_histogram() const { return turns_; }

private:
    struct Session;
    using SessionPtr = std::shared_ptr<Session>;
    // An acceptor, and the TLS context of its sessions (none: plain TCP).
    struct Listener {
        Listener(asio::io_context& io, asio::ssl::context* tls_context)
            : acceptor(io), retry_timer(io), tls(tls_context) {}
        asio::ip::tcp::acceptor acceptor;
        asio::steady_timer retry_timer;  // after an accept error such as EMFILE
        asio::ssl::context* tls;
    };

    static void open_listener(Listener& listener, const asio::ip::tcp::endpoint& endpoint);
    void accept_next(Listener& listener);
    void on_accept(Listener& listener, const asio::error_code& error, asio::ip::tcp::socket socket);
    void retry_accept_later(Listener& listener, const asio::error_code& error);

    // TLS sessions: the handshake, then reads and writes through the stream.
    void on_tls_handshake(const SessionPtr& session, const asio::error_code& error);
    void read_tls(const SessionPtr& session);
    void on_tls_read(const SessionPtr& session, const asio::error_code& error, std::size_t bytes);
    void write_tls(const SessionPtr& session);
    void on_tls_written(const SessionPtr& session, const asio::error_code& error, std::size_t bytes);
    // A graceful close over TLS: outstanding reads and writes end first,
    // then close_notify, then the TCP close as on the plain port.
    void begin_tls_close(const SessionPtr& session);
    void continue_tls_close(const SessionPtr& session);
    void end_tls_close(const SessionPtr& session);

    void wait_readable(const SessionPtr& session);
    void on_readable(const SessionPtr& session, const asio::error_code& error);
    void on_peer_eof(const SessionPtr& session);

    // Writes what the socket takes now of the Transmit in flight, reports it
    // to the core, then either ends the write or waits until writable.
    void write_in_flight(const SessionPtr& session);
    void wait_writable(const SessionPtr& session);
    void on_writable(const SessionPtr& session, const asio::error_code& error);

    // Hands every pending Close and Transmit of the core to its session.
    void drain();
    void apply(const Close& close);
    void apply(Transmit& transmit);
    // Logs the limits the core counted since the last call (topics refused,
    // cache evictions) through limits_log_.
    void log_core_limit_hits();

    // Flush what is queued, then close gracefully (bounded by `timeout`).
    void begin_finishing(const SessionPtr& session, std::chrono::milliseconds timeout);
    // Does what the session's cursor said comes next: arm the flush timer
    // (`flush_timeout`), shut down our sending side and linger, or close.
    void act(const SessionPtr& session, WriteCursor::Next next, std::chrono::milliseconds flush_timeout = {});
    // Close the socket now and tell the core; the session is gone.
    void finalize(SessionPtr session);
    void arm_timer(const SessionPtr& session, std::chrono::milliseconds timeout);
    void close_all();
    void stop_if_idle();

    asio::io_context& io_;
    Broker& broker_;
    const Logger& log_;
    LogLimiter& limits_log_;
    BrokerStats logged_stats_;  // the core's counters as log_core_limit_hits last saw them
    ServerTimeouts timeouts_;
    Listener plain_;
    std::unique_ptr<Listener> tls_;  // none until listen_tls()
    asio::steady_timer shutdown_timer_;
    std::unordered_map<ConnId, SessionPtr> sessions_;
    std::vector<char> read_buffer_;  // shared: every read completes before the next starts
    Transmit transmit_;              // drain()'s, reused (see drain)
    std::function<std::string(storage::StorageWrite&&)> storage_sink_;
    storage::StorageWrite storage_write_;
    std::vector<char> gather_buffer_;  // shared by every write: small frames copied together
    std::vector<iovec> write_pieces_;  // shared by every write: the pieces of one sendmsg
    DurationHistogram* turns_ = nullptr;  // time_turns()
    ConnId next_id_ = 1;
    bool draining_ = false;
    bool shutting_down_ = false;
    std::function<void()> on_stopped_;
};

}  // namespace memq
