// slow_consumer_test.cpp — overload (a): a subscriber that never reads, while 1 GiB
// flows through memqd to subscribers that do read.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

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

constexpr std::uint64_t kPendingLimit = 8 * kMiB;
constexpr std::size_t kMessageBytes = 64 * 1024;
constexpr std::uint64_t kVolume = kSanitized ? 128 * kMiB : kGiB;  // payload bytes published
constexpr std::uint64_t kMessages = kVolume / kMessageBytes;
// The publisher stays at most this many messages ahead of the slowest reader,
// so a reader that keeps reading never nears the pending limit itself.
constexpr std::uint64_t kWindow = 24;  // 1.5 MiB
constexpr std::uint64_t kProbeEvery = 32;
constexpr auto kProbeBound = kSanitized ? 2000ms : 250ms;
// memqd's own allowance on top of its resting RSS besides the pending limit: the
// readers' windows, read buffers and allocator slack. Under ASan freed memory
// stays resident in its quarantine (256 MiB by default), so the bound there only
// catches a runaway; leaks are LeakSanitizer's job at memqd's exit (exit code checked).
constexpr std::uint64_t kMemorySlack = kSanitized ? 448 * kMiB : 24 * kMiB;

// A subscriber on its own thread: reads every delivery of one topic and checks
// that message i carries index i and the expected length.
class CheckingReader {
public:
    CheckingReader(std::uint16_t port, const std::string& topic) : fd_(connect_loopback(port)) {
        const std::string line = e2e::subscribe_command(topic) + "\n";
        if (send(fd_, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
            throw std::runtime_error("subscribe send failed");
        }
    }
    ~CheckingReader() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        close(fd_);
    }

    // Starts reading after the subscribe ack (read here, on the caller's thread).
    void start(std::uint64_t expected_messages) {
        std::string ack;
        while (ack.find("\r\n") == std::string::npos) {
            char byte;
            if (recv(fd_, &byte, 1, 0) != 1) throw std::runtime_error("no subscribe ack");
            ack += byte;
        }
        if (!e2e::is_json(ack.substr(0, ack.size() - 2), e2e::kAck)) throw std::runtime_error("bad ack: " + ack);
        thread_ = std::thread([this, expected_messages] { run(expected_messages); });
    }
    void join() { thread_.join(); }

    std::uint64_t received() const { return received_.load(std::memory_order_acquire); }
    const std::string& error() const { return error_; }  // after join

private:
    void run(std::uint64_t expected) {
        std::vector<char> chunk(256 * 1024);
        std::string partial;
        std::size_t base_length = 0;  // line length without the index's digits
        while (received_ < expected && !stop_) {
            pollfd readable{fd_, POLLIN, 0};
            if (poll(&readable, 1, 100) <= 0) continue;
            const ssize_t got = recv(fd_, chunk.data(), chunk.size(), 0);
            if (got <= 0) {
                error_ = got == 0 ? "EOF after " + std::to_string(received_) + " messages"
                                  : std::string("recv: ") + std::strerror(errno);
                return;
            }
            partial.append(chunk.data(), static_cast<std::size_t>(got));
            std::size_t start = 0;
            for (std::size_t end; (end = partial.find("\r\n", start)) != std::string::npos; start = end + 2) {
                const std::string_view line(partial.data() + start, end - start);
                const std::uint64_t index = received_.load(std::memory_order_relaxed);
                const std::size_t at = line.find("\"index\":");
                std::int64_t got_index = -1;
                if (at != std::string_view::npos) {
                    std::size_t digits = at + 8;
                    while (digits < line.size() && line[digits] == ' ') ++digits;
                    std::from_chars(line.data() + digits, line.data() + line.size(), got_index);
                }
                const std::size_t index_digits = std::to_string(index).size();
                if (index == 0) base_length = line.size() - index_digits;
                if (got_index != static_cast<std::int64_t>(index) || line.size() != base_length + index_digits) {
                    error_ = "message " + std::to_string(index) + " out of order or mangled: " +
                             std::string(line.substr(0, 120));
                    return;
                }
                received_.store(index + 1, std::memory_order_release);
            }
            partial.erase(0, start);
        }
    }

    int fd_;
    std::thread thread_;
    std::atomic<std::uint64_t> received_{0};
    std::atomic<bool> stop_{false};
    std::string error_;
};

