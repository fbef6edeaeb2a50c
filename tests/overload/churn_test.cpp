// churn_test.cpp — overload (c): 100,000 connect/disconnect cycles leak neither
// descriptors nor memory in memqd.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "memqd_process.hpp"
#include "overload.hpp"
#include "wire.hpp"

namespace memq::overload {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kCycles = kSanitized ? 20'000 : 100'000;
constexpr std::size_t kWarmup = kCycles / 10;  // allocator pools settle before the baseline
constexpr std::size_t kBatch = 50;             // connections open at once
// Under ASan, freed memory stays resident in the quarantine (256 MiB by default):
// there LeakSanitizer at memqd's exit (exit code checked) is the leak check.
constexpr std::uint64_t kRssGrowthBound = kSanitized ? 288 * kMiB : 4 * kMiB;

// Reads one "\r\n"-terminated line from a blocking socket, waiting up to 5 s.
std::string read_reply(int fd) {
    std::string line;
    const auto deadline = Clock::now() + 5s;
    while (line.size() < 2 || line.compare(line.size() - 2, 2, "\r\n") != 0) {
        pollfd readable{fd, POLLIN, 0};
        if (Clock::now() > deadline || poll(&readable, 1, 100) < 0) return "(timeout) " + line;
        if (!(readable.revents & POLLIN)) continue;
        char byte;
        if (recv(fd, &byte, 1, 0) != 1) return "(closed) " + line;
        line += byte;
    }
    line.resize(line.size() - 2);
    return line;
}

// One batch: kBatch connections; each subscribes (and every other one publishes)
// and is answered; then one in ten leaves with "quit", one in ten with close() and
// the rest with a reset (a reset leaves no TIME_WAIT behind, so the ephemeral ports last).
void run_batch(std::uint16_t port, std::size_t batch) {
    std::vector<int> fds;
    for (std::size_t i = 0; i < kBatch; ++i) fds.push_back(connect_loopback(port));
    const std::string topic = "churn-" + std::to_string(batch % 16);
    for (std::size_t i = 0; i < fds.size(); ++i) {
        std::string lines = e2e::subscribe_command(topic) + "\n";
        if (i % 2 == 1) lines += e2e::send_command(topic + "-x", "m", "one") + "\n";
        ASSERT_EQ(send(fds[i], lines.data(), lines.size(), MSG_NOSIGNAL), static_cast<ssize_t>(lines.size()));
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
        ASSERT_TRUE(e2e::is_json(read_reply(fds[i]), e2e::kAck)) << "batch " << batch << " connection " << i;
        if (i % 2 == 1) {
            ASSERT_TRUE(e2e::is_json(read_reply(fds[i]), e2e::kAck));
        }
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
        switch (i % 10) {
            case 0: {
                const std::string quit = "quit\n";
                send(fds[i], quit.data(), quit.size(), MSG_NOSIGNAL);
                close(fds[i]);
                break;
            }
            case 1: close(fds[i]); break;
            default: close_with_reset(fds[i]); break;
        }
    }
}

// Polls until memqd holds at most `target` descriptors; returns the last count.
std::size_t wait_for_fds(pid_t pid, std::size_t target, std::chrono::milliseconds deadline) {
    const auto until = Clock::now() + deadline;
    std::size_t count = count_fds(pid);
    while (count > target && Clock::now() < until) {
        std::this_thread::yield();
        count = count_fds(pid);
    }
    return count;
}

TEST(Churn, HundredThousandConnectDisconnectCyclesLeakNoDescriptorsNorMemory) {
    e2e::MemqdProcess memqd(e2e::any_port());
    const std::size_t fds_at_start = count_fds(memqd.pid());
    const auto started = Clock::now();
    std::size_t batch = 0;
    for (; batch * kBatch < kWarmup; ++batch) ASSERT_NO_FATAL_FAILURE(run_batch(memqd.port(), batch));
    ASSERT_EQ(wait_for_fds(memqd.pid(), fds_at_start, 10s), fds_at_start) << "after the warm-up";
    const Memory baseline = read_memory(memqd.pid());

    for (; batch * kBatch < kCycles; ++batch) ASSERT_NO_FATAL_FAILURE(run_batch(memqd.port(), batch));
    const std::size_t fds_at_end = wait_for_fds(memqd.pid(), fds_at_start, 10s);
    const Memory end = read_memory(memqd.pid());
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();

    const std::uint64_t growth = end.rss_bytes > baseline.rss_bytes ? end.rss_bytes - baseline.rss_bytes : 0;
    figure("churn", std::string(build_flavour()) + "; " + std::to_string(batch * kBatch) + " cycles (" +
                        std::to_string(kBatch) + " open at once; subscribe/send, then quit|reset|close) in " +
                        std::to_string(seconds) + " s");
    figure("churn", "memqd fds at start=" + std::to_string(fds_at_start) + " at end=" + std::to_string(fds_at_end) +
                        "; VmRSS after warm-up=" + mib(baseline.rss_bytes) + " at end=" + mib(end.rss_bytes) +
                        " growth=" + mib(growth) + " bound=" + mib(kRssGrowthBound) + "; VmHWM=" + mib(end.hwm_bytes));
    EXPECT_EQ(fds_at_end, fds_at_start);
    EXPECT_LT(growth, kRssGrowthBound);
    const e2e::ExitStatus status = memqd.stop();
    EXPECT_TRUE(status.is_clean()) << e2e::describe(status);
}

}  // namespace
}  // namespace memq::overload
