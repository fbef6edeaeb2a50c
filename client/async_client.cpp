// async_client.cpp — memq::AsyncClient: ClientCore on the application's io_context, with callbacks.
//
// One read always in flight while connected, at most one write; each
// completion handler holds the shared State alive, so the AsyncClient may be
// destroyed while operations are still outstanding.
#include "async_client.hpp"

#include <deque>
#include <limits>
#include <utility>
#include <variant>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include "transport.hpp"

namespace memq {

namespace {
using tcp = asio::ip::tcp;
constexpr std::size_t kReadChunkBytes = 256 * 1024;

// async_write's own completion conditions cap each write at 64 KiB; this one
// lets the whole buffer go out in as few system calls as the socket allows.
struct WholeBuffer {
    std::size_t operator()(const std::error_code& error, std::size_t) const {
        return error ? 0 : std::numeric_limits<std::size_t>::max() / 2;
    }
};
}  // namespace

struct AsyncClient::State : std::enable_shared_from_this<State> {
    State(asio::io_context& io, ClientCoreOptions options, const TlsOptions& tls)
        : io_(io), transport_(io), resolver_(io), core_(options), read_buf_(std::make_unique<char[]>(kReadChunkBytes)) {
        transport_.configure(tls);
    }

    RequestId add(RequestId id, ReplyHandler handler) {
        handlers_.emplace_back(id, std::move(handler));
        start_write();
        return id;
    }

    void start_write() {
        if (!connected_ || write_in_flight_ || !core_.has_output()) return;
        core_.take_output(write_buf_);
        write_in_flight_ = true;
        transport_.async_write(asio::buffer(write_buf_), WholeBuffer{},
                          [self = shared_from_this(), generation = generation_](std::error_code error, std::size_t) {
                              if (generation != self->generation_) return;
                              self->write_in_flight_ = false;
                              if (error) {
                                  self->fail(error, "write failed");
                              } else {
                                  self->start_write();
                              }
                          });
    }

    void start_read() {
        transport_.async_read_some(asio::buffer(read_buf_.get(), kReadChunkBytes),
                                [self = shared_from_this(), generation = generation_](std::error_code error,
                                                                                      std::size_t bytes) {
                                    if (generation != self->generation_) return;
                                    if (bytes > 0) {
                                        self->core_.receive(std::string_view(self->read_buf_.get(), bytes));
                                        self->drain_events();
                                        if (generation != self->generation_) return;  // a handler closed us
                                        self->start_write();  // what the core wrote in reply (a resume's subscribes)
                                    }
                                    if (error) {
                                        self->fail(error, error == asio::error::eof
                                                              ? "connection closed by the broker"
                                                              : "read failed: " + self->transport_.describe(error));
                                    } else {
                                        self->start_read();
                                    }
                                });
    }

    ReplyHandler take_handler(RequestId id) {
        // Answers come in request order, so the owner is the oldest handler.
        if (handlers_.empty() || handlers_.front().first != id) return {};
        ReplyHandler handler = std::move(handlers_.front().second);
        handlers_.pop_front();
        return handler;
    }

    void drain_events() {
        while (auto event = core_.poll_event()) {
            if (auto* message = std::get_if<Message>(&*event)) {
                core_.mark_delivered(1);  // handed on at once: the core's inbox bound is never reached
                if (on_message_) on_message_(*message);
            } else if (auto* ack = std::get_if<Ack>(&*event)) {
                if (auto handler = take_handler(ack->request)) handler({}, Reply{true, {}, ack->raw});
            } else if (auto* failure = std::get_if<Failure>(&*event)) {
                if (auto handler = take_handler(failure->request)) {
                    handler({}, Reply{false, failure->reason, failure->raw});
                }
            } else if (auto* error = std::get_if<ProtocolError>(&*event)) {
                const auto code = std::make_error_code(std::errc::protocol_error);
                ReplyHandler handler = error->request ? take_handler(*error->request) : ReplyHandler{};
                if (handler) {
                    handler(code, Reply{false, error->description, error->raw});
                } else if (on_error_) {
                    on_error_(code, error->description);
                }
            } else if (auto* gap = std::get_if<Gap>(&*event)) {
                if (on_gap_) on_gap_(*gap);
            } else if (auto* reset = std::get_if<Reset>(&*event)) {
                if (on_reset_) on_reset_(*reset);
            }
        }
    }

