// cli_test.cpp — specifications of the `memq` command line tool, run as a process.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <stdlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "broker_process.hpp"

namespace memq {
namespace {

using testing::BrokerProcess;

struct CliRun {
    int exit_code = -1;
    std::string out;
};

// Runs `memq ARGS` through the shell, with stdin_format's printf output as its
// standard input; stderr joins stdout. A run that hangs is killed after 20 s.
CliRun memq_cli(const std::string& args, const std::string& stdin_format = {}) {
    std::string command = std::string("timeout 20 '") + MEMQ_CLI_PATH + "' " + args + " 2>&1";
    if (!stdin_format.empty()) command = "printf '" + stdin_format + "' | " + command;
    CliRun run;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return run;
    std::array<char, 4096> chunk{};
    std::size_t got = 0;
    while ((got = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0) run.out.append(chunk.data(), got);
    const int status = pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
}

std::string port_of(const BrokerProcess& broker) { return "--port " + std::to_string(broker.port()); }

TEST(Cli, PubThenSubCountPrintsTheMessage) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    EXPECT_EQ(memq_cli(port_of(broker) + " pub news hello").exit_code, 0);
    const CliRun sub = memq_cli(port_of(broker) + " sub news --count 1");
    EXPECT_EQ(sub.exit_code, 0);
    EXPECT_EQ(sub.out, "hello\n");
}

TEST(Cli, PubFromStandardInputSendsOneMessagePerLine) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    EXPECT_EQ(memq_cli(port_of(broker) + " pub news -", "one\\ntwo\\nthree\\n").exit_code, 0);
    const CliRun sub = memq_cli(port_of(broker) + " sub news --count 3");
    EXPECT_EQ(sub.out, "one\ntwo\nthree\n");
}

TEST(Cli, SubJsonPrintsTheWholeMessageObject) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    memq_cli(port_of(broker) + " pub news hi");
    const CliRun sub = memq_cli(port_of(broker) + " sub news --count 1 --json");
    EXPECT_NE(sub.out.find("\"msg\": \"hi\""), std::string::npos) << sub.out;
    EXPECT_NE(sub.out.find("\"index\": 0"), std::string::npos) << sub.out;
}

TEST(Cli, SubLastSeenSkipsWhatWasSeen) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    memq_cli(port_of(broker) + " pub news -", "a\\nb\\n");
    EXPECT_EQ(memq_cli(port_of(broker) + " sub news --last-seen 0 --count 1").out, "b\n");
}

TEST(Cli, NoBrokerIsAOneLineErrorAndExitCodeOne) {
    const CliRun run = memq_cli("--port 1 pub news hello");
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_EQ(run.out.rfind("memq: cannot connect to 127.0.0.1:1", 0), 0u) << run.out;
    EXPECT_EQ(run.out.find('\n'), run.out.size() - 1) << run.out;
}

TEST(Cli, UsageErrorsExitWithCodeTwo) {
    EXPECT_EQ(memq_cli("").exit_code, 2);
    EXPECT_EQ(memq_cli("frobnicate").exit_code, 2);
    EXPECT_EQ(memq_cli("pub onlytopic").exit_code, 2);
    EXPECT_EQ(memq_cli("sub t --count many").exit_code, 2);
    EXPECT_EQ(memq_cli("--port 70000 sub t").exit_code, 2);
}

TEST(Cli, HelpPrintsUsageAndSucceeds) {
    const CliRun run = memq_cli("--help");
    EXPECT_EQ(run.exit_code, 0);
    EXPECT_NE(run.out.find("usage: memq"), std::string::npos);
}

// A memqd with its metrics port on (learned from --metrics-port-file, which
// memqd writes before its main port file, so it is there once `broker` is up).
struct MeteredBroker {
    std::string directory = make_directory();
    BrokerProcess broker{{"--metrics-port", "0", "--metrics-port-file", directory + "/metrics-port"}};
    std::string metrics_port = read_port();

    ~MeteredBroker() {
        std::error_code ignored;
        std::filesystem::remove_all(directory, ignored);
    }
    static std::string make_directory() {
        char pattern[] = "/tmp/memq-cli-test-XXXXXX";
        return mkdtemp(pattern) != nullptr ? pattern : "/tmp";
    }
    std::string read_port() const {
        std::ifstream in(directory + "/metrics-port");
        std::string port;
        in >> port;
        return port;
    }
};

// The value printed on the first row of `table` labelled `label`.
std::string figure(const std::string& table, const std::string& label) {
    const std::size_t row = table.find("\n" + label + "  ");
    if (row == std::string::npos) return "(no row " + label + ")";
    std::istringstream rest(table.substr(row + 1 + label.size()));
    std::string value;
    rest >> value;
    return value;
}

TEST(Cli, StatsPrintsTheBrokersFigures) {
    MEMQ_REQUIRE_MEMQD();
    MeteredBroker metered;
    ASSERT_FALSE(metered.metrics_port.empty());
    memq_cli(port_of(metered.broker) + " pub alpha -", "a\\nb\\nc\\n");
    memq_cli(port_of(metered.broker) + " pub news -", "one\\ntwo\\nthree\\n");
    const CliRun stats = memq_cli("stats --count 1 --metrics-port " + metered.metrics_port);
    EXPECT_EQ(stats.exit_code, 0) << stats.out;
    EXPECT_EQ(stats.out.rfind("memqd ", 0), 0u) << stats.out;
    // Six sends in all (three to "alpha" and three to "news"), each a published
    // message, and each connection's hello (the SDK's first line): eight lines.
    EXPECT_EQ(figure(stats.out, "messages published"), "6") << stats.out;
    EXPECT_EQ(figure(stats.out, "lines processed"), "8") << stats.out;
    EXPECT_EQ(figure(stats.out, "connections accepted"), "2") << stats.out;
    EXPECT_EQ(figure(stats.out, "topics known"), "2") << stats.out;
    EXPECT_EQ(figure(stats.out, "cached messages"), "6") << stats.out;
    EXPECT_EQ(stats.out.find("per second"), std::string::npos) << stats.out;  // one refresh: no rates
}

TEST(Cli, StatsWatchShowsRatesFromTheSecondRefresh) {
    MEMQ_REQUIRE_MEMQD();
    MeteredBroker metered;
    const CliRun stats = memq_cli("stats --watch 0.1 --count 2 --metrics-port " + metered.metrics_port);
    EXPECT_EQ(stats.exit_code, 0) << stats.out;
    const std::size_t second = stats.out.find("\nmemqd ");
    ASSERT_NE(second, std::string::npos) << stats.out;
    EXPECT_EQ(stats.out.find("per second"), stats.out.find("per second", second)) << stats.out;
}

TEST(Cli, StatsWithoutAMetricsPortFails) {
    EXPECT_EQ(memq_cli("stats").exit_code, 2);
    EXPECT_EQ(memq_cli("stats --metrics-port 1 --watch 0").exit_code, 2);
    const CliRun run = memq_cli("stats --metrics-port 1");
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_EQ(run.out.rfind("memq: cannot reach the metrics port 127.0.0.1:1", 0), 0u) << run.out;
}

}  // namespace
}  // namespace memq
