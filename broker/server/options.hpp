// options.hpp — memqd's command line: `memqd [port] [cache_size] [--option value...]`.
//
// Rules: pure parsing, no IO; numbers are parsed strictly (the whole argument,
// decimal, no sign, no spaces); anything not understood is a UsageError whose
// message names the problem in one line. The two positional arguments are the
// reference servers' own (port, then cache size), so memqd drops in for them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "durability.hpp"
#include "limits.hpp"
#include "log.hpp"

namespace memq {

inline constexpr std::uint16_t kDefaultPort = 7000;
inline constexpr std::string_view kDefaultBindAddress = "127.0.0.1";

struct ServerOptions {
    std::string bind_address{kDefaultBindAddress};
    std::uint16_t port = kDefaultPort;  // 0: any free port
    std::string port_file;              // empty: none written
    Limits limits;  // connections_max is filled in by memqd unless max_connections is given
    std::optional<std::size_t> max_connections;  // none: the open-file limit minus a reserve
    std::optional<std::uint64_t> seed;  // none: drawn from std::random_device
    LogLevel log_level = LogLevel::info;
    std::optional<std::uint16_t> metrics_port;  // none: no metrics endpoint; 0: any free port
    std::string metrics_bind{kDefaultBindAddress};
    std::string metrics_port_file;  // empty: none written
    // TLS: a second listener on the same --bind address; none unless tls_port is given.
    std::optional<std::uint16_t> tls_port;  // 0: any free port
    std::string tls_port_file;              // empty: none written
    std::string tls_cert_file;              // required with tls_port
    std::string tls_key_file;               // required with tls_port
    std::string tls_client_ca_file;         // empty: no client certificates (no mTLS)
    std::uint64_t tls_handshake_timeout_ms = 10000;
    // Durable topics: none unless data_dir is given (docs/operations.md, "Durable topics").
    std::string data_dir;
    SyncPolicy fsync = SyncPolicy::interval;
    std::uint64_t fsync_interval_ms = 1000;
    // Re-execute with glibc's transparent-huge-page heap (huge_pages.hpp).
    bool huge_pages = true;
    bool salvage = false;  // start from a log with a corrupt record inside, keeping every good record
};

struct RunServer {
    ServerOptions options;
};
struct ShowHelp {};
struct ShowVersion {};
struct UsageError {
    std::string message;  // one line, no trailing newline
};

using CommandLine = std::variant<RunServer, ShowHelp, ShowVersion, UsageError>;

// `arguments` excludes the program name.
CommandLine parse_command_line(std::span<const std::string_view> arguments);

// The text of --help, ending in a newline.
std::string usage_text();

}  // namespace memq
