// main.cpp — memqd: parses the command line, runs one Broker behind one TcpServer
// on one thread, and stops cleanly on SIGINT/SIGTERM. Exit codes: 0 after a
// clean stop, 2 for bad arguments or an address it cannot listen on, 1 otherwise.
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include <asio.hpp>

#include "broker.hpp"
#include "durable_store.hpp"
#include "huge_pages.hpp"
#include "log.hpp"
#include "log_limiter.hpp"
#include "metrics_server.hpp"
#include "options.hpp"
#include "tcp_server.hpp"
#include "tls_context.hpp"

#ifndef MEMQD_VERSION
#define MEMQD_VERSION "0.0.0"
#endif

namespace {

constexpr int kExitRuntimeError = 1;
constexpr int kExitUsage = 2;
constexpr std::chrono::milliseconds kShutdownFlushTimeout{2000};

int usage_error(std::string_view message) {
    std::fprintf(stderr, "memqd: error: %.*s\n", static_cast<int>(message.size()), message.data());
    return kExitUsage;
}

// Also the incarnation: always drawn, never from --seed, so that two runs
// with the same seed still tell a resuming client that the broker restarted.
std::uint64_t random_seed() {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

// Descriptors kept for everything but connections: listener, stdio, log, slack.
constexpr std::size_t kReservedFiles = 32;
constexpr std::chrono::milliseconds kLimitFlushInterval{250};

// Many connections need many descriptors: take the hard limit, quietly.
// Returns the soft limit in force afterwards (0 if unknown).
std::size_t raise_open_file_limit(const memq::Logger& log) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        const rlim_t before = limit.rlim_cur;
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            log.debug("open file limit raised from ", before, " to ", raised.rlim_cur);
            limit = raised;
        }
    }
    if (limit.rlim_cur == RLIM_INFINITY) return std::numeric_limits<std::size_t>::max();
    return static_cast<std::size_t>(limit.rlim_cur);
}

// The default of --max-connections: what the open files allow, less the reserve.
std::size_t default_connections_max(std::size_t open_files) {
    if (open_files == 0) return std::numeric_limits<std::size_t>::max();  // unknown: the accept backoff guards
    return open_files > kReservedFiles ? open_files - kReservedFiles : 1;
}

// Calls LogLimiter::flush every kLimitFlushInterval, so the hits a limiter
// left out are reported within about a second of the last line of their kind.
class LimitLogFlusher {
public:
    LimitLogFlusher(asio::io_context& io, memq::LogLimiter& limits_log) : timer_(io), limits_log_(limits_log) {}

    void start() { arm(); }
    void stop() {
        stopped_ = true;
        timer_.cancel();
    }

private:
    void arm() {
        timer_.expires_after(kLimitFlushInterval);
        timer_.async_wait([this](const asio::error_code& error) {
            if (error || stopped_) return;
            limits_log_.flush();
            arm();
        });
    }

    asio::steady_timer timer_;
    memq::LogLimiter& limits_log_;
    bool stopped_ = false;
};

// Writes "PORT\n" to a temporary file beside `path`, then renames it over
// `path`, so a reader never sees a partial file. Returns an error text or "".
std::string write_port_file(const std::string& path, unsigned short port) {
    const std::string temporary = path + ".tmp." + std::to_string(getpid());
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << port << '\n';
        out.close();
        if (!out) {
            std::remove(temporary.c_str());
            return "cannot write port file '" + temporary + "'";
        }
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
        const int error = errno;
        std::remove(temporary.c_str());
        return "cannot write port file '" + path + "': " + std::strerror(error);
    }
    return {};
}

