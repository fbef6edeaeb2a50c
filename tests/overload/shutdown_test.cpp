// shutdown_test.cpp — memqd's stop on a signal: SIGTERM while subscribers still
// have output queued in memqd delivers what a reader can take, exits 0 in
// bounded time, and both the reader and a non-reader see EOF, not a reset;
// two signals at once still end in a clean exit.
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "line_client.hpp"
#include "memqd_process.hpp"
#include "overload.hpp"
#include "wire.hpp"

namespace memq::overload {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using e2e::LineClient;

constexpr int kMessages = 64;
constexpr std::size_t kMessageBytes = 64 * 1024;  // 4 MiB queued per subscriber, far past the kernel buffers
constexpr auto kExitBound = 5s;                   // memqd's own flush bound is 2 s

std::string msg_of(int i) { return std::to_string(i) + ":" + std::string(kMessageBytes, 's'); }

TEST(Shutdown, SigtermFlushesQueuedOutputToAReaderThenClosesEveryoneWithEof) {
    e2e::MemqdProcess memqd(e2e::any_port());
    LineClient late_reader(memqd.port(), 16 * 1024);  // reads only once SIGTERM is sent
    LineClient non_reader(memqd.port(), 16 * 1024);   // never reads before memqd is gone
    for (LineClient* client : {&late_reader, &non_reader}) {
        client->send_line(e2e::subscribe_command("flood"));
        ASSERT_TRUE(e2e::is_json(client->read_line(), e2e::kAck));
    }
    {
        LineClient publisher(memqd.port());
        std::string batch;
        for (int i = 0; i < kMessages; ++i) batch += e2e::send_command("flood", msg_of(i)) + "\n";
        publisher.send_raw(batch, 20s);
        // Each ack comes after its deliveries are queued: all 4 MiB now wait in memqd.
        for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(e2e::is_json(publisher.read_line(), e2e::kAck)) << i;
    }

    const auto signalled = Clock::now();
    ASSERT_EQ(kill(memqd.pid(), SIGTERM), 0);
    int delivered = 0;
    for (; delivered < kMessages; ++delivered) {
        const std::optional<std::string> line = late_reader.read_line(5s);
        ASSERT_TRUE(e2e::is_json(line, e2e::delivered_message("flood", msg_of(delivered), delivered)))
            << "message " << delivered;
    }
    const LineClient::Ending reader_end = late_reader.read_until_closed(5s);
    const auto reader_closed = Clock::now();
    while (memqd.running() && Clock::now() - signalled < 2 * kExitBound) std::this_thread::yield();
    const auto exited = Clock::now();
    const e2e::ExitStatus status = memqd.stop();  // already reaped: returns how it ended

    // The non-reader gets what its kernel buffers held (whole lines, in order), then EOF.
    int non_reader_lines = 0;
    for (std::optional<std::string> line; (line = non_reader.read_line(1s));) {
        ASSERT_TRUE(e2e::is_json(line, e2e::delivered_message("flood", msg_of(non_reader_lines), non_reader_lines)))
            << "non-reader line " << non_reader_lines;
        ++non_reader_lines;
    }
    const LineClient::Ending non_reader_end = non_reader.read_until_closed(2s);

    const auto ms = [&](Clock::time_point t) {
        return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t - signalled).count());
    };
    figure("shutdown", std::to_string(kMessages) + " x 64 KiB queued per subscriber; after SIGTERM the reader got " +
                           std::to_string(delivered) + " messages then " + e2e::to_string(reader_end) + " at +" +
                           ms(reader_closed) + " ms; memqd " + e2e::describe(status) + " at +" + ms(exited) +
                           " ms; the non-reader got " + std::to_string(non_reader_lines) + " whole messages then " +
                           e2e::to_string(non_reader_end));
    EXPECT_EQ(reader_end, LineClient::Ending::eof);
    EXPECT_TRUE(status.is_clean()) << e2e::describe(status) << "; stderr:\n" << memqd.stderr_text();
    EXPECT_LT(exited - signalled, kExitBound);
    EXPECT_EQ(non_reader_end, LineClient::Ending::eof);
}

// Two signals at once (an init system's SIGTERM and a Ctrl-C, or one sent to
// the process group and one to memqd): the second is already waiting when the
// first one's shutdown ends, and must not keep memqd running.
TEST(Shutdown, TwoSignalsAtOnceStillExitCleanly) {
    e2e::MemqdProcess memqd(e2e::any_port());
    {
        LineClient client(memqd.port());
        client.send_line(e2e::subscribe_command("t"));
        ASSERT_TRUE(e2e::is_json(client.read_line(), e2e::kAck));
    }
    const auto signalled = Clock::now();
    ASSERT_EQ(kill(memqd.pid(), SIGINT), 0);
    ASSERT_EQ(kill(memqd.pid(), SIGTERM), 0);
    while (memqd.running() && Clock::now() - signalled < kExitBound) std::this_thread::yield();
    EXPECT_FALSE(memqd.running()) << "memqd still runs " << kExitBound.count() << " s after SIGINT and SIGTERM";
    const e2e::ExitStatus status = memqd.stop();
    EXPECT_LT(Clock::now() - signalled, 2 * kExitBound);
    EXPECT_TRUE(status.is_clean()) << e2e::describe(status) << "; stderr:\n" << memqd.stderr_text();
}

}  // namespace
}  // namespace memq::overload
