// tcp_server.cpp — sessions, reads, gather writes and graceful closes around the Broker core.
#include "tcp_server.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <system_error>
#include <utility>

#include <asio/ssl.hpp>

#include "check.hpp"

namespace memq {
namespace {

constexpr std::size_t kReadChunkBytes = 64 * kKiB;
constexpr int kReadsPerWakeup = 16;
constexpr std::size_t kGatherBufferBytes = 256 * kKiB;  // small frames copied together for one write
// Over TLS: plaintext read per operation (a TLS record holds at most 16 KiB) ...
constexpr std::size_t kTlsReadBytes = 16 * kKiB;
// ... and copied from the frames into one buffer per write.
constexpr std::size_t kTlsWriteChunkBytes = 256 * kKiB;

using TlsStream = asio::ssl::stream<asio::ip::tcp::socket&>;
using Phase = WriteCursor::Phase;
using Next = WriteCursor::Next;

// Errors that end one pending connection, not the listening socket.
bool is_per_connection_accept_error(const asio::error_code& error) {
    return error == std::errc::connection_aborted || error == std::errc::connection_reset ||
           error == std::errc::protocol_error;
}

// Clears `draining` on every way out of TcpServer::drain().
class DrainGuard {
public:
    explicit DrainGuard(bool& draining) : draining_(draining) { draining_ = true; }
    ~DrainGuard() { draining_ = false; }
    DrainGuard(const DrainGuard&) = delete;
    DrainGuard& operator=(const DrainGuard&) = delete;

private:
    bool& draining_;
};

}  // namespace

// The TLS side of a session accepted on the TLS port: the stream over the
// session's socket and the buffers its operations use.
struct TlsLayer {
    TlsLayer(asio::ip::tcp::socket& socket, asio::ssl::context& context)
        : stream(socket, context), read_buffer(new char[kTlsReadBytes]) {}

    TlsStream stream;
    // The plaintext of the read outstanding; not zero-filled, so that only the
    // pages reads have used cost memory.
    std::unique_ptr<char[]> read_buffer;
    std::string write_buffer;       // the plaintext of the write outstanding
    bool handshake_done = false;
    bool reading = false;           // an async_read_some is outstanding
    bool writing = false;           // an async_write is outstanding
    bool close_started = false;     // close_notify sent or given up
    bool broken = false;            // a write was cut short or the peer truncated: no close_notify
};

// One accepted socket. Handlers hold it by shared_ptr, so it outlives its
// entry in sessions_ until the last of them has run. What to write, and
// when to shut down or close, is the cursor's to say; the session only
// holds the socket, the TLS layer and the pending operations.
struct TcpServer::Session {
    Session(ConnId id_, asio::ip::tcp::socket socket_, asio::ip::tcp::endpoint peer_, bool tls_)
        : id(id_), socket(std::move(socket_)), peer(std::move(peer_)), cursor(/*handshake_first=*/tls_) {}

    ConnId id;
    asio::ip::tcp::socket socket;
    asio::ip::tcp::endpoint peer;
    std::unique_ptr<TlsLayer> tls;  // null on the plain port
    WriteCursor cursor;             // the Transmit being written, and the close/linger phase
    bool waiting_readable = false;  // an async_wait(wait_read) is outstanding
    std::unique_ptr<asio::steady_timer> timer;  // made on first use: most sessions never need one
    std::uint64_t timer_generation = 0;         // a completion from an older arming is ignored