int run(const memq::ServerOptions& options) {
    const auto started = std::chrono::steady_clock::now();
    asio::error_code address_error;
    const asio::ip::address address = asio::ip::make_address(options.bind_address, address_error);
    if (address_error) return usage_error("invalid --bind '" + options.bind_address + "': expected an IP address");

    const memq::Logger log(options.log_level);
    const std::size_t open_files = raise_open_file_limit(log);
    const std::uint64_t seed = options.seed ? *options.seed : random_seed();
    memq::Limits limits = options.limits;
    limits.connections_max = options.max_connections.value_or(default_connections_max(open_files));

    asio::io_context io(1);
    // Caught from before the socket listens: whoever can connect may signal
    // at once (a test, a supervisor) and gets the graceful stop, never the
    // default action. The handler runs only inside io.run(), once all is set up.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    // Durable topics: the data dir is locked and its log read back before
    // anything listens, so a second memqd on it stops here (exit 2).
    std::unique_ptr<memq::DurableStore> store;
    memq::Durability durability;
    if (!options.data_dir.empty()) {
        try {
            store = std::make_unique<memq::DurableStore>(options, log);
        } catch (const memq::StartError& error) {
            return usage_error(error.what());
        }
        durability.enabled = true;
        durability.policy = options.fsync;
    }
    const std::uint64_t incarnation = store ? store->incarnation(random_seed()) : random_seed();
    memq::Broker broker(limits, seed, incarnation, durability);
    if (store) {
        try {
            store->recover(broker);
        } catch (const memq::StartError& error) {
            return usage_error(error.what());
        }
    }
    memq::LogLimiter limits_log(log);
    LimitLogFlusher limits_flusher(io, limits_log);
    const asio::ip::tcp::endpoint requested(address, options.port);
    // TLS: the files are read and checked before anything listens.
    std::optional<asio::ssl::context> tls_context;
    memq::ServerTimeouts timeouts;
    if (options.tls_port) {
        try {
            tls_context.emplace(memq::make_server_tls_context(
                {options.tls_cert_file, options.tls_key_file, options.tls_client_ca_file}));
        } catch (const memq::TlsSetupError& error) {
            return usage_error(error.what());
        }
        timeouts.tls_handshake = std::chrono::milliseconds(options.tls_handshake_timeout_ms);
    }
    std::unique_ptr<memq::TcpServer> server;
    try {
        server = std::make_unique<memq::TcpServer>(io, broker, log, limits_log, requested, timeouts);
    } catch (const std::system_error& error) {
        std::ostringstream where;
        where << requested;
        return usage_error("cannot listen on " + where.str() + ": " + error.code().message());
    }
    const asio::ip::tcp::endpoint bound = server->local_endpoint();
    if (tls_context) {
        const asio::ip::tcp::endpoint tls_requested(address, *options.tls_port);
        try {
            server->listen_tls(tls_requested, *tls_context);
        } catch (const std::system_error& error) {
            std::ostringstream where;
            where << tls_requested;
            return usage_error("cannot listen on " + where.str() + " (TLS): " + error.code().message());
        }
    }

    bool ready = false;  // /readyz: listening and not shutting down
    // Timed only when someone can read it: without --metrics, no clock is read.
    memq::DurationHistogram event_loop_turns = memq::make_event_loop_turn_histogram();
    if (options.metrics_port) server->time_turns(&event_loop_turns);
    memq::DurationHistogram storage_syncs = memq::make_storage_sync_histogram();
    std::unique_ptr<memq::MetricsServer> metrics;
    if (options.metrics_port) {
        const asio::ip::address metrics_address = asio::ip::make_address(options.metrics_bind, address_error);
        if (address_error) {
            return usage_error("invalid metrics address '" + options.metrics_bind + "': expected an IP address");
        }
        const asio::ip::tcp::endpoint metrics_endpoint(metrics_address, *options.metrics_port);
        // /readyz: listening, not shutting down, and (with --data-dir) the storage takes writes.
        memq::http::Endpoints endpoints{
            [&] { return memq::scrape(broker, *server, started, MEMQD_VERSION, store ? &storage_syncs : nullptr); },
            [&] { return ready && broker.storage_healthy(); }};
        try {
            metrics = std::make_unique<memq::MetricsServer>(io, log, metrics_endpoint, std::move(endpoints));
        } catch (const std::system_error& error) {
            std::ostringstream where;
            where << metrics_endpoint;
            return usage_error("cannot listen on " + where.str() + " (metrics): " + error.code().message());
        }
    }

    bool stopped = false;  // the shutdown finished: nothing may keep run() going
    std::function<void(const asio::error_code&, int)> on_signal = [&](const asio::error_code& error, int number) {
        // A signal that was already waiting when the shutdown finished (two
        // sent at once) is ignored: re-arming for it would keep run() going for good.
        if (error || stopped) return;
        log.info("received ", strsignal(number), " (signal ", number, "), stopping; flushing ",
                 server->connection_count(), " connection(s)");
        // The first signal starts a bounded flush; a second one closes everything at
        // once. Re-armed first: once stopped, cancel() ends the wait and run() returns.
        signals.async_wait(on_signal);
        limits_flusher.stop();
        ready = false;
        server->shutdown(kShutdownFlushTimeout, [&] {
            stopped = true;
            signals.cancel();
            if (metrics) metrics->stop();
            if (store) store->stop();  // an exact snapshot, synced: a clean restart shows no gap
        });
    };
    signals.async_wait(on_signal);

    log.info("memqd ", MEMQD_VERSION, " listening on ", bound, " (cache_size=", limits.cache_messages_max,
             " max_line_bytes=", limits.line_bytes_max, " max_pending_bytes=", limits.pending_bytes_max,
             " replay_window_bytes=", limits.replay_window_bytes,
             " max_cache_bytes=", limits.cache_bytes_max, " max_topics=", limits.topics_max,
             " max_indexed_topics=", limits.indexed_topics_max, " max_topic_bytes=", limits.topic_bytes_max,
             " max_subscriptions=", limits.subscriptions_max, " max_connections=", limits.connections_max,
             " open_files=", open_files, " seed=", seed,
             " incarnation=", memq::incarnation_text(incarnation), ")");
    if (tls_context) {
        log.info("TLS on ", server->tls_local_endpoint(), " (",
                 options.tls_client_ca_file.empty() ? "no client certificates" : "mutual TLS: client certificates required",
                 ", handshake timeout ", options.tls_handshake_timeout_ms, " ms)");
    }
    if (!address.is_loopback()) {
        log.warn("bound to ", address,
                 ", which is not a loopback address: memq has no authentication, so anyone who can reach this "
                 "port can publish and subscribe");
    }

    if (metrics) {
        log.info("metrics on http://", metrics->local_endpoint(), "/metrics");
        if (!metrics->local_endpoint().address().is_loopback()) {
            log.warn("metrics bound to ", metrics->local_endpoint().address(), ", which is not a loopback address");
        }
        if (!options.metrics_port_file.empty()) {
            const std::string problem = write_port_file(options.metrics_port_file, metrics->local_endpoint().port());
            if (!problem.empty()) return usage_error(problem);
        }
    }
    if (tls_context && !options.tls_port_file.empty()) {
        const std::string problem = write_port_file(options.tls_port_file, server->tls_local_endpoint().port());
        if (!problem.empty()) return usage_error(problem);
    }
    // Last: once the port file exists, the start-up lines above are written too.
    if (!options.port_file.empty()) {
        if (const std::string problem = write_port_file(options.port_file, bound.port()); !problem.empty()) {
            return usage_error(problem);
        }
    }

    if (store) store->start(io, broker, *server, &storage_syncs);
    server->start();
    if (metrics) metrics->start();
    ready = true;
    limits_flusher.start();
    io.run();

    const memq::BrokerStats& stats = broker.stats();
    log.info("stopped (connections=", stats.connections_accepted, " lines=", stats.lines_processed,
             " published=", stats.messages_published, " delivered=", stats.messages_delivered,
             " slow_consumer_closes=", stats.slow_consumer_closes,
             " line_too_long_closes=", stats.line_too_long_closes, " connections_refused=", stats.connections_refused,
             " topics_refused=", stats.topics_refused, " topic_too_long_refused=", stats.topic_too_long_refused,
             " subscriptions_refused=", stats.subscriptions_refused, " cache_evictions=", stats.cache_evictions, ")");
    if (!options.port_file.empty()) std::remove(options.port_file.c_str());
    if (!options.metrics_port_file.empty()) std::remove(options.metrics_port_file.c_str());
    if (!options.tls_port_file.empty()) std::remove(options.tls_port_file.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string_view> arguments(argv + (argc > 0 ? 1 : 0), argv + argc);
    const memq::CommandLine command_line = memq::parse_command_line(arguments);
    if (const auto* error = std::get_if<memq::UsageError>(&command_line)) return usage_error(error->message);
    if (std::holds_alternative<memq::ShowHelp>(command_line)) {
        std::cout << memq::usage_text() << std::flush;
        return 0;
    }
    if (std::holds_alternative<memq::ShowVersion>(command_line)) {
        std::cout << "memqd " << MEMQD_VERSION << std::endl;
        return 0;
    }
    const memq::ServerOptions& options = std::get<memq::RunServer>(command_line).options;
    // Before anything is allocated for the broker: returns only if not re-executed.
    const std::string huge_pages_problem = options.huge_pages ? memq::reexec_with_huge_page_heap(argv) : "";
    if (!huge_pages_problem.empty()) {
        std::fprintf(stderr, "memqd: warning: the heap stays on 4 KiB pages (%s)\n", huge_pages_problem.c_str());
    }
    std::signal(SIGPIPE, SIG_IGN);  // a peer that vanished is a write error, not a death
    try {
        return run(options);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "memqd: error: %s\n", error.what());
        return kExitRuntimeError;
    }
}
