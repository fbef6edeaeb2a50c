// cli/main.cpp — `memq`, the command line client: sub, pub and bench over memq::Client,
// and stats, which reads memqd's metrics port over HTTP.
//
// Exit codes: 0 done, 1 the broker is not there or refused or dropped us,
// 2 usage error. Errors are one line on stderr, starting with "memq: ".
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "client.hpp"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage = R"(usage: memq [--host HOST] [--port PORT] [--tls ...] COMMAND ...

commands:
  sub TOPIC [--last-seen N] [--no-cache] [--count N] [--json]
      print the topic's messages as they come, one msg per line (with --json
      the whole message object); replays the broker's cache first unless
      --no-cache; stops after N messages with --count
  pub TOPIC MSG|- [--one] [--no-cache]
      send MSG (delivery "all", or "one" with --one); with "-", send every
      line of standard input as one message, pipelined
  bench TOPIC [--count N] [--size BYTES]
      publish N messages of BYTES bytes pipelined and report messages/s
  stats --metrics-port PORT [--watch SECONDS] [--count N]
      print memqd's figures from its metrics port (memqd --metrics-port);
      with --watch, refresh every SECONDS with rates per second, until
      interrupted or N refreshes with --count

options:
  --host HOST   broker address (default 127.0.0.1)
  --port PORT   broker port (default 7000)
  --metrics-port PORT  memqd's metrics port, for stats (on --host)
  --tls         speak TLS (to memqd's --tls-port), verifying the broker
                against the system's CAs, or --tls-ca's
  --tls-ca FILE       PEM CA to verify the broker against (implies --tls)
  --tls-cert FILE     PEM client certificate, for mutual TLS (implies --tls)
  --tls-key FILE      PEM private key of --tls-cert (implies --tls)
  --tls-server-name NAME  name the broker's certificate must carry
                      (default: --host)
  --help        this text
)";

struct UsageError {
    std::string text;
};

struct Arguments {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7000;
    memq::TlsOptions tls;
    std::vector<std::string> positional;
    std::optional<std::int64_t> last_seen;
    std::optional<std::int64_t> count;
    std::optional<std::uint16_t> metrics_port;
    std::optional<double> watch_seconds;
    std::int64_t size = 64;
    bool no_cache = false;
    bool json = false;
    bool one = false;
    bool help = false;
};

template <typename Integer>
Integer parse_integer(std::string_view option, std::string_view text, Integer low, Integer high) {
    Integer value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < low || value > high) {
        throw UsageError{std::string(option) + " wants an integer in [" + std::to_string(low) + ", " +
                         std::to_string(high) + "], not '" + std::string(text) + "'"};
    }
    return value;
}

Arguments parse_arguments(int argc, char** argv) {
    Arguments args;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) throw UsageError{std::string(arg) + " wants a value"};
            return argv[++i];
        };
        if (options_done || arg == "-" || arg.size() < 2 || arg.substr(0, 2) != "--") {
            args.positional.emplace_back(arg);
        } else if (arg == "--") {
            options_done = true;
        } else if (arg == "--help") {
            args.help = true;
        } else if (arg == "--host") {
            args.host = value();
        } else if (arg == "--port") {
            args.port = parse_integer<std::uint16_t>(arg, value(), 1, 65535);
        } else if (arg == "--tls") {
            args.tls.tls = true;
        } else if (arg == "--tls-ca") {
            args.tls.tls = true;
            args.tls.tls_ca_file = value();
        } else if (arg == "--tls-cert") {
            args.tls.tls = true;
            args.tls.tls_cert_file = value();
        } else if (arg == "--tls-key") {
            args.tls.tls = true;
            args.tls.tls_key_file = value();
        } else if (arg == "--tls-server-name") {
            args.tls.tls = true;
            args.tls.tls_server_name = value();
        } else if (arg == "--metrics-port") {
            args.metrics_port = parse_integer<std::uint16_t>(arg, value(), 1, 65535);
        } else if (arg == "--watch") {
            const std::string_view text = value();
            double seconds = 0;
            const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
            if (error != std::errc() || end != text.data() + text.size() || !(seconds >= 0.1 && seconds <= 86400)) {
                throw UsageError{"--watch wants seconds from 0.1 to 86400, not '" + std::string(text) + "'"};
            }
            args.watch_seconds = seconds;
        } else if (arg == "--last-seen") {
            args.last_seen = parse_integer<std::int64_t>(arg, value(), -1, INT64_MAX);
        } else if (arg == "--count") {
            args.count = parse_integer<std::int64_t>(arg, value(), 0, INT64_MAX);
        } else if (arg == "--size") {
            args.size = parse_integer<std::int64_t>(arg, value(), 0, 1 << 20);
        } else if (arg == "--no-cache") {
            args.no_cache = true;
        } else if (arg == "--json") {
            args.json = true;
        } else if (arg == "--one") {
            args.one = true;
        } else {
            throw UsageError{"unknown option " + std::string(arg)};
        }
    }
    return args;
}