    Phase phase() const { return cursor.phase(); }
};

TcpServer::TcpServer(asio::io_context& io, Broker& broker, const Logger& log, LogLimiter& limits_log,
                     const asio::ip::tcp::endpoint& endpoint, ServerTimeouts timeouts)
    : io_(io),
      broker_(broker),
      log_(log),
      limits_log_(limits_log),
      logged_stats_(broker.stats()),
      timeouts_(timeouts),
      plain_(io, nullptr),
      shutdown_timer_(io),
      read_buffer_(kReadChunkBytes),
      gather_buffer_(kGatherBufferBytes),
      write_pieces_(WriteCursor::kPiecesPerWriteMax) {
    open_listener(plain_, endpoint);
}

TcpServer::~TcpServer() = default;

void TcpServer::open_listener(Listener& listener, const asio::ip::tcp::endpoint& endpoint) {
    listener.acceptor.open(endpoint.protocol());
    listener.acceptor.set_option(asio::socket_base::reuse_address(true));
    listener.acceptor.bind(endpoint);
    listener.acceptor.listen(asio::socket_base::max_listen_connections);
}

void TcpServer::listen_tls(const asio::ip::tcp::endpoint& endpoint, asio::ssl::context& context) {
    MEMQ_CHECK(!tls_);
    auto listener = std::make_unique<Listener>(io_, &context);
    open_listener(*listener, endpoint);
    tls_ = std::move(listener);
}

asio::ip::tcp::endpoint TcpServer::local_endpoint() const { return plain_.acceptor.local_endpoint(); }

asio::ip::tcp::endpoint TcpServer::tls_local_endpoint() const {
    MEMQ_CHECK(tls_);
    return tls_->acceptor.local_endpoint();
}

std::pair<std::size_t, std::size_t> TcpServer::pending_output() const {
    std::size_t total = 0;
    std::size_t largest = 0;
    for (const auto& entry : sessions_) {
        const std::size_t bytes = broker_.pending_bytes(entry.first);
        total += bytes;
        largest = std::max(largest, bytes);
    }
    return {total, largest};
}

void TcpServer::start() {
    accept_next(plain_);
    if (tls_) accept_next(*tls_);
}

// ---- accepting -------------------------------------------------------------

void TcpServer::accept_next(Listener& listener) {
    listener.acceptor.async_accept([this, &listener](const asio::error_code& error, asio::ip::tcp::socket socket) {
        on_accept(listener, error, std::move(socket));
    });
}

void TcpServer::on_accept(Listener& listener, const asio::error_code& error, asio::ip::tcp::socket socket) {
    if (shutting_down_ || error == asio::error::operation_aborted) return;
    if (error) {
        retry_accept_later(listener, error);
        return;
    }
    asio::error_code setup_error;
    asio::ip::tcp::endpoint peer = socket.remote_endpoint(setup_error);
    if (!setup_error) socket.set_option(asio::ip::tcp::no_delay(true), setup_error);
    if (!setup_error) socket.non_blocking(true, setup_error);  // reads are read_some after wait_read
    if (setup_error) {
        log_.debug("dropping an accepted connection: ", setup_error.message());
    } else {
        const ConnId id = next_id_++;
        auto session = std::make_shared<Session>(id, std::move(socket), std::move(peer), listener.tls != nullptr);
        sessions_.emplace(id, session);
        log_.debug("connection ", id, " accepted from ", session->peer, listener.tls ? " (TLS)" : "");
        if (listener.tls) {
            session->tls = std::make_unique<TlsLayer>(session->socket, *listener.tls);
            arm_timer(session, timeouts_.tls_handshake);
            session->tls->stream.async_handshake(
                asio::ssl::stream_base::server,
                [this, session](const asio::error_code& handshake_error) { on_tls_handshake(session, handshake_error); });
        }
        broker_.handle_connect(id);
        if (!listener.tls) wait_readable(session);
        drain();
    }
    accept_next(listener);
}

void TcpServer::retry_accept_later(Listener& listener, const asio::error_code& error) {
    if (is_per_connection_accept_error(error)) {
        log_.debug("accept: ", error.message());
        accept_next(listener);
        return;
    }
    // EMFILE and friends: the server lives on; accept again once something may have been freed.
    limits_log_.hit(LimitEvent::accept_failed, 1, "accept failed: ", error.message(), "; retrying in ",
                    timeouts_.accept_retry.count(), " ms");
    listener.retry_timer.expires_after(timeouts_.accept_retry);
    listener.retry_timer.async_wait([this, &listener](const asio::error_code& timer_error) {
        if (!timer_error && !shutting_down_) accept_next(listener);
    });
}

// ---- TLS -------------------------------------------------------------------

void TcpServer::on_tls_handshake(const SessionPtr& session, const asio::error_code& error) {
    if (session->phase() != Phase::handshaking) return;  // timed out, refused or shut down meanwhile
    if (error) {
        limits_log_.hit(LimitEvent::tls_handshake_failed, 1, "TLS handshake failed: connection ", session->id,
                        " from ", session->peer, ": ", error.message());
        act(session, session->cursor.failed());
        return;
    }
    session->tls->handshake_done = true;
    session->cursor.handshake_done();
    ++session->timer_generation;  // the handshake timer's completion is ignored
    session->timer->cancel();
    log_.debug("connection ", session->id, ": TLS handshake done (", SSL_get_version(session->tls->stream.native_handle()),
               ")");
    if (shutting_down_) {
        begin_finishing(session, timeouts_.eof_flush);
        return;
    }
    read_tls(session);
    if (session->cursor.in_flight()) write_tls(session);  // output the core queued during the handshake
    drain();
}

void TcpServer::read_tls(const SessionPtr& session) {
    TlsLayer& tls = *session->tls;
    if (tls.reading) return;
    tls.reading = true;
    tls.stream.async_read_some(asio::buffer(tls.read_buffer.get(), kTlsReadBytes),
                               [this, session](const asio::error_code& error, std::size_t bytes) {
                                   on_tls_read(session, error, bytes);
                               });
}

void TcpServer::on_tls_read(const SessionPtr& session, const asio::error_code& error, std::size_t bytes) {
    session->tls->reading = false;
    if (session->phase() == Phase::gone) return;
    if (session->phase() == Phase::closing) {
        continue_tls_close(session);
        return;
    }
    if (bytes != 0 && session->cursor.feeds_core() && !shutting_down_) {
        broker_.handle_receive(session->id, std::string_view(session->tls->read_buffer.get(), bytes));
        drain();
    }
    if (!session->cursor.feeds_core()) {
        if (session->phase() == Phase::closing) continue_tls_close(session);
        return;  // finishing reads no more, as on the plain port
    }
    if (error == asio::error::eof || error == asio::ssl::error::stream_truncated) {
        // eof: the peer's close_notify; truncated: its TCP end without one.
        if (error != asio::error::eof) session->tls->broken = true;
        on_peer_eof(session);
        return;
    }
    if (error) {
        log_.debug("connection ", session->id, ": TLS read failed: ", error.message());
        act(session, session->cursor.failed());
        return;
    }
    read_tls(session);
}

void TcpServer::write_tls(const SessionPtr& session) {
    TlsLayer& tls = *session->tls;
    if (!tls.handshake_done || tls.writing || !session->cursor.in_flight()) return;
    tls.write_buffer.clear();
    session->cursor.copy_next(tls.write_buffer, kTlsWriteChunkBytes);
    tls.writing = true;
    asio::async_write(tls.stream, asio::buffer(tls.write_buffer),
                      [this, session](const asio::error_code& error, std::size_t bytes) {
                          on_tls_written(session, error, bytes);
                      });
}

void TcpServer::on_tls_written(const SessionPtr& session, const asio::error_code& error, std::size_t bytes) {
    session->tls->writing = false;
    if (session->phase() == Phase::gone) return;
    if (session->phase() == Phase::closing) {
        continue_tls_close(session);
        return;
    }
    if (error) {
        log_.debug("connection ", session->id, ": TLS write failed: ", error.message());
        act(session, session->cursor.failed());
        return;
    }
    session->cursor.advance(bytes);
    broker_.handle_written(session->id, bytes);
    if (!session->cursor.in_flight()) {
        act(session, session->cursor.flushed(broker_.pending_bytes(session->id)));
    } else {
        write_tls(session);
    }
    drain();
}

void TcpServer::begin_tls_close(const SessionPtr& session) {
    TlsLayer& tls = *session->tls;
    if (tls.writing) tls.broken = true;          // an abrupt close cuts the record being written
    if (tls.reading || tls.writing) {
        asio::error_code ignored;
        session->socket.cancel(ignored);  // their handlers go on with continue_tls_close
        return;
    }
    continue_tls_close(session);
}

void TcpServer::continue_tls_close(const SessionPtr& session) {
    TlsLayer& tls = *session->tls;
    if (tls.reading || tls.writing || tls.close_started) return;
    tls.close_started = true;
    if (tls.broken) {
        end_tls_close(session);
        return;
    }
    // Sends close_notify, then waits for the peer's (or its EOF); the linger timer bounds the wait.
    tls.stream.async_shutdown([this, session](const asio::error_code&) { end_tls_close(session); });
}

void TcpServer::end_tls_close(const SessionPtr& session) {
    if (session->phase() == Phase::gone) return;
    asio::error_code ignored;
    session->socket.shutdown(asio::socket_base::shutdown_send, ignored);
    act(session, session->cursor.shut_down_done());  // then raw input is discarded, as on the plain port
}

// ---- reading ---------------------------------------------------------------

void TcpServer::wait_readable(const SessionPtr& session) {
    if (session->waiting_readable) return;
    session->waiting_readable = true;
    session->socket.async_wait(asio::socket_base::wait_read,
                               [this, session](const asio::error_code& error) { on_readable(session, error); });
}

void TcpServer::on_readable(const SessionPtr& session, const asio::error_code& error) {
    session->waiting_readable = false;
    if (session->phase() == Phase::gone) return;
    if (error) {
        log_.debug("connection ", session->id, ": wait failed: ", error.message());
        act(session, session->cursor.failed());
        return;
    }
    // Up to kReadsPerWakeup chunks per wakeup: a bulk sender moves fast, and
    // still cannot starve the other connections.
    for (int reads = 0; reads < kReadsPerWakeup; ++reads) {
        asio::error_code read_error;
        const std::size_t bytes = session->socket.read_some(asio::buffer(read_buffer_), read_error);
        if (read_error == asio::error::would_block || read_error == asio::error::try_again) break;
        if (read_error == asio::error::eof) {
            on_peer_eof(session);
            return;
        }
        if (read_error) {
            log_.debug("connection ", session->id, ": read failed: ", read_error.message());
            act(session, session->cursor.failed());
            return;
        }
        if (session->cursor.feeds_core() && !shutting_down_) {
            const auto turn_start = turns_ != nullptr ? std::chrono::steady_clock::now()
                                                      : std::chrono::steady_clock::time_point{};
            broker_.handle_receive(session->id, std::string_view(read_buffer_.data(), bytes));
            drain();
            if (turns_ != nullptr) turns_->observe(std::chrono::steady_clock::now() - turn_start);
        }
        // A finishing session reads no more; a closing one reads only to discard.
        if (!session->cursor.reads()) return;
        if (bytes < read_buffer_.size()) break;  // most likely all there was
    }
    wait_readable(session);
}

void TcpServer::on_peer_eof(const SessionPtr& session) {
    // A half-closed peer may still be reading: its replies are flushed first,
    // as the reference servers do, within a bound.
    if (session->cursor.feeds_core()) log_.debug("connection ", session->id, ": end of input");
    act(session, session->cursor.peer_eof(), timeouts_.eof_flush);
}

// ---- writing ---------------------------------------------------------------

void TcpServer::drain() {
    if (draining_) return;  // an outer drain() is looping and will see what this call would
    const DrainGuard guard(draining_);
    for (bool busy = true; busy;) {
        busy = false;
        while (std::optional<Close> close = broker_.poll_close()) {
            apply(*close);
            busy = true;
        }
        // transmit_ circulates vectors: it takes a written session's empty
        // vector here and hands it to the core as that connection's next queue.
        while (broker_.poll_transmit(transmit_)) {
            apply(transmit_);
            transmit_.frames.clear();  // empty already, unless the session was closing
            busy = true;
        }
        // Durable topics: the log's writes go to the writer as they come (it
        // never blocks this thread), before the next turn's input is read.
        while (storage_sink_ && broker_.poll_storage(storage_write_)) {
            std::string next_buffer = storage_sink_(std::move(storage_write_));
            storage_write_ = {};
            storage_write_.bytes = std::move(next_buffer);
        }
    }
    log_core_limit_hits();
}

void TcpServer::pump() { drain(); }

// Called from drain() only. Writing here, synchronously, is safe: the core
// calls nothing back, and whatever handle_written or a finalize makes due
// (the next Transmit, a Close) is picked up by the loop in drain().
void TcpServer::apply(Transmit& transmit) {
    const auto found = sessions_.find(transmit.conn);
    MEMQ_CHECK(found != sessions_.end());
    const SessionPtr session = found->second;
    // The session's drained vector goes back in `transmit`; a closing session drops the output.
    if (session->cursor.take(transmit)) write_in_flight(session);
}

void TcpServer::write_in_flight(const SessionPtr& session) {
    if (session->tls) {
        write_tls(session);
        return;
    }
    // Non-blocking gather writes of the cursor's plan until all is written,
    // the socket is full, or a write fails.
    WriteCursor& cursor = session->cursor;
    std::size_t written = 0;
    int error = 0;
    while (cursor.in_flight()) {
        const WriteCursor::Plan plan = cursor.plan(gather_buffer_, write_pieces_);
        msghdr message{};
        message.msg_iov = write_pieces_.data();
        message.msg_iovlen = plan.pieces;
        const ssize_t sent = ::sendmsg(session->socket.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) error = errno;
            break;
        }
        cursor.advance(static_cast<std::size_t>(sent));
        written += static_cast<std::size_t>(sent);
    }
    if (written != 0) broker_.handle_written(session->id, written);
    if (error != 0) {
        log_.debug("connection ", session->id, ": write failed: ", std::error_code(error, std::system_category()).message());
        act(session, cursor.failed());
        return;
    }
    if (cursor.in_flight()) {
        wait_writable(session);  // the socket is full: go on when the peer has read some
        return;
    }
    act(session, cursor.flushed(broker_.pending_bytes(session->id)));
}

