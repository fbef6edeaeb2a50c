// client.cpp — memq::Client: ClientCore driven over a socket by a private io_context.
//
// Every blocking call is the same loop (Impl::wait_until): start whatever IO
// is due, run one completion handler, check the call's condition, until the
// deadline. Handlers only move bytes between the socket and the core and sort
// the core's events; they never throw. Each connection attempt gets a new
// generation number, and a handler from an older generation does nothing, so
// a closed socket's late completions cannot touch the next connection.
#include "client.hpp"

#include <algorithm>
#include <limits>
#include <deque>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <variant>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "check.hpp"
#include "prng.hpp"
#include "transport.hpp"

namespace memq {
namespace {

using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;
using detail::Transport;

template <typename... Fs>
struct Overloaded : Fs... {
    using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

// What became of one request.
struct Outcome {
    enum class Kind : std::uint8_t { ack, failure, violation, lost };
    Kind kind = Kind::ack;
    std::string text;  // failure: the reason; violation, lost: a description
    std::string raw;   // ack, failure: the reply line, when not the plain ack
};

// async_write's own completion conditions cap each write at 64 KiB; this one
// lets a whole batch go out in as few system calls as the socket allows.
struct WholeBuffer {
    std::size_t operator()(const std::error_code& error, std::size_t) const {
        return error ? 0 : std::numeric_limits<std::size_t>::max() / 2;
    }
};

[[noreturn]] void throw_outcome(const Outcome& outcome) {
    switch (outcome.kind) {
        case Outcome::Kind::failure: throw BrokerError(outcome.text);
        case Outcome::Kind::violation: throw ProtocolViolation(outcome.text);
        case Outcome::Kind::lost: throw ConnectionError(outcome.text);
        case Outcome::Kind::ack: break;
    }
    throw Error("internal: throw_outcome called for an ack");
}

}  // namespace

struct Client::Impl {
    enum class State : std::uint8_t { disconnected, connecting, connected, backing_off };

    explicit Impl(ClientOptions options)
        : options_(std::move(options)),
          core_(core_options()),
          read_buf_(new char[std::max<std::size_t>(options_.read_chunk_bytes, 4096)]),  // not zero-filled: untouched pages cost nothing
          read_buf_size_(std::max<std::size_t>(options_.read_chunk_bytes, 4096)),
          prng_(options_.jitter_seed) {}

    ClientCoreOptions core_options() const {
        return ClientCoreOptions{options_.line_bytes_max, /*drop_duplicates=*/options_.reconnect,
                                 options_.max_inbox_messages};
    }

    std::string where() const { return host_ + ":" + std::to_string(port_); }

    // ---------------------------------------------------------------- waiting

    bool busy() const {
        return state_ == State::connecting || state_ == State::backing_off || read_in_flight_ || write_in_flight_;
    }

    // Runs IO until done() or the deadline; returns done(). Returns early, with
    // done() false, when nothing is left that could make it true.
    template <typename Done>
    bool wait_until(Done done, Clock::time_point deadline) {
        for (;;) {
            if (done()) return true;
            start_io();
            if (!busy()) return done();
            if (io_.stopped()) io_.restart();
            if (Clock::now() >= deadline) {
                io_.poll();  // whatever is ready already still counts
                return done();
            }
            io_.run_one_until(deadline);
        }
    }

    void poll_io() {
        start_io();
        if (io_.stopped()) io_.restart();
        io_.poll();
    }

    // --------------------------------------------------------------------- IO

    void start_io() {
        if (state_ != State::connected) return;
        if (!read_in_flight_ && !core_.inbox_full()) start_read();  // a full inbox: backpressure
        if (!write_in_flight_ && core_.has_output()) start_write();
    }

    void start_read() {
        MEMQ_CHECK(state_ == State::connected && !read_in_flight_);
        read_in_flight_ = true;
        transport_.async_read_some(asio::buffer(read_buf_.get(), read_buf_size_),
                                [this, generation = generation_](std::error_code error, std::size_t bytes) {
                                    if (generation != generation_) return;
                                    read_in_flight_ = false;
                                    if (bytes > 0) {
                                        core_.receive(std::string_view(read_buf_.get(), bytes));
                                        drain_events();
                                    }
                                    if (error) {
                                        lose_connection(error);
                                    } else if (core_.input_spent()) {  // the stream cannot be followed any more
                                        lose_connection(std::make_error_code(std::errc::message_size));
                                    }
                                });
    }