    // Ends the connection; every handler still owed an answer gets `error`, posted.
    void shut(std::error_code error) {
        ++generation_;
        connected_ = false;
        write_in_flight_ = false;
        std::error_code ignored;
        transport_.close();
        resolver_.cancel();
        core_.reset();
        for (auto& [id, handler] : handlers_) {
            if (handler) asio::post(io_, [handler = std::move(handler), error] { handler(error, Reply{}); });
        }
        handlers_.clear();
    }

    void fail(std::error_code error, const std::string& what) {
        last_error_ = what;
        shut(error);
        if (on_error_) on_error_(error, what);
    }

    asio::io_context& io_;
    detail::Transport transport_;
    tcp::resolver resolver_;
    std::string last_error_;
    ClientCore core_;
    std::unique_ptr<char[]> read_buf_;
    std::string write_buf_;
    std::deque<std::pair<RequestId, ReplyHandler>> handlers_;
    MessageHandler on_message_;
    ErrorHandler on_error_;
    GapHandler on_gap_;
    ResetHandler on_reset_;
    std::uint64_t generation_ = 0;
    bool connected_ = false;
    bool write_in_flight_ = false;
};

AsyncClient::AsyncClient(asio::io_context& io, ClientCoreOptions options, TlsOptions tls)
    : state_(std::make_shared<State>(io, options, tls)) {}

AsyncClient::~AsyncClient() {
    state_->on_message_ = nullptr;
    state_->on_error_ = nullptr;
    state_->on_gap_ = nullptr;
    state_->on_reset_ = nullptr;
    state_->shut(asio::error::operation_aborted);
}

void AsyncClient::on_message(MessageHandler handler) { state_->on_message_ = std::move(handler); }
void AsyncClient::on_error(ErrorHandler handler) { state_->on_error_ = std::move(handler); }
void AsyncClient::on_gap(GapHandler handler) { state_->on_gap_ = std::move(handler); }
void AsyncClient::on_reset(ResetHandler handler) { state_->on_reset_ = std::move(handler); }

void AsyncClient::async_connect(std::string_view host, std::uint16_t port, ConnectHandler handler) {
    State& state = *state_;
    const std::uint64_t generation = state.generation_;
    state.resolver_.async_resolve(
        std::string(host), std::to_string(port), tcp::resolver::numeric_service,
        [self = state_, generation, host = std::string(host), handler = std::move(handler)](std::error_code error,
                                                                  tcp::resolver::results_type results) mutable {
            if (generation != self->generation_) error = asio::error::operation_aborted;
            if (error) {
                self->last_error_ = "cannot resolve the broker's address: " + error.message();
                self->shut(error);  // requests queued meanwhile fail with it
                handler(error);
                return;
            }
            asio::async_connect(
                self->transport_.socket(), results,
                [self, generation, host, handler = std::move(handler)](std::error_code error,
                                                                       const tcp::endpoint&) mutable {
                    if (generation != self->generation_) error = asio::error::operation_aborted;
                    if (error) {
                        self->last_error_ = "cannot connect: " + error.message();
                        self->shut(error);
                        handler(error);
                        return;
                    }
                    self->transport_.async_handshake(
                        host, [self, generation, handler = std::move(handler)](std::error_code handshake_error) {
                            if (generation != self->generation_) handshake_error = asio::error::operation_aborted;
                            if (handshake_error) {
                                self->last_error_ = self->transport_.describe(handshake_error);
                                self->shut(handshake_error);
                            } else {
                                std::error_code ignored;
                                self->transport_.socket().set_option(tcp::no_delay(true), ignored);
                                self->connected_ = true;
                                self->core_.start_session();  // hello goes first
                                self->start_read();
                                self->start_write();
                            }
                            handler(handshake_error);
                        });
                });
        });
}

void AsyncClient::async_subscribe(std::string_view topic, std::optional<std::int64_t> last_seen,
                                  std::optional<bool> cache, ReplyHandler handler) {
    state_->add(state_->core_.subscribe(topic, last_seen, cache), std::move(handler));
}

void AsyncClient::async_unsubscribe(std::string_view topic, ReplyHandler handler) {
    state_->add(state_->core_.unsubscribe(topic), std::move(handler));
}

void AsyncClient::async_send(std::string_view topic, std::string_view msg, Delivery delivery,
                             std::optional<bool> cache, ReplyHandler handler) {
    state_->add(state_->core_.send(topic, msg, delivery, cache), std::move(handler));
}

void AsyncClient::close() { state_->shut(asio::error::operation_aborted); }

bool AsyncClient::connected() const { return state_->connected_; }

std::optional<std::string> AsyncClient::broker_incarnation() const { return state_->core_.broker_incarnation(); }

const std::string& AsyncClient::last_error() const { return state_->last_error_; }

}  // namespace memq