void TcpServer::wait_writable(const SessionPtr& session) {
    session->socket.async_wait(asio::socket_base::wait_write,
                               [this, session](const asio::error_code& error) { on_writable(session, error); });
}

void TcpServer::on_writable(const SessionPtr& session, const asio::error_code& error) {
    // Closing or gone: the frames were dropped and nothing more is written.
    if (!session->cursor.in_flight()) return;
    if (error) {
        log_.debug("connection ", session->id, ": wait failed: ", error.message());
        act(session, session->cursor.failed());
        return;
    }
    write_in_flight(session);
    drain();
}

// ---- closing ---------------------------------------------------------------

void TcpServer::apply(const Close& close) {
    const auto found = sessions_.find(close.conn);
    MEMQ_CHECK(found != sessions_.end());
    const SessionPtr session = found->second;
    if (session->phase() == Phase::closing) return;
    const Limits& limits = broker_.limits();
    switch (close.reason) {
        case CloseReason::quit:
            log_.debug("connection ", session->id, ": quit");
            break;
        case CloseReason::line_too_long:
            limits_log_.hit(LimitEvent::line_too_long, 1, "closing connection ", session->id, " from ", session->peer,
                            ": ", to_string(close.reason), " (max_line_bytes=", limits.line_bytes_max, ")");
            break;
        case CloseReason::slow_consumer:
            limits_log_.hit(LimitEvent::slow_consumer, 1, "closing connection ", session->id, " from ", session->peer,
                            ": ", to_string(close.reason),
                            " (pending output passed max_pending_bytes=", limits.pending_bytes_max, ")");
            break;
        case CloseReason::too_many_connections:
            limits_log_.hit(LimitEvent::too_many_connections, 1, "refusing connection ", session->id, " from ",
                            session->peer, ": too many connections (max_connections=", limits.connections_max, ")");
            break;
        case CloseReason::storage_failed:
            log_.warn("closing connection ", session->id, " from ", session->peer,
                      ": storage failed before its send was stored, so it is not acknowledged");
            break;
    }
    act(session, session->cursor.close(close.reason), timeouts_.close_linger);
}