    void start_write() {
        MEMQ_CHECK(state_ == State::connected && !write_in_flight_);
        core_.take_output(write_buf_);
        poll_threshold_bytes_ = options_.write_batch_bytes;
        write_in_flight_ = true;
        transport_.async_write(asio::buffer(write_buf_), WholeBuffer{},
                          [this, generation = generation_](std::error_code error, std::size_t) {
                              if (generation != generation_) return;
                              write_in_flight_ = false;
                              if (error) {
                                  lose_connection(error);
                              } else if (core_.has_output()) {
                                  start_write();
                              }
                          });
    }

    // ----------------------------------------------------------------- events

    void drain_events() {
        while (auto event = core_.poll_event()) {
            std::visit(Overloaded{
                           [this](Ack& ack) {
                               settle(ack.request, ack.kind, Outcome{Outcome::Kind::ack, {}, std::move(ack.raw)});
                           },
                           [this](Failure& failure) {
                               settle(failure.request, failure.kind,
                                      Outcome{Outcome::Kind::failure, std::move(failure.reason),
                                              std::move(failure.raw)});
                           },
                           [this](Message& message) { inbox_.push_back(std::move(message)); },
                           [this](ProtocolError& error) {
                               std::string text = "protocol violation from " + where() + ": " + error.description;
                               if (!error.raw.empty()) text += ": " + error.raw;
                               if (error.request) {
                                   settle(*error.request, *error.kind,
                                          Outcome{Outcome::Kind::violation, std::move(text), {}});
                               } else {
                                   deferred_.push_back(Outcome{Outcome::Kind::violation, std::move(text), {}});
                               }
                           },
                           [this](Gap& gap) {
                               ++gap_count_;
                               if (options_.on_gap) options_.on_gap(gap);
                               gaps_.push_back(std::move(gap));
                           },
                           [this](Reset& reset) {
                               ++reset_count_;
                               if (options_.on_reset) options_.on_reset(reset);
                               resets_.push_back(std::move(reset));
                           },
                       },
                       *event);
        }
    }

    // Routes the answer to `id` to whoever is owed it.
    void settle(RequestId id, RequestKind kind, Outcome outcome) {
        if (awaited_ && *awaited_ == id) {
            awaited_outcome_ = std::move(outcome);
            return;
        }
        if (!abandoned_.empty() && abandoned_.erase(id) > 0) return;  // its caller timed out
        switch (kind) {
            case RequestKind::send:  // not awaited: a publish
                MEMQ_CHECK(publishes_outstanding_ > 0);
                --publishes_outstanding_;
                if (outcome.kind == Outcome::Kind::lost) {
                    ++publishes_lost_;
                } else if (outcome.kind != Outcome::Kind::ack && !first_publish_problem_) {
                    first_publish_problem_ = std::move(outcome);
                }
                return;
            case RequestKind::raw: replies_.push_back(std::move(outcome)); return;
            case RequestKind::hello:  // the core's own; only a broken answer reaches here
            case RequestKind::holes:
            case RequestKind::resubscribe:
                if (outcome.kind == Outcome::Kind::failure || outcome.kind == Outcome::Kind::violation) {
                    deferred_.push_back(std::move(outcome));
                }
                return;
            case RequestKind::subscribe:
            case RequestKind::unsubscribe: return;  // always awaited or abandoned
        }
    }

    // ------------------------------------------------------------- connection

    void begin_connect(Clock::time_point deadline, bool resuming) {
        const std::uint64_t generation = ++generation_;
        state_ = State::connecting;
        attempt_timed_out_ = false;
        timer_.expires_at(deadline);
        timer_.async_wait([this, generation](std::error_code error) {
            if (error || generation != generation_) return;
            attempt_timed_out_ = true;
            resolver_.cancel();
            std::error_code ignored;
            socket_.close(ignored);  // the pending resolve or connect completes as aborted
        });
        auto on_connect = [this, generation, resuming](std::error_code error) {
            if (generation != generation_) return;
            if (error) {
                connect_failed(error, resuming);
                return;
            }
            transport_.async_handshake(host_, [this, generation, resuming](std::error_code handshake_error) {
                if (generation != generation_) return;
                if (handshake_error) {
                    connect_failed(handshake_error, resuming);
                } else {
                    connected(resuming);
                }
            });
        };
        std::error_code not_numeric;
        const asio::ip::address address = asio::ip::make_address(host_, not_numeric);
        if (!not_numeric) {
            // A numeric address needs no resolver (whose async form costs a thread).
            socket_.async_connect(tcp::endpoint(address, port_), std::move(on_connect));
            return;
        }
        resolver_.async_resolve(
            host_, std::to_string(port_), tcp::resolver::numeric_service,
            [this, generation, resuming, on_connect](std::error_code error, tcp::resolver::results_type results) {
                if (generation != generation_) return;
                if (error) {
                    connect_failed(error, resuming);
                    return;
                }
                asio::async_connect(socket_, results,
                                    [on_connect](std::error_code error, const tcp::endpoint&) { on_connect(error); });
            });
    }