void expect_positional(const Arguments& args, std::size_t count, std::string_view shape) {
    if (args.positional.size() != count) throw UsageError{"usage: memq " + std::string(shape)};
}

memq::Client connect(const Arguments& args) {
    memq::ClientOptions options;
    static_cast<memq::TlsOptions&>(options) = args.tls;
    memq::Client client(options);
    client.connect(args.host, args.port, std::chrono::seconds(5));
    return client;
}

int run_sub(const Arguments& args) {
    expect_positional(args, 2, "sub TOPIC [--last-seen N] [--no-cache] [--count N] [--json]");
    if (args.one) throw UsageError{"--one is for pub"};
    memq::Client client = connect(args);
    client.subscribe(args.positional[1], args.last_seen,
                     args.no_cache ? std::optional<bool>(false) : std::nullopt);
    std::int64_t printed = 0;
    while (!args.count || printed < *args.count) {
        const auto message = client.receive(std::chrono::hours(1));
        if (!message) continue;
        const std::string& text = args.json ? message->raw : message->msg;
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fputc('\n', stdout);
        if (client.inbox_size() == 0) std::fflush(stdout);
        ++printed;
    }
    std::fflush(stdout);
    return 0;
}

int run_pub(const Arguments& args) {
    expect_positional(args, 3, "pub TOPIC MSG|- [--one] [--no-cache]");
    if (args.json || args.count || args.last_seen) throw UsageError{"pub takes only --one and --no-cache"};
    const std::string& topic = args.positional[1];
    const std::string& msg = args.positional[2];
    const memq::Delivery delivery = args.one ? memq::Delivery::one : memq::Delivery::all;
    const std::optional<bool> cache = args.no_cache ? std::optional<bool>(false) : std::nullopt;
    memq::Client client = connect(args);
    if (msg != "-") {
        client.send(topic, msg, delivery, cache);
        return 0;
    }
    std::ios::sync_with_stdio(false);
    std::string line;
    while (std::getline(std::cin, line)) client.publish(topic, line, delivery, cache);
    client.flush(std::chrono::minutes(1));
    return 0;
}

int run_bench(const Arguments& args) {
    expect_positional(args, 2, "bench TOPIC [--count N] [--size BYTES]");
    const std::int64_t count = args.count.value_or(1'000'000);
    const std::string msg(static_cast<std::size_t>(args.size), 'x');
    memq::Client client = connect(args);
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < count; ++i) client.publish(args.positional[1], msg, memq::Delivery::all, false);
    client.flush(std::chrono::minutes(5));
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::printf("%lld messages of %lld bytes in %.3f s: %.0f msgs/s\n", static_cast<long long>(count),
                static_cast<long long>(args.size), elapsed.count(),
                elapsed.count() > 0 ? static_cast<double>(count) / elapsed.count() : 0.0);
    return 0;
}

// ---- stats: memqd's /metrics, for a person ----------------------------------

// Every sample of an exposition text, "name{labels}" -> value; comments skipped.
std::map<std::string, double> parse_exposition(std::string_view text) {
    std::map<std::string, double> samples;
    while (!text.empty()) {
        const std::size_t newline = text.find('\n');
        std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        if (line.empty() || line.front() == '#') continue;
        // The value follows the last space outside the labels (a timestamp may follow it).
        const std::size_t labels_end = line.rfind('}');
        const std::size_t space = line.find(' ', labels_end == std::string_view::npos ? 0 : labels_end);
        if (space == std::string_view::npos) continue;
        std::string_view value = line.substr(space + 1);
        value = value.substr(0, value.find(' '));
        double number = 0;
        if (value == "NaN") number = NAN;
        else if (value == "+Inf") number = INFINITY;
        else if (value == "-Inf") number = -INFINITY;
        else if (std::from_chars(value.data(), value.data() + value.size(), number).ec != std::errc()) continue;
        samples[std::string(line.substr(0, space))] = number;
    }
    return samples;
}