TEST(SlowConsumer, NonReaderIsCutOffWhileReadersGetEverythingPromptlyAndMemoryStaysBounded) {
    e2e::MemqdProcess memqd(e2e::any_port({"--max-pending-bytes", std::to_string(kPendingLimit)}));
    {
        LineClient stalled(memqd.port(), 4096);  // subscribes, then never reads
        stalled.send_line(e2e::subscribe_command("bulk"));
        ASSERT_TRUE(e2e::is_json(stalled.read_line(), e2e::kAck));
        std::vector<std::unique_ptr<CheckingReader>> readers;
        for (int i = 0; i < 2; ++i) readers.push_back(std::make_unique<CheckingReader>(memqd.port(), "bulk"));
        LineClient probe_listener(memqd.port());
        probe_listener.send_line(e2e::subscribe_command("probe"));
        ASSERT_TRUE(e2e::is_json(probe_listener.read_line(), e2e::kAck));
        LineClient prober(memqd.port());
        LineClient publisher(memqd.port());
        for (auto& reader : readers) reader->start(kMessages);

        const Memory before = read_memory(memqd.pid());
        const bool peak_reset = reset_peak(memqd.pid());
        const auto slowest = [&] {
            std::uint64_t least = kMessages;
            for (const auto& reader : readers) least = std::min(least, reader->received());
            return least;
        };

        std::string payload(kMessageBytes, 'p');
        std::vector<Clock::duration> probe_latencies;
        std::uint64_t acked = 0, probes = 0;
        const auto started = Clock::now();
        for (std::uint64_t i = 0; i < kMessages; ++i) {
            const auto wait_until = Clock::now() + 20s;
            while (i >= slowest() + kWindow) {  // the readers' progress paces the publisher
                ASSERT_LT(Clock::now(), wait_until) << "readers stuck at " << slowest() << " of " << i;
                std::this_thread::yield();
            }
            std::to_chars(payload.data(), payload.data() + 20, i);
            publisher.send_line(e2e::send_command("bulk", payload), 20s);
            while (acked + 64 < i) {
                ASSERT_TRUE(e2e::is_json(publisher.read_line(), e2e::kAck)) << "ack " << acked;
                ++acked;
            }
            if (i % kProbeEvery == 0) {
                const auto sent = Clock::now();
                prober.send_line(e2e::send_command("probe", std::to_string(probes)));
                ASSERT_TRUE(e2e::is_json(probe_listener.read_line(5s),
                                         e2e::delivered_message("probe", std::to_string(probes), probes)))
                    << "probe " << probes;
                probe_latencies.push_back(Clock::now() - sent);
                ASSERT_TRUE(e2e::is_json(prober.read_line(), e2e::kAck));
                ++probes;
            }
        }
        for (; acked < kMessages; ++acked) ASSERT_TRUE(e2e::is_json(publisher.read_line(), e2e::kAck)) << acked;
        for (auto& reader : readers) {
            reader->join();
            EXPECT_EQ(reader->error(), "");
            EXPECT_EQ(reader->received(), kMessages);
        }
        const auto took = Clock::now() - started;
        const Memory after = read_memory(memqd.pid());

        std::size_t stalled_bytes = 0;
        const LineClient::Ending ending = stalled.read_until_closed(10s, &stalled_bytes);
        EXPECT_NE(ending, LineClient::Ending::timeout) << "the non-reader was never closed";
        EXPECT_LT(stalled_bytes, kMessages * kMessageBytes / 4);
        EXPECT_NE(memqd.stderr_text().find("slow consumer"), std::string::npos) << memqd.stderr_text();

        std::sort(probe_latencies.begin(), probe_latencies.end());
        const auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
        const double seconds = std::chrono::duration<double>(took).count();
        const std::uint64_t peak_growth = after.hwm_bytes > before.rss_bytes ? after.hwm_bytes - before.rss_bytes : 0;
        figure("slow_consumer", std::string(build_flavour()) + "; published " + mib(kMessages * kMessageBytes) +
                                    " as " + std::to_string(kMessages) + " x 64 KiB to 2 readers + 1 non-reader in " +
                                    std::to_string(seconds) + " s (" +
                                    mib(static_cast<std::uint64_t>(kMessages * kMessageBytes / seconds)) + "/s in)");
        figure("slow_consumer", "memqd VmRSS before=" + mib(before.rss_bytes) + " VmHWM during=" +
                                    mib(after.hwm_bytes) + (peak_reset ? "" : " (since start)") +
                                    " growth=" + mib(peak_growth) + " bound=pending limit " + mib(kPendingLimit) +
                                    " + slack " + mib(kMemorySlack));
        figure("slow_consumer", "probe publish->delivery over " + std::to_string(probes) + " probes: median=" +
                                    std::to_string(ms(probe_latencies[probe_latencies.size() / 2])) +
                                    " ms max=" + std::to_string(ms(probe_latencies.back())) + " ms bound=" +
                                    std::to_string(ms(kProbeBound)) + " ms");
        figure("slow_consumer", "non-reader closed (" + std::string(e2e::to_string(ending)) + ") after receiving " +
                                    mib(stalled_bytes));
        EXPECT_LT(probe_latencies.back(), kProbeBound);
        EXPECT_LT(peak_growth, kPendingLimit + kMemorySlack);
    }
    const e2e::ExitStatus status = memqd.stop();
    EXPECT_TRUE(status.is_clean()) << e2e::describe(status);
}

}  // namespace
}  // namespace memq::overload
