// lifecycle_test.cpp — end to end: memqd's command line, start-up log, and stopping on signals.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "line_client.hpp"
#include "memqd_process.hpp"
#include "wire.hpp"

namespace memq::e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A usage error: exit code 2 and exactly one line on stderr that contains `needle`.
void expect_usage_error(const RunResult& result, std::string_view needle) {
    EXPECT_TRUE(result.status.exited && result.status.code == 2) << describe(result.status);
    EXPECT_EQ(std::count(result.stderr_text.begin(), result.stderr_text.end(), '\n'), 1) << result.stderr_text;
    EXPECT_EQ(result.stderr_text.rfind("memqd: error: ", 0), 0u) << result.stderr_text;
    EXPECT_NE(result.stderr_text.find(needle), std::string::npos) << result.stderr_text;
}

TEST(Lifecycle, SigtermExitsWithCodeZero) {
    MemqdProcess memqd(any_port());
    const ExitStatus status = memqd.signal_and_wait(SIGTERM);
    EXPECT_TRUE(status.is_clean()) << describe(status);
}

TEST(Lifecycle, SigintExitsWithCodeZero) {
    MemqdProcess memqd(any_port());
    const ExitStatus status = memqd.signal_and_wait(SIGINT);
    EXPECT_TRUE(status.is_clean()) << describe(status);
}

TEST(Lifecycle, SigtermWithConnectedIdleClientsExitsZero) {
    MemqdProcess memqd(any_port());
    LineClient client(memqd.port());
    client.send_line(subscribe_command("t"));
    ASSERT_TRUE(is_json(client.read_line(), kAck));
    const ExitStatus status = memqd.signal_and_wait(SIGTERM);
    EXPECT_TRUE(status.is_clean()) << describe(status);
    EXPECT_EQ(client.read_until_closed(1s), LineClient::Ending::eof);  // closed gracefully, not reset
}

TEST(Lifecycle, SigtermWhileSubscriberHasPendingOutputExitsZeroWithinBound) {
    MemqdProcess memqd(any_port());
    LineClient stalled(memqd.port(), 4096);  // subscribes, then never reads
    stalled.send_line(subscribe_command("flood"));
    ASSERT_TRUE(is_json(stalled.read_line(), kAck));

    // ~8 MiB of deliveries: more than the kernel buffers between memqd and a
    // reader that does not read, so some is still queued in memqd. Every
    // delivery is queued before the publisher's ack of it.
    LineClient publisher(memqd.port());
    const std::string message = send_command("flood", std::string(64 * 1024, 'm')) + "\n";
    std::string batch;
    for (int i = 0; i < 128; ++i) batch += message;
    publisher.send_raw(batch, 20s);
    for (int i = 0; i < 128; ++i) ASSERT_TRUE(is_json(publisher.read_line(), kAck)) << "ack " << i;

    const auto started = Clock::now();
    const ExitStatus status = memqd.signal_and_wait(SIGTERM, 10s);
    const auto took = Clock::now() - started;
    EXPECT_TRUE(status.is_clean()) << describe(status) << "; stderr:\n" << memqd.stderr_text();
    EXPECT_LT(took, 5s);
}

TEST(Lifecycle, StartupLogLineNamesAddressPortAndLimits) {
    MemqdProcess memqd(any_port({"--cache-size", "7", "--max-line-bytes", "2048", "--max-pending-bytes", "4096"}));
    const std::string log = memqd.stderr_text();
    EXPECT_NE(log.find(" info: "), std::string::npos) << log;
    EXPECT_NE(log.find("127.0.0.1:" + std::to_string(memqd.port())), std::string::npos) << log;
    EXPECT_NE(log.find("cache_size=7"), std::string::npos) << log;
    EXPECT_NE(log.find("max_line_bytes=2048"), std::string::npos) << log;
    EXPECT_NE(log.find("max_pending_bytes=4096"), std::string::npos) << log;
    EXPECT_TRUE(memqd.stop().is_clean());
}

TEST(Lifecycle, NonLoopbackBindLogsWarning) {
    MemqdProcess memqd(any_port({"--bind", "0.0.0.0"}));
    const std::string log = memqd.stderr_text();
    EXPECT_NE(log.find(" warn: "), std::string::npos) << log;
    EXPECT_NE(log.find("not a loopback address"), std::string::npos) << log;
    EXPECT_TRUE(memqd.stop().is_clean());
}

TEST(Lifecycle, LoopbackBindLogsNoWarning) {
    MemqdProcess memqd(any_port());
    EXPECT_EQ(memqd.stderr_text().find(" warn: "), std::string::npos) << memqd.stderr_text();
    EXPECT_TRUE(memqd.stop().is_clean());
}

