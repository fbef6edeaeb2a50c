// tcp_server.cpp — sessions, reads, gather writes and graceful closes around the Broker core.
#include "tcp_server.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

#include <asio/ssl.hpp>

#include "check.hpp"

namespace memq {
namespace {

constexpr std::size_t kReadChunkBytes = 64 * kKiB;
constexpr int kReadsPerWakeup = 16;
constexpr std::size_t kFramesPerWrite = IOV_MAX;  // the most iovecs one sendmsg takes
// Frames up to this size are copied into the gather buffer before a write.
constexpr std::size_t kGatheredFrameBytesMax = 2 * kKiB;
constexpr std::size_t kGatherBufferBytes = 256 * kKiB;
// A written Transmit's vector is kept for the next one up to this capacity.
constexpr std::size_t kKeptFramesCapacity = 1024;
// Over TLS: plaintext read per operation (a TLS record holds at most 16 KiB) ...
constexpr std::size_t kTlsReadBytes = 16 * kKiB;
// ... and copied from the frames into one buffer per write.
constexpr std::size_t kTlsWriteChunkBytes = 256 * kKiB;

using TlsStream = asio::ssl::stream<asio::ip::tcp::socket&>;

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
// entry in sessions_ until the last of them has run.
struct TcpServer::Session {
    enum class State : std::uint8_t {
        handshaking,  // TLS only: the handshake is under way; no bytes to or from the core yet
        open,       // reading into the core, writing what it sends
        finishing,  // no more input for the core; writing what is queued, then closing
        closing,    // our side shut down; discarding input until EOF or the linger ends
        gone,       // socket closed, handle_disconnect called
    };

    Session(ConnId id_, asio::ip::tcp::socket socket_, asio::ip::tcp::endpoint peer_)
        : id(id_), socket(std::move(socket_)), peer(std::move(peer_)) {}

    ConnId id;
    asio::ip::tcp::socket socket;
    asio::ip::tcp::endpoint peer;
    std::unique_ptr<TlsLayer> tls;  // null on the plain port
    State state = State::open;
    bool peer_eof = false;          // the peer shut down its sending side
    bool waiting_readable = false;  // an async_wait(wait_read) is outstanding
    // A Transmit is being written: its frames are in frames_in_flight and, between
    // handlers, an async_wait(wait_write) is outstanding to go on with them.
    bool writing = false;
    std::vector<Frame> frames_in_flight;  // the Transmit's frames, kept until all of them are written
    std::size_t next_frame = 0;           // the first frame of frames_in_flight not wholly written
    std::size_t next_frame_written = 0;   // bytes of that frame already written
    std::unique_ptr<asio::steady_timer> timer;  // made on first use: most sessions never need one
    std::uint64_t timer_generation = 0;         // a completion from an older arming is ignored

    bool all_written() const { return next_frame == frames_in_flight.size(); }

    // Nothing more will be written: frees the frames (no pending operation
    // points into them; only write_available reads them, synchronously). A
    // live session keeps a modest vector's capacity for its next Transmit.
    void drop_in_flight(bool keep_capacity) {
        writing = false;
        if (keep_capacity && frames_in_flight.capacity() <= kKeptFramesCapacity) {
            frames_in_flight.clear();
        } else {
            std::vector<Frame>().swap(frames_in_flight);
        }
        next_frame = 0;
        next_frame_written = 0;
    }

    struct WriteProgress {
        std::size_t bytes = 0;  // written by this call
        int error = 0;          // errno of a failed write; 0 if none failed
    };

