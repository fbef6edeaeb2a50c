// metrics_server.hpp — the Asio shell of memqd's metrics port: accepts HTTP
// connections and moves bytes between them and http::RequestParser / answer().
//
// Rules:
// - On the broker's io_context and thread: no locks, no threads. A scrape
//   reads the core between two of its handlers, so it sees a consistent state.
// - One request per connection: read the head, write the answer, shut down
//   the sending side, discard input until the peer's EOF, close.
// - Every wait is bounded: a connection lives at most MetricsServerLimits::
//   exchange_timeout in all; past connections_max open ones, new ones are
//   closed at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include <asio.hpp>

#include "broker.hpp"
#include "duration_histogram.hpp"
#include "http_request.hpp"
#include "log.hpp"
#include "tcp_server.hpp"

namespace memq {

struct MetricsServerLimits {
    std::chrono::milliseconds exchange_timeout{5000};
    std::size_t connections_max = 64;
    std::size_t head_bytes_max = http::kDefaultHeadBytesMax;
};

// The text of /metrics now: the core's public accessors, the server's
// pending output and turn times, with the uptime since `started`, and the
// storage's sync times when there is a storage. O(connections).
std::string scrape(const Broker& broker, const TcpServer& server, std::chrono::steady_clock::time_point started,
                   std::string_view version, const DurationHistogram* storage_syncs = nullptr);

class MetricsServer {
public:
    // Binds and listens (address reuse on); throws std::system_error when it cannot.
    MetricsServer(asio::io_context& io, const Logger& log, const asio::ip::tcp::endpoint& endpoint,
                  http::Endpoints endpoints, MetricsServerLimits limits = {});
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    asio::ip::tcp::endpoint local_endpoint() const;

    void start();
    // Closes the listener and every connection: no work of this server is left in the io_context.
    void stop();

private:
    struct Exchange;
    using ExchangePtr = std::shared_ptr<Exchange>;

    void accept_next();
    void read_request(const ExchangePtr& exchange);
    void write_answer(const ExchangePtr& exchange);
    void discard_until_eof(const ExchangePtr& exchange);
    void finish(const ExchangePtr& exchange);

    asio::io_context& io_;
    const Logger& log_;
    http::Endpoints endpoints_;
    MetricsServerLimits limits_;
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer accept_retry_timer_;
    std::unordered_map<std::uint64_t, ExchangePtr> exchanges_;
    std::uint64_t next_id_ = 1;
    bool stopped_ = false;
};

}  // namespace memq