TEST(CommandLine, PortOutOfRangeExitsTwoWithOneLineError) {
    expect_usage_error(run_memqd({"70000"}), "70000");
    expect_usage_error(run_memqd({"--port", "70000"}), "70000");
}

TEST(CommandLine, NegativeCacheSizeExitsTwoWithOneLineError) {
    expect_usage_error(run_memqd({"7000", "-1"}), "cache size '-1'");
    expect_usage_error(run_memqd({"--cache-size", "-1"}), "cache size '-1'");
}

TEST(CommandLine, NonNumericValuesExitTwoWithOneLineError) {
    expect_usage_error(run_memqd({"seven"}), "port 'seven'");
    expect_usage_error(run_memqd({"--cache-size", "10x"}), "'10x'");
    expect_usage_error(run_memqd({"--max-line-bytes", " 5"}), "' 5'");
    expect_usage_error(run_memqd({"--log-level", "loud"}), "'loud'");
}

TEST(CommandLine, LimitCountsMustBePositive) {
    expect_usage_error(run_memqd({"--max-topics", "0"}), "--max-topics '0'");
    expect_usage_error(run_memqd({"--max-indexed-topics", "-1"}), "--max-indexed-topics '-1'");
    expect_usage_error(run_memqd({"--max-connections", "many"}), "--max-connections 'many'");
    expect_usage_error(run_memqd({"--max-cache-bytes", "1k"}), "--max-cache-bytes '1k'");
    expect_usage_error(run_memqd({"--max-topic-bytes", "0"}), "--max-topic-bytes '0'");
    expect_usage_error(run_memqd({"--max-topic-bytes", "1KiB"}), "--max-topic-bytes '1KiB'");
    expect_usage_error(run_memqd({"--max-subscriptions", "0"}), "--max-subscriptions '0'");
    expect_usage_error(run_memqd({"--max-subscriptions=-5"}), "--max-subscriptions '-5'");
}

TEST(CommandLine, UnknownOptionExitsTwoWithOneLineError) {
    expect_usage_error(run_memqd({"--no-such-option"}), "--no-such-option");
}

TEST(CommandLine, MissingOptionValueExitsTwoWithOneLineError) {
    expect_usage_error(run_memqd({"--port"}), "--port");
}

TEST(CommandLine, PortInUseExitsTwoWithOneLineError) {
    MemqdProcess first(any_port());
    const RunResult second = run_memqd({"--port", std::to_string(first.port())});
    expect_usage_error(second, std::to_string(first.port()));
    EXPECT_NE(second.stderr_text.find("in use"), std::string::npos) << second.stderr_text;
    EXPECT_TRUE(first.running());
    EXPECT_TRUE(first.stop().is_clean());
}

TEST(CommandLine, HelpExitsZeroAndPrintsUsage) {
    const RunResult result = run_memqd({"--help"});
    EXPECT_TRUE(result.status.is_clean()) << describe(result.status);
    EXPECT_EQ(result.stdout_text.rfind("usage: memqd [port] [cache_size]", 0), 0u) << result.stdout_text;
    for (const char* option : {"--bind", "--port", "--port-file", "--cache-size", "--max-line-bytes",
                               "--max-pending-bytes", "--max-cache-bytes", "--max-topics", "--max-indexed-topics",
                               "--max-topic-bytes", "--max-subscriptions", "--max-connections", "--seed", "--log-level",
                               "--metrics", "--metrics-port-file", "--version"}) {
        EXPECT_NE(result.stdout_text.find(option), std::string::npos) << option;
    }
    EXPECT_EQ(result.stderr_text, "");
}

TEST(CommandLine, VersionPrintsNameAndVersion) {
    const RunResult result = run_memqd({"--version"});
    EXPECT_TRUE(result.status.is_clean()) << describe(result.status);
    EXPECT_EQ(result.stdout_text, "memqd 0.1.0\n");
}

TEST(CommandLine, PositionalPortAndCacheSizeAreAccepted) {
    const std::uint16_t free_port = pick_free_port();
    MemqdProcess memqd({std::to_string(free_port), "2"});
    ASSERT_EQ(memqd.port(), free_port);
    {
        LineClient sender(memqd.port());
        for (const char* msg : {"a", "b", "c"}) {
            sender.send_line(send_command("t", msg));
            ASSERT_TRUE(is_json(sender.read_line(), kAck));
        }
        sender.send_line(subscribe_command("t"));  // a cache of 2 replays the last two
        EXPECT_TRUE(is_json(sender.read_line(), kAck));
        EXPECT_TRUE(is_json(sender.read_line(), delivered_message("t", "b", 1)));
        EXPECT_TRUE(is_json(sender.read_line(), delivered_message("t", "c", 2)));
        EXPECT_TRUE(sender.nothing_arrives_within(200ms));
    }
    EXPECT_TRUE(memqd.stop().is_clean());
}

}  // namespace
}  // namespace memq::e2e
