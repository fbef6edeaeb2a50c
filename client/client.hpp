// client.hpp — memq::Client, the blocking client: one connection to one broker.
//
// Every call that waits takes a timeout and throws memq::Timeout when it
// passes; a refused request throws memq::BrokerError (with the broker's
// reason); a missing or lost connection throws memq::ConnectionError; a broker
// that breaks the protocol throws memq::ProtocolViolation. All derive from
// memq::Error. Messages that arrive while a call waits for something else go
// to the inbox and come out of receive(), in order; none is dropped except,
// when resuming (see ClientOptions::reconnect), duplicates and what a Reset
// says is taken again from the new broker's cache.
//
// The inbox is bounded (ClientOptions::max_inbox_messages, default 65536):
// once it holds that many messages the client reads nothing more from the
// socket, so the broker queues for it instead (and past its
// --max-pending-bytes closes it as a slow consumer; with reconnect the client
// resumes with last_seen and reports a Gap for what the broker's cache no
// longer has). While the inbox is full, a call that would wait for what only
// reading further brings (a request's reply, publish()'s acks and window,
// flush(), next_reply(), broker_incarnation()) throws memq::InboxFull at once
// instead of waiting for its timeout: a request not yet sent is not sent, one
// already sent is forgotten as a timed-out one is (its reply, read later, is
// ignored). receive() always works, and reading resumes as soon as the inbox
// is below the bound.
//
// Threads: no call is thread-safe. Use one Client from one thread at a time
// (it may move between threads between calls). IO happens only inside calls:
// between calls nothing is read, so an idle subscriber lets the broker's
// queue for it grow (and the broker closes it past its pending-bytes limit).
// A moved-from Client may only be assigned to or destroyed.
//
// Resume: with ClientOptions::reconnect, a lost connection is re-opened
// (inside whichever call notices, with exponential backoff and jitter). Every
// connection starts with a hello (the memq extension), and once it is
// answered every topic is re-subscribed (ClientCore::start_session()): with
// last_seen = the last index received on it when the broker is the same
// incarnation as before; duplicates are dropped by index, and when the first
// message after a resume is not last_seen + 1 the client records a Gap
// (take_gaps(), gap_count(), ClientOptions::on_gap) instead of hiding it.
// When the broker lost its state (a new memqd incarnation, or, from a server
// without identities, a first index at or below last_seen) the client records
// a Reset (take_resets(), reset_count(), ClientOptions::on_reset) and takes the
// topic again from the start of the new broker's cache (client/README.md,
// "Resume", has the exact guarantees). Requests that were in flight when the
// connection broke are not re-sent: a waiting call throws ConnectionError and
// flush() reports the publishes lost.
//
// The implementation is standalone Asio over a private io_context; this
// header does not include Asio (see async_client.hpp for the form that runs
// on an application's own io_context).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client_core.hpp"
#include "errors.hpp"

namespace memq {

// TLS for a connection, for Client (ClientOptions) and AsyncClient alike.
// Files are PEM. A file that cannot be loaded makes connect() (Client) or the
// constructor (AsyncClient) throw TlsError.
struct TlsOptions {
    bool tls = false;             // speak TLS (to memqd's --tls-port)
    std::string tls_ca_file;      // verify the broker against this CA; empty: the system's store
    std::string tls_cert_file;    // our certificate, for a broker that asks for one (mutual TLS) ...
    std::string tls_key_file;     // ... and its private key; both or neither
    std::string tls_server_name;  // the name the broker's certificate must carry, sent as SNI; empty: the host
};

struct ClientOptions : TlsOptions {
    // Re-open a lost connection and resume every subscription (see above).
    bool reconnect = false;
    // Delay before reconnect attempt k (k = 0, 1, ...): a uniform draw in
    // [d/2, d] with d = min(backoff_max, backoff_min * 2^k).
    std::chrono::milliseconds backoff_min{20};
    std::chrono::milliseconds backoff_max{2000};
    std::uint64_t jitter_seed = 0x6d656d71;  // the same seed gives the same delays
    // Limit on each reconnect attempt (the first connect takes its own timeout).
    std::chrono::milliseconds connect_timeout{5000};
    // How long publish() may block, for room in the output buffer or for a reconnect.
    std::chrono::milliseconds publish_timeout{30000};
    // publish() blocks while this many publishes are unanswered: a bound on
    // what the broker must queue for us (acks are ~19 bytes each), so that a
    // fast publisher is not closed as a slow consumer of its own acks.
    std::size_t publish_window = 256 * 1024;
    // publish() starts a write once this much output is buffered ...
    std::size_t write_batch_bytes = 256 * 1024;
    // ... and blocks while more than this is buffered and not yet written.
    std::size_t output_bytes_max = 8 * 1024 * 1024;
    // Bytes asked of the socket per read.
    std::size_t read_chunk_bytes = 256 * 1024;
    // Longest line accepted from the broker.
    std::size_t line_bytes_max = 64 * 1024 * 1024;
    // The inbox bound, in messages (see above; the reasons for the default
    // are at ClientCoreOptions::max_inbox_messages). 0 is taken as 1.
    std::size_t max_inbox_messages = 65536;
    // Called (from inside whichever call receives it) for each gap; must not
    // throw. Gaps are also kept for take_gaps() either way.
    std::function<void(const Gap&)> on_gap;
    // Likewise for each Reset (the broker lost the state a topic resumed from).
    std::function<void(const Reset&)> on_reset;
};

// The broker's answer to a raw line: {"success": true} or {"success": false, "reason": ...}.
struct Reply {
    bool success = false;
    std::string reason;
    // The reply line as received (without its line ending) when it is not
    // exactly {"success": true}: a failure, or a success with more keys (hello).
    std::string raw;
};

class Client {
public:
    using Duration = std::chrono::milliseconds;
    static constexpr Duration default_timeout{10000};