    // Writes frames_in_flight from where the last call stopped, each syscall a
    // gather of up to kFramesPerWrite pieces, until all is written (then
    // all_written()), the socket would block, or a write fails. Never blocks.
    // Runs of small frames are first copied together into `gather` (one
    // piece each run): the kernel copies one long piece far faster than
    // hundreds of 20-byte ones. What a short write leaves is copied again
    // next time, from the frames, which stay the truth.
    WriteProgress write_available(std::span<char> gather) {
        WriteProgress progress;
        std::array<iovec, kFramesPerWrite> pieces;
        while (!all_written()) {
            std::size_t count = 0;
            std::size_t gathered = 0;
            char* run_end = nullptr;  // where the last piece ends, if it is a run in `gather`
            for (std::size_t i = next_frame; i < frames_in_flight.size(); ++i) {
                const std::string& frame = *frames_in_flight[i];
                const std::size_t skip = i == next_frame ? next_frame_written : 0;
                const char* const data = frame.data() + skip;
                const std::size_t size = frame.size() - skip;
                if (size <= kGatheredFrameBytesMax && gathered + size <= gather.size()) {
                    char* const to = gather.data() + gathered;
                    std::memcpy(to, data, size);
                    gathered += size;
                    if (run_end == to) {
                        pieces[count - 1].iov_len += size;
                        run_end += size;
                        continue;
                    }
                    if (count == pieces.size()) break;
                    pieces[count].iov_base = to;
                    pieces[count].iov_len = size;
                    run_end = to + size;
                    ++count;
                    continue;
                }
                if (size <= kGatheredFrameBytesMax || count == pieces.size()) break;  // gather or pieces full
                pieces[count].iov_base = const_cast<char*>(data);
                pieces[count].iov_len = size;
                run_end = nullptr;
                ++count;
            }
            msghdr message{};
            message.msg_iov = pieces.data();
            message.msg_iovlen = count;
            const ssize_t sent = ::sendmsg(socket.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) progress.error = errno;
                return progress;
            }
            progress.bytes += static_cast<std::size_t>(sent);
            advance(static_cast<std::size_t>(sent));
        }
        return progress;
    }