// The body of GET /metrics from host:port; throws memq::Error when there is none.
std::string fetch_metrics(const std::string& host, std::uint16_t port) {
    asio::ip::tcp::iostream stream;
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(host, std::to_string(port));
    if (!stream) throw memq::Error("cannot reach the metrics port " + host + ":" + std::to_string(port) + ": " +
                                   stream.error().message());
    stream << "GET /metrics HTTP/1.1\r\nHost: " << host << ':' << port << "\r\nConnection: close\r\n\r\n" << std::flush;
    const std::string response((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
    const std::size_t body = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) {
        throw memq::Error("no HTTP answer from " + host + ":" + std::to_string(port) +
                          (stream.error() ? ": " + stream.error().message() : std::string()));
    }
    if (response.compare(9, 3, "200") != 0) {
        throw memq::Error("the metrics port answered " + response.substr(9, response.find('\r') - 9));
    }
    return response.substr(body + 4);
}

struct StatsRow {
    std::string_view label;
    std::string_view sample;
    bool counter;  // rates are shown for counters
};

constexpr StatsRow kStatsRows[] = {
    {"connections open", "memq_connections", false},
    {"connections accepted", "memq_connections_accepted_total", true},
    {"connections refused", "memq_connections_refused_total", true},
    {"closed as slow consumers", "memq_connection_closes_total{reason=\"slow_consumer\"}", true},
    {"closed, line too long", "memq_connection_closes_total{reason=\"line_too_long\"}", true},
    {"lines processed", "memq_lines_processed_total", true},
    {"errors replied", "memq_errors_replied_total", true},
    {"topics refused", "memq_topics_refused_total", true},
    {"messages published", "memq_messages_published_total", true},
    {"messages delivered", "memq_messages_delivered_total", true},
    {"topics known", "memq_topics_known", false},
    {"topics with state", "memq_topics_stateful", false},
    {"cached messages", "memq_cached_messages", false},
    {"cached bytes", "memq_cached_bytes", false},
    {"cache evictions", "memq_cache_evictions_total", true},
    {"pending output bytes", "memq_pending_bytes", false},
    {"largest pending output", "memq_pending_bytes_largest", false},
};

std::string format_number(double value) {
    char text[48];
    if (std::isnan(value)) return "-";
    if (value == std::floor(value) && std::fabs(value) < 1e15) {
        std::snprintf(text, sizeof text, "%.0f", value);
    } else {
        std::snprintf(text, sizeof text, "%.1f", value);
    }
    return text;
}

// One screen of figures; rates from `previous` when there is one.
std::string stats_table(const std::map<std::string, double>& now, const std::map<std::string, double>* previous) {
    const auto get = [](const std::map<std::string, double>& samples, std::string_view name) {
        const auto found = samples.find(std::string(name));
        return found == samples.end() ? NAN : found->second;
    };
    std::string version = "?";
    std::string incarnation = "?";
    for (const auto& [name, value] : now) {
        if (name.rfind("memq_build_info{", 0) != 0) continue;
        const auto label = [&name](std::string_view key) {
            const std::size_t at = name.find(std::string(key) + "=\"");
            if (at == std::string::npos) return std::string("?");
            const std::size_t start = at + key.size() + 2;
            return name.substr(start, name.find('"', start) - start);
        };
        version = label("version");
        incarnation = label("incarnation");
    }
    const double uptime = get(now, "memq_uptime_seconds");
    double elapsed = NAN;
    if (previous) elapsed = uptime - get(*previous, "memq_uptime_seconds");

    std::ostringstream out;
    out << "memqd " << version << "  incarnation " << incarnation << "  up " << format_number(std::floor(uptime))
        << " s\n";
    char line[128];
    std::snprintf(line, sizeof line, "%-26s %16s %12s\n", "", "value", previous ? "per second" : "");
    out << line;
    for (const StatsRow& row : kStatsRows) {
        const double value = get(now, row.sample);
        std::string rate;
        if (previous && row.counter && elapsed > 0) rate = format_number((value - get(*previous, row.sample)) / elapsed);
        std::snprintf(line, sizeof line, "%-26.*s %16s %12s\n", static_cast<int>(row.label.size()), row.label.data(),
                      format_number(value).c_str(), rate.c_str());
        out << line;
    }
    return out.str();
}

int run_stats(const Arguments& args) {
    expect_positional(args, 1, "stats --metrics-port PORT [--watch SECONDS] [--count N]");
    if (!args.metrics_port) throw UsageError{"stats needs --metrics-port (memqd's --metrics-port)"};
    const std::int64_t refreshes = args.count.value_or(args.watch_seconds ? INT64_MAX : 1);
    const bool in_place = args.watch_seconds && isatty(STDOUT_FILENO);
    std::optional<std::map<std::string, double>> previous;
    for (std::int64_t shown = 0; shown < refreshes; ++shown) {
        if (shown > 0) std::this_thread::sleep_for(std::chrono::duration<double>(args.watch_seconds.value_or(1.0)));
        auto samples = parse_exposition(fetch_metrics(args.host, *args.metrics_port));
        const std::string table = stats_table(samples, previous ? &*previous : nullptr);
        if (in_place) std::fputs("\033[H\033[2J", stdout);  // home, clear screen
        else if (shown > 0) std::fputc('\n', stdout);
        std::fwrite(table.data(), 1, table.size(), stdout);
        std::fflush(stdout);
        previous = std::move(samples);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Arguments args = parse_arguments(argc, argv);
        if (args.help) {
            std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
            return 0;
        }
        if (args.positional.empty()) throw UsageError{"no command given"};
        const std::string& command = args.positional[0];
        if (command == "sub") return run_sub(args);
        if (command == "pub") return run_pub(args);
        if (command == "bench") return run_bench(args);
        if (command == "stats") return run_stats(args);
        throw UsageError{"unknown command '" + command + "'"};
    } catch (const UsageError& error) {
        std::fprintf(stderr, "memq: %s (see memq --help)\n", error.text.c_str());
        return kExitUsage;
    } catch (const memq::Error& error) {
        std::fprintf(stderr, "memq: %s\n", error.what());
        return kExitFailure;
    }
}
