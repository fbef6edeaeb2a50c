// options.cpp — parses memqd's command line into ServerOptions or a UsageError.
#include "options.hpp"

#include <charconv>
#include <limits>

namespace memq {
namespace {

// The whole of `text` as a decimal unsigned integer, or nothing.
template <typename Unsigned>
std::optional<Unsigned> parse_unsigned(std::string_view text) {
    Unsigned value{};
    const char* const end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, value);
    if (text.empty() || error != std::errc{} || stop != end) return std::nullopt;
    return value;
}

std::string quoted(std::string_view text) {
    std::string result;
    result.reserve(text.size() + 2);
    result += '\'';
    result += text;
    result += '\'';
    return result;
}

// A negative number is a (bad) positional value, not an option.
bool looks_like_option(std::string_view argument) {
    if (argument.size() < 2 || argument[0] != '-') return false;
    return !(argument[1] >= '0' && argument[1] <= '9');
}

class Parser {
public:
    explicit Parser(std::span<const std::string_view> arguments) : arguments_(arguments) {}

    CommandLine parse() {
        std::size_t positional = 0;
        bool options_ended = false;
        for (next_ = 0; next_ < arguments_.size();) {
            const std::string_view argument = arguments_[next_++];
            if (options_ended || !looks_like_option(argument)) {
                // Positional arguments, as the reference servers take them: port, then cache size.
                if (positional == 2) {
                    return UsageError{"unexpected argument " + quoted(argument) +
                                      " (memqd takes at most two positional arguments: port and cache size)"};
                }
                const bool ok = positional++ == 0 ? set_port(argument) : set_cache_size(argument);
                if (!ok) return *error_;
                continue;
            }
            if (argument == "--") {
                options_ended = true;
                continue;
            }
            if (std::optional<CommandLine> done = option(argument)) return *done;
        }
        if (metrics_given_ && (metrics_port_given_ || metrics_bind_given_)) {
            return UsageError{"--metrics names the address and port: give it alone, or --metrics-port and "
                              "--metrics-bind"};
        }
        if (!options_.metrics_port && (!options_.metrics_port_file.empty() || metrics_bind_given_)) {
            return UsageError{"--metrics-bind and --metrics-port-file need --metrics (or --metrics-port)"};
        }
        if (std::optional<UsageError> tls_error = check_tls()) return *tls_error;
        if (std::optional<UsageError> durability_error = check_durability()) return *durability_error;
        return RunServer{options_};
    }

private:
    // Handles one option; returns a result when parsing ends here.
    std::optional<CommandLine> option(std::string_view argument) {
        std::string_view name = argument;
        std::optional<std::string_view> inline_value;
        if (const std::size_t equals = argument.find('='); equals != std::string_view::npos) {
            name = argument.substr(0, equals);
            inline_value = argument.substr(equals + 1);
        }
        if (name == "--salvage") {
            if (inline_value) return UsageError{"option " + quoted(name) + " takes no value"};
            options_.salvage = true;
            durability_option_given_ = true;
            return std::nullopt;
        }
        if (name == "--no-huge-pages") {
            if (inline_value) return UsageError{"option " + quoted(name) + " takes no value"};
            options_.huge_pages = false;
            return std::nullopt;
        }
        if (name == "--help" || name == "-h" || name == "--version") {
            if (inline_value) return UsageError{"option " + quoted(name) + " takes no value"};
            if (name == "--version") return ShowVersion{};
            return ShowHelp{};
        }
        using Setter = bool (Parser::*)(std::string_view);
        Setter setter = nullptr;
        if (name == "--bind") setter = &Parser::set_bind;
        else if (name == "--port") setter = &Parser::set_port;
        else if (name == "--port-file") setter = &Parser::set_port_file;
        else if (name == "--cache-size") setter = &Parser::set_cache_size;
        else if (name == "--max-line-bytes") setter = &Parser::set_max_line_bytes;
        else if (name == "--max-pending-bytes") setter = &Parser::set_max_pending_bytes;
        else if (name == "--replay-window-bytes") setter = &Parser::set_replay_window_bytes;
        else if (name == "--max-cache-bytes") setter = &Parser::set_max_cache_bytes;
        else if (name == "--max-topics") setter = &Parser::set_max_topics;
        else if (name == "--max-indexed-topics") setter = &Parser::set_max_indexed_topics;
        else if (name == "--max-topic-bytes") setter = &Parser::set_max_topic_bytes;
        else if (name == "--max-subscriptions") setter = &Parser::set_max_subscriptions;
        else if (name == "--max-connections") setter = &Parser::set_max_connections;
        else if (name == "--seed") setter = &Parser::set_seed;
        else if (name == "--log-level") setter = &Parser::set_log_level;
        else if (name == "--metrics") setter = &Parser::set_metrics;
        else if (name == "--metrics-port") setter = &Parser::set_metrics_port;
        else if (name == "--metrics-bind") setter = &Parser::set_metrics_bind;
        else if (name == "--metrics-port-file") setter = &Parser::set_metrics_port_file;
        else if (name == "--tls-port") setter = &Parser::set_tls_port;
        else if (name == "--tls-port-file") setter = &Parser::set_tls_port_file;
        else if (name == "--tls-cert") setter = &Parser::set_tls_cert;
        else if (name == "--tls-key") setter = &Parser::set_tls_key;
        else if (name == "--tls-client-ca") setter = &Parser::set_tls_client_ca;
        else if (name == "--tls-handshake-timeout-ms") setter = &Parser::set_tls_handshake_timeout;
        else if (name == "--data-dir") setter = &Parser::set_data_dir;
        else if (name == "--fsync") setter = &Parser::set_fsync;
        else if (name == "--fsync-interval-ms") setter = &Parser::set_fsync_interval;
        else return UsageError{"unknown option " + quoted(name) + " (see memqd --help)"};

        if (!inline_value) {
            if (next_ == arguments_.size()) return UsageError{"option " + quoted(name) + " needs a value"};
            inline_value = arguments_[next_++];
        }
        if (!(this->*setter)(*inline_value)) return *error_;
        return std::nullopt;
    }

