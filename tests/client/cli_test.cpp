// cli_test.cpp — specifications of the `memq` command line tool, run as a process.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
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

}  // namespace
}  // namespace memq