    void connected(bool resuming) {
        timer_.cancel();
        state_ = State::connected;
        reconnect_attempt_ = 0;
        std::error_code ignored;
        socket_.set_option(tcp::no_delay(true), ignored);
        core_.start_session();  // hello first; the core resumes the subscriptions once it is answered
        if (resuming) ++reconnects_;
        start_io();
    }

    void connect_failed(std::error_code error, bool resuming) {
        ++generation_;
        timer_.cancel();
        std::error_code ignored;
        socket_.close(ignored);
        last_connect_error_ = attempt_timed_out_ ? "timed out" : transport_.describe(error);
        last_failure_was_tls_ = !attempt_timed_out_ && Transport::is_tls_error(error);
        if (resuming) {
            schedule_reconnect();
        } else {
            state_ = State::disconnected;
            disconnect_reason_ = "cannot connect to " + where() + ": " + last_connect_error_;
        }
    }

    void schedule_reconnect() {
        state_ = State::backing_off;
        timer_.expires_after(backoff_delay(reconnect_attempt_++));
        timer_.async_wait([this, generation = generation_](std::error_code error) {
            if (error || generation != generation_) return;
            begin_connect(Clock::now() + options_.connect_timeout, /*resuming=*/true);
        });
    }

    std::chrono::microseconds backoff_delay(unsigned attempt) {
        const auto floor = std::chrono::duration_cast<std::chrono::microseconds>(options_.backoff_min);
        const auto ceiling =
            std::max(floor, std::chrono::duration_cast<std::chrono::microseconds>(options_.backoff_max));
        auto delay = floor;
        for (unsigned i = 0; i < attempt && delay < ceiling; ++i) delay *= 2;
        delay = std::min(delay, ceiling);
        const auto half = static_cast<std::uint64_t>(delay.count() / 2);
        return std::chrono::microseconds(static_cast<std::int64_t>(half + prng_.below(half + 1)));
    }

    // Ends the current connection; every request in flight is lost.
    void drop_connection(const std::string& why) {
        ++generation_;
        std::error_code ignored;
        socket_.close(ignored);
        resolver_.cancel();
        timer_.cancel();
        read_in_flight_ = false;
        write_in_flight_ = false;
        for (const auto& [id, kind] : core_.reset()) settle(id, kind, Outcome{Outcome::Kind::lost, why, {}});
        state_ = State::disconnected;
        disconnect_reason_ = why;
    }

    void lose_connection(std::error_code error) {
        const std::string why = error == asio::error::eof ? "connection closed by the broker at " + where()
                                                           : "connection to " + where() + " lost: " + transport_.describe(error);
        last_failure_was_tls_ = Transport::is_tls_error(error);
        drop_connection(why);
        if (options_.reconnect && !closed_by_user_) schedule_reconnect();
    }

    // ---------------------------------------------------------- call helpers

    void throw_deferred() {
        if (deferred_.empty()) return;
        Outcome outcome = std::move(deferred_.front());
        deferred_.pop_front();
        throw_outcome(outcome);
    }

    // The inbox is full and `what` needs what only reading further brings.
    void throw_if_inbox_full(const std::string& what) const {
        if (!core_.inbox_full()) return;
        throw InboxFull(what + ": the inbox holds " + std::to_string(core_.undelivered_messages()) +
                        " undelivered messages (max_inbox_messages=" + std::to_string(options_.max_inbox_messages) +
                        "), so nothing more is read from " + where() + "; drain it with receive()");
    }

    void ensure_connected(Clock::time_point deadline) {
        if (state_ == State::connected) return;
        if (state_ == State::disconnected) throw ConnectionError(disconnect_reason_);
        const bool settled = wait_until(
            [this] { return state_ == State::connected || state_ == State::disconnected; }, deadline);
        if (!settled) throw Timeout("no connection to " + where() + " within the timeout (reconnecting)");
        if (state_ != State::connected) throw ConnectionError(disconnect_reason_);
    }