void TcpServer::log_core_limit_hits() {
    const BrokerStats& now = broker_.stats();
    if (now.topics_refused == logged_stats_.topics_refused && now.cache_evictions == logged_stats_.cache_evictions &&
        now.topic_too_long_refused == logged_stats_.topic_too_long_refused &&
        now.subscriptions_refused == logged_stats_.subscriptions_refused) {
        return;
    }
    const Limits& limits = broker_.limits();
    const TopicTable& topics = broker_.topics();
    if (const std::uint64_t refused = now.topics_refused - logged_stats_.topics_refused; refused != 0) {
        limits_log_.hit(LimitEvent::too_many_topics, refused, "too many topics: refused ", refused,
                        " command(s) (max_topics=", limits.topics_max, " max_indexed_topics=",
                        limits.indexed_topics_max, "; topics with state ", topics.stateful_count(), ", known ",
                        topics.size(), ")");
    }
    if (const std::uint64_t refused = now.topic_too_long_refused - logged_stats_.topic_too_long_refused;
        refused != 0) {
        limits_log_.hit(LimitEvent::topic_too_long, refused, "topic too long: refused ", refused,
                        " command(s) (max_topic_bytes=", limits.topic_bytes_max, ")");
    }
    if (const std::uint64_t refused = now.subscriptions_refused - logged_stats_.subscriptions_refused;
        refused != 0) {
        limits_log_.hit(LimitEvent::too_many_subscriptions, refused, "too many subscriptions: refused ", refused,
                        " subscribe(s) (max_subscriptions=", limits.subscriptions_max, " per connection)");
    }
    if (const std::uint64_t evicted = now.cache_evictions - logged_stats_.cache_evictions; evicted != 0) {
        limits_log_.hit(LimitEvent::cache_byte_budget, evicted, "cache byte budget: evicted ", evicted,
                        " message(s) (max_cache_bytes=", limits.cache_bytes_max, "; cached ", topics.cached_bytes(),
                        " bytes in ", topics.cached_messages(), " messages)");
    }
    logged_stats_ = now;
}

