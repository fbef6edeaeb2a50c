// metrics_server.cpp — see metrics_server.hpp.
#include "metrics_server.hpp"

#include <array>
#include <string>
#include <tuple>
#include <utility>

#include "metrics_text.hpp"

namespace memq {

std::string scrape(const Broker& broker, const TcpServer& server, std::chrono::steady_clock::time_point started,
                   std::string_view version, const DurationHistogram* storage_syncs) {
    MetricsSnapshot snapshot;
    snapshot.stats = broker.stats();
    snapshot.connections = broker.admitted_count();
    snapshot.topics_known = broker.topics().size();
    snapshot.topics_stateful = broker.topics().stateful_count();
    snapshot.cached_messages = broker.topics().cached_messages();
    snapshot.cached_bytes = broker.topics().cached_bytes();
    std::tie(snapshot.pending_bytes, snapshot.pending_bytes_largest) = server.pending_output();
    snapshot.connections_max = broker.limits().connections_max;
    snapshot.cache_bytes_max = broker.limits().cache_bytes_max;
    snapshot.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    snapshot.version = version;
    snapshot.incarnation = incarnation_text(broker.incarnation());
    snapshot.event_loop_turns = server.turn_histogram();
    snapshot.storage_syncs = storage_syncs;
    snapshot.durable = broker.durability().enabled;
    snapshot.storage_healthy = broker.storage_healthy();
    snapshot.log_bytes = broker.log_bytes();
    return write_metrics(snapshot);
}

struct MetricsServer::Exchange {
    Exchange(std::uint64_t id_, asio::ip::tcp::socket socket_, std::size_t head_bytes_max)
        : id(id_), socket(std::move(socket_)), timer(socket.get_executor()), parser(head_bytes_max) {}

    std::uint64_t id;
    asio::ip::tcp::socket socket;
    asio::steady_timer timer;
    http::RequestParser parser;
    std::array<char, 2048> buffer{};
    std::string answer;
    bool closed = false;
};

MetricsServer::MetricsServer(asio::io_context& io, const Logger& log, const asio::ip::tcp::endpoint& endpoint,
                             http::Endpoints endpoints, MetricsServerLimits limits)
    : io_(io), log_(log), endpoints_(std::move(endpoints)), limits_(limits), acceptor_(io), accept_retry_timer_(io) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
}

MetricsServer::~MetricsServer() { stop(); }

asio::ip::tcp::endpoint MetricsServer::local_endpoint() const { return acceptor_.local_endpoint(); }

void MetricsServer::start() { accept_next(); }

void MetricsServer::stop() {
    if (stopped_) return;
    stopped_ = true;
    asio::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_timer_.cancel();
    auto exchanges = std::move(exchanges_);
    exchanges_.clear();
    for (auto& [id, exchange] : exchanges) finish(exchange);
}

void MetricsServer::accept_next() {
    acceptor_.async_accept([this](const asio::error_code& error, asio::ip::tcp::socket socket) {
        if (stopped_) return;
        if (error) {
            // EMFILE and the like: the broker's accept backoff logs those; try again a little later.
            log_.debug("metrics: accept failed: ", error.message());
            accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
            accept_retry_timer_.async_wait([this](const asio::error_code& timer_error) {
                if (!timer_error && !stopped_) accept_next();
            });
            return;
        }
        accept_next();
        if (exchanges_.size() >= limits_.connections_max) {
            log_.debug("metrics: ", exchanges_.size(), " scrapes open, closing a new one");
            asio::error_code ignored;
            socket.close(ignored);
            return;
        }
        auto exchange = std::make_shared<Exchange>(next_id_++, std::move(socket), limits_.head_bytes_max);
        exchanges_.emplace(exchange->id, exchange);
        exchange->timer.expires_after(limits_.exchange_timeout);
        exchange->timer.async_wait([this, exchange](const asio::error_code& timer_error) {
            if (!timer_error) finish(exchange);
        });
        read_request(exchange);
    });
}

void MetricsServer::read_request(const ExchangePtr& exchange) {
    exchange->socket.async_read_some(
        asio::buffer(exchange->buffer), [this, exchange](const asio::error_code& error, std::size_t bytes) {
            if (exchange->closed) return;
            if (error) {
                finish(exchange);  // EOF before a whole head: nobody to answer
                return;
            }
            const http::ParseState state =
                exchange->parser.feed(std::string_view(exchange->buffer.data(), bytes));
            if (state == http::ParseState::incomplete) {
                read_request(exchange);
                return;
            }
            write_answer(exchange);
        });
}

void MetricsServer::write_answer(const ExchangePtr& exchange) {
    exchange->answer = http::answer(exchange->parser, endpoints_);
    asio::async_write(exchange->socket, asio::buffer(exchange->answer),
                      [this, exchange](const asio::error_code& error, std::size_t) {
                          if (exchange->closed) return;
                          if (error) {
                              finish(exchange);
                              return;
                          }
                          // Closing with unread input would send a RST that may destroy the
                          // answer in flight: half-close, then read until the peer closes.
                          asio::error_code ignored;
                          exchange->socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                          discard_until_eof(exchange);
                      });
}

void MetricsServer::discard_until_eof(const ExchangePtr& exchange) {
    exchange->socket.async_read_some(asio::buffer(exchange->buffer),
                                     [this, exchange](const asio::error_code& error, std::size_t) {
                                         if (exchange->closed) return;
                                         if (error) {
                                             finish(exchange);
                                             return;
                                         }
                                         discard_until_eof(exchange);
                                     });
}

void MetricsServer::finish(const ExchangePtr& exchange) {
    if (exchange->closed) return;
    exchange->closed = true;
    asio::error_code ignored;
    exchange->timer.cancel();
    exchange->socket.close(ignored);
    exchanges_.erase(exchange->id);
}

}  // namespace memq