    bool fail(std::string message) {
        error_ = UsageError{std::move(message)};
        return false;
    }

    bool set_bind(std::string_view value) {
        if (value.empty()) return fail("invalid --bind '': expected an IP address");
        options_.bind_address = std::string(value);
        return true;
    }

    // A port number, or a failure that calls it `what`.
    std::optional<std::uint16_t> port_number(std::string_view what, std::string_view value) {
        const auto port = parse_unsigned<std::uint32_t>(value);
        if (!port || *port > std::numeric_limits<std::uint16_t>::max()) {
            fail("invalid " + std::string(what) + " " + quoted(value) + ": expected an integer from 0 to 65535");
            return std::nullopt;
        }
        return static_cast<std::uint16_t>(*port);
    }

    bool set_port(std::string_view value) {
        const auto port = port_number("port", value);
        if (port) options_.port = *port;
        return port.has_value();
    }

    bool set_port_file(std::string_view value) {
        if (value.empty()) return fail("invalid --port-file '': expected a path");
        options_.port_file = std::string(value);
        return true;
    }

    bool set_cache_size(std::string_view value) {
        const auto size = parse_unsigned<std::size_t>(value);
        if (!size) return fail("invalid cache size " + quoted(value) + ": expected a non-negative integer");
        options_.limits.cache_messages_max = *size;
        return true;
    }

    bool set_max_line_bytes(std::string_view value) {
        const auto bytes = parse_unsigned<std::size_t>(value);
        if (!bytes || *bytes == 0) {
            return fail("invalid --max-line-bytes " + quoted(value) + ": expected a positive integer");
        }
        options_.limits.line_bytes_max = *bytes;
        return true;
    }

    bool set_max_pending_bytes(std::string_view value) {
        const auto bytes = parse_unsigned<std::size_t>(value);
        if (!bytes || *bytes == 0) {
            return fail("invalid --max-pending-bytes " + quoted(value) + ": expected a positive integer");
        }
        options_.limits.pending_bytes_max = *bytes;
        return true;
    }