void TcpServer::begin_finishing(const SessionPtr& session, std::chrono::milliseconds timeout) {
    act(session, session->cursor.finish(), timeout);
}

void TcpServer::act(const SessionPtr& session, WriteCursor::Next next, std::chrono::milliseconds flush_timeout) {
    switch (next) {
        case Next::nothing:
            return;
        case Next::flush:
            arm_timer(session, flush_timeout);
            act(session, session->cursor.flushed(broker_.pending_bytes(session->id)));
            return;
        case Next::shut_down: {
            arm_timer(session, timeouts_.close_linger);  // bounds close_notify (TLS) and the linger together
            if (session->tls) {
                begin_tls_close(session);  // close_notify first; end_tls_close goes on
                return;
            }
            asio::error_code ignored;
            session->socket.shutdown(asio::socket_base::shutdown_send, ignored);
            act(session, session->cursor.shut_down_done());
            return;
        }
        case Next::linger:
            wait_readable(session);  // input is discarded until EOF or the linger timer
            return;
        case Next::close:
            finalize(session);
            return;
    }
}

void TcpServer::arm_timer(const SessionPtr& session, std::chrono::milliseconds timeout) {
    if (!session->timer) session->timer = std::make_unique<asio::steady_timer>(io_);
    const std::uint64_t generation = ++session->timer_generation;
    session->timer->expires_after(timeout);
    session->timer->async_wait([this, session, generation, timeout](const asio::error_code& error) {
        if (error || generation != session->timer_generation || session->phase() == Phase::gone) return;
        if (session->phase() == Phase::handshaking) {
            limits_log_.hit(LimitEvent::tls_handshake_failed, 1, "TLS handshake failed: connection ", session->id,
                            " from ", session->peer, ": not done within ", timeout.count(),
                            " ms (tls_handshake_timeout_ms)");
        } else {
            log_.debug("connection ", session->id, ": timed out while closing");
        }
        act(session, session->cursor.timer_expired());
    });
}

