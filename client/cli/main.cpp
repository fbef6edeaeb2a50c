// cli/main.cpp — `memq`, the command line client: sub, pub and bench over memq::Client.
//
// Exit codes: 0 done, 1 the broker is not there or refused or dropped us,
// 2 usage error. Errors are one line on stderr, starting with "memq: ".
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "client.hpp"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage = R"(usage: memq [--host HOST] [--port PORT] COMMAND ...

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

options:
  --host HOST   broker address (default 127.0.0.1)
  --port PORT   broker port (default 7000)
  --help        this text
)";

struct UsageError {
    std::string text;
};

struct Arguments {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7000;
    std::vector<std::string> positional;
    std::optional<std::int64_t> last_seen;
    std::optional<std::int64_t> count;
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
    memq::Client client;
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
        throw UsageError{"unknown command '" + command + "'"};
    } catch (const UsageError& error) {
        std::fprintf(stderr, "memq: %s (see memq --help)\n", error.text.c_str());
        return kExitUsage;
    } catch (const memq::Error& error) {
        std::fprintf(stderr, "memq: %s\n", error.what());
        return kExitFailure;
    }
}