    bool set_replay_window_bytes(std::string_view value) {
        const auto bytes = parse_unsigned<std::size_t>(value);
        if (!bytes || *bytes == 0) {
            return fail("invalid --replay-window-bytes " + quoted(value) + ": expected a positive integer");
        }
        options_.limits.replay_window_bytes = *bytes;
        return true;
    }

    // A count or size that must be at least 1; `name` is the option's.
    std::optional<std::size_t> positive(std::string_view name, std::string_view value) {
        const auto number = parse_unsigned<std::size_t>(value);
        if (!number || *number == 0) {
            fail("invalid " + std::string(name) + " " + quoted(value) + ": expected a positive integer");
            return std::nullopt;
        }
        return number;
    }

    bool set_max_cache_bytes(std::string_view value) {
        // 0 is allowed: nothing is cached.
        const auto bytes = parse_unsigned<std::size_t>(value);
        if (!bytes) return fail("invalid --max-cache-bytes " + quoted(value) + ": expected a non-negative integer");
        options_.limits.cache_bytes_max = *bytes;
        return true;
    }

    // Sets `limit` from the value of option `name`, which must be at least 1.
    bool set_positive(std::string_view name, std::string_view value, std::size_t& limit) {
        const auto number = positive(name, value);
        if (number) limit = *number;
        return number.has_value();
    }

    bool set_max_topics(std::string_view value) {
        return set_positive("--max-topics", value, options_.limits.topics_max);
    }

    bool set_max_indexed_topics(std::string_view value) {
        return set_positive("--max-indexed-topics", value, options_.limits.indexed_topics_max);
    }

    bool set_max_topic_bytes(std::string_view value) {
        return set_positive("--max-topic-bytes", value, options_.limits.topic_bytes_max);
    }

    bool set_max_subscriptions(std::string_view value) {
        return set_positive("--max-subscriptions", value, options_.limits.subscriptions_max);
    }

    bool set_max_connections(std::string_view value) {
        const auto count = positive("--max-connections", value);
        if (count) options_.max_connections = *count;
        return count.has_value();
    }

    bool set_seed(std::string_view value) {
        const auto seed = parse_unsigned<std::uint64_t>(value);
        if (!seed) return fail("invalid --seed " + quoted(value) + ": expected an unsigned 64-bit integer");
        options_.seed = *seed;
        return true;
    }

    bool set_log_level(std::string_view value) {
        const auto level = parse_log_level(value);
        if (!level) return fail("invalid --log-level " + quoted(value) + ": expected error, warn, info or debug");
        options_.log_level = *level;
        return true;
    }

    // ADDRESS:PORT, [IPV6]:PORT, or PORT alone (on loopback).
    bool set_metrics(std::string_view value) {
        metrics_given_ = true;
        const auto bad = [&] {
            return fail("invalid --metrics " + quoted(value) +
                        ": expected ADDRESS:PORT, [IPV6-ADDRESS]:PORT or PORT (port 0 to 65535)");
        };
        std::string_view address = kDefaultBindAddress;
        std::string_view port_text = value;
        if (!value.empty() && value.front() == '[') {
            const std::size_t close = value.find("]:");
            if (close == std::string_view::npos || close == 1) return bad();
            address = value.substr(1, close - 1);
            port_text = value.substr(close + 2);
        } else if (const std::size_t colon = value.rfind(':'); colon != std::string_view::npos) {
            address = value.substr(0, colon);
            port_text = value.substr(colon + 1);
            if (address.empty() || address.find(':') != std::string_view::npos) return bad();  // IPv6: use brackets
        }
        const auto port = parse_unsigned<std::uint32_t>(port_text);
        if (!port || *port > std::numeric_limits<std::uint16_t>::max()) return bad();
        options_.metrics_bind = std::string(address);
        options_.metrics_port = static_cast<std::uint16_t>(*port);
        return true;
    }

    bool set_metrics_port(std::string_view value) {
        metrics_port_given_ = true;
        const auto port = port_number("--metrics-port", value);
        if (port) options_.metrics_port = *port;
        return port.has_value();
    }

    bool set_metrics_bind(std::string_view value) {
        if (value.empty()) return fail("invalid --metrics-bind '': expected an IP address");
        options_.metrics_bind = std::string(value);
        metrics_bind_given_ = true;
        return true;
    }

