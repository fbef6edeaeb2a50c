// options_metrics_test.cpp — memqd's metrics options: --metrics ADDRESS:PORT
// (loopback when only a port is given) and the older --metrics-port,
// --metrics-bind and --metrics-port-file, parsed without starting anything.
#include "options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace memq {
namespace {

CommandLine parse(std::vector<std::string_view> arguments) { return parse_command_line(arguments); }

ServerOptions options_of(std::vector<std::string_view> arguments) {
    const CommandLine line = parse(std::move(arguments));
    const auto* run = std::get_if<RunServer>(&line);
    if (run == nullptr) {
        ADD_FAILURE() << "not accepted: " << std::get<UsageError>(line).message;
        return {};
    }
    return run->options;
}

std::string error_of(std::vector<std::string_view> arguments) {
    const CommandLine line = parse(std::move(arguments));
    const auto* error = std::get_if<UsageError>(&line);
    return error == nullptr ? std::string("(accepted)") : error->message;
}

TEST(MetricsOption, OffByDefault) { EXPECT_FALSE(options_of({}).metrics_port.has_value()); }

TEST(MetricsOption, AddressAndPort) {
    const ServerOptions options = options_of({"--metrics", "0.0.0.0:9470"});
    EXPECT_EQ(options.metrics_bind, "0.0.0.0");
    EXPECT_EQ(options.metrics_port, 9470);
}

TEST(MetricsOption, APortAloneIsOnLoopback) {
    const ServerOptions options = options_of({"--metrics=9470"});
    EXPECT_EQ(options.metrics_bind, "127.0.0.1");
    EXPECT_EQ(options.metrics_port, 9470);
}

TEST(MetricsOption, PortZeroTakesAnyFreePort) { EXPECT_EQ(options_of({"--metrics", "127.0.0.1:0"}).metrics_port, 0); }

TEST(MetricsOption, AnIpv6AddressGoesInBrackets) {
    const ServerOptions options = options_of({"--metrics", "[::1]:9470"});
    EXPECT_EQ(options.metrics_bind, "::1");
    EXPECT_EQ(options.metrics_port, 9470);
    EXPECT_NE(error_of({"--metrics", "::1:9470"}).find("invalid --metrics '::1:9470'"), std::string::npos);
}

TEST(MetricsOption, TheHighestPortIs65535) {
    EXPECT_EQ(options_of({"--metrics", "127.0.0.1:65534"}).metrics_port, 65534);
    EXPECT_EQ(options_of({"--metrics", "127.0.0.1:65535"}).metrics_port, 65535);
    EXPECT_NE(error_of({"--metrics", "127.0.0.1:65536"}).find("invalid --metrics '127.0.0.1:65536'"),
              std::string::npos);
}

TEST(MetricsOption, MalformedValuesAreUsageErrors) {
    for (const std::string_view value : {"", ":9470", "127.0.0.1:", "127.0.0.1:x", "[::1]9470", "[]:9470",
                                         "[::1]:", "9470 ", "-1"}) {
        EXPECT_NE(error_of({"--metrics", value}).find("invalid --metrics"), std::string::npos) << value;
    }
}

TEST(MetricsOption, NeedsAValue) { EXPECT_NE(error_of({"--metrics"}).find("needs a value"), std::string::npos); }

TEST(MetricsOption, ThePortFileGoesWithIt) {
    const ServerOptions options = options_of({"--metrics", "0", "--metrics-port-file", "/tmp/m"});
    EXPECT_EQ(options.metrics_port_file, "/tmp/m");
}

TEST(MetricsOption, IsNotMixedWithMetricsPortOrMetricsBind) {
    EXPECT_NE(error_of({"--metrics", "0", "--metrics-port", "1"}).find("--metrics names the address and port"),
              std::string::npos);
    EXPECT_NE(error_of({"--metrics-bind", "::1", "--metrics", "0"}).find("--metrics names the address and port"),
              std::string::npos);
}

TEST(MetricsOption, TheOlderPortAndBindOptionsStillWork) {
    const ServerOptions options = options_of({"--metrics-port", "9470", "--metrics-bind", "::1"});
    EXPECT_EQ(options.metrics_bind, "::1");
    EXPECT_EQ(options.metrics_port, 9470);
}

TEST(MetricsOption, APortFileWithoutAMetricsPortIsAUsageError) {
    EXPECT_NE(error_of({"--metrics-port-file", "/tmp/m"}).find("need --metrics"), std::string::npos);
}

TEST(MetricsOption, TheHelpNamesIt) { EXPECT_NE(usage_text().find("--metrics ADDRESS:PORT"), std::string::npos); }

}  // namespace
}  // namespace memq