    // Issues one request with `make` and waits for its answer.
    template <typename Make>
    void request(Make make, Duration timeout, const char* what) {
        const auto deadline = Clock::now() + timeout;
        throw_deferred();
        throw_if_inbox_full(what);  // not sent
        ensure_connected(deadline);
        const RequestId id = make();
        awaited_ = id;
        awaited_outcome_.reset();
        const bool answered =
            wait_until([this] { return awaited_outcome_.has_value() || core_.inbox_full(); }, deadline) &&
            awaited_outcome_.has_value();
        awaited_.reset();
        if (!answered) {
            abandoned_.insert(id);
            if (state_ == State::disconnected) throw ConnectionError(disconnect_reason_);
            throw_if_inbox_full(what);  // sent: forgotten as a timed-out request is
            throw Timeout(std::string(what) + ": no reply from " + where() + " within the timeout");
        }
        const Outcome outcome = std::move(*awaited_outcome_);
        awaited_outcome_.reset();
        if (outcome.kind != Outcome::Kind::ack) throw_outcome(outcome);
    }

    ClientOptions options_;
    asio::io_context io_{1};  // declared first: destroyed last, after everything using it
    Transport transport_{io_};
    tcp::socket& socket_ = transport_.socket();
    tcp::resolver resolver_{io_};
    asio::steady_timer timer_{io_};  // connect deadline, then reconnect backoff
    ClientCore core_;

    std::string host_;
    std::uint16_t port_ = 0;
    State state_ = State::disconnected;
    std::uint64_t generation_ = 0;
    bool read_in_flight_ = false;
    bool write_in_flight_ = false;
    bool closed_by_user_ = false;
    bool attempt_timed_out_ = false;
    bool last_failure_was_tls_ = false;  // the last connect failure or loss was TLS's
    std::string disconnect_reason_ = "not connected";
    std::string last_connect_error_;

    std::unique_ptr<char[]> read_buf_;
    std::size_t read_buf_size_;
    std::string write_buf_;
    std::size_t poll_threshold_bytes_ = options_.write_batch_bytes;  // publish() polls IO past this

    std::optional<RequestId> awaited_;  // the one request a blocking call waits for
    std::optional<Outcome> awaited_outcome_;
    std::unordered_set<RequestId> abandoned_;  // requests whose caller timed out
    std::deque<Message> inbox_;
    std::deque<Outcome> replies_;   // answers to raw lines
    std::deque<Outcome> deferred_;  // errors nobody waited for, thrown by the next call
    std::size_t publishes_outstanding_ = 0;
    std::size_t publishes_lost_ = 0;
    std::optional<Outcome> first_publish_problem_;

