// async_client.hpp — memq::AsyncClient: the client for applications that run their own io_context.
//
// Callbacks, no blocking: every async_* call returns at once and its handler
// runs later on the io_context, exactly once. Replies come in request order,
// so handlers run in the order their requests were made. Delivered messages go
// to the on_message handler as each is decoded; nothing queues them, so there
// is no inbox to bound (a handler that cannot keep up should stop the reads by
// not running the io_context, or hand messages to a bounded queue of its
// own); a lost connection (or a protocol violation that
// no request owns) goes to the on_error handler. No reconnect of its own (the
// blocking memq::Client has that), but every connection starts with a hello
// (ClientCore::start_session()), so calling async_connect again after a loss
// resumes the subscriptions the way memq::Client does; its Gap and Reset
// events go to the on_gap and on_reset handlers (with ClientCoreOptions::
// drop_duplicates set, as a resuming client wants).
//
// Threads: not thread-safe. Make every call, and run the io_context, from one
// thread (or from one strand). Handlers must not throw.
//
// Lifetime: destroying the AsyncClient closes the connection; handlers still
// owed an answer then get asio::error::operation_aborted (posted, never run
// inside the destructor).
//
// TLS: with TlsOptions::tls, async_connect's handler runs once the TLS
// handshake is done (a certificate problem is its error; last_error() says
// which, in words). Under TLS 1.3 the broker judges our certificate after
// the handshake: a refusal ends the connection soon after, through on_error
// (with the cause as `what`) and the requests then waiting.
//
// C++20 coroutines: wrap a call in a small awaitable of your own, e.g. with
// asio::async_initiate, resuming from the handler.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <asio/io_context.hpp>

#include "client.hpp"
#include "client_core.hpp"

namespace memq {

class AsyncClient {
public:
    using ConnectHandler = std::function<void(std::error_code)>;
    // error set: the connection was lost (or closed) first, or the broker's
    // answer broke the protocol (std::errc::protocol_error); otherwise `reply`
    // is the broker's answer.
    using ReplyHandler = std::function<void(std::error_code error, const Reply& reply)>;
    using MessageHandler = std::function<void(const Message&)>;
    using ErrorHandler = std::function<void(std::error_code error, std::string_view what)>;
    using GapHandler = std::function<void(const Gap&)>;
    using ResetHandler = std::function<void(const Reset&)>;

    // Throws TlsError when a file of `tls` cannot be loaded.
    explicit AsyncClient(asio::io_context& io, ClientCoreOptions options = {}, TlsOptions tls = {});
    ~AsyncClient();
    AsyncClient(const AsyncClient&) = delete;
    AsyncClient& operator=(const AsyncClient&) = delete;

    void on_message(MessageHandler handler);
    void on_error(ErrorHandler handler);
    void on_gap(GapHandler handler);
    void on_reset(ResetHandler handler);

    void async_connect(std::string_view host, std::uint16_t port, ConnectHandler handler);
    // Requests made before the connect completes wait in the output buffer.
    void async_subscribe(std::string_view topic, std::optional<std::int64_t> last_seen,
                         std::optional<bool> cache, ReplyHandler handler);
    void async_unsubscribe(std::string_view topic, ReplyHandler handler);
    void async_send(std::string_view topic, std::string_view msg, Delivery delivery, std::optional<bool> cache,
                    ReplyHandler handler);
    void close();
    bool connected() const;
    // The incarnation from the broker's last hello answer; empty before it,
    // and for a broker without identities (an aiomemq server).
    std::optional<std::string> broker_incarnation() const;
    // The last failure (connect, TLS, a lost connection) in words, naming the
    // cause; empty before any.
    const std::string& last_error() const;

private:
    struct State;
    std::shared_ptr<State> state_;
};

}  // namespace memq