    bool set_metrics_port_file(std::string_view value) {
        if (value.empty()) return fail("invalid --metrics-port-file '': expected a path");
        options_.metrics_port_file = std::string(value);
        return true;
    }

    // ---- TLS options

    bool set_tls_port(std::string_view value) {
        const auto port = port_number("--tls-port", value);
        if (port) options_.tls_port = *port;
        return port.has_value();
    }

    // Sets `path` from option `name`, which needs a non-empty value.
    bool set_path(std::string_view name, std::string_view value, std::string& path) {
        if (value.empty()) return fail("invalid " + std::string(name) + " '': expected a path");
        path = std::string(value);
        tls_option_given_ = true;
        return true;
    }

    bool set_tls_port_file(std::string_view value) {
        return set_path("--tls-port-file", value, options_.tls_port_file);
    }
    bool set_tls_cert(std::string_view value) { return set_path("--tls-cert", value, options_.tls_cert_file); }
    bool set_tls_key(std::string_view value) { return set_path("--tls-key", value, options_.tls_key_file); }
    bool set_tls_client_ca(std::string_view value) {
        return set_path("--tls-client-ca", value, options_.tls_client_ca_file);
    }

    bool set_tls_handshake_timeout(std::string_view value) {
        const auto milliseconds = positive("--tls-handshake-timeout-ms", value);
        if (milliseconds) options_.tls_handshake_timeout_ms = *milliseconds;
        tls_option_given_ = true;
        return milliseconds.has_value();
    }

    // --tls-port needs a certificate and its key; the other TLS options need --tls-port.
    std::optional<UsageError> check_tls() const {
        if (!options_.tls_port) {
            if (tls_option_given_) return UsageError{"the --tls-* options need --tls-port"};
            return std::nullopt;
        }
        if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
            return UsageError{"--tls-port needs --tls-cert and --tls-key"};
        }
        return std::nullopt;
    }

    // ---- Durable topics

    bool set_data_dir(std::string_view value) {
        if (value.empty()) return fail("invalid --data-dir '': expected a directory");
        options_.data_dir = std::string(value);
        return true;
    }

    bool set_fsync(std::string_view value) {
        durability_option_given_ = true;
        if (value == "always") {
            options_.fsync = SyncPolicy::always;
        } else if (value == "interval") {
            options_.fsync = SyncPolicy::interval;
        } else {
            return fail("invalid --fsync " + quoted(value) + ": expected always or interval");
        }
        return true;
    }

    bool set_fsync_interval(std::string_view value) {
        durability_option_given_ = true;
        const auto milliseconds = positive("--fsync-interval-ms", value);
        if (milliseconds) options_.fsync_interval_ms = *milliseconds;
        return milliseconds.has_value();
    }

    std::optional<UsageError> check_durability() const {
        if (options_.data_dir.empty() && durability_option_given_) {
            return UsageError{"--fsync, --fsync-interval-ms and --salvage need --data-dir"};
        }
        return std::nullopt;
    }

    std::span<const std::string_view> arguments_;
    bool metrics_given_ = false;
    bool metrics_port_given_ = false;
    bool durability_option_given_ = false;  // --fsync, --fsync-interval-ms or --salvage
    bool tls_option_given_ = false;  // a --tls-* option other than --tls-port
    bool metrics_bind_given_ = false;
    std::size_t next_ = 0;
    ServerOptions options_;
    std::optional<UsageError> error_;
};

}  // namespace

CommandLine parse_command_line(std::span<const std::string_view> arguments) { return Parser(arguments).parse(); }