    // Moves next_frame / next_frame_written past `bytes` just written.
    void advance(std::size_t bytes) {
        while (!all_written()) {
            const std::size_t left_in_frame = frames_in_flight[next_frame]->size() - next_frame_written;
            if (bytes < left_in_frame) {
                next_frame_written += bytes;
                return;
            }
            bytes -= left_in_frame;
            ++next_frame;
            next_frame_written = 0;
        }
    }
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
      gather_buffer_(kGatherBufferBytes) {
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
        auto session = std::make_shared<Session>(id, std::move(socket), std::move(peer));
        sessions_.emplace(id, session);
        log_.debug("connection ", id, " accepted from ", session->peer, listener.tls ? " (TLS)" : "");
        if (listener.tls) {
            session->tls = std::make_unique<TlsLayer>(session->socket, *listener.tls);
            session->state = Session::State::handshaking;
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
    if (session->state != Session::State::handshaking) return;  // timed out, refused or shut down meanwhile
    if (error) {
        limits_log_.hit(LimitEvent::tls_handshake_failed, 1, "TLS handshake failed: connection ", session->id,
                        " from ", session->peer, ": ", error.message());
        finalize(session);
        return;
    }
    session->tls->handshake_done = true;
    session->state = Session::State::open;
    ++session->timer_generation;  // the handshake timer's completion is ignored
    session->timer->cancel();
    log_.debug("connection ", session->id, ": TLS handshake done (", SSL_get_version(session->tls->stream.native_handle()),
               ")");
    if (shutting_down_) {
        begin_finishing(session, timeouts_.eof_flush);
        return;
    }
    read_tls(session);
    if (session->writing) write_tls(session);  // output the core queued during the handshake
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
    if (session->state == Session::State::gone) return;
    if (session->state == Session::State::closing) {
        continue_tls_close(session);
        return;
    }
    if (bytes != 0 && session->state == Session::State::open && !shutting_down_) {
        broker_.handle_receive(session->id, std::string_view(session->tls->read_buffer.get(), bytes));
        drain();
    }
    if (session->state != Session::State::open) {
        if (session->state == Session::State::closing) continue_tls_close(session);
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
        finalize(session);
        return;
    }
    read_tls(session);
}

void TcpServer::write_tls(const SessionPtr& session) {
    TlsLayer& tls = *session->tls;
    if (!tls.handshake_done || tls.writing || session->all_written()) return;
    tls.write_buffer.clear();
    std::size_t skip = session->next_frame_written;
    for (std::size_t i = session->next_frame; i < session->frames_in_flight.size(); ++i) {
        const std::string& frame = *session->frames_in_flight[i];
        const std::size_t take = std::min(frame.size() - skip, kTlsWriteChunkBytes - tls.write_buffer.size());
        tls.write_buffer.append(frame, skip, take);
        if (tls.write_buffer.size() == kTlsWriteChunkBytes) break;
        skip = 0;
    }
    tls.writing = true;
    asio::async_write(tls.stream, asio::buffer(tls.write_buffer),
                      [this, session](const asio::error_code& error, std::size_t bytes) {
                          on_tls_written(session, error, bytes);
                      });
}

void TcpServer::on_tls_written(const SessionPtr& session, const asio::error_code& error, std::size_t bytes) {
    session->tls->writing = false;
    if (session->state == Session::State::gone) return;
    if (session->state == Session::State::closing) {
        continue_tls_close(session);
        return;
    }
    if (error) {
        log_.debug("connection ", session->id, ": TLS write failed: ", error.message());
        finalize(session);
        return;
    }
    session->advance(bytes);
    broker_.handle_written(session->id, bytes);
    if (session->all_written()) {
        session->drop_in_flight(/*keep_capacity=*/true);
        finish_if_flushed(session);
    } else {
        write_tls(session);
    }
    drain();
}

void TcpServer::begin_tls_close(const SessionPtr& session) {
    TlsLayer& tls = *session->tls;
    arm_timer(session, timeouts_.close_linger);  // bounds close_notify and the linger together
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
    if (session->state == Session::State::gone) return;
    asio::error_code ignored;
    session->socket.shutdown(asio::socket_base::shutdown_send, ignored);
    if (session->peer_eof) {
        finalize(session);
        return;
    }
    wait_readable(session);  // discards raw input until EOF or the linger ends, as on the plain port
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
    if (session->state == Session::State::gone) return;
    if (error) {
        log_.debug("connection ", session->id, ": wait failed: ", error.message());
        finalize(session);
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
            finalize(session);
            return;
        }
        if (session->state == Session::State::open && !shutting_down_) {
            const auto turn_start = turns_ != nullptr ? std::chrono::steady_clock::now()
                                                      : std::chrono::steady_clock::time_point{};
            broker_.handle_receive(session->id, std::string_view(read_buffer_.data(), bytes));
            drain();
            if (turns_ != nullptr) turns_->observe(std::chrono::steady_clock::now() - turn_start);
        }
        // A finishing session reads no more; a closing one reads only to discard.
        if (session->state != Session::State::open && session->state != Session::State::closing) return;
        if (bytes < read_buffer_.size()) break;  // most likely all there was
    }
    wait_readable(session);
}

void TcpServer::on_peer_eof(const SessionPtr& session) {
    session->peer_eof = true;
    switch (session->state) {
        case Session::State::open:
            // A half-closed peer may still be reading: flush its replies first, as
            // the reference servers do, within a bound.
            log_.debug("connection ", session->id, ": end of input");
            begin_finishing(session, timeouts_.eof_flush);
            break;
        case Session::State::closing:
            finalize(session);
            break;
        case Session::State::handshaking:
        case Session::State::finishing:
        case Session::State::gone:
            break;
    }
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
            storage_sink_(std::move(storage_write_));
            storage_write_ = {};
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
    if (session->state == Session::State::closing) return;  // output of a closed connection is dropped
    MEMQ_CHECK(!session->writing);  // the core hands out one Transmit per connection at a time
    session->writing = true;
    session->frames_in_flight.swap(transmit.frames);  // the session's drained vector goes back to transmit
    session->next_frame = 0;
    session->next_frame_written = 0;
    write_in_flight(session);
}

void TcpServer::write_in_flight(const SessionPtr& session) {
    if (session->tls) {
        write_tls(session);
        return;
    }
    const Session::WriteProgress progress = session->write_available(gather_buffer_);
    if (progress.bytes != 0) broker_.handle_written(session->id, progress.bytes);
    if (progress.error != 0) {
        log_.debug("connection ", session->id,
                   ": write failed: ", std::error_code(progress.error, std::system_category()).message());
        finalize(session);
        return;
    }
    if (!session->all_written()) {
        wait_writable(session);  // the socket is full: go on when the peer has read some
        return;
    }
    session->drop_in_flight(/*keep_capacity=*/true);
    finish_if_flushed(session);
}

void TcpServer::wait_writable(const SessionPtr& session) {
    session->socket.async_wait(asio::socket_base::wait_write,
                               [this, session](const asio::error_code& error) { on_writable(session, error); });
}

void TcpServer::on_writable(const SessionPtr& session, const asio::error_code& error) {
    // Closing or gone: the frames were dropped and nothing more is written.
    if (session->state == Session::State::gone || session->state == Session::State::closing) return;
    if (error) {
        log_.debug("connection ", session->id, ": wait failed: ", error.message());
        finalize(session);
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
    if (session->state == Session::State::closing) return;
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
    begin_graceful_close(session);
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
    session->state = Session::State::finishing;
    arm_timer(session, timeout);
    finish_if_flushed(session);
}

void TcpServer::finish_if_flushed(const SessionPtr& session) {
    if (session->state != Session::State::finishing || session->writing) return;
    if (broker_.pending_bytes(session->id) != 0) return;
    begin_graceful_close(session);
}

void TcpServer::begin_graceful_close(const SessionPtr& session) {
    if (session->state == Session::State::handshaking) {
        finalize(session);  // nothing was said over TLS yet: nothing to flush
        return;
    }
    session->state = Session::State::closing;
    session->drop_in_flight(/*keep_capacity=*/false);  // the core dropped this output too (or all of it was written)
    if (session->tls) {
        begin_tls_close(session);
        return;
    }
    asio::error_code ignored;
    session->socket.shutdown(asio::socket_base::shutdown_send, ignored);
    if (session->peer_eof) {
        finalize(session);  // both directions are done: closing now sends no RST
        return;
    }
    arm_timer(session, timeouts_.close_linger);
    wait_readable(session);
}

void TcpServer::arm_timer(const SessionPtr& session, std::chrono::milliseconds timeout) {
    if (!session->timer) session->timer = std::make_unique<asio::steady_timer>(io_);
    const std::uint64_t generation = ++session->timer_generation;
    session->timer->expires_after(timeout);
    session->timer->async_wait([this, session, generation, timeout](const asio::error_code& error) {
        if (error || generation != session->timer_generation || session->state == Session::State::gone) return;
        if (session->state == Session::State::handshaking) {
            limits_log_.hit(LimitEvent::tls_handshake_failed, 1, "TLS handshake failed: connection ", session->id,
                            " from ", session->peer, ": not done within ", timeout.count(),
                            " ms (tls_handshake_timeout_ms)");
        } else {
            log_.debug("connection ", session->id, ": timed out while closing");
        }
        finalize(session);
    });
}

void TcpServer::finalize(SessionPtr session) {
    if (session->state == Session::State::gone) return;
    session->state = Session::State::gone;
    session->drop_in_flight(/*keep_capacity=*/false);
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
        if (entry.second->state == Session::State::open) open.push_back(entry.second);
        if (entry.second->state == Session::State::handshaking) handshaking.push_back(entry.second);
    }
    for (const SessionPtr& session : handshaking) finalize(session);
    for (const SessionPtr& session : open) {
        if (session->state == Session::State::open) begin_finishing(session, flush_timeout);
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
