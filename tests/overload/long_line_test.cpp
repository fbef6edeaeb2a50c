// long_line_test.cpp — overload (b): 1 GiB without a newline on one connection.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "line_client.hpp"
#include "memqd_process.hpp"
#include "overload.hpp"
#include "wire.hpp"

namespace memq::overload {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kLineLimit = 1 * kMiB;  // memqd's default --max-line-bytes
constexpr std::uint64_t kVolume = kSanitized ? 256 * kMiB : kGiB;
constexpr std::uint64_t kMemorySlack = kSanitized ? 64 * kMiB : 8 * kMiB;

TEST(LongLine, GigabyteWithoutNewlineGetsLineTooLongThenCloseWithBoundedMemory) {
    e2e::MemqdProcess memqd(e2e::any_port());
    const int fd = connect_loopback(memqd.port());
    set_nonblocking(fd);
    const Memory before = read_memory(memqd.pid());
    const bool peak_reset = reset_peak(memqd.pid());

    // Write 'x' until 1 GiB is out or memqd stops taking it; read whatever comes back.
    const std::string chunk(256 * 1024, 'x');
    std::uint64_t sent = 0;
    std::string received;
    bool sending = true, eof = false;
    std::string send_error;
    const auto deadline = Clock::now() + (kSanitized ? 120s : 60s);
    while (!eof && Clock::now() < deadline) {
        pollfd events{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
        if (poll(&events, 1, 100) <= 0) continue;
        if (events.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buffer[4096];
            const ssize_t got = recv(fd, buffer, sizeof buffer, 0);
            if (got > 0) received.append(buffer, static_cast<std::size_t>(got));
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) eof = true;
        }
        if (sending && (events.revents & POLLOUT)) {
            const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), kVolume - sent));
            const ssize_t wrote = send(fd, chunk.data(), want, MSG_NOSIGNAL);
            if (wrote > 0) sent += static_cast<std::uint64_t>(wrote);
            if (wrote < 0 && errno != EAGAIN && errno != EINTR) {
                send_error = std::strerror(errno);
                sending = false;  // memqd is gone from this connection: keep reading
            }
            if (sent == kVolume) {
                shutdown(fd, SHUT_WR);
                sending = false;
            }
        }
    }
    const Memory after = read_memory(memqd.pid());
    close(fd);

    const std::size_t line_end = received.find("\r\n");
    ASSERT_NE(line_end, std::string::npos) << "no reply; got " << received.size() << " bytes";
    EXPECT_TRUE(e2e::is_json(received.substr(0, line_end), e2e::error_reply("Line too long")));
    EXPECT_EQ(received.size(), line_end + 2) << "more after the error: " << received;
    EXPECT_TRUE(eof) << "memqd never closed the connection";
    EXPECT_GT(sent, kLineLimit);

    const std::uint64_t growth = after.hwm_bytes > before.rss_bytes ? after.hwm_bytes - before.rss_bytes : 0;
    figure("long_line", std::string(build_flavour()) + "; offered " + mib(kVolume) + ", memqd took " + mib(sent) +
                            " before the close" + (send_error.empty() ? "" : " (then send: " + send_error + ")"));
    figure("long_line", "memqd VmRSS before=" + mib(before.rss_bytes) + " VmHWM during=" + mib(after.hwm_bytes) +
                            (peak_reset ? "" : " (since start)") + " growth=" + mib(growth) + " bound=line limit " +
                            mib(kLineLimit) + " + slack " + mib(kMemorySlack));
    EXPECT_LT(growth, kLineLimit + kMemorySlack);

    // memqd still serves.
    e2e::LineClient after_client(memqd.port());
    after_client.send_line(e2e::subscribe_command("t"));
    EXPECT_TRUE(e2e::is_json(after_client.read_line(), e2e::kAck));
    const e2e::ExitStatus status = memqd.stop();
    EXPECT_TRUE(status.is_clean()) << e2e::describe(status);
}

}  // namespace
}  // namespace memq::overload