void TcpServer::finalize(SessionPtr session) {
    if (session->phase() == Phase::gone) return;
    session->cursor.closed();
    if (session->timer) session->timer->cancel();
    asio::error_code ignored;
    session->socket.close(ignored);  // outstanding waits complete as aborted
    broker_.handle_disconnect(session->id);
    sessions_.erase(session->id);
    log_.debug("connection ", session->id, " closed");
    drain();
    stop_if_idle();
}

void TcpServer::close_all() {
    std::vector<SessionPtr> all;
    all.reserve(sessions_.size());
    for (const auto& entry : sessions_) all.push_back(entry.second);
    for (const SessionPtr& session : all) finalize(session);
}

// ---- shutting down -----------------------------------------------------------

void TcpServer::shutdown(std::chrono::milliseconds flush_timeout, std::function<void()> on_stopped) {
    if (shutting_down_) {
        close_all();
        return;
    }
    shutting_down_ = true;
    on_stopped_ = std::move(on_stopped);
    asio::error_code ignored;
    for (Listener* listener : {&plain_, tls_.get()}) {
        if (listener == nullptr) continue;
        listener->acceptor.close(ignored);
        listener->retry_timer.cancel();
    }
    shutdown_timer_.expires_after(flush_timeout);
    shutdown_timer_.async_wait([this](const asio::error_code& error) {
        if (error || sessions_.empty()) return;
        log_.warn(sessions_.size(), " connection(s) still open after the flush timeout; closing them");
        close_all();
    });
    std::vector<SessionPtr> open;
    std::vector<SessionPtr> handshaking;  // nothing to flush: closed at once
    for (const auto& entry : sessions_) {
        if (entry.second->phase() == Phase::open) open.push_back(entry.second);
        if (entry.second->phase() == Phase::handshaking) handshaking.push_back(entry.second);
    }
    for (const SessionPtr& session : handshaking) begin_finishing(session, flush_timeout);  // closes at once
    for (const SessionPtr& session : open) {
        if (session->phase() == Phase::open) begin_finishing(session, flush_timeout);
    }
    stop_if_idle();
}

void TcpServer::stop_if_idle() {
    if (!shutting_down_ || !sessions_.empty() || !on_stopped_) return;
    shutdown_timer_.cancel();
    const std::function<void()> on_stopped = std::move(on_stopped_);
    on_stopped_ = nullptr;
    on_stopped();
}

}  // namespace memq