    explicit Client(ClientOptions options = {});
    ~Client();
    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Connects (once; reconnects are automatic with ClientOptions::reconnect).
    // Throws ConnectionError when refused or unresolvable, Timeout when slow.
    // The connection's first line is a hello; nothing waits for its answer
    // (see broker_incarnation()), except over TLS: there connect() returns
    // once the hello is answered, because under TLS 1.3 the broker's verdict
    // on our certificate comes after the handshake, and a refusal should be
    // connect()'s TlsError, naming the cause, not a later call's.
    void connect(std::string_view host, std::uint16_t port, Duration timeout = default_timeout);
    // Drops the connection and every outstanding request; no reconnect follows.
    // Buffered publishes that were not flushed are lost: flush() first.
    void close();
    bool connected() const;

    // Each waits for its reply (writing any buffered publishes first).
    void subscribe(std::string_view topic, std::optional<std::int64_t> last_seen = std::nullopt,
                   std::optional<bool> cache = std::nullopt, Duration timeout = default_timeout);
    void unsubscribe(std::string_view topic, Duration timeout = default_timeout);
    void send(std::string_view topic, std::string_view msg, Delivery delivery = Delivery::all,
              std::optional<bool> cache = std::nullopt, Duration timeout = default_timeout);

    // Pipelined send: buffered, written in batches, never waits for its reply.
    // Blocks (up to ClientOptions::publish_timeout, then throws Timeout) only
    // when the output buffer is full, the publish window is full, or a
    // reconnect is under way.
    void publish(std::string_view topic, std::string_view msg, Delivery delivery = Delivery::all,
                 std::optional<bool> cache = std::nullopt);
    // Writes everything buffered and waits until every request sent so far is
    // answered. Throws BrokerError with the first refused publish's reason
    // (since the last flush), ConnectionError if publishes were lost with a
    // connection; either way the tally starts afresh.
    void flush(Duration timeout = default_timeout);
    // Publishes written or buffered and not answered yet.
    std::size_t unacknowledged() const;

    // The next message, or std::nullopt when none arrives within `timeout`
    // (zero: only what has already arrived). Throws ConnectionError once the
    // inbox is empty and the connection is gone for good. Taking a message
    // from a full inbox lets the client read again.
    std::optional<Message> receive(Duration timeout);
    std::size_t inbox_size() const;

    // For tests of bad input: `bytes` go out as they are (add the '\n').
    // With expect_reply, next_reply() returns the broker's answer. The broker
    // answers every non-empty line except "quit" and never an empty one.
    void send_raw(std::string_view bytes, bool expect_reply = true);
    Reply next_reply(Duration timeout = default_timeout);

    // Resume bookkeeping.
    std::vector<Gap> take_gaps();
    std::uint64_t gap_count() const;
    std::vector<Reset> take_resets();
    std::uint64_t reset_count() const;
    std::uint64_t reconnect_count() const;
    // The incarnation the broker of the current connection gave in answer to
    // its hello (waiting for that answer if it is still due); empty for a
    // broker without identities (an aiomemq server). Throws like a request.
    std::optional<std::string> broker_incarnation(Duration timeout = default_timeout);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace memq