std::string usage_text() {
    return "usage: memqd [port] [cache_size] [options]\n"
           "\n"
           "memq broker: a publish/subscribe server speaking the aiomemq line protocol.\n"
           "\n"
           "positional arguments (as the reference servers take them):\n"
           "  port                     TCP port to listen on (default 7000; 0: any free port)\n"
           "  cache_size               messages cached per topic for replay (default 100; 0: none)\n"
           "\n"
           "options (--name value or --name=value):\n"
           "  --bind ADDRESS           IP address to listen on (default 127.0.0.1)\n"
           "  --port PORT              same as the positional port\n"
           "  --port-file PATH         write the bound port to PATH once listening\n"
           "  --cache-size N           same as the positional cache_size\n"
           "  --max-line-bytes N       longest accepted input line (default 1048576)\n"
           "  --max-pending-bytes N    unwritten output per connection before it is closed\n"
           "                           as a slow consumer (default 67108864)\n"
           "  --replay-window-bytes N  a subscribe's cache replay is turned into output only\n"
           "                           while less than N bytes wait for the connection\n"
           "                           (default 262144)\n"
           "  --max-cache-bytes N      bytes of cached messages, all topics together; the oldest\n"
           "                           are evicted first (default 268435456; 0: no cache)\n"
           "  --max-topics N           topics with a subscriber or a cached message; past it\n"
           "                           \"Too many topics\" (default 100000)\n"
           "  --max-indexed-topics N   topics ever named (their index is kept for good); past it\n"
           "                           \"Too many topics\" (default 1000000)\n"
           "  --max-topic-bytes N      longest topic name, in bytes of UTF-8 once decoded; a\n"
           "                           command naming a longer one gets \"Topic too long\"\n"
           "                           (default 1024)\n"
           "  --max-subscriptions N    topics one connection may be subscribed to; past it\n"
           "                           \"Too many subscriptions\" (default 10000)\n"
           "  --max-connections N      open connections; more are accepted and closed at once\n"
           "                           (default: the open-file limit minus 32)\n"
           "  --seed N                 seed for delivery \"one\" (default: random, logged at start)\n"
           "  --log-level LEVEL        error, warn, info or debug (default info)\n"
           "  --metrics ADDRESS:PORT   serve HTTP on ADDRESS:PORT ([IPV6]:PORT; PORT alone:\n"
           "                           on 127.0.0.1; port 0: any free port): /metrics in the\n"
           "                           Prometheus text format, /healthz, /readyz (default: off)\n"
           "  --metrics-port PORT      the same as --metrics PORT; --metrics-bind ADDRESS\n"
           "                           sets its address (default 127.0.0.1)\n"
           "  --metrics-port-file PATH write the bound metrics port to PATH once listening\n"
           "  --tls-port PORT          also listen for TLS on PORT, same --bind address (0: any\n"
           "                           free port); the plain port stays (default: no TLS)\n"
           "  --tls-port-file PATH     write the bound TLS port to PATH once listening\n"
           "  --tls-cert FILE          PEM server certificate (and chain), for --tls-port\n"
           "  --tls-key FILE           PEM private key of --tls-cert\n"
           "  --tls-client-ca FILE     require client certificates signed by this PEM CA\n"
           "                           (mutual TLS); others are refused at the handshake\n"
           "  --tls-handshake-timeout-ms N  a TLS handshake not done within N ms is closed\n"
           "                           (default 10000)\n"
           "  --data-dir DIR           durable topics: keep every index and cached message in DIR\n"
           "                           across restarts and crashes (default: none, all in memory)\n"
           "  --fsync always|interval  with --data-dir: always acks a send once its message is on\n"
           "                           stable storage; interval (the default) syncs every\n"
           "                           --fsync-interval-ms and may lose that much after a crash,\n"
           "                           but never hands out an index twice\n"
           "  --fsync-interval-ms N    the interval policy's sync period (default 1000)\n"
           "  --salvage                with --data-dir: start even if a record inside the log is\n"
           "                           corrupt, keeping every good record (see docs/operations.md)\n"
           "  --no-huge-pages          leave the heap on 4 KiB pages; by default memqd re-executes\n"
           "                           itself once with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (unless\n"
           "                           GLIBC_TUNABLES already sets it): transparent huge pages make a\n"
           "                           large recovery and compaction several times faster\n"
           "  -h, --help               print this help and exit\n"
           "  --version                print the version and exit\n"
           "\n"
           "SIGINT or SIGTERM stops accepting, flushes pending output (up to 2 s) and exits 0.\n"
           "Bad arguments exit 2.\n";
}

}  // namespace memq