    std::vector<Gap> gaps_;
    std::uint64_t gap_count_ = 0;
    std::vector<Reset> resets_;
    std::uint64_t reset_count_ = 0;
    std::uint64_t reconnects_ = 0;
    unsigned reconnect_attempt_ = 0;
    Prng prng_;
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

void Client::connect(std::string_view host, std::uint16_t port, Duration timeout) {
    Impl& impl = *impl_;
    if (impl.state_ != Impl::State::disconnected) throw Error("connect: already connected to " + impl.where());
    impl.host_ = std::string(host);
    impl.port_ = port;
    impl.closed_by_user_ = false;
    impl.core_ = ClientCore(impl.core_options());  // a fresh session: nothing to resume
    impl.core_.count_undelivered(impl.inbox_.size());  // but the inbox kept what it had
    impl.abandoned_.clear();
    impl.replies_.clear();
    impl.reconnect_attempt_ = 0;
    impl.transport_.configure(impl.options_);  // throws TlsError for a file it cannot load
    impl.last_failure_was_tls_ = false;
    const auto deadline = Clock::now() + timeout;
    impl.begin_connect(deadline, /*resuming=*/false);
    // The attempt's own timer ends it at the deadline; the margin only guards the loop.
    impl.wait_until([&impl] { return impl.state_ != Impl::State::connecting; }, deadline + std::chrono::seconds(1));
    if (impl.state_ == Impl::State::connected && impl.transport_.tls()) {
        // See connect() in client.hpp: a refused client certificate shows when the hello is answered.
        const bool answered = impl.wait_until(
            [&impl] {
                return impl.state_ != Impl::State::connected || !impl.core_.hello_pending() || impl.core_.inbox_full();
            },
            deadline) && !impl.core_.hello_pending();
        if (impl.state_ != Impl::State::connected) {
            const std::string why = impl.disconnect_reason_;
            const bool tls_failure = impl.last_failure_was_tls_;
            impl.drop_connection(why);  // a first connect that failed is not retried
            if (tls_failure) throw TlsError(why);
            throw ConnectionError(why);
        }
        if (!answered) {
            impl.drop_connection("connect abandoned");
            impl.throw_if_inbox_full("connect");
            throw Timeout("cannot connect to " + impl.where() + ": no answer over TLS within the timeout");
        }
    }
    if (impl.state_ == Impl::State::connected) return;
    if (impl.state_ == Impl::State::connecting) impl.drop_connection("connect abandoned");
    if (impl.attempt_timed_out_) throw Timeout("cannot connect to " + impl.where() + ": timed out");
    if (impl.last_failure_was_tls_) throw TlsError(impl.disconnect_reason_);
    throw ConnectionError(impl.disconnect_reason_);
}

void Client::close() {
    impl_->closed_by_user_ = true;
    impl_->drop_connection("connection closed by the client");
}

bool Client::connected() const { return impl_->state_ == Impl::State::connected; }

void Client::subscribe(std::string_view topic, std::optional<std::int64_t> last_seen, std::optional<bool> cache,
                       Duration timeout) {
    impl_->request([&] { return impl_->core_.subscribe(topic, last_seen, cache); }, timeout, "subscribe");
}

void Client::unsubscribe(std::string_view topic, Duration timeout) {
    impl_->request([&] { return impl_->core_.unsubscribe(topic); }, timeout, "unsubscribe");
}

void Client::send(std::string_view topic, std::string_view msg, Delivery delivery, std::optional<bool> cache,
                  Duration timeout) {
    impl_->request([&] { return impl_->core_.send(topic, msg, delivery, cache); }, timeout, "send");
}

void Client::publish(std::string_view topic, std::string_view msg, Delivery delivery, std::optional<bool> cache) {
    Impl& impl = *impl_;
    impl.throw_if_inbox_full("publish");  // its ack could not be read
    if (impl.state_ != Impl::State::connected) impl.ensure_connected(Clock::now() + impl.options_.publish_timeout);
    if (impl.publishes_outstanding_ >= impl.options_.publish_window) {
        const bool room = impl.wait_until(
            [&impl] {
                return impl.publishes_outstanding_ < impl.options_.publish_window ||
                       impl.state_ != Impl::State::connected || impl.core_.inbox_full();
            },
            Clock::now() + impl.options_.publish_timeout);
        impl.throw_if_inbox_full("publish");
        if (!room) throw Timeout("publish: " + std::to_string(impl.publishes_outstanding_) + " publishes to " +
                                 impl.where() + " stayed unanswered");
        if (impl.state_ != Impl::State::connected) {
            impl.ensure_connected(Clock::now() + impl.options_.publish_timeout);
        }
    }
    impl.core_.send(topic, msg, delivery, cache);
    ++impl.publishes_outstanding_;
    if (impl.core_.output_bytes() < impl.poll_threshold_bytes_) return;
    // Once per batch of new output: start a write if none is in flight, and
    // read the acks so far (a syscall or two, so not on every publish).
    impl.poll_io();
    if (impl.core_.output_bytes() >= impl.poll_threshold_bytes_) {
        impl.poll_threshold_bytes_ = impl.core_.output_bytes() + impl.options_.write_batch_bytes;
    }
    if (impl.core_.output_bytes() < impl.options_.output_bytes_max) return;
    const bool room = impl.wait_until(
        [&impl] {
            return impl.core_.output_bytes() < impl.options_.output_bytes_max || impl.state_ != Impl::State::connected;
        },
        Clock::now() + impl.options_.publish_timeout);
    if (!room) throw Timeout("publish: the output buffer to " + impl.where() + " stayed full");
}

void Client::flush(Duration timeout) {
    Impl& impl = *impl_;
    const auto deadline = Clock::now() + timeout;
    impl.throw_deferred();
    const bool done = impl.wait_until(
        [&impl] {
            return impl.state_ != Impl::State::connected ||
                   (impl.core_.pending_requests() == 0 && !impl.core_.has_output() && !impl.write_in_flight_) ||
                   (impl.core_.pending_requests() != 0 && impl.core_.inbox_full());
        },
        deadline);
    if (impl.state_ == Impl::State::connected && impl.core_.pending_requests() != 0) {
        impl.throw_if_inbox_full("flush");  // the replies owed cannot be read
    }
    if (!done) {
        throw Timeout("flush: " + std::to_string(impl.core_.pending_requests()) + " requests to " + impl.where() +
                      " unanswered at the timeout");
    }
    if (impl.publishes_lost_ > 0) {
        const std::size_t lost = impl.publishes_lost_;
        impl.publishes_lost_ = 0;
        impl.first_publish_problem_.reset();
        throw ConnectionError(std::to_string(lost) + " publishes were lost with the connection: " +
                              impl.disconnect_reason_);
    }
    if (impl.first_publish_problem_) {
        const Outcome problem = std::move(*impl.first_publish_problem_);
        impl.first_publish_problem_.reset();
        throw_outcome(problem);
    }
}

std::size_t Client::unacknowledged() const { return impl_->publishes_outstanding_; }

std::optional<Message> Client::receive(Duration timeout) {
    Impl& impl = *impl_;
    const auto pop = [&impl] {
        Message message = std::move(impl.inbox_.front());
        impl.inbox_.pop_front();
        impl.core_.mark_delivered(1);  // with the inbox full, this decodes input held until now
        impl.drain_events();
        return message;
    };
    if (!impl.inbox_.empty()) return pop();
    impl.throw_deferred();
    const auto deadline = Clock::now() + timeout;
    impl.wait_until([&impl] { return !impl.inbox_.empty() || impl.state_ == Impl::State::disconnected; }, deadline);
    if (!impl.inbox_.empty()) return pop();
    if (impl.state_ == Impl::State::disconnected) throw ConnectionError(impl.disconnect_reason_);
    return std::nullopt;
}

std::size_t Client::inbox_size() const { return impl_->inbox_.size(); }

void Client::send_raw(std::string_view bytes, bool expect_reply) {
    Impl& impl = *impl_;
    impl.ensure_connected(Clock::now() + impl.options_.publish_timeout);
    impl.core_.send_raw(bytes, expect_reply);
    impl.poll_io();
}

Reply Client::next_reply(Duration timeout) {
    Impl& impl = *impl_;
    const auto deadline = Clock::now() + timeout;
    impl.wait_until(
        [&impl] {
            return !impl.replies_.empty() || impl.state_ == Impl::State::disconnected || impl.core_.inbox_full();
        },
        deadline);
    if (impl.replies_.empty()) {
        if (impl.state_ == Impl::State::disconnected) throw ConnectionError(impl.disconnect_reason_);
        impl.throw_if_inbox_full("next_reply");
        throw Timeout("next_reply: no reply from " + impl.where() + " within the timeout");
    }
    Outcome outcome = std::move(impl.replies_.front());
    impl.replies_.pop_front();
    switch (outcome.kind) {
        case Outcome::Kind::ack: return Reply{true, {}, std::move(outcome.raw)};
        case Outcome::Kind::failure: return Reply{false, std::move(outcome.text), std::move(outcome.raw)};
        default: throw_outcome(outcome);
    }
}

std::vector<Gap> Client::take_gaps() { return std::exchange(impl_->gaps_, {}); }
std::uint64_t Client::gap_count() const { return impl_->gap_count_; }
std::vector<Reset> Client::take_resets() { return std::exchange(impl_->resets_, {}); }
std::uint64_t Client::reset_count() const { return impl_->reset_count_; }
std::optional<std::string> Client::broker_incarnation(Duration timeout) {
    Impl& impl = *impl_;
    const auto deadline = Clock::now() + timeout;
    impl.ensure_connected(deadline);
    const bool answered = impl.wait_until(
        [&impl] {
            return impl.state_ != Impl::State::connected || !impl.core_.hello_pending() || impl.core_.inbox_full();
        },
        deadline);
    if (impl.state_ == Impl::State::connected && impl.core_.hello_pending()) impl.throw_if_inbox_full("broker_incarnation");
    if (!answered) throw Timeout("broker_incarnation: no answer to hello from " + impl.where() + " within the timeout");
    if (impl.state_ != Impl::State::connected) throw ConnectionError(impl.disconnect_reason_);
    return impl.core_.broker_incarnation();
}
std::uint64_t Client::reconnect_count() const { return impl_->reconnects_; }

}  // namespace memq
